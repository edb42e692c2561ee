"""``worst_case``: the largest output difference of two networks, bracketed."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import InvalidArgumentError, MissingDependencyError
from ._problem import Problem, make_problem
from ._result import (
    BOUNDED,
    NOT_APPLICABLE,
    OPTIMAL,
    SOLVER_FAILED,
    STATUS_LOCAL,
    TIME_LIMIT,
    Stage,
    WorstCase,
    is_certified,
)
from .bounds import relaxation_bounds
from .exact import exact_search
from .gradient import gradient_search, starting_points
from .region import region_search

__all__ = ["METHODS", "verify", "worst_case"]

METHODS = ("auto", "bounds", "exact", "gradient", "region")
#: Fractions of ``time_limit`` at which ``auto`` ends gradient, region, bounds.
AUTO_SCHEDULE = (0.15, 0.35, 0.5)

Progress = Callable[[str, int, int], None]


@dataclass
class _Run:
    """The state of one search: the best point, the bounds, the trace."""

    problem: Problem
    t0: float
    time_limit: float | None
    progress: Progress | None
    x: np.ndarray | None = None
    error: float = -math.inf
    upper: float = math.inf
    stages: list = field(default_factory=list)
    solver_status: str | None = None
    starts: np.ndarray | None = None

    def offer(self, x: np.ndarray) -> float:
        """Evaluate ``x`` (torch float64); keep it if it is the best so far."""
        value = self.problem.evaluate(x)[0]
        if value > self.error:
            self.x, self.error = np.array(x, dtype=float), value
        return value

    def deadline(self, fraction: float = 1.0) -> float:
        """``perf_counter`` time at which a stage ending at ``fraction`` stops."""
        if self.time_limit is None:
            return math.inf
        return self.t0 + fraction * self.time_limit

    def record(self, name: str, error: float, upper: float, since: float,
               status: str) -> None:
        """Append a trace record and tell the progress callback."""
        self.stages.append(Stage(name, error, upper, time.perf_counter() - since,
                                 status))
        self.upper = min(self.upper, upper)
        if self.progress is not None:
            self.progress(name, len(self.stages), 0)


def _check_starts(starts, problem: Problem) -> np.ndarray | None:
    """``starts`` as a projected float64 (m, d) array, or None."""
    if starts is None:
        return None
    import torch

    pts = np.asarray(starts.detach().cpu() if hasattr(starts, "detach") else starts,
                     dtype=float)
    d = problem.domain.center.shape[0]
    if pts.ndim != 2 or pts.shape[1] != d or pts.shape[0] < 1 or not np.all(np.isfinite(pts)):
        raise InvalidArgumentError(
            f"starts must be a finite array of shape (m, {d}) with m >= 1 (one input per "
            f"row); got shape {pts.shape}.")
    return problem.domain.project(torch.as_tensor(pts)).numpy()


def _offer_best(run: _Run, points: np.ndarray) -> None:
    import torch

    layers = run.problem.torch_layers(torch.float64, "cpu")
    with torch.no_grad():
        vals = run.problem.signed_differences(torch.as_tensor(points), layers)
    run.offer(points[int(np.argmax(vals.abs().amax(1).numpy()))])


def _check_options(method: str, time_limit, restarts, progress) -> None:
    if method not in METHODS:
        raise InvalidArgumentError(
            f"method must be one of {', '.join(map(repr, METHODS))}; got {method!r}."
        )
    if time_limit is not None and not (
        isinstance(time_limit, (int, float)) and not isinstance(time_limit, bool)
        and time_limit > 0 and math.isfinite(time_limit)
    ):
        raise InvalidArgumentError(
            f"time_limit must be None or a positive number of seconds; got "
            f"{time_limit!r}."
        )
    if isinstance(restarts, bool) or not isinstance(restarts, (int, np.integer)) \
            or restarts < 0:
        raise InvalidArgumentError(
            f"restarts must be a non-negative int; got {restarts!r}."
        )
    if progress is not None and not callable(progress):
        raise InvalidArgumentError(
            f"progress must be None or a callable; got {type(progress).__name__}."
        )


def _stage_gradient(run: _Run, rng: np.random.Generator, restarts: int,
                    fraction: float) -> np.ndarray:
    since = time.perf_counter()
    out = gradient_search(run.problem, restarts=restarts, rng=rng,
                          deadline=run.deadline(fraction), extra=run.starts)
    for x in out.points[:1]:
        run.offer(x)
    run.record("gradient", float(out.values[0]), math.inf, since, STATUS_LOCAL)
    return out.points


def _top_pairs(problem: Problem, x: np.ndarray, count: int) -> list:
    import torch

    layers = problem.torch_layers(torch.float64, "cpu")
    with torch.no_grad():
        diff = problem.signed_differences(torch.as_tensor(x[None]), layers)[0].numpy()
    order = np.argsort(-np.abs(diff))[:count]
    return [(int(i), 1.0 if diff[i] >= 0 else -1.0) for i in order]


def _stage_region(run: _Run, points: np.ndarray, fraction: float,
                  per_point: int = 2, n_points: int = 3) -> None:
    since, problem = time.perf_counter(), run.problem
    if not problem.piecewise_linear:
        run.record("region", -math.inf, math.inf, since, NOT_APPLICABLE)
        return
    best, seen = -math.inf, set()
    for x0 in points[:n_points]:
        for i, sign in _top_pairs(problem, x0, per_point):
            if (i, sign) in seen or time.perf_counter() > run.deadline(fraction):
                continue
            seen.add((i, sign))
            res = region_search(problem, x0, i, sign, deadline=run.deadline(fraction))
            best = max(best, run.offer(res.x))
    run.record("region", best, math.inf, since, STATUS_LOCAL)


def _stage_bounds(run: _Run, fraction: float, relax: bool = True):
    out = relaxation_bounds(run.problem, deadline=run.deadline(fraction),
                            relax=relax, progress=run.progress)
    found = max((run.offer(x) for x in out.points), default=-math.inf)
    for st in out.stages:
        run.stages.append(Stage(st.name, found, st.upper_bound, st.seconds,
                                st.status))
        run.upper = min(run.upper, st.upper_bound)
    return out


def _stage_exact(run: _Run, bounds) -> None:
    since = time.perf_counter()
    if not run.problem.piecewise_linear:
        run.record("exact", -math.inf, math.inf, since, NOT_APPLICABLE)
        return
    left = None
    if run.time_limit is not None:
        left = max(run.deadline() - time.perf_counter(), 0.01)
    res = exact_search(run.problem, bounds, incumbent=run.x, lower=run.error,
                       time_limit=left)
    if res.x is not None:
        run.offer(res.x)
    run.solver_status = res.status
    run.record("exact", res.value, res.upper_bound, since, res.status)


def _start_points(run: _Run, rng: np.random.Generator, restarts: int) -> np.ndarray:
    """Projected starting points, best (by objective) first."""
    import torch

    pts = run.problem.domain.project(
        torch.as_tensor(starting_points(run.problem, restarts, rng, run.starts))).numpy()
    layers = run.problem.torch_layers(torch.float64, "cpu")
    with torch.no_grad():
        vals = run.problem.signed_differences(torch.as_tensor(pts), layers)
    vals = vals.abs().amax(1).numpy()
    pts = pts[np.argsort(-vals)]
    run.offer(pts[0])
    return pts


def _run_method(run: _Run, method: str, rng: np.random.Generator,
                restarts: int) -> None:
    if method == "gradient":
        _stage_gradient(run, rng, restarts, 1.0)
    elif method == "region":
        _stage_region(run, _start_points(run, rng, restarts), 1.0)
    elif method == "bounds":
        _stage_bounds(run, 1.0)
    elif method == "exact":
        _start_points(run, rng, restarts)
        _stage_exact(run, _stage_bounds(run, 1.0, relax=False))
    else:
        _run_auto(run, rng, restarts)


def _run_auto(run: _Run, rng: np.random.Generator, restarts: int) -> None:
    """Every stage in turn; a stage whose solver is not installed is skipped
    (recorded as ``not_applicable``) instead of failing the whole search."""
    g, r, b = AUTO_SCHEDULE
    points = _stage_gradient(run, rng, restarts, g)
    since = time.perf_counter()
    try:
        _stage_region(run, points, r)
    except MissingDependencyError:
        run.record("region", -math.inf, math.inf, since, NOT_APPLICABLE)
    try:
        bounds = _stage_bounds(run, b)
    except MissingDependencyError:
        bounds = _stage_bounds(run, b, relax=False)
    if not is_certified(run.error, run.upper):
        since = time.perf_counter()
        try:
            _stage_exact(run, bounds)
        except MissingDependencyError:
            run.record("exact", -math.inf, math.inf, since, NOT_APPLICABLE)


def _final_status(run: _Run, method: str) -> str:
    if is_certified(run.error, run.upper):
        return OPTIMAL
    if run.solver_status in (TIME_LIMIT, SOLVER_FAILED):
        return run.solver_status
    if method in ("gradient", "region"):
        if method == "region" and not run.problem.piecewise_linear:
            return NOT_APPLICABLE
        return STATUS_LOCAL
    if method == "exact" and not run.problem.piecewise_linear:
        return NOT_APPLICABLE
    return BOUNDED


def worst_case(original, pruned, *, beta: float | None = None,
               lower=None, upper=None, scale=None, method: str = "auto",
               time_limit: float | None = None, rng=None, restarts: int = 64,
               progress: Progress | None = None, starts=None) -> WorstCase:
    """Find the input where two networks differ most, and bound how much.

    Maximises ``max_i |f_i(x) - g_i(x)| / scale[i]`` over the L2 ball
    ``||x|| <= beta``, the box ``lower <= x <= upper``, or both.

    Parameters
    ----------
    original, pruned : torch.nn.Module
        Networks from R^d to R^k: ``nn.Linear`` and activation layers (ReLU,
        LeakyReLU, Sigmoid, Tanh, Softplus, ELU) in (nested) ``nn.Sequential``;
        ``nn.Flatten``, ``nn.Dropout`` and ``nn.Identity`` pass through.
        Widths and depths may differ.
    beta : float, optional
        Radius of the ball (centre 0).
    lower, upper : array_like, shape (d,) or scalar, optional
        The box; given together.
    scale : array_like, shape (k,), optional
        Positive per-output scales (default ones).
    method : {"auto", "gradient", "region", "bounds", "exact"}
        ``gradient``: batched projected Adam ascent. ``region``: activation
        region local search ((leaky) ReLU only). ``bounds``: interval, linear
        and triangle-relaxation bounds. ``exact``: mixed-integer program
        (SCIP on a ball, HiGHS on a box; (leaky) ReLU only). ``auto``: all four
        in turn, sharing ``time_limit`` (gradient to 15 %, region to 35 %,
        bounds to 50 %, exact the rest).
    time_limit : float, optional
        Seconds; ``None`` means no limit (``exact`` may then run very long).
    rng : int, numpy.random.Generator or None
        Seeds the random starts (``np.random.default_rng(rng)``).
    restarts : int
        Random starting points, on top of the first layer's directions.
    progress : callable, optional
        ``progress(stage, done, total)`` after each stage (``done`` stages so
        far, ``total`` 0) and each relaxation solved (``done`` of ``total``
        pairs).
    starts : array_like, shape (m, d), optional
        Inputs to start from as well (e.g. the data): projected onto the
        domain, evaluated first (so ``error`` is at least their largest
        objective when they lie in the domain) and ascended by the gradient
        stage.

    Returns
    -------
    WorstCase
        ``error`` is re-evaluated at ``x`` in torch float64 (a lower bound on
        the maximum); ``upper_bound`` is sound (``inf`` for gradient/region).

    Raises
    ------
    InvalidArgumentError
        Bad domain, dimension mismatch, unsupported layer, bad scale, unknown
        method. Solver failures and time-outs are statuses, not exceptions.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> f = nn.Sequential(nn.Linear(2, 1), nn.ReLU())
    >>> with torch.no_grad():
    ...     _ = f[0].weight.copy_(torch.tensor([[3.0, 4.0]])); _ = f[0].bias.zero_()
    >>> g = nn.Sequential(nn.Linear(2, 1), nn.ReLU())
    >>> with torch.no_grad():
    ...     _ = g[0].weight.zero_(); _ = g[0].bias.zero_()
    >>> res = worst_case(f, g, beta=2.0, method="bounds")
    >>> round(res.upper_bound, 6), res.certified
    (10.0, True)
    """
    _check_options(method, time_limit, restarts, progress)
    problem = make_problem(original, pruned, beta=beta, lower=lower, upper=upper,
                           scale=scale)
    rng = np.random.default_rng(rng)
    run = _Run(problem, time.perf_counter(), time_limit, progress,
               starts=_check_starts(starts, problem))
    run.offer(problem.domain.center)
    if run.starts is not None:
        _offer_best(run, run.starts)
    _run_method(run, method, rng, int(restarts))
    return _result(run, method)


def _result(run: _Run, method: str) -> WorstCase:
    error, output = run.problem.evaluate(run.x)
    upper, status = run.upper, _final_status(run, method)
    if upper < error:
        if error - upper > 1e-9 * (1 + abs(error)):
            upper, status = math.inf, SOLVER_FAILED
        else:
            upper = error
    dom = run.problem.domain
    return WorstCase(run.x, error, upper, is_certified(error, upper), status,
                     time.perf_counter() - run.t0, output, tuple(run.stages), method,
                     dom.beta, dom.lower, dom.upper, run.problem.scale)


def _reference_error(result: WorstCase, original, pruned) -> np.ndarray:
    """``|f(x) - g(x)| / scale`` with copies of the modules in float64, eval mode."""
    import torch

    outs = []
    for net in (original, pruned):
        net64 = copy.deepcopy(net).to("cpu").double().eval()
        with torch.no_grad():
            outs.append(net64(torch.as_tensor(result.x)[None]).reshape(-1).numpy())
    scale = np.ones_like(outs[0]) if result.scale is None else result.scale
    return np.abs(outs[0] - outs[1]) / scale


def verify(result: WorstCase, original, pruned, *, rtol: float = 1e-7,
           atol: float = 1e-9) -> bool:
    """Re-check a :class:`WorstCase` without any solver.

    Checks, with tolerance ``atol + rtol * |value|``: ``x`` is finite and in the
    domain recorded in ``result``; ``error`` equals ``max_i |f_i(x) - g_i(x)| /
    scale_i`` recomputed by the modules themselves in float64 and attained at
    ``result.output``; ``error <= upper_bound``; ``certified`` agrees with the
    bracket.

    Returns
    -------
    bool
        ``True`` when every check passes, ``False`` otherwise (it never
        raises for a wrong result; it raises ``InvalidArgumentError`` only when
        ``result`` is not a ``WorstCase``).
    """
    if not isinstance(result, WorstCase):
        raise InvalidArgumentError(
            f"result must be a WorstCase; got {type(result).__name__}."
        )
    x = np.asarray(result.x, dtype=float)
    if x.ndim != 1 or not np.all(np.isfinite(x)):
        return False
    tol = atol + rtol * max(abs(result.error), 1.0)
    if result.beta is not None and np.linalg.norm(x) > result.beta * (1 + rtol) + atol:
        return False
    if result.lower is not None and (np.any(x < result.lower - tol)
                                     or np.any(x > result.upper + tol)):
        return False
    try:
        err = _reference_error(result, original, pruned)
    except (RuntimeError, ValueError):
        return False
    ok = abs(float(err.max()) - result.error) <= atol + rtol * abs(result.error)
    ok &= 0 <= result.output < len(err) and err[result.output] >= err.max() - tol
    ok &= result.error <= result.upper_bound + tol
    return bool(ok and result.certified == is_certified(result.error,
                                                        result.upper_bound))
