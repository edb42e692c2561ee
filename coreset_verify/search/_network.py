"""The search's view of two networks: read layers, and their shared first layer.

Reading is :func:`coreset_verify.nets.model.read_layers` (the one reader of
torch models) and activations are :class:`coreset_verify.activations.Activation`
(the one vocabulary); both are re-exported here for the search's modules.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..activations import Activation
from ..nets.model import Layer, read_layers

__all__ = ["Activation", "Layer", "SharedFirstLayer", "read_network", "share_first_layer"]


def read_network(module, name: str, func: str = "worst_case") -> tuple[Layer, ...]:
    """Read a torch MLP into float64 layers (see :func:`~coreset_verify.nets.model.read_layers`).

    Parameters
    ----------
    module : torch.nn.Module
        ``nn.Linear`` or a (nested) ``nn.Sequential`` of supported layers.
    name : str
        The argument name, for error messages.
    func : str
        The public function, for error messages.

    Raises
    ------
    InvalidArgumentError
        An unsupported layer or parameter dtype, no ``nn.Linear``, an
        activation before the first ``nn.Linear``, or non-finite weights.
    """
    return read_layers(module, func=func, name=name)


@dataclass(frozen=True)
class SharedFirstLayer:
    """First hidden layers of two networks, with identical neurons merged.

    The union layer holds every first-layer neuron of ``f`` followed by the
    neurons of ``g`` that have no identical twin in ``f`` (same weight row,
    same bias, exactly, and the same activation). ``index_f`` / ``index_g``
    map each network's first-layer neurons to union rows.
    """

    weight: np.ndarray
    bias: np.ndarray
    activations: tuple[Activation, ...]
    index_f: np.ndarray
    index_g: np.ndarray

    @property
    def n_shared(self) -> int:
        """How many neurons of ``g`` were matched to a neuron of ``f``."""
        return int(np.sum(self.index_g < len(self.index_f)))


def share_first_layer(f: tuple[Layer, ...], g: tuple[Layer, ...]) -> SharedFirstLayer:
    """Merge identical first-layer neurons of ``f`` and ``g``.

    Neurons are merged only when both first layers have an activation and it
    is the same one; exact equality of weight row and bias is required.
    """
    lf, lg = f[0], g[0]
    n_f = lf.weight.shape[0]
    same_act = lf.activation is not None and lf.activation == lg.activation
    keys: dict[bytes, int] = {}
    if same_act:
        for j in range(n_f):
            keys.setdefault(_key(lf, j), j)
    index_g = np.empty(lg.weight.shape[0], dtype=np.int64)
    extra = []
    for j in range(lg.weight.shape[0]):
        hit = keys.get(_key(lg, j)) if same_act else None
        if hit is None:
            index_g[j] = n_f + len(extra)
            extra.append(j)
        else:
            index_g[j] = hit
    weight = np.vstack([lf.weight, lg.weight[extra]])
    bias = np.concatenate([lf.bias, lg.bias[extra]])
    acts = (lf.activation,) * n_f + (lg.activation,) * len(extra)
    return SharedFirstLayer(weight, bias, acts, np.arange(n_f), index_g)


def _key(layer: Layer, j: int) -> bytes:
    # ``+ 0.0`` turns -0.0 into 0.0, so equal numbers give equal bytes.
    return (layer.weight[j] + 0.0).tobytes() + (layer.bias[j : j + 1] + 0.0).tobytes()
