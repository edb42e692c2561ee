"""The worst-case search as the audit uses it.

The audit calls :func:`coreset_verify.search.worst_case`. While that package
is missing (it is optional: it needs torch, and cvxpy for the bounds) a small
projected-gradient ascent stands in; it only ever returns a lower bound
(``upper_bound = inf``, status ``"local"``), so it never certifies anything.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from ..activations import Activation
from ._common import Layer, ball_inputs, forward, scale_of

__all__ = ["SearchResult", "search_worst_case"]


@dataclass(frozen=True)
class SearchResult:
    """What a campaign or the guarantee check keeps of a worst-case search.

    ``error`` is found (a lower bound), ``upper_bound`` is sound (``inf`` when
    none); both are in units of ``T_i``.
    """

    x: np.ndarray
    error: float
    upper_bound: float
    certified: bool
    status: str
    seconds: float
    method: str


def search_worst_case(layer: Layer, pruned: tuple, *, beta: float, activation: Activation,
                      method: str, time_limit: float | None, rng: np.random.Generator,
                      ) -> SearchResult:
    """``max over ||x|| <= beta and i of |F_i(x) - F~_i(x)| / T_i``, bracketed."""
    scale = scale_of(layer, beta, activation)
    try:
        from ..search import worst_case
    except ImportError:
        return _fallback(layer, pruned, beta, activation, scale, time_limit, rng)
    from ..network import layer_pair_modules

    original = layer_pair_modules(*layer.arrays(), activation=activation)
    small = layer_pair_modules(*(np.ascontiguousarray(a, dtype=np.float64) for a in pruned),
                               activation=activation)
    found = worst_case(original, small, beta=beta, scale=scale, method=method,
                       time_limit=time_limit, rng=rng)
    return SearchResult(np.asarray(found.x, dtype=np.float64), float(found.error),
                        float(found.upper_bound), bool(found.certified), str(found.status),
                        float(found.seconds), method)


def _fallback(layer, pruned, beta, activation, scale, time_limit, rng) -> SearchResult:
    """Projected gradient ascent in numpy (ReLU-like subgradients), lower bound only."""
    t0 = time.perf_counter()
    deadline = t0 + (time_limit if time_limit is not None else 5.0)
    x = ball_inputs(layer, beta, 64, rng)
    W_in = np.vstack([layer.W_in, pruned[0]])
    b_in = np.concatenate([layer.b_in, pruned[1]])
    W_out = np.hstack([layer.W_out, -np.asarray(pruned[2])]) / scale[:, None]
    best_x, best = x[0], -math.inf
    step = 0.05 * beta
    for _ in range(200):
        z = x @ W_in.T + b_in
        diff = activation(z) @ W_out.T
        i = np.argmax(np.abs(diff), axis=1)
        val = np.abs(diff[np.arange(len(x)), i])
        if val.max() > best:
            best, best_x = float(val.max()), x[np.argmax(val)].copy()
        if time.perf_counter() > deadline:
            break
        h = 1e-7
        slope = (activation(z + h) - activation(z - h)) / (2 * h)
        sign = np.sign(diff[np.arange(len(x)), i])[:, None]
        grad = ((W_out[i] * slope) @ W_in) * sign
        x = x + step * grad / np.maximum(np.linalg.norm(grad, axis=1, keepdims=True), 1e-300)
        x *= np.minimum(1.0, beta / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-300))
    check = forward(layer.W_in, layer.b_in, layer.W_out, best_x[None], activation)
    check = check - forward(*pruned, best_x[None], activation)
    error = float(np.max(np.abs(check) / scale))
    return SearchResult(best_x, error, math.inf, False, "local",
                        time.perf_counter() - t0, "fallback-gradient")
