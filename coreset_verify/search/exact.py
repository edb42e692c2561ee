"""Exact search: a mixed-integer program over both (leaky) ReLU networks.

The joint model of :mod:`._model` with binary indicators, plus a variable
``t`` and one binary selector ``q_p`` per candidate pair ``p = (i, sign)``:

    max t  s.t.  t <= c_p.v + M_p (1 - q_p),  sum_p q_p = 1,

with ``c_p.v = sign (f_i - g_i)/scale_i`` and ``M_p = T + U_p'`` (``T`` the
largest pair bound, ``U_p'`` the bound of the opposite sign, so
``-U_p' <= c_p.v``). Ball domain: SCIP (convex quadratic ``sum x^2 <= beta^2``);
box only: HiGHS.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..errors import MissingDependencyError
from ._model import JointModel, build_joint_model
from ._problem import Problem
from ._result import OPTIMAL, SOLVER_FAILED, TIME_LIMIT
from ._scaling import scaled_problem
from .bounds import BoundsOutcome

__all__ = [
    "MIP_MAX_MAGNITUDE",
    "MIP_SAFETY_ATOL",
    "MIP_SAFETY_RTOL",
    "SOLVER_MAX_SECONDS",
    "ExactOutcome",
    "Mip",
    "SolverAnswer",
    "build_mip",
    "exact_search",
]

#: Solver dual bounds are enlarged by ``MIP_SAFETY_RTOL * max(|bound|, T) +
#: MIP_SAFETY_ATOL`` (``T``: the largest interval/linear pair bound) to cover
#: the solvers' feasibility (1e-6) and optimality tolerances.
MIP_SAFETY_RTOL = 1e-5
MIP_SAFETY_ATOL = 1e-9
#: Largest magnitude of a coefficient, right-hand side, objective entry or
#: finite variable bound the MIP is handed: the solvers' absolute tolerances
#: (1e-6, 1e-9) and their infinity (1e20) make larger models unreliable, so
#: such a model is not solved (status ``solver_failed``, the bounds stage's
#: bound is kept).
MIP_MAX_MAGNITUDE = 1e9
#: Longer time limits are passed to the solvers as none (SCIP refuses more than
#: 1e20 s; 1e9 s is 31 years).
SOLVER_MAX_SECONDS = 1e9


@dataclass(frozen=True)
class ExactOutcome:
    """``x``/``value``: the solver's incumbent re-evaluated in torch (``None``
    and ``-inf`` when it has none); ``upper_bound``: the made-sound dual
    bound (``inf`` when none); ``status``: ``optimal``, ``time_limit`` or
    ``solver_failed``; ``message``: what the solver said."""

    x: np.ndarray | None
    value: float
    upper_bound: float
    status: str
    message: str


def _candidate_pairs(bounds: BoundsOutcome, lower: float) -> list:
    pairs = bounds.pair_bounds
    chosen = [(i, s) for i in range(len(pairs)) for s in (0, 1) if pairs[i, s] > lower]
    if not chosen:
        i, s = np.unravel_index(np.argmax(pairs), pairs.shape)
        chosen = [(int(i), int(s))]
    return chosen


class Mip(NamedTuple):
    """The joint model with ``t`` and the selectors: ``objective`` (``max t``), the
    candidate ``pairs`` ``(i, sign)``, ``top`` (their largest bound ``T``), the
    index ``t`` of ``t`` and the indices ``q`` of the selectors."""

    model: JointModel
    objective: np.ndarray
    pairs: list
    top: float
    t: int
    q: np.ndarray


class SolverAnswer(NamedTuple):
    """What a MIP solver returned: the input part of its incumbent (or None), its
    raw dual bound, the status constant and the solver's own status text."""

    x: np.ndarray | None
    bound: float
    status: str
    message: str


def build_mip(problem: Problem, bounds: BoundsOutcome, lower: float) -> Mip:
    """The joint model plus ``t`` and the selectors (see the module docstring)."""
    model = build_joint_model(problem, bounds.intervals)
    pairs = _candidate_pairs(bounds, lower)
    top = float(max(bounds.pair_bounds[i, s] for i, s in pairs))
    spread = float(np.max(np.abs(bounds.pair_bounds)))
    t = model.add_vars([-spread], [top])[0]
    q = model.add_vars(np.zeros(len(pairs)), np.ones(len(pairs)), binary=True)
    for p, (i, s) in enumerate(pairs):
        c = model.difference_objective(i, 1.0 if s == 0 else -1.0, problem.scale[i])
        cols = np.flatnonzero(c)
        big = top + bounds.pair_bounds[i, 1 - s]
        model.add_rows("in", [[t], [q[p]]] + [[j] for j in cols],
                       [1.0, big] + [-c[j] for j in cols], [big])
    model.add_rows("eq", [q[None, :]], [np.ones((1, len(q)))], [1.0])
    objective = np.zeros(model.n)
    objective[t] = 1.0
    return Mip(model, objective, pairs, top, t, q)


def _warm_start(model: JointModel, x: np.ndarray, problem: Problem, pairs: list,
                t: int, q: np.ndarray) -> np.ndarray:
    v = model.assignment(x)
    vals = [(1.0 if s == 0 else -1.0) * (v[model.out_f[i]] - v[model.out_g[i]])
            / problem.scale[i] for i, s in pairs]
    p = int(np.argmax(vals))
    v[t], v[q] = vals[p], np.eye(len(pairs))[p]
    return v


def exact_search(problem: Problem, bounds: BoundsOutcome, *,
                 incumbent: np.ndarray | None = None, lower: float = -math.inf,
                 time_limit: float | None = None) -> ExactOutcome:
    """Solve the MIP (SCIP for the ball, HiGHS for a box); never raises for a
    solver failure or time-out.

    Parameters
    ----------
    problem : Problem
        Piecewise-linear networks only.
    bounds : BoundsOutcome
        Interval/linear bounds: big-M constants and the pairs worth modelling
        (those whose bound exceeds ``lower``).
    incumbent : numpy.ndarray or None
        A point given to the solver as its first solution.
    lower : float
        A value already attained (pairs that cannot beat it are dropped).
    time_limit : float or None
        Seconds for building the model and solving it (``None``: no limit); a
        model still being built at the limit is not solved (``time_limit``).

    Returns
    -------
    ExactOutcome

    Notes
    -----
    The MIP is built on the copy of :func:`._scaling.scaled_problem` (the same
    maximum in units where the magnitudes are near 1; exact, powers of two)
    and not solved at all (``solver_failed``) when a magnitude still exceeds
    ``MIP_MAX_MAGNITUDE`` (proofs_notes/search_bounds.md, sections 6 and 8).
    """
    deadline = math.inf if time_limit is None else time.perf_counter() + time_limit
    scaled = scaled_problem(problem, bounds.intervals, float(np.max(bounds.pair_bounds)))
    same, unit_x, unit_obj = problem, 1.0, 1.0
    if scaled is not None:  # the same program in units where magnitudes are near 1
        same, unit_x, unit_obj = scaled.problem, scaled.input_scale, scaled.objective_scale
        bounds = dataclasses.replace(bounds, intervals=scaled.intervals,
                                     pair_bounds=bounds.pair_bounds / unit_obj)
        lower = lower / unit_obj
    mip = build_mip(same, bounds, lower)
    if time.perf_counter() > deadline:
        return ExactOutcome(None, -math.inf, math.inf, TIME_LIMIT, BUILD_TIMEOUT.message)
    largest = _largest_magnitude(mip)
    if not largest <= MIP_MAX_MAGNITUDE:
        return ExactOutcome(None, -math.inf, math.inf, SOLVER_FAILED,
                            f"not solved: a magnitude of {largest:.3g} in the model exceeds "
                            f"MIP_MAX_MAGNITUDE = {MIP_MAX_MAGNITUDE:g} (rescale the weights)")
    start = None
    if incumbent is not None:
        start = _warm_start(mip.model, np.asarray(incumbent, float) / unit_x, same, mip.pairs,
                            mip.t, mip.q)
    solve = _solve_scip if problem.domain.has_ball else _solve_highs
    try:
        answer = solve(mip.model, mip.objective, start, deadline)
    except MissingDependencyError:
        raise
    except Exception as exc:
        return ExactOutcome(None, -math.inf, math.inf, SOLVER_FAILED, repr(exc))
    x, value = answer.x, -math.inf
    if x is not None:
        x = _into_domain(problem, unit_x * mip.model.input_point(x))
        value = problem.evaluate(x)[0]
    bound = unit_obj * _sound_bound(answer.bound, mip, bounds)
    return ExactOutcome(x, value, bound, answer.status, answer.message)


def _solver_seconds(deadline: float) -> float | None:
    """The time left to ``deadline`` as a solver takes it: at least 0.01 s,
    and None (no limit) above :data:`SOLVER_MAX_SECONDS`."""
    time_limit = deadline - time.perf_counter()
    if not time_limit <= SOLVER_MAX_SECONDS:
        return None
    return max(float(time_limit), 0.01)


def _sound_bound(bound: float, mip: Mip, bounds: BoundsOutcome) -> float:
    """The solver's dual bound enlarged by the safety margin, capped by the pair
    bounds it modelled, and never below a pair it dropped (``inf`` if not finite)."""
    if not math.isfinite(bound):
        return math.inf
    bound += MIP_SAFETY_RTOL * max(abs(bound), mip.top) + MIP_SAFETY_ATOL
    bound = min(bound, mip.top)
    modelled = set(mip.pairs)
    k = bounds.pair_bounds.shape[0]
    dropped = [bounds.pair_bounds[i, s] for i in range(k) for s in (0, 1)
               if (i, s) not in modelled]
    return max([bound, *dropped, 0.0])


def _largest_magnitude(mip: Mip) -> float:
    """The largest absolute coefficient, right-hand side, objective entry or finite
    variable bound of the MIP (``inf`` or NaN when one is not finite)."""
    mats = mip.model.matrices()
    parts = [mats.a_eq.data, mats.b_eq, mats.a_in.data, mats.b_in, mip.objective,
             mats.lo[np.isfinite(mats.lo)], mats.hi[np.isfinite(mats.hi)]]
    if mip.model.beta is not None:
        with np.errstate(over="ignore"):
            parts.append(np.array([mip.model.beta]) ** 2)  # the ball's right-hand side
    with np.errstate(over="ignore"):
        values = np.abs(np.concatenate([np.ravel(p) for p in parts] + [np.zeros(1)]))
        return float(np.max(values))  # inf and NaN propagate, and are refused


def _into_domain(problem: Problem, x: np.ndarray) -> np.ndarray:
    import torch

    return problem.domain.project(torch.as_tensor(np.asarray(x, float)[None]))[0].numpy()


#: Rows given to SCIP between two looks at the deadline while a model is built.
BUILD_ROWS = 512
#: What a solve reports when its deadline passed while the model was built.
BUILD_TIMEOUT = SolverAnswer(None, math.inf, TIME_LIMIT, "time limit reached while "
                             "the model was built")


def _solve_scip(model: JointModel, objective: np.ndarray, start, deadline: float):
    try:
        import pyscipopt
    except ImportError:
        raise MissingDependencyError(
            "method='exact' on a ball needs pyscipopt; pip install "
            "'coreset-verify[solvers]'."
        ) from None
    a_eq, b_eq, a_in, b_in, lo, hi = model.matrices()
    binary = np.zeros(model.n, bool)
    for idx in model.binaries:
        binary[idx] = True
    m = pyscipopt.Model()
    m.hideOutput()
    v = [m.addVar(lb=lo[j], ub=hi[j], vtype="B" if binary[j] else "C")
         for j in range(model.n)]
    for mat, rhs, eq in ((a_eq.tocsr(), b_eq, True), (a_in.tocsr(), b_in, False)):
        for r in range(mat.shape[0]):
            if r % BUILD_ROWS == 0 and time.perf_counter() > deadline:
                return BUILD_TIMEOUT
            cols, vals = mat.indices[mat.indptr[r]:mat.indptr[r + 1]], \
                mat.data[mat.indptr[r]:mat.indptr[r + 1]]
            expr = pyscipopt.quicksum(float(a) * v[c] for c, a in zip(cols, vals,
                                                                       strict=True))
            m.addCons(expr == rhs[r] if eq else expr <= rhs[r])
    m.addCons(pyscipopt.quicksum(v[j] * v[j] for j in range(model.nx))
              <= model.beta**2)
    m.setObjective(pyscipopt.quicksum(float(objective[j]) * v[j]
                                      for j in np.flatnonzero(objective)), "maximize")
    time_limit = _solver_seconds(deadline)
    if time_limit is not None:
        m.setParam("limits/time", time_limit)
    if start is not None:
        sol = m.createSol()
        for j, val in enumerate(start):
            m.setSolVal(sol, v[j], float(val))
        m.addSol(sol, free=True)
    m.optimize()
    status = m.getStatus()
    x = None
    if m.getNSols() > 0:
        best = m.getBestSol()
        x = np.array([m.getSolVal(best, v[j]) for j in range(model.nx)])
    bound = float(m.getDualbound())
    if status == "optimal":
        return SolverAnswer(x, bound, OPTIMAL, status)
    if status in ("timelimit", "userinterrupt", "nodelimit", "gaplimit"):
        return SolverAnswer(x, bound, TIME_LIMIT, status)
    return SolverAnswer(x, math.inf if not math.isfinite(bound) else bound, SOLVER_FAILED,
                        status)


def _solve_highs(model: JointModel, objective: np.ndarray, start, deadline: float):
    try:
        import highspy
    except ImportError:
        raise MissingDependencyError(
            "method='exact' on a box needs highspy (installed with cvxpy); pip "
            "install 'coreset-verify[solvers]'."
        ) from None
    import scipy.sparse as sp

    a_eq, b_eq, a_in, b_in, lo, hi = model.matrices()
    a = sp.vstack([a_eq, a_in], format="csc")
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = model.n, a.shape[0]
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = objective, lo, hi
    lp.row_lower_ = np.concatenate([b_eq, np.full(len(b_in), -highspy.kHighsInf)])
    lp.row_upper_ = np.concatenate([b_eq, b_in])
    lp.sense_ = highspy.ObjSense.kMaximize
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = \
        a.indptr, a.indices, a.data
    kinds = np.zeros(model.n, np.int32)
    for idx in model.binaries:
        kinds[idx] = 1
    lp.integrality_ = [highspy.HighsVarType(int(k)) for k in kinds]
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("mip_rel_gap", 1e-7)
    time_limit = _solver_seconds(deadline)
    if time_limit is not None:
        h.setOptionValue("time_limit", time_limit)
    h.passModel(lp)
    if start is not None:
        sol = highspy.HighsSolution()
        sol.col_value = list(map(float, start))
        h.setSolution(sol)
    h.run()
    status = h.modelStatusToString(h.getModelStatus())
    info = h.getInfo()
    x = None
    if info.primal_solution_status >= 1:
        x = np.array(h.getSolution().col_value[: model.nx])
    bound = float(info.mip_dual_bound)
    if status == "Optimal":
        return SolverAnswer(x, bound, OPTIMAL, status)
    if status in ("Time limit reached", "Interrupted by user"):
        return SolverAnswer(x, bound if math.isfinite(bound) else math.inf, TIME_LIMIT,
                            status)
    return SolverAnswer(x, math.inf, SOLVER_FAILED, status)
