"""Sound float64 interval propagation: the one kernel under network and search.

Every range returned here contains the exact range of the real-number
computation it describes, in spite of float64 rounding: each result is
widened outward by a relative margin that covers the rounding of a length-n
dot product (``gamma_n = (n + 4) eps``, never below ``1e-12``) and by an
absolute ``(n + 4) 2**-1074`` that covers underflow to subnormals (proofs_notes/search_bounds.md,
"Rounding"). NaN never leaves this module: a bound that overflows becomes
infinite, which is sound (and the callers report it).

Row norms are computed scaled, as ``hypot`` does, so weights of 1e-300 give
their true norm instead of 0, and weights of 1e200 do not overflow.

numpy only.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validation import fail
from ..activations import Activation
from ..sensitivity import row_norms as _row_norms

__all__ = [
    "Box",
    "activation_range",
    "affine_range",
    "ball_range",
    "box_norm",
    "box_range",
    "error_propagation",
    "row_norms",
    "widen",
]

_REL = 1e-12  # smallest relative widening (as before the kernel existed)
_EPS = float(np.finfo(np.float64).eps)
# Absolute widening per rounded operation: results in the subnormal range are
# rounded to a multiple of the smallest subnormal 2**-1074, an error <= 2**-1075.
_SUBNORMAL = float(np.nextafter(0.0, 1.0))


class Box(NamedTuple):
    """Elementwise bounds ``lo <= v <= hi`` (float64 arrays of one shape)."""

    lo: np.ndarray
    hi: np.ndarray


def _relative(n: int) -> float:
    """Relative rounding margin for sums of ``n`` float64 terms."""
    return max(_REL, (n + 4) * _EPS)


def widen(center: np.ndarray, radius: np.ndarray, magnitude: np.ndarray,
          n: int = 1) -> Box:
    """``[center - r', center + r']`` with ``r'`` widened for rounding.

    ``magnitude`` bounds the sum of the absolute values of the terms that
    ``center`` and ``radius`` were computed from; ``n`` is how many terms a
    sum had. NaN (from ``inf - inf``) becomes an infinite bound.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        r = radius + _relative(n) * (magnitude + np.abs(center)) + (n + 4) * _SUBNORMAL
        lo, hi = center - r, center + r
    return Box(np.where(np.isnan(lo), -np.inf, lo), np.where(np.isnan(hi), np.inf, hi))


def row_norms(W: np.ndarray) -> np.ndarray:
    """Euclidean norm of each row in float64, neither underflowing nor overflowing.

    :func:`coreset_verify.sensitivity.row_norms` (the one place): rows whose
    squared norm leaves float64's range are recomputed scaled,
    ``s * sqrt(sum (w / s)^2)`` with ``s = max |w|``; ``inf`` only when the norm
    itself exceeds the largest float64.
    """
    return np.asarray(_row_norms(np, np.asarray(W, dtype=np.float64)), dtype=np.float64)


def ball_range(W: np.ndarray, b: np.ndarray, beta: float) -> Box:
    """Range of ``W x + b`` over ``||x|| <= beta``: ``b +- beta ||w_j||``, widened.

    Exact up to the widening (attained at ``+-beta w_j / ||w_j||``).
    """
    with np.errstate(over="ignore"):
        reach = beta * row_norms(W)
    return widen(b, reach, reach + np.abs(b), W.shape[1])


def box_range(W: np.ndarray, b: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> Box:
    """Range of ``W x + b`` over ``lower <= x <= upper`` (exact up to the widening)."""
    return affine_range(W, b, lower, upper)


def affine_range(W: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> Box:
    """Range of ``W h + b`` for ``lo <= h <= hi`` (centre-radius interval arithmetic)."""
    with np.errstate(over="ignore", invalid="ignore"):
        mid, rad = lo / 2 + hi / 2, hi / 2 - lo / 2
        aw = np.abs(W)
        spread = aw @ rad
        center = W @ mid + b
        magnitude = aw @ np.abs(mid) + spread + np.abs(b)
    mid_ok = np.all(np.isfinite(mid))
    if not mid_ok:  # an infinite input bound: every row that touches it is unbounded
        return _unbounded_rows(W, b, lo, hi)
    return widen(center, spread, magnitude, W.shape[1] + 1)


def _unbounded_rows(W, b, lo, hi) -> Box:
    """Affine range when some input bounds are infinite: rows that use them
    get infinite bounds, the others are computed on the finite inputs."""
    finite = np.isfinite(lo) & np.isfinite(hi)
    used = np.abs(W[:, ~finite]).sum(axis=1) > 0
    inner = affine_range(W[:, finite], b, lo[finite], hi[finite])
    return Box(np.where(used, -np.inf, inner.lo), np.where(used, np.inf, inner.hi))


def activation_range(act: Activation | None, lo: np.ndarray, hi: np.ndarray) -> Box:
    """Range of the torch module of ``act`` on ``[lo, hi]``, elementwise.

    Over the two ends, and 0 when inside (every supported activation is
    monotone on each side of 0), widened by ``act.module_slack`` (Softplus's
    threshold) and for rounding. Also contains the range of ``phi`` itself.
    """
    if act is None:
        return Box(lo, hi)
    if not (act.is_nondecreasing or "negative_slope" in dict(act.params)):
        # SiLU, for one, dips below both ends on [-3, -0.5]: ends and 0 miss its range
        raise fail("activation_range", "act", "an activation monotone on each side of 0 "
                   "(non-decreasing, or LeakyReLU)", act.name)
    a, b = act.numpy(lo), act.numpy(hi)
    z = act.numpy(np.clip(0.0, lo, hi))
    out_lo = np.minimum(np.minimum(a, b), z) - act.module_slack
    out_hi = np.maximum(np.maximum(a, b), z) + act.module_slack
    with np.errstate(over="ignore", invalid="ignore"):
        return widen(out_lo / 2 + out_hi / 2, out_hi / 2 - out_lo / 2,
                     np.abs(out_lo) + np.abs(out_hi))


def box_norm(box: Box) -> float:
    """An upper bound on ``||v||`` for every ``v`` in the box (scaled, widened)."""
    top = np.maximum(np.abs(box.lo), np.abs(box.hi))
    norm = float(row_norms(top[None, :])[0])
    return norm * (1 + _relative(top.size)) + (top.size + 4) * _SUBNORMAL


def error_propagation(n: int, weights: list[np.ndarray], lipschitz: list[float]) -> np.ndarray:
    """``P`` with ``|output error| <= P |e|`` entrywise, ``P >= 0`` (Lemma P).

    ``e`` (length ``n``) is an error at the pre-activation of a hidden layer;
    it passes through that layer's activation (Lipschitz ``lipschitz[0]``) and
    the next Linear ``weights[0]``, then the next pair, and so on. With no
    weights, the identity of size ``n``. Each product is rounded upward by a
    relative margin.
    """
    P = np.eye(n)
    for W, lip in zip(weights, lipschitz, strict=True):
        aw = np.abs(np.asarray(W, dtype=np.float64))
        P = (aw @ (lip * P)) * (1 + _relative(aw.shape[1]))
    return P
