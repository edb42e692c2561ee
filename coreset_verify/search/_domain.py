"""The input domain: an L2 ball, a box, or their intersection."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import check_positive, fail, to_numpy
from ..nets.intervals import row_norms

__all__ = ["Domain", "make_domain"]


@dataclass(frozen=True)
class Domain:
    """``{x : ||x||_2 <= beta, lower <= x <= upper}``; absent parts are omitted.

    ``anchor`` is a point of the domain (the projection of 0 onto the box),
    used to make projected points exactly feasible.
    """

    d: int
    beta: float | None
    lower: np.ndarray | None
    upper: np.ndarray | None
    anchor: np.ndarray

    @property
    def has_ball(self) -> bool:
        """Whether the ball constraint is present."""
        return self.beta is not None

    @property
    def has_box(self) -> bool:
        """Whether the box constraint is present."""
        return self.lower is not None

    @property
    def radius(self) -> float:
        """A length scale: beta, or the half-diagonal of the box."""
        if self.beta is not None:
            return self.beta
        return float(row_norms((self.upper / 2 - self.lower / 2)[None])[0]) or 1.0

    @property
    def center(self) -> np.ndarray:
        """A central point of the domain."""
        if self.lower is None:
            return np.zeros(self.d)
        return self.anchor if self.beta is not None else (self.lower + self.upper) / 2

    def violation(self, x: np.ndarray) -> float:
        """How far ``x`` is outside the domain (0 inside), in absolute units."""
        out = 0.0
        if self.beta is not None:
            out = max(out, float(row_norms(np.asarray(x, float)[None])[0]) - self.beta)
        if self.lower is not None:
            out = max(out, float(np.max(self.lower - x)), float(np.max(x - self.upper)))
        return max(out, 0.0)

    def project(self, x):
        """Map a batch of points (torch) into the domain.

        Ball: scale down to radius beta. Box: clip. Both: clip, scale, clip
        (three alternating projections), then pull the point along the segment
        to ``anchor`` until it is inside the ball; the segment lies in the box
        since both ends do, so the result is exactly feasible (not the
        Euclidean projection, which would need Dykstra's iterations).
        """
        import torch

        if self.lower is not None:
            lo = torch.as_tensor(self.lower, dtype=x.dtype, device=x.device)
            hi = torch.as_tensor(self.upper, dtype=x.dtype, device=x.device)
        if self.beta is None:
            return torch.minimum(torch.maximum(x, lo), hi)
        if self.lower is None:
            return x * (self.beta / _norms(x)).clamp(max=1.0)
        for _ in range(2):
            x = torch.minimum(torch.maximum(x, lo), hi)
            x = x * (self.beta / _norms(x)).clamp(max=1.0)
        x = torch.minimum(torch.maximum(x, lo), hi)
        return self._pull_to_anchor(x)

    def _pull_to_anchor(self, x):
        import torch

        c = torch.as_tensor(self.anchor, dtype=x.dtype, device=x.device)
        v = x - c
        # Largest t in [0, 1] with ||c + t v|| <= beta (c is inside the ball),
        # computed in units of m so that no square overflows or underflows.
        m = v.abs().amax(-1).clamp_min(max(self.beta, float(c.abs().max())))[:, None]
        vs, cs = v / m, c / m
        a = (vs * vs).sum(-1).clamp_min(1e-300)
        b = 2 * (vs * cs).sum(-1)
        cc = (cs * cs).sum(-1) - (self.beta / m[:, 0]) ** 2
        disc = (b * b - 4 * a * cc).clamp_min(0)
        t = ((-b + disc.sqrt()) / (2 * a)).clamp(0.0, 1.0) * (1 - 1e-12)
        inside = _norms(x)[:, 0] <= self.beta
        t = torch.where(inside, torch.ones_like(t), t)
        return c + t[:, None] * v

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` points of the domain: half on its boundary, half inside."""
        if self.beta is not None:
            u = rng.standard_normal((n, self.d))
            u /= np.linalg.norm(u, axis=1, keepdims=True)
            r = np.ones(n)
            r[n // 2 :] = rng.random(n - n // 2) ** (1.0 / self.d)
            pts = u * (r * self.beta)[:, None]
        else:
            pts = rng.uniform(self.lower, self.upper, size=(n, self.d))
            corner = rng.random((n // 2, self.d)) < 0.5
            pts[: n // 2] = np.where(corner, self.lower, self.upper)
        return pts


def _norms(x):
    """Row norms of a torch batch (B, d), scaled so they neither overflow nor
    underflow (as ``hypot``), kept >= 1e-300 for division; shape (B, 1)."""
    top = x.abs().amax(dim=-1, keepdim=True)
    safe = top.clamp_min(1e-300)
    return (safe * (x / safe).norm(dim=-1, keepdim=True)).clamp_min(1e-300)


def _as_vector(value, name: str, d: int, func: str) -> np.ndarray:
    expected = f"a finite scalar or an array of shape ({d},) (the input dimension)"
    try:
        arr = np.asarray(to_numpy(value), dtype=np.float64)
    except (TypeError, ValueError):
        raise fail(func, name, expected, type(value).__name__) from None
    if arr.ndim == 0:
        arr = np.full(d, float(arr))
    if arr.shape != (d,):
        raise fail(func, name, expected, f"shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        j = int(np.argmax(~np.isfinite(arr)))
        raise fail(func, name, expected, f"{name}[{j}] = {arr[j]}")
    return arr.copy()


def make_domain(d: int, beta, lower, upper, *, func: str = "worst_case") -> Domain:
    """Validate ``beta``/``lower``/``upper`` and build the :class:`Domain`.

    Raises
    ------
    InvalidArgumentError
        No domain given, ``beta`` not a finite number > 0, only one of
        ``lower``/``upper``, a non-finite bound, ``lower > upper`` somewhere,
        or an empty intersection of ball and box. Messages name ``func``.
    """
    if beta is None and lower is None and upper is None:
        raise fail(func, "beta", "given (an L2 ball of radius beta) unless lower and upper "
                   "(a box) are; pass beta and/or lower and upper", "no domain")
    if beta is not None:
        beta = check_positive(beta, "beta", func)
    if (lower is None) != (upper is None):
        missing = "upper" if upper is None else "lower"
        raise fail(func, missing, f"given together with {'lower' if upper is None else 'upper'}"
                   " (a box)", None)
    anchor = np.zeros(d)
    if lower is not None:
        lower, upper = _as_vector(lower, "lower", d, func), _as_vector(upper, "upper", d, func)
        if np.any(lower > upper):
            j = int(np.argmax(lower > upper))
            raise fail(func, "lower", "<= upper everywhere",
                       f"lower[{j}] = {lower[j]} > upper[{j}] = {upper[j]}")
        anchor = np.clip(0.0, lower, upper)
        if beta is not None and row_norms(anchor[None])[0] > beta:
            raise fail(func, "beta", "large enough that the ball meets the box [lower, upper]"
                       f" (its closest point to 0 has norm {row_norms(anchor[None])[0]:.6g})",
                       beta)
    return Domain(d, beta, lower, upper, anchor)
