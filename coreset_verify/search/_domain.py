"""The input domain: an L2 ball, a box, or their intersection."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidArgumentError

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
        return float(np.linalg.norm(self.upper - self.lower) / 2) or 1.0

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
            out = max(out, float(np.linalg.norm(x)) - self.beta)
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
            norm = x.norm(dim=-1, keepdim=True).clamp_min(1e-300)
            return x * (self.beta / norm).clamp(max=1.0)
        for _ in range(2):
            x = torch.minimum(torch.maximum(x, lo), hi)
            norm = x.norm(dim=-1, keepdim=True).clamp_min(1e-300)
            x = x * (self.beta / norm).clamp(max=1.0)
        x = torch.minimum(torch.maximum(x, lo), hi)
        return self._pull_to_anchor(x)

    def _pull_to_anchor(self, x):
        import torch

        c = torch.as_tensor(self.anchor, dtype=x.dtype, device=x.device)
        v = x - c
        # Largest t in [0, 1] with ||c + t v|| <= beta (c is inside the ball).
        a = (v * v).sum(-1).clamp_min(1e-300)
        b = 2 * (v * c).sum(-1)
        cc = (c * c).sum() - self.beta**2
        disc = (b * b - 4 * a * cc).clamp_min(0)
        t = ((-b + disc.sqrt()) / (2 * a)).clamp(0.0, 1.0) * (1 - 1e-12)
        inside = x.norm(dim=-1) <= self.beta
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


def _as_vector(value, name: str, d: int) -> np.ndarray:
    arr = np.asarray(value.detach().cpu() if hasattr(value, "detach") else value)
    arr = np.broadcast_to(arr.astype(np.float64), (d,)) if arr.ndim == 0 else arr
    if arr.shape != (d,):
        raise InvalidArgumentError(
            f"{name} must be a scalar or have shape ({d},) (the input dimension); "
            f"got shape {arr.shape}."
        )
    arr = np.array(arr, dtype=np.float64)
    if np.any(np.isnan(arr)):
        raise InvalidArgumentError(f"{name} must not contain NaN.")
    return arr


def make_domain(d: int, beta, lower, upper) -> Domain:
    """Validate ``beta``/``lower``/``upper`` and build the :class:`Domain`.

    Raises
    ------
    InvalidArgumentError
        No domain given, ``beta <= 0`` or not finite, only one of
        ``lower``/``upper``, ``lower > upper`` somewhere, or an empty
        intersection of ball and box.
    """
    if beta is None and lower is None and upper is None:
        raise InvalidArgumentError(
            "worst_case needs a domain: pass beta (an L2 ball) and/or lower and "
            "upper (a box); got neither."
        )
    if beta is not None:
        if isinstance(beta, bool) or not isinstance(beta, (int, float, np.number)):
            raise InvalidArgumentError(f"beta must be a positive float; got {beta!r}.")
        beta = float(beta)
        if not (math.isfinite(beta) and beta > 0):
            raise InvalidArgumentError(
                f"beta must be a positive finite float; got beta={beta}."
            )
    if (lower is None) != (upper is None):
        raise InvalidArgumentError(
            "lower and upper must be given together (a box); got only "
            f"{'lower' if upper is None else 'upper'}."
        )
    anchor = np.zeros(d)
    if lower is not None:
        lower, upper = _as_vector(lower, "lower", d), _as_vector(upper, "upper", d)
        if np.any(lower > upper):
            j = int(np.argmax(lower > upper))
            raise InvalidArgumentError(
                f"lower must be <= upper everywhere; got lower[{j}]={lower[j]} > "
                f"upper[{j}]={upper[j]}."
            )
        if not (np.all(np.isfinite(lower)) and np.all(np.isfinite(upper))):
            raise InvalidArgumentError("lower and upper must be finite.")
        anchor = np.clip(0.0, lower, upper)
        if beta is not None and np.linalg.norm(anchor) > beta:
            raise InvalidArgumentError(
                f"the box [lower, upper] does not meet the ball of radius beta={beta}"
                f" (its closest point has norm {np.linalg.norm(anchor):.6g})."
            )
    return Domain(d, beta, lower, upper, anchor)
