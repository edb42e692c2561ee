"""Read torch MLPs into plain float64 layers, and evaluate them.

A network is read into a tuple of :class:`Layer` (an affine map followed by
an optional activation). Consecutive ``nn.Linear`` layers are composed into
one; ``nn.Flatten``, ``nn.Dropout`` and ``nn.Identity`` pass through.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InvalidArgumentError

__all__ = ["Activation", "Layer", "SharedFirstLayer", "read_network"]

PIECEWISE_LINEAR = ("relu", "leaky_relu")


@dataclass(frozen=True)
class Activation:
    """An elementwise activation: its name and its one parameter.

    ``param`` is the negative slope (leaky_relu), alpha (elu) or beta
    (softplus, with ``threshold``); unused otherwise.
    """

    name: str
    param: float = 0.0
    threshold: float = 20.0

    @property
    def slope(self) -> float:
        """Slope left of 0 of a piecewise-linear activation."""
        return self.param if self.name == "leaky_relu" else 0.0

    @property
    def is_piecewise_linear(self) -> bool:
        """ReLU, or a leaky ReLU with slope in [0, 1)."""
        return self.name in PIECEWISE_LINEAR and 0.0 <= self.slope < 1.0

    def numpy(self, z: np.ndarray) -> np.ndarray:
        """Apply to a float64 array (used for interval bounds)."""
        if self.name in PIECEWISE_LINEAR:
            return np.where(z >= 0, z, self.slope * z)
        if self.name == "sigmoid":
            return 0.5 * (1.0 + np.tanh(0.5 * z))
        if self.name == "tanh":
            return np.tanh(z)
        if self.name == "softplus":
            bz = self.param * z
            soft = np.logaddexp(0.0, np.minimum(bz, self.threshold)) / self.param
            return np.where(bz > self.threshold, z, soft)
        return np.where(z > 0, z, self.param * np.expm1(np.minimum(z, 0.0)))

    def torch(self, z):
        """Apply to a torch tensor, as the torch module would."""
        import torch.nn.functional as F

        if self.name == "relu":
            return F.relu(z)
        if self.name == "leaky_relu":
            return F.leaky_relu(z, self.param)
        if self.name == "sigmoid":
            return z.sigmoid()
        if self.name == "tanh":
            return z.tanh()
        if self.name == "softplus":
            return F.softplus(z, self.param, self.threshold)
        return F.elu(z, self.param)


@dataclass(frozen=True)
class Layer:
    """``activation(weight @ h + bias)``; float64 numpy arrays."""

    weight: np.ndarray
    bias: np.ndarray
    activation: Activation | None

    def numpy(self, h: np.ndarray) -> np.ndarray:
        """Apply to a batch ``h`` of shape (B, in)."""
        z = h @ self.weight.T + self.bias
        return z if self.activation is None else self.activation.numpy(z)


def _activation_of(module) -> Activation | None:
    from torch import nn

    if isinstance(module, nn.ReLU):
        return Activation("relu")
    if isinstance(module, nn.LeakyReLU):
        return Activation("leaky_relu", float(module.negative_slope))
    if isinstance(module, nn.Sigmoid):
        return Activation("sigmoid")
    if isinstance(module, nn.Tanh):
        return Activation("tanh")
    if isinstance(module, nn.Softplus):
        return Activation("softplus", float(module.beta), float(module.threshold))
    if isinstance(module, nn.ELU):
        return Activation("elu", float(module.alpha))
    return None


def _leaves(module, name: str):
    from torch import nn

    if isinstance(module, nn.Sequential):
        for child_name, child in module.named_children():
            yield from _leaves(child, f"{name}.{child_name}")
        return
    yield name, module


def _ops(module, name: str) -> list:
    """Flatten ``module`` into a list of ("linear", W, b) / ("act", Activation)."""
    from torch import nn

    ops: list = []
    for leaf_name, leaf in _leaves(module, name):
        if isinstance(leaf, nn.Linear):
            w = leaf.weight.detach().to("cpu").double().numpy().copy()
            b = leaf.bias
            b = np.zeros(w.shape[0]) if b is None else b.detach().cpu().double().numpy()
            ops.append(("linear", w, b.copy()))
        elif isinstance(leaf, (nn.Flatten, nn.Dropout, nn.Identity)):
            continue
        elif (act := _activation_of(leaf)) is not None:
            ops.append(("act", act))
        else:
            raise InvalidArgumentError(
                f"{name} contains an unsupported layer {leaf_name} of type "
                f"{type(leaf).__name__}; expected nn.Linear, nn.ReLU, nn.LeakyReLU, "
                "nn.Sigmoid, nn.Tanh, nn.Softplus, nn.ELU, nn.Flatten, nn.Dropout "
                "or nn.Identity inside (nested) nn.Sequential."
            )
    return ops


def read_network(module, name: str) -> tuple[Layer, ...]:
    """Read a torch MLP into float64 layers.

    Parameters
    ----------
    module : torch.nn.Module
        ``nn.Linear`` or a (nested) ``nn.Sequential`` of supported layers.
    name : str
        The argument name, for error messages.

    Returns
    -------
    tuple of Layer
        Affine maps, each followed by an optional activation.

    Raises
    ------
    InvalidArgumentError
        An unsupported layer, no ``nn.Linear``, an activation before the first
        ``nn.Linear``, or non-finite weights.
    """
    layers: list[Layer] = []
    pending: tuple[np.ndarray, np.ndarray] | None = None
    for op in _ops(module, name):
        if op[0] == "linear":
            w, b = op[1], op[2]
            if pending is not None:
                w, b = w @ pending[0], w @ pending[1] + b
            pending = (w, b)
            continue
        if pending is None:
            if not layers:
                raise InvalidArgumentError(
                    f"{name} must start with nn.Linear; got an activation "
                    f"({op[1].name}) first."
                )
            width = layers[-1].weight.shape[0]
            pending = (np.eye(width), np.zeros(width))
        layers.append(Layer(pending[0], pending[1], op[1]))
        pending = None
    if pending is not None:
        layers.append(Layer(pending[0], pending[1], None))
    if not layers:
        raise InvalidArgumentError(f"{name} must contain an nn.Linear; got none.")
    for layer in layers:
        if not (np.all(np.isfinite(layer.weight)) and np.all(np.isfinite(layer.bias))):
            raise InvalidArgumentError(f"{name} has NaN or infinite weights.")
    return tuple(layers)


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
