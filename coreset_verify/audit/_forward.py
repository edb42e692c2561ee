"""``F``, ``T_i`` and the relative error, as the audit uses them.

The one place the audit evaluates a layer pair. Dense pairs go through
:mod:`coreset_verify.nets` (the one place ``F`` and ``T_i`` are computed):
a pruned pair with no neuron left is the zero function, and an output whose
``T_i`` is 0 (``F_i = 0`` on the whole ball) is measured in units of 1. Conv
pairs (:class:`~._conv.ConvLayer`) are evaluated by torch on the modules the
worst-case search also runs on (:mod:`._conv`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..activations import Activation
from ..nets import layer_pair_forward, layer_pair_scale
from ._layers import Layer

__all__ = ["evaluate", "forward", "relative_error", "scale_of"]


def forward(W_in: Any, b_in: Any, W_out: Any, x: np.ndarray,
            activation: Activation) -> np.ndarray:
    """``F(x) = W_out phi(W_in x + b_in)`` for a batch ``x`` (b, d); returns (b, k).

    Zero kept neurons (``W_in`` of shape (0, d)) give ``F = 0``.
    """
    if np.shape(W_in)[0] == 0:
        return np.zeros((np.shape(x)[0], np.shape(W_out)[0]))
    return layer_pair_forward(W_in, b_in, W_out, x, activation)


def evaluate(layer: Any, pruned: Any, x: np.ndarray, activation: Activation) -> np.ndarray:
    """``F~(x)`` of ``pruned`` (a triple of ``layer``'s kind) for a batch ``x``: (b, k).

    Dense: ``pruned = (W_in', b_in', W_out')``, :func:`forward`. Conv:
    ``pruned = (conv_weight', conv_bias', next_weight')`` on ``layer``'s
    geometry, evaluated by torch (:func:`~._conv.conv_forward`).
    ``evaluate(layer, layer.arrays(), x, act)`` is ``F(x)``.
    """
    if layer.kind == "conv":
        from ._conv import conv_forward

        return conv_forward(layer, pruned, x, activation)
    return forward(*pruned, x, activation)


def scale_of(layer: Layer, beta: float, activation: Activation) -> np.ndarray:
    """``T_i = sum_j |W_out[i, j]| env_j`` (k,): the unit of the additive bound.

    ``env_j = max(|phi_lo[j]|, |phi_hi[j]|)`` on the ball of radius ``beta``
    (:func:`coreset_verify.nets.layer_pair_scale`); for a conv pair
    :func:`~._conv.conv_scale`. Outputs with ``T_i = 0`` get 1 (their F is 0
    on the whole ball).
    """
    if layer.kind == "conv":
        from ._conv import conv_scale

        scale = conv_scale(layer, beta, activation)
    else:
        scale = layer_pair_scale(layer.W_in, layer.b_in, layer.W_out, beta=beta,
                                 activation=activation)
    return np.where(scale > 0, scale, 1.0)


def relative_error(layer: Layer, pruned: Any, x: np.ndarray, beta: float,
                   activation: Activation) -> float:
    """``max over x and i of |F_i(x) - F~_i(x)| / T_i`` at the given inputs.

    ``pruned`` is the pruned triple of ``layer``'s kind (see :func:`evaluate`).
    """
    full = evaluate(layer, layer.arrays(), x, activation)
    small = evaluate(layer, pruned, x, activation)
    return float(np.max(np.abs(full - small) / scale_of(layer, beta, activation)))
