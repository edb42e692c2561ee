"""The worst-case search as the audit uses it: ``coreset_verify.search.worst_case``
on the layer pair and the pruned pair, in units of ``T_i``."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..activations import Activation
from ..errors import InvalidArgumentError
from ._forward import scale_of
from ._layers import Layer

__all__ = ["pair_modules", "search_available", "search_worst_case"]


def search_available() -> bool:
    """Whether the search can run (it needs torch)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def pair_modules(layer: Any, pruned: Any, activation: Activation) -> Any:
    """The torch modules of a pruned triple of ``layer``'s kind (float64, flat inputs).

    Dense: :func:`~coreset_verify.nets.layer_pair_modules` (no neuron kept is
    one neuron with zero weights). Conv: :func:`~._conv.conv_pair_modules`.
    """
    if layer.kind == "conv":
        from ._conv import conv_pair_modules

        return conv_pair_modules(pruned, layer.geometry, activation)
    from ..nets import layer_pair_modules

    W_in, b_in, W_out = (np.ascontiguousarray(a, dtype=np.float64) for a in pruned)
    if W_in.shape[0] == 0:  # no neuron kept: F~ = 0, one neuron with zero weights
        W_in, b_in, W_out = np.zeros((1, layer.d)), np.zeros(1), np.zeros((layer.k, 1))
    return layer_pair_modules(W_in, b_in, W_out, activation=activation)


def search_worst_case(layer: Layer, pruned: Any, *, beta: float, activation: Activation,
                      method: str, time_limit: float | None, rng: np.random.Generator):
    """``max over ||x|| <= beta and i of |F_i(x) - F~_i(x)| / T_i``, bracketed.

    ``pruned`` is the pruned triple of ``layer``'s kind. Returns the search's
    :class:`~coreset_verify.search.WorstCase` (``error`` found,
    ``upper_bound`` sound, ``inf`` when none; ``method`` the one that ran).
    With ``method="auto"`` on modules the search does not read (it refuses
    them with InvalidArgumentError; a Conv2d before the search reads conv
    layers), the gradient search runs instead, which takes any
    differentiable pair.
    """
    from ..search import worst_case

    original = pair_modules(layer, layer.arrays(), activation)
    small = pair_modules(layer, pruned, activation)
    options = {"beta": beta, "scale": scale_of(layer, beta, activation),
               "time_limit": time_limit}
    state = rng.bit_generator.state
    try:
        return worst_case(original, small, method=method, rng=rng, **options)
    except InvalidArgumentError:
        if method == "gradient":
            raise
    rng.bit_generator.state = state
    return worst_case(original, small, method="gradient", rng=rng, **options)
