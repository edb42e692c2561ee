"""``F``, ``T_i`` and the relative error, as the audit uses them.

Thin wrappers over :mod:`coreset_verify.nets` (the one place ``F`` and
``T_i`` are computed): a pruned pair with no neuron left is the zero
function, and an output whose ``T_i`` is 0 (``F_i = 0`` on the whole ball)
is measured in units of 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..activations import Activation
from ..nets import layer_pair_forward, layer_pair_scale
from ._layers import Layer

__all__ = ["forward", "relative_error", "scale_of"]


def forward(W_in: Any, b_in: Any, W_out: Any, x: np.ndarray,
            activation: Activation) -> np.ndarray:
    """``F(x) = W_out phi(W_in x + b_in)`` for a batch ``x`` (b, d); returns (b, k).

    Zero kept neurons (``W_in`` of shape (0, d)) give ``F = 0``.
    """
    if np.shape(W_in)[0] == 0:
        return np.zeros((np.shape(x)[0], np.shape(W_out)[0]))
    return layer_pair_forward(W_in, b_in, W_out, x, activation)


def scale_of(layer: Layer, beta: float, activation: Activation) -> np.ndarray:
    """``T_i = sum_j |W_out[i, j]| env_j`` (k,): the unit of the additive bound.

    ``env_j = max(|phi_lo[j]|, |phi_hi[j]|)`` on the ball of radius ``beta``
    (:func:`coreset_verify.nets.layer_pair_scale`). Outputs with ``T_i = 0``
    get 1 (their F is 0 on the whole ball).
    """
    scale = layer_pair_scale(layer.W_in, layer.b_in, layer.W_out, beta=beta,
                             activation=activation)
    return np.where(scale > 0, scale, 1.0)


def relative_error(layer: Layer, pruned: Any, x: np.ndarray, beta: float,
                   activation: Activation) -> float:
    """``max over x and i of |F_i(x) - F~_i(x)| / T_i`` at the given inputs.

    ``pruned`` is the pruned ``(W_in', b_in', W_out')``.
    """
    full = forward(layer.W_in, layer.b_in, layer.W_out, x, activation)
    small = forward(*pruned, x, activation)
    return float(np.max(np.abs(full - small) / scale_of(layer, beta, activation)))
