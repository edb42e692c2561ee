"""The worst-case search as the audit uses it: ``coreset_verify.search.worst_case``
on the layer pair and the pruned pair, in units of ``T_i``."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..activations import Activation
from ._forward import scale_of
from ._layers import Layer

__all__ = ["search_available", "search_worst_case"]


def search_available() -> bool:
    """Whether the search can run (it needs torch)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def search_worst_case(layer: Layer, pruned: Any, *, beta: float, activation: Activation,
                      method: str, time_limit: float | None, rng: np.random.Generator):
    """``max over ||x|| <= beta and i of |F_i(x) - F~_i(x)| / T_i``, bracketed.

    ``pruned`` is the pruned ``(W_in', b_in', W_out')`` (no neuron kept is
    the zero function). Returns the search's
    :class:`~coreset_verify.search.WorstCase` (``error`` found,
    ``upper_bound`` sound, ``inf`` when none).
    """
    from ..nets import layer_pair_modules
    from ..search import worst_case

    W_in, b_in, W_out = (np.ascontiguousarray(a, dtype=np.float64) for a in pruned)
    if W_in.shape[0] == 0:  # no neuron kept: F~ = 0, one neuron with zero weights
        W_in, b_in, W_out = np.zeros((1, layer.d)), np.zeros(1), np.zeros((layer.k, 1))
    original = layer_pair_modules(*layer.arrays(), activation=activation)
    small = layer_pair_modules(W_in, b_in, W_out, activation=activation)
    return worst_case(original, small, beta=beta, scale=scale_of(layer, beta, activation),
                      method=method, time_limit=time_limit, rng=rng)
