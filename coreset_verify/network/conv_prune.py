"""prune_network on convolutional models: a channel coreset per Conv2d, a layer
coreset per hidden Linear (proofs_notes/conv.md, "Whole convolutional networks").

:func:`prune_network` dispatches here when the model holds a Conv2d,
BatchNorm2d, pooling or Unflatten, or when ``input_shape`` is given. The
reading is :mod:`.conv_model`, the radii and propagation :mod:`.conv_bounds`.

Examples
--------
>>> import torch
>>> from coreset_verify.network import composed_bound, prune_network
>>> _ = torch.manual_seed(0)
>>> net = torch.nn.Sequential(
...     torch.nn.Unflatten(1, (1, 12, 12)), torch.nn.Conv2d(1, 8, 3), torch.nn.ReLU(),
...     torch.nn.MaxPool2d(2), torch.nn.Conv2d(8, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(),
...     torch.nn.Linear(72, 10)).double().eval()
>>> p = prune_network(net, keep=0.5, beta=1.0, rng=0)
>>> [(la.n_before, la.n_after) for la in p.layers], p.model[4]
([(8, 4), (8, 4)], Conv2d(4, 4, kernel_size=(3, 3), stride=(1, 1)))
>>> composed_bound(p).shape
(10,)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._validation import check_open_unit, check_positive, check_rng, fail
from ..conv import CHANNEL_KINDS, channel_bound, channel_coreset
from ..sensitivity import layer_sensitivities
from .conv_bounds import input_radius, module_slack, propagation
from .conv_model import Unit, read_conv_model, rebuild
from .prune import (
    ORDERS,
    _check_activations,
    _neurons,
    dense_choice,
    largest_fraction,
    run_steps,
)
from .reading import count, position_of
from .records import PrunedLayer, PrunedNetwork
from .surgery import _factor, _indices, _scaled, _scales

__all__ = ["prune_conv_network", "select_channels"]


def _params_for(q: float, units: list[Unit]) -> int:
    """Parameters when every hidden unit keeps ``_neurons(q, n)`` of its n channels."""
    sizes = [units[0].W.shape[1]] + [_neurons(q, u.W.shape[0]) for u in units[:-1]]
    sizes.append(units[-1].W.shape[0])
    return sum(u.params(a, b) for u, a, b in zip(units, sizes[:-1], sizes[1:], strict=True))


def _targets(mode: str, value: float, units: list[Unit]) -> list[int]:
    """Channels (or neurons) to keep per hidden unit."""
    if mode == "params":
        value = largest_fraction(value, lambda q: _params_for(q, units))
    return [_neurons(value, u.W.shape[0]) for u in units[:-1]]


def _block_norms(V: np.ndarray, C: int) -> np.ndarray:
    """``A[i, c] = ||V[i, c]||_1`` (k, C): the next weight's block of channel c."""
    return np.abs(V).reshape(V.shape[0], C, -1).sum(axis=2)


def _columns(V: np.ndarray, kept: np.ndarray, C: int) -> np.ndarray:
    """The next weight restricted to the input channels ``kept``, unchanged."""
    if V.ndim == 4:
        return V[:, kept]
    return V.reshape(V.shape[0], C, -1)[:, kept].reshape(V.shape[0], -1)


def _channel_choice(unit: Unit, nxt: Unit, *, radius, target, share, kind, rng):
    """Kept channels of a conv unit and the re-weighted next weight, as
    :func:`~coreset_verify.network.prune.dense_choice` for neurons."""
    w, b = unit.folded()
    act = unit.act.activation
    C, V = w.shape[0], nxt.W
    sens = layer_sensitivities(w.reshape(C, -1), b, _block_norms(V, C), beta=radius,
                               activation=act)
    live = np.flatnonzero(sens.sensitivity > 0)
    if target >= C:
        return np.arange(C), V, None, None, sens
    if target >= live.size:
        return live, _columns(V, live, C), None, None, sens
    coreset = channel_coreset(w, b, V, distinct=target, activation=act, beta=radius, rng=rng,
                              channel_shape=None if nxt.is_conv else unit.pooled_hw)
    bound = channel_bound(coreset, delta=share, kind=kind,
                          output_positions=math.prod(nxt.out_hw),
                          input_size=math.prod(unit.in_shape))
    return np.asarray(coreset.indices), np.asarray(coreset.weight_next), coreset, bound, sens


def _prune_unit(units: list[Unit], layer: int, *, beta, target, value, share, kind, rng,
                step) -> PrunedLayer:
    """Prune hidden unit ``layer`` in place; return its record."""
    unit, nxt = units[layer], units[layer + 1]
    radius = input_radius(units, beta, layer)
    n = unit.W.shape[0]
    if unit.is_conv:
        kept, weight_next, coreset, bound, sens = _channel_choice(
            unit, nxt, radius=radius, target=target, share=share, kind=kind, rng=rng)
    else:
        kept, weight_next, coreset, bound, sens = dense_choice(
            unit.W, unit.b, nxt.W, unit.act.activation, radius=radius, target=target,
            mode="keep", value=value, share=share, kind=kind, rng=rng)
    unit.keep_outputs(kept)
    nxt.W = np.array(weight_next, dtype=np.float64)
    return PrunedLayer(
        position=position_of(unit.path), activation=unit.act.activation, n_before=n,
        n_after=int(kept.size), kept=kept.astype(np.int64), radius=radius,
        coreset=coreset, bound=bound, epsilon=0.0 if bound is None else float(bound.epsilon),
        scale=np.asarray(sens.scale, dtype=np.float64), propagation=propagation(units, layer),
        delta=share, step=step)


def _check_options(func: str, beta, delta, order, kind, mode):
    beta = check_positive(beta, "beta", func)
    delta = check_open_unit(delta, "delta", func)
    if order not in ORDERS:
        raise fail(func, "order", f"one of {list(ORDERS)}", order)
    if kind not in CHANNEL_KINDS:
        raise fail(func, "kind", f"one of {list(CHANNEL_KINDS)} for a convolutional model "
                   "(channel coresets have no paper form)", kind)
    if mode == "epsilon":
        raise fail(func, "epsilon", "None for a convolutional model (channel coresets have "
                   "no sample_size_for yet): give keep= instead", "a number")
    return beta, delta


def prune_conv_network(model: Any, budget: tuple[str, float], *, delta: float, beta: float,
                       rng: Any, order: str, kind: str,
                       input_shape: tuple[int, int, int] | None) -> PrunedNetwork:
    """Prune the channels of every Conv2d and the neurons of every hidden Linear.

    Called by :func:`~coreset_verify.network.prune_network`, which documents
    the arguments, the model's grammar and ``input_shape``; ``budget`` is
    ``("keep" | "params", fraction)`` as it checked it.

    Returns
    -------
    PrunedNetwork
        One :class:`PrunedLayer` per hidden unit: for a Conv2d, ``n_before``
        and ``n_after`` count channels, ``coreset`` is a
        :class:`~coreset_verify.ChannelCoreset`, ``scale`` the ``T_i`` of the
        next layer's output channels (one bound for every position), and
        ``propagation`` carries a per-channel error to the outputs.
    """
    func = "prune_network"
    net = read_conv_model(model, func, input_shape)
    _check_activations(func, net)
    mode, value = budget
    beta, delta = _check_options(func, beta, delta, order, kind, mode)
    rng = check_rng(rng, func)
    units = net.units
    slack = module_slack(units)
    hidden = len(units) - 1
    streams = rng.spawn(hidden)
    targets = _targets(mode, value, units)
    records = run_steps(func, order, [u.name for u in units[:-1]], lambda layer, step:
                        _prune_unit(units, layer, beta=beta, target=targets[layer],
                                    value=value, share=delta / hidden, kind=kind,
                                    rng=streams[layer], step=step))
    pruned = rebuild(model, units)
    return PrunedNetwork(
        model=pruned, layers=records,
        params_before=count(model), params_after=count(pruned), beta=beta, delta=delta,
        order=order, kind=kind, target=f"{mode}={value:g}",
        module_slack=slack + module_slack(units))


def select_channels(model: Any, kept: Sequence[Any], *, scale: Sequence[Any] | None = None,
                    input_shape: tuple[int, int, int] | None = None) -> Any:
    """A smaller copy of a convolutional model keeping chosen channels and neurons.

    For baselines (uniform sampling, top-k), as
    :func:`~coreset_verify.network.select_neurons` for MLPs: hidden unit l
    (a Conv2d with its BatchNorm, or a hidden Linear) keeps the output
    channels ``kept[l]``; the next layer keeps those input channels (their
    ``kh kw`` or ``H W`` columns), multiplied by ``scale[l]`` when given.

    Parameters
    ----------
    model : torch.nn.Sequential
        As for :func:`~coreset_verify.network.prune_network` with a Conv2d.
    kept : sequence of int arrays, one per hidden unit, shapes (r_l,)
        Distinct indices in the original numbering; None keeps a unit whole.
    scale : sequence of float arrays of shapes (r_l,) or floats, optional
    input_shape : (C, H, W), optional
        For a model without a leading ``nn.Unflatten``.

    Returns
    -------
    torch.nn.Sequential

    Raises
    ------
    InvalidArgumentError
        A model outside the grammar, with meta, float16 or non-finite tensors
        (as :func:`~coreset_verify.network.select_neurons`), an
        ``input_shape`` that does not fit it or has more than
        MAX_INPUT_ENTRIES = 2**24 entries; ``kept`` or ``scale`` as
        :func:`~coreset_verify.network.select_neurons` refuses them.
    MagnitudeError
        A scale that takes the next layer's weights beyond the largest
        number of the model's dtype (``scale=[1e308]``).
    """
    func = "select_channels"
    units = read_conv_model(model, func, input_shape).units
    hidden = len(units) - 1
    if isinstance(kept, str | bytes) or not isinstance(kept, Sequence) or len(kept) != hidden:
        raise fail(func, "kept", f"a sequence of {hidden} index arrays (one per hidden unit)",
                   kept)
    scale = _scales(func, scale, hidden)
    for layer, (idx, factor) in enumerate(zip(kept, scale, strict=True)):
        unit, nxt = units[layer], units[layer + 1]
        C = unit.W.shape[0]
        idx = np.arange(C) if idx is None else _indices(func, f"kept[{layer}]", idx, C)
        factor = _factor(func, f"scale[{layer}]", factor, idx.size)
        unit.keep_outputs(idx)
        V = _columns(nxt.W, idx, C)  # input channel c times factor[c]:
        nxt.W = _scaled(func, f"scale[{layer}]", V.reshape(V.shape[0], idx.size, -1),
                        np.reshape(factor, (1, -1, 1)), nxt.module.weight.dtype
                        ).reshape(V.shape)
    return rebuild(model, units)
