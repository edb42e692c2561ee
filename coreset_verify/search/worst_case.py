"""``worst_case``: the largest output difference of two networks, bracketed."""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._validation import (
    check_int,
    check_option,
    check_positive,
    check_rng,
    fail,
    to_numpy,
)
from ..errors import MissingDependencyError
from ..nets.intervals import row_norms
from ..nets.model import read_layers
from ._intervals import interval_bounds
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
from ._scaling import scaled_problem
from .bab import branch_and_bound, write_certificate
from .bounds import difference_terms, relaxation_bounds
from .deep import deep_applies, deep_branch_and_bound, write_deep_certificate
from .exact import exact_search
from .gradient import MAX_DIRECTION_STARTS, gradient_search, starting_points
from .region import region_search

__all__ = ["MAX_BATCH_ELEMENTS", "MAX_RESTARTS", "MAX_STARTS", "METHODS", "verify",
           "worst_case"]

_FUNC = "worst_case"
METHODS = ("auto", "bab", "bounds", "exact", "gradient", "region")
#: Most random restarts ``worst_case`` accepts.
MAX_RESTARTS = 100_000
#: Most rows of ``starts`` ``worst_case`` accepts.
MAX_STARTS = 100_000
#: Most float64 entries of the gradient stage's batch of starting points,
#: ``(first-layer directions + restarts + rows of starts) * d`` (2**26: 512 MiB
#: per copy; Adam keeps about five copies).
MAX_BATCH_ELEMENTS = 2**26
#: Fractions of ``time_limit`` at which ``auto`` ends gradient, region, bounds.
AUTO_SCHEDULE = (0.15, 0.35, 0.5)
#: Fraction of ``time_limit`` at which ``auto``'s joint branch and bound of
#: deeper pairs ends (the exact solver has the rest).
DEEP_SCHEDULE = 0.75

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
    certificate: object = None

    def offer(self, x: np.ndarray) -> float:
        """Evaluate ``x`` (torch float64); keep it if it is the best so far.

        ``x`` is first projected onto the domain in float64 (a point from a
        float32 search or a solver may lie a rounding error outside it). A
        value that is not finite (the networks overflow float64 at ``x``) is
        never kept: it is no lower bound on the true maximum."""
        import torch

        x = self.problem.domain.project(torch.as_tensor(np.asarray(x, dtype=np.float64)[None]))
        x = x[0].numpy()
        value = self.problem.evaluate(x)[0]
        if value > self.error and math.isfinite(value):
            self.x, self.error = np.array(x, dtype=float), value
        return value

    def deadline(self, fraction: float = 1.0) -> float:
        """``perf_counter`` time at which a stage ending at ``fraction`` stops."""
        if self.time_limit is None:
            return math.inf
        return self.t0 + fraction * self.time_limit

    def record(self, name: str, error: float, upper: float, since: float,
               status: str, history: tuple = ()) -> None:
        """Append a trace record and tell the progress callback."""
        self.stages.append(Stage(name, error, upper, time.perf_counter() - since,
                                 status, history))
        self.upper = min(self.upper, upper)
        if self.progress is not None:
            self.progress(name, len(self.stages), 0)


def _check_starts(starts, problem: Problem, restarts: int) -> np.ndarray | None:
    """``starts`` as a projected float64 (m, d) array, or None; the batch of the
    gradient stage must fit :data:`MAX_BATCH_ELEMENTS`."""
    d = problem.domain.d
    rows = 0
    pts = None
    if starts is not None:
        expected = f"a finite array of shape (m, {d}) with 1 <= m <= {MAX_STARTS}"
        try:
            pts = np.asarray(to_numpy(starts), dtype=np.float64)
        except (TypeError, ValueError):
            raise fail(_FUNC, "starts", expected, type(starts).__name__) from None
        if pts.ndim != 2 or pts.shape[1] != d or not 1 <= pts.shape[0] <= MAX_STARTS:
            raise fail(_FUNC, "starts", expected, f"shape {pts.shape}")
        if not np.all(np.isfinite(pts)):
            raise fail(_FUNC, "starts", expected, "an array with NaN or infinite entries")
        rows = pts.shape[0]
    directions = 2 * min(problem.f[0].weight.shape[0], MAX_DIRECTION_STARTS) + 1
    if (directions + restarts + rows) * d > MAX_BATCH_ELEMENTS:
        raise fail(_FUNC, "restarts", f"small enough that (first-layer directions "
                   f"{directions} + restarts + rows of starts) * d <= "
                   f"{MAX_BATCH_ELEMENTS} (d = {d}, rows of starts = {rows}); lower "
                   "restarts or pass fewer starts", restarts)
    if pts is None:
        return None
    import torch

    return problem.domain.project(torch.as_tensor(pts)).numpy()


def _check_certificate(path, method: str, problem: Problem, original, pruned,
                       time_limit):
    """``path`` when a certificate can be written there, else an error."""
    if path is None:
        return None
    if not isinstance(path, (str, os.PathLike)):
        raise fail(_FUNC, "certificate", "None or a file path (str or os.PathLike)",
                   type(path).__name__)
    if method not in ("auto", "bab"):
        raise fail(_FUNC, "certificate", "None with method " + repr(method)
                   + " (certificates come from method 'auto' or 'bab')", str(path))
    if difference_terms(problem) is None and not deep_applies(problem):
        raise fail(_FUNC, "certificate", "None for these networks (certificates are "
                   "written for (leaky) ReLU pairs: affine maps (Linear, Conv2d, pooling) "
                   "and ReLU or LeakyReLU layers, ending affine)", str(path))
    if difference_terms(problem) is None and method == "auto" and time_limit is None:
        raise fail(_FUNC, "certificate", "None, or a time_limit with it (method 'auto' "
                   "runs the branch and bound of a deeper pair only under a time limit)",
                   str(path))
    folder = Path(path).expanduser().resolve().parent
    if not folder.is_dir():
        raise fail(_FUNC, "certificate", "a path in an existing folder",
                   f"{path} (no folder {folder})")
    return Path(path).expanduser()


def _offer_best(run: _Run, points: np.ndarray) -> None:
    import torch

    layers = run.problem.torch_layers(torch.float64, "cpu")
    with torch.no_grad():
        vals = run.problem.signed_differences(torch.as_tensor(points), layers)
    run.offer(points[int(np.argmax(vals.abs().amax(1).numpy()))])


def _check_options(method: str, time_limit, restarts, progress) -> tuple:
    """Validated ``(method, time_limit, restarts)``."""
    method = check_option(method, "method", _FUNC, METHODS)
    if time_limit is not None:
        time_limit = check_positive(time_limit, "time_limit", _FUNC)
    restarts = check_int(restarts, "restarts", _FUNC, minimum=0)
    if restarts > MAX_RESTARTS:
        raise fail(_FUNC, "restarts", f"an integer in [0, {MAX_RESTARTS}]", restarts)
    if progress is not None and not callable(progress):
        raise fail(_FUNC, "progress", "None or a callable progress(stage, done, total)",
                   type(progress).__name__)
    return method, time_limit, restarts


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
    found = -math.inf
    if out.points:  # solver points may sit a tolerance outside the domain
        import torch

        inside = run.problem.domain.project(torch.as_tensor(np.array(out.points))).numpy()
        found = max(run.offer(x) for x in inside)
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
        left = run.deadline() - time.perf_counter()
        if left <= 0:  # no time left to build the model, let alone solve it
            run.solver_status = TIME_LIMIT
            run.record("exact", -math.inf, math.inf, since, TIME_LIMIT)
            return
    res = exact_search(run.problem, bounds, incumbent=run.x, lower=run.error,
                       time_limit=left)
    if res.x is not None:
        run.offer(res.x)
    run.solver_status = res.status
    run.record("exact", res.value, res.upper_bound, since, res.status)


def _stage_bab(run: _Run, fraction: float = 1.0) -> None:
    """Branch and bound to the deadline at ``fraction`` (proofs_notes/bab.md):
    one-hidden-layer pairs, or deeper (leaky) ReLU pairs bounded jointly;
    writes the certificate when one was asked for."""
    since = time.perf_counter()
    deep = difference_terms(run.problem) is None
    if deep and not deep_applies(run.problem):
        run.record("bab", -math.inf, math.inf, since, NOT_APPLICABLE)
        return
    problem, iv = run.problem, interval_bounds(run.problem)
    unit, unit_obj = 1.0, 1.0
    scaled = None if run.certificate is not None else scaled_problem(problem, iv, iv.bound)
    if scaled is not None:  # the same problem in units near 1 (exact powers of two)
        problem, iv = scaled.problem, scaled.intervals
        unit, unit_obj = scaled.input_scale, scaled.objective_scale
    incumbent = {"error": run.error / unit_obj, "x": None if run.x is None else run.x / unit,
                 "deadline": run.deadline(fraction), "progress": run.progress}
    search = deep_branch_and_bound if deep else branch_and_bound
    out = search(problem, iv.pre0, keep_leaves=run.certificate is not None, **incumbent)
    if out.x is not None:
        run.offer(unit * out.x)
    if run.certificate is not None and out.leaves is None:
        raise fail(_FUNC, "time_limit", "long enough for the branch and bound to bound "
                   "the root of these networks, which a certificate needs (no certificate "
                   f"written; the root was not bounded after {time.perf_counter() - since:.1f}"
                   " s)", run.time_limit)
    if run.certificate is not None:
        (write_deep_certificate if deep else write_certificate)(run.certificate, out, problem)
    run.solver_status = out.status
    history = tuple((t, unit_obj * e, unit_obj * u, n) for t, e, u, n in out.trace)
    run.record("bab", unit_obj * out.error, unit_obj * out.upper_bound, since, out.status,
               history)


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
    elif method == "bab":
        _start_points(run, rng, restarts)
        _stage_bab(run)
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
    if difference_terms(run.problem) is not None:  # branch and bound applies
        _stage_bounds(run, b, relax=False)
        if run.certificate is not None or not is_certified(run.error, run.upper):
            _stage_bab(run)
        return
    if deep_applies(run.problem) and run.time_limit is not None:
        # deeper (leaky) ReLU pairs: the joint branch and bound first, then
        # the exact solver (which closes tiny networks) with what is left
        bounds = _stage_bounds(run, b, relax=False)
        if run.certificate is not None:  # the certificate's claim is the reported bound
            _stage_bab(run)
            return
        if not is_certified(run.error, run.upper):
            _stage_bab(run, DEEP_SCHEDULE)
    else:
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
    if method == "bab" and difference_terms(run.problem) is None and \
            not deep_applies(run.problem):
        return NOT_APPLICABLE
    return BOUNDED


def worst_case(original, pruned, *, beta: float | None = None,
               lower=None, upper=None, scale=None, method: str = "auto",
               time_limit: float | None = None, rng=None, restarts: int = 64,
               progress: Progress | None = None, starts=None,
               certificate=None) -> WorstCase:
    """Find the input where two networks differ most, and bound how much.

    Maximises ``max_i |f_i(x) - g_i(x)| / scale[i]`` over the L2 ball
    ``||x|| <= beta``, the box ``lower <= x <= upper``, or both.

    Parameters
    ----------
    original, pruned : torch.nn.Module
        Networks from R^d to R^k: ``nn.Linear`` and activation layers (ReLU,
        LeakyReLU, Sigmoid, Tanh, Softplus, ELU) in (nested) ``nn.Sequential``;
        ``nn.Flatten``, ``nn.Dropout`` and ``nn.Identity`` pass through.
        Widths and depths may differ. Parameters must be float32 or float64
        (float16 and bfloat16 models are refused: the float64 bounds do not
        describe what they compute).
    beta : float, optional
        Radius of the ball (centre 0).
    lower, upper : array_like, shape (d,) or scalar, optional
        The box; given together.
    scale : array_like, shape (k,), optional
        Positive per-output scales (default ones).
    method : {"auto", "gradient", "region", "bounds", "exact", "bab"}
        ``gradient``: batched projected Adam ascent. ``region``: activation
        region local search ((leaky) ReLU only). ``bounds``: interval, linear
        and triangle-relaxation bounds. ``exact``: mixed-integer program
        (SCIP on a ball, HiGHS on a box; (leaky) ReLU only). ``bab``: branch
        and bound over ReLU splits of the difference network, with sound
        bounds at every step ((leaky) ReLU pairs with linear outputs; deeper
        pairs are bounded jointly on their shared first layer and split
        there, proofs_notes/bab.md, Lemma B3). ``auto``: gradient to 15 % of
        ``time_limit``, region to 35 %, then, for one-hidden-layer (leaky)
        ReLU pairs, interval and linear bounds and ``bab`` the rest; for
        deeper (leaky) ReLU pairs with a ``time_limit``, ``bab`` to 75 % and
        ``exact`` the rest; for other pairs the triangle relaxation to 50 %
        and ``exact`` the rest.
    time_limit : float, optional
        Seconds, a finite number > 0; ``None`` means no limit (``exact`` may
        then run very long). Held to within a few seconds on large (conv)
        networks too: their work is split into chunks with the time checked
        between them, and a stage out of time keeps what it has proved.
    rng : int, numpy.random.Generator or None
        Seeds the random starts (``np.random.default_rng(rng)``). The state of
        the generator before the search is stored in ``result.rng_state``, so
        ``worst_case(original, pruned, **result.replay_options())`` repeats
        the search.
    restarts : int
        Random starting points, on top of the first layer's directions: an
        integer in ``[0, MAX_RESTARTS]`` (100,000), and with ``starts`` small
        enough that the gradient stage's batch has at most
        ``MAX_BATCH_ELEMENTS`` (2**26) entries.
    progress : callable, optional
        ``progress(stage, done, total)`` after each stage (``done`` stages so
        far, ``total`` 0) and each relaxation solved (``done`` of ``total``
        pairs).
    starts : array_like, shape (m, d), optional
        Inputs to start from as well (e.g. the data), finite, ``1 <= m <=
        MAX_STARTS`` (100,000): projected onto the domain, evaluated first (so
        ``error`` is at least their largest objective when they lie in the
        domain) and ascended by the gradient stage.

    certificate : str or os.PathLike, optional
        Write the branch and bound's proof of its upper bound to this
        ``.npz`` file (method ``auto`` or ``bab``, (leaky) ReLU pairs; for
        deeper pairs method ``auto`` needs a ``time_limit``);
        :func:`coreset_verify.certificate.check` re-verifies it without the
        search. Its claim is the ``bab`` stage's upper bound, the last stage.

    Returns
    -------
    WorstCase
        ``error`` is re-evaluated at ``x`` in torch float64 (a lower bound on
        the maximum); ``upper_bound`` is sound (``inf`` for gradient/region).

    Raises
    ------
    InvalidArgumentError
        Bad domain, dimension mismatch, unsupported layer or dtype, bad scale,
        unknown method, ``time_limit``, ``restarts``, ``starts``, ``rng`` or
        ``progress`` outside the rules above; each message names
        ``worst_case`` and the argument; networks whose objective overflows
        float64 at the centre of the domain. Solver failures and time-outs are
        statuses, not exceptions.

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
    method, time_limit, restarts = _check_options(method, time_limit, restarts, progress)
    gen = check_rng(rng, _FUNC)
    rng_state = copy.deepcopy(gen.bit_generator.state)
    problem = make_problem(original, pruned, beta=beta, lower=lower, upper=upper,
                           scale=scale)
    run = _Run(problem, time.perf_counter(), time_limit, progress,
               starts=_check_starts(starts, problem, restarts),
               certificate=_check_certificate(certificate, method, problem, original,
                                              pruned, time_limit))
    value = run.offer(problem.domain.center)
    if run.x is None:
        raise fail(_FUNC, "original", "a pair of networks whose outputs and their "
                   "difference are finite in float64 at the centre of the domain (rescale "
                   "the weights)", f"objective {value} at the centre")
    if run.starts is not None:
        _offer_best(run, run.starts)
    _run_method(run, method, gen, restarts)
    return _result(run, method, restarts, rng_state)


def _result(run: _Run, method: str, restarts: int, rng_state: dict) -> WorstCase:
    error, output = run.problem.evaluate(run.x)
    upper, status = run.upper, _final_status(run, method)
    if math.isnan(upper):
        upper, status = math.inf, SOLVER_FAILED
    if upper < error:
        if error - upper > 1e-9 * (1 + abs(error)):
            upper, status = math.inf, SOLVER_FAILED
        else:
            upper = error
    dom = run.problem.domain
    return WorstCase(run.x, error, upper, status, time.perf_counter() - run.t0, output,
                     tuple(run.stages), method, dom.beta, dom.lower, dom.upper,
                     run.problem.scale, run.time_limit, restarts, rng_state)


def _reference_error(result: WorstCase, original, pruned) -> np.ndarray | None:
    """``|f(x) - g(x)| / scale`` with copies of the modules in float64, eval mode;
    ``None`` when ``x`` or ``scale`` does not fit these networks."""
    import torch

    outs = []
    for net in (original, pruned):
        net64 = copy.deepcopy(net).to("cpu").double().eval()
        try:
            with torch.no_grad():
                outs.append(net64(torch.as_tensor(result.x)[None]).reshape(-1).numpy())
        except RuntimeError:  # x of another dimension
            return None
    scale = np.ones_like(outs[0]) if result.scale is None else np.asarray(result.scale,
                                                                          dtype=float)
    if outs[0].shape != outs[1].shape or scale.shape != outs[0].shape:
        return None
    with np.errstate(all="ignore"):
        return np.abs(outs[0] - outs[1]) / scale


def _check_tolerance(value, name: str) -> float:
    if not (isinstance(value, (int, float, np.floating)) and not isinstance(value, bool)
            and 0 <= value < math.inf):
        raise fail("verify", name, "a finite number >= 0", value)
    return float(value)


def _in_domain(result: WorstCase, x: np.ndarray, rtol: float, atol: float,
               tol: float) -> bool:
    if x.ndim != 1 or not np.all(np.isfinite(x)):
        return False
    if result.beta is not None and row_norms(x[None])[0] > result.beta * (1 + rtol) + atol:
        return False
    return result.lower is None or not (np.any(x < result.lower - tol)
                                        or np.any(x > result.upper + tol))


def verify(result: WorstCase, original, pruned, *, rtol: float = 1e-7,
           atol: float = 1e-9) -> bool:
    """Re-check a :class:`WorstCase` without any solver.

    Checks, with tolerance ``atol + rtol * |value|``: ``x`` is finite and in the
    domain recorded in ``result``; ``error`` equals ``max_i |f_i(x) - g_i(x)| /
    scale_i`` recomputed by the modules themselves in float64 and attained at
    ``result.output``; ``error <= upper_bound`` (``upper_bound`` not NaN).
    ``certified`` is derived from the bracket, so it needs no check.

    Parameters
    ----------
    result : WorstCase
    original, pruned : torch.nn.Module
        The networks ``result`` claims to be about, read as
        :func:`worst_case` reads them.
    rtol, atol : float
        Finite numbers >= 0.

    Returns
    -------
    bool
        ``True`` when every check passes; ``False`` for any wrong result,
        including an ``x``, ``scale`` or ``output`` that does not fit these
        networks.

    Raises
    ------
    InvalidArgumentError
        Only for bad arguments, never for a wrong result: ``result`` not a
        ``WorstCase``; ``original`` or ``pruned`` not a network the search
        reads (not a torch module, ``None``, an unsupported layer or dtype
        such as float16, non-finite weights); ``rtol``/``atol`` not finite
        numbers >= 0.
    """
    if not isinstance(result, WorstCase):
        raise fail("verify", "result", "a WorstCase (the return value of worst_case)",
                   type(result).__name__)
    for name, net in (("original", original), ("pruned", pruned)):
        read_layers(net, func="verify", name=name)
    rtol, atol = _check_tolerance(rtol, "rtol"), _check_tolerance(atol, "atol")
    try:
        x = np.asarray(result.x, dtype=float)
        error, upper = float(result.error), float(result.upper_bound)
        tol = atol + rtol * max(abs(error), 1.0)
        if not _in_domain(result, x, rtol, atol, tol) or math.isnan(upper):
            return False
    except (TypeError, ValueError):  # a field of the wrong kind: a wrong result
        return False
    err = _reference_error(result, original, pruned)
    if err is None or not np.all(np.isfinite(err)):
        return False
    ok = abs(float(err.max()) - error) <= atol + rtol * abs(error)
    ok &= isinstance(result.output, (int, np.integer)) and 0 <= result.output < len(err)
    return bool(ok and err[result.output] >= err.max() - tol and error <= upper + tol)
