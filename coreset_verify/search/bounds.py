"""Cheap sound upper bounds: interval arithmetic, and the triangle (LP/SOCP)
relaxation of the difference network."""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import numpy as np

from ..nets.intervals import row_norms
from ._conic import dual_bound, solve_conic
from ._intervals import Intervals, interval_bounds
from ._model import build_joint_model
from ._problem import Problem
from ._result import BOUNDED, NOT_APPLICABLE, SOLVER_FAILED, TIME_LIMIT, Stage
from ._scaling import scaled_problem

__all__ = ["BoundsOutcome", "difference_terms", "linear_relaxation_bounds", "relaxation_bounds"]


@dataclass(frozen=True)
class BoundsOutcome:
    """Sound bounds, per output and sign and overall.

    ``pair_bounds[i, 0]`` bounds ``(f_i - g_i)/scale_i`` from above and
    ``pair_bounds[i, 1]`` bounds ``(g_i - f_i)/scale_i``; ``upper_bound`` is
    their maximum (never below 0). ``points`` are inputs met on the way
    (relaxation optima), ``stages`` what each step proved.
    """

    intervals: Intervals
    pair_bounds: np.ndarray
    upper_bound: float
    points: list
    stages: tuple[Stage, ...]


def relaxation_bounds(problem: Problem, *, deadline: float = math.inf,
                      relax: bool = True, progress=None) -> BoundsOutcome:
    """Interval bounds, linear bounds, then the triangle relaxation (LP).

    Interval arithmetic bounds every pair; for one-hidden-layer pairs the
    closed-form linear relaxation of the difference network
    (:func:`linear_relaxation_bounds`) tightens them at once.
    Pairs ``(i, sign)`` are visited by decreasing interval bound; a pair
    whose interval bound is already below the largest relaxation bound so far
    cannot change the maximum and is skipped. Each relaxation is solved by
    Clarabel and turned into a sound bound by :func:`dual_bound` (weak
    duality), so solver inaccuracy cannot make it unsound.

    Parameters
    ----------
    problem : Problem
    deadline : float
        ``time.perf_counter()`` value; pairs left at the deadline keep their
        interval bound.
    relax : bool
        Whether to solve relaxations (else intervals only).
    progress : callable or None
        Called as ``progress(stage, done, total)``.

    Returns
    -------
    BoundsOutcome
    """
    t0 = time.perf_counter()
    with np.errstate(all="ignore"):  # overflow gives inf bounds, NaN is made inf
        return _relaxation_bounds(problem, t0, deadline, relax, progress)


def _relaxation_bounds(problem: Problem, t0: float, deadline: float, relax: bool,
                       progress) -> BoundsOutcome:
    iv = interval_bounds(problem)
    pairs = _sound(np.stack([iv.diff[1], -iv.diff[0]], axis=1))
    stages = [Stage("bounds:interval", -math.inf, iv.bound,
                    time.perf_counter() - t0, BOUNDED)]
    t1 = time.perf_counter()
    linear = _linear_bounds(problem, iv, pairs)
    if linear is not None:
        pairs = np.minimum(pairs, linear)
        stages.append(Stage("bounds:linear", -math.inf, float(max(pairs.max(), 0.0)),
                            time.perf_counter() - t1, BOUNDED))
    if not relax or not problem.piecewise_linear:
        if relax:
            stages.append(Stage("bounds:relaxation", -math.inf, math.inf, 0.0,
                                NOT_APPLICABLE))
        ub = float(max(pairs.max(), 0.0))
        return BoundsOutcome(iv, pairs, ub, [], tuple(stages))
    t1 = time.perf_counter()
    refined, points, status = _refine_pairs(problem, iv, pairs.copy(), deadline,
                                            progress)
    ub = float(max(refined.max(), 0.0))
    stages.append(Stage("bounds:relaxation", -math.inf, ub,
                        time.perf_counter() - t1, status))
    return BoundsOutcome(iv, refined, ub, points, tuple(stages))


def _pwl_lines(lo: np.ndarray, hi: np.ndarray, slope: np.ndarray) -> tuple:
    """Upper and lower lines ``s z + t`` of ``max(z, a z)`` on ``[lo, hi]``.

    Upper: the chord (concave envelope) on unstable neurons; lower: ``z`` or
    ``a z`` (whichever is closer on the larger side). Stable neurons: exact.
    """
    on, off = lo >= 0, hi <= 0
    width = np.where(on | off, 1.0, hi - lo)
    su = np.where(on, 1.0, np.where(off, slope, (hi - slope * lo) / width))
    tu = np.where(on | off, 0.0, slope * lo - su * lo)
    sl = np.where(on, 1.0, np.where(off, slope, np.where(hi >= -lo, 1.0, slope)))
    return su, tu, sl


def difference_terms(problem: Problem) -> tuple | None:
    """``(coef, e)`` of the difference network of one-hidden-layer pairs.

    For (leaky) ReLU pairs ``Linear -> phi -> Linear`` (no output activation),
    ``sign (f_i - g_i)(x) / scale_i = coef[p] . phi(z(x)) + e[p]`` over the
    union first layer ``z`` (``problem.shared``), with specification
    ``p = i`` for sign ``+1`` and ``p = k + i`` for sign ``-1``: ``coef``
    ``(2k, n)``, ``e`` ``(2k,)``. ``None`` for any other pair.
    """
    f, g, sh = problem.f, problem.g, problem.shared
    if len(f) != 2 or len(g) != 2 or f[1].activation or g[1].activation:
        return None
    if not all(a is not None and a.is_piecewise_linear for a in sh.activations):
        return None
    dmat = np.zeros((problem.k, len(sh.bias)))
    dmat[:, sh.index_f] += f[1].weight
    np.add.at(dmat.T, sh.index_g, -g[1].weight.T)
    coef = np.vstack([dmat, -dmat]) / np.concatenate([problem.scale] * 2)[:, None]
    e = np.concatenate([f[1].bias - g[1].bias, g[1].bias - f[1].bias])
    return coef, e / np.concatenate([problem.scale] * 2)


def linear_relaxation_bounds(problem: Problem, iv: Intervals) -> np.ndarray | None:
    """Closed-form linear relaxation of the difference network, every pair.

    Applies to one-hidden-layer (leaky) ReLU pairs with linear outputs, where
    ``(f_i - g_i)/scale_i = sum_j D_ij phi(z_j) + e_i`` over the union first
    layer. Each ``phi(z_j)`` is replaced by its upper line when ``D_ij >= 0``
    and its lower line otherwise; the result is affine in ``x``, and its
    maximum over the ball is ``beta ||.||`` in closed form (box: vertex
    formula; both: the smaller). Returns ``(k, 2)`` bounds (+ and - sign) or
    ``None`` when it does not apply.
    """
    sh = problem.shared
    terms = difference_terms(problem)
    if terms is None:
        return None
    coef, e = terms
    slope = np.array([a.slope for a in sh.activations])
    su, tu, sl = _pwl_lines(iv.pre0[0], iv.pre0[1], slope)
    # a zero coefficient contributes nothing, even where a range is infinite
    s_mat = np.where(coef > 0, coef * su, np.where(coef < 0, coef * sl, 0.0))
    const = s_mat @ sh.bias + np.where(coef > 0, coef * tu, 0.0).sum(1) + e
    grad = s_mat @ sh.weight
    dom = problem.domain
    best = np.full(len(grad), np.inf)
    if dom.has_ball:
        best = dom.beta * row_norms(grad)
    if dom.has_box:
        box = np.maximum(grad * dom.lower, grad * dom.upper).sum(1)
        best = np.minimum(best, box)
    mag = np.abs(s_mat) @ np.abs(sh.bias) + np.abs(const) + np.abs(best)
    out = const + best + 1e-10 * mag + _underflow_margin(dom, sh.weight.size + 1)
    return _sound(out).reshape(2, -1).T


def _linear_bounds(problem: Problem, iv: Intervals, pairs: np.ndarray) -> np.ndarray | None:
    """:func:`linear_relaxation_bounds`, on the rescaled copy when there is one (the
    same bounds, without the underflow of products of tiny weights)."""
    scaled = scaled_problem(problem, iv, float(np.max(pairs)))
    if scaled is None:
        return linear_relaxation_bounds(problem, iv)
    linear = linear_relaxation_bounds(scaled.problem, scaled.intervals)
    return None if linear is None else linear * scaled.objective_scale


def _underflow_margin(dom, terms: int) -> float:
    """What underflow can hide in ``max_x a . x`` over the domain: each of the
    ``terms`` products that formed ``a`` may lose up to 1e-300 (a generous
    multiple of the smallest subnormal), times the largest ``|x_j|``."""
    reach = dom.beta if dom.has_ball else 0.0
    if dom.has_box:
        reach = max(reach, float(np.max(np.maximum(np.abs(dom.lower), np.abs(dom.upper)))))
    return reach * terms * 1e-300


def _sound(bounds: np.ndarray) -> np.ndarray:
    """Upper bounds with NaN (from ``inf - inf`` on extreme weights) made ``inf``."""
    return np.where(np.isnan(bounds), np.inf, bounds)


def _refine_pairs(problem: Problem, iv: Intervals, pairs: np.ndarray,
                  deadline: float, progress) -> tuple:
    scaled = scaled_problem(problem, iv, float(np.max(pairs)))
    unit, unit_obj = 1.0, 1.0
    if scaled is not None:  # the same programs in units where magnitudes are near 1
        problem, iv = scaled.problem, scaled.intervals
        unit, unit_obj = scaled.input_scale, scaled.objective_scale
    model = build_joint_model(problem, iv)
    base = model.program(np.zeros(model.n))
    order = np.argsort(-pairs, axis=None)
    best, points, status = 0.0, [], BOUNDED
    for done, flat in enumerate(order):
        i, s = divmod(int(flat), 2)
        if pairs[i, s] <= best:
            break
        if time.perf_counter() > deadline:
            status = TIME_LIMIT
            break
        c = model.difference_objective(i, 1.0 if s == 0 else -1.0, problem.scale[i])
        prog = dataclasses.replace(base, c=c)
        sol = solve_conic(prog, time_limit=max(deadline - time.perf_counter(), 1e-3)
                          if math.isfinite(deadline) else None)
        if sol.y_eq is None:
            status = SOLVER_FAILED
        else:
            pairs[i, s] = min(pairs[i, s], unit_obj * dual_bound(prog, sol.y_eq, sol.y_in))
        if sol.ok:
            points.append(unit * model.input_point(sol.v))
        best = max(best, pairs[i, s])
        if progress is not None:
            progress("bounds:relaxation", done + 1, len(order))
    return pairs, points, status
