"""Sound interval bounds through both networks and on their difference."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..nets.intervals import (
    Box,
    activation_range,
    affine_range,
    ball_range,
    box_range,
    widen,
)
from ._problem import Problem

__all__ = ["Intervals", "first_layer_range", "interval_bounds"]


@dataclass(frozen=True)
class Intervals:
    """Interval bounds, each a :class:`~coreset_verify.nets.intervals.Box` ``(lo, hi)``.

    ``pre0``/``post0``: the union first layer (see ``SharedFirstLayer``);
    ``f_pre``/``f_post``/``g_pre``/``g_post``: lists over the remaining layers
    of each network; ``diff``: bounds on ``(f_i - g_i) / scale_i``.
    """

    pre0: Box
    post0: Box
    f_pre: list[Box]
    f_post: list[Box]
    g_pre: list[Box]
    g_post: list[Box]
    diff: Box

    @property
    def bound(self) -> float:
        """Upper bound on ``max_i |f_i - g_i| / scale_i`` over the domain."""
        return float(max(np.max(self.diff[1]), np.max(-self.diff[0]), 0.0))


def first_layer_range(weight: np.ndarray, bias: np.ndarray, dom) -> Box:
    """Range of ``weight @ x + bias`` over the domain's ball and box.

    Ball: ``bias +- beta ||w_j||`` (attained at ``+-beta w_j/||w_j||``; the
    norm is computed scaled, so it neither underflows nor overflows). Box:
    centre/radius arithmetic (attained at a vertex). Both: the intersection
    of the two ranges (sound, no longer exact). Widened for rounding.
    """
    lo, hi = np.full(len(bias), -np.inf), np.full(len(bias), np.inf)
    if dom.has_ball:
        lo, hi = ball_range(weight, bias, dom.beta)
    if dom.has_box:
        blo, bhi = box_range(weight, bias, dom.lower, dom.upper)
        lo, hi = np.maximum(lo, blo), np.minimum(hi, bhi)
    return Box(lo, hi)


def _through(layers, lo: np.ndarray, hi: np.ndarray) -> tuple[list[Box], list[Box]]:
    pre: list[Box] = []
    post: list[Box] = []
    for layer in layers:
        pre.append(affine_range(layer.weight, layer.bias, lo, hi))
        post.append(activation_range(layer.activation, *pre[-1]))
        lo, hi = post[-1]
    return pre, post


def _difference_network_range(problem: Problem, post0: Box) -> Box | None:
    """Range of ``f - g`` read as ONE network over the union first layer.

    Applies when both networks have exactly one hidden layer and a linear
    output: ``f - g = D h0 + (b_f - b_g)`` with ``D`` the output weights
    scattered to union neurons (``W_out - U`` on shared neurons).
    """
    f, g, sh = problem.f, problem.g, problem.shared
    if len(f) != 2 or len(g) != 2 or f[1].activation or g[1].activation:
        return None
    dmat = np.zeros((problem.k, len(sh.bias)))
    dmat[:, sh.index_f] += f[1].weight
    np.add.at(dmat.T, sh.index_g, -g[1].weight.T)
    return affine_range(dmat, f[1].bias - g[1].bias, *post0)


def interval_bounds(problem: Problem) -> Intervals:
    """Interval bounds through both networks (first layer exact on the ball).

    Returns
    -------
    Intervals
        Pre-/post-activation ranges of every neuron and of ``(f - g)/scale``.
    """
    sh = problem.shared
    pre0 = first_layer_range(sh.weight, sh.bias, problem.domain)
    lo = np.empty_like(pre0[0])
    hi = np.empty_like(pre0[0])
    for act in set(sh.activations):
        mask = np.array([a == act for a in sh.activations])
        lo[mask], hi[mask] = activation_range(act, pre0[0][mask], pre0[1][mask])
    post0 = Box(lo, hi)
    f_pre, f_post = _through(problem.f[1:], lo[sh.index_f], hi[sh.index_f])
    g_pre, g_post = _through(problem.g[1:], lo[sh.index_g], hi[sh.index_g])
    fo = f_post[-1] if f_post else Box(lo[sh.index_f], hi[sh.index_f])
    go = g_post[-1] if g_post else Box(lo[sh.index_g], hi[sh.index_g])
    dlo, dhi = fo[0] - go[1], fo[1] - go[0]
    joint = _difference_network_range(problem, post0)
    if joint is not None:
        dlo, dhi = np.maximum(dlo, joint[0]), np.minimum(dhi, joint[1])
    s = problem.scale
    with np.errstate(over="ignore", invalid="ignore"):
        diff = widen((dlo / 2 + dhi / 2) / s, (dhi / 2 - dlo / 2) / s,
                     np.abs(dlo) / s + np.abs(dhi) / s)  # divided first: no overflow
    return Intervals(pre0, post0, f_pre, f_post, g_pre, g_post, diff)
