"""Run the battery: :func:`check_pruner`, :func:`parametrize_with_checks`, :func:`run_audit`.

The battery reads like scikit-learn's ``check_estimator``: small checks from
:mod:`.checks`, readable names, and expected failures declared explicitly,
``expected_failed_checks={"check_unbiased": "reason"}``.

One engine for dense and conv pruners: a pruner whose ``kind`` attribute is
``"conv"`` (or ``kind="conv"``, or conv layers given) is audited on conv
pairs (:mod:`._conv`) by the same checks.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validation import (
    check_bool,
    check_int,
    check_open_unit,
    check_option,
    check_positive,
    check_unknown_options,
    fail,
)
from ._arguments import check_activation, check_claims, check_pruner_time_limit
from ._context import FAILED, PASSED, SKIPPED, AuditContext, Outcome, functions_of
from ._layers import Pruner, named_layers
from ._worker import PrunerCalls, PrunerError
from .checks import CHECKS, yield_checks

#: Default seconds each call into the pruner may take (see check_pruner).
PRUNER_TIME_LIMIT = 10.0
#: The keyword options of check_pruner and run_audit (anything else is refused).
CHECK_PRUNER_OPTIONS = ("claims", "rng", "layers", "expected_failed_checks", "time_limit",
                        "pruner_time_limit", "beta", "activation", "method", "name", "kind")
RUN_AUDIT_OPTIONS = ("rng", "layers", "time_limit", "pruner_time_limit", "beta", "delta",
                     "torch", "expected_failed_checks", "kind")
#: The options of parametrize_with_checks, with their defaults.
OPTIONS = {"rng": None, "layers": None, "time_limit": 2.0,
           "pruner_time_limit": PRUNER_TIME_LIMIT, "beta": 1.0, "activation": "relu",
           "method": None, "kind": None}
#: The kinds of pruner, and the search method each gets by default.
KINDS = {"dense": "gradient", "conv": "auto"}

__all__ = [
    "AuditReport",
    "CheckResult",
    "check_pruner",
    "parametrize_with_checks",
    "run_audit",
]


@dataclass(frozen=True)
class CheckResult:
    """The result of one check.

    Attributes
    ----------
    name : str
        ``check_*`` name.
    status : {"passed", "failed", "skipped"}
        Skipped: the check does not apply to the claims or cannot run here
        (neither a pass nor a failure, like scikit-learn's ``SkipTest``).
    expected_failure : bool
        Declared in ``expected_failed_checks``.
    message : str
        One line: what was found.
    evidence : dict
        Seeds, inputs and numbers behind the verdict (JSON-serialisable).
    seconds : float
    reason : str
        Why the failure is expected ("" otherwise).
    """

    name: str
    status: str
    expected_failure: bool
    message: str
    evidence: dict[str, Any] = field(default_factory=dict, repr=False)
    seconds: float = 0.0
    reason: str = ""

    @property
    def passed(self) -> bool:
        """The check ran and passed (a skipped check has not passed)."""
        return self.status == PASSED

    @property
    def failed(self) -> bool:
        """The check ran and failed (expected or not)."""
        return self.status == FAILED

    @property
    def skipped(self) -> bool:
        """The check did not run."""
        return self.status == SKIPPED

    @property
    def verdict(self) -> str:
        """``"pass"``, ``"FAIL"``, ``"xfail"``, ``"XPASS"`` or ``"skip"``."""
        if self.skipped:
            return "skip"
        if self.expected_failure:
            return "XPASS" if self.passed else "xfail"
        return "pass" if self.passed else "FAIL"


@dataclass(frozen=True)
class AuditReport:
    """Every check's result for one pruner.

    Attributes
    ----------
    pruner : str
        The pruner's name (or repr).
    claims : dict
        The claims audited, callables replaced by their repr.
    results : tuple of CheckResult
    seconds : float
    """

    pruner: str
    claims: dict[str, Any]
    results: tuple[CheckResult, ...]
    seconds: float

    @property
    def failed(self) -> tuple[str, ...]:
        """Names of the checks that failed and were not expected to."""
        return tuple(r.name for r in self.results if r.failed and not r.expected_failure)

    @property
    def passed(self) -> bool:
        """No unexpected failure (skipped checks neither pass nor fail)."""
        return not self.failed

    @property
    def xfailed(self) -> tuple[str, ...]:
        """Names of the checks that failed as declared."""
        return tuple(r.name for r in self.results if r.failed and r.expected_failure)

    @property
    def skipped(self) -> tuple[str, ...]:
        """Names of the checks that did not run."""
        return tuple(r.name for r in self.results if r.skipped)

    @property
    def counts(self) -> dict[str, int]:
        """``{"passed", "failed", "skipped"}`` -> number of checks (xfail counts as failed)."""
        return {status: sum(r.status == status for r in self.results)
                for status in (PASSED, FAILED, SKIPPED)}

    def __getitem__(self, name: str) -> CheckResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(name)

    def _tally(self) -> str:
        c = self.counts
        return (f"{c[PASSED]}/{c[PASSED] + c[FAILED]} checks passed, "
                f"{c[SKIPPED]} skipped")

    def __str__(self) -> str:
        head = (f"Audit of {self.pruner}: {'PASSED' if self.passed else 'FAILED'} "
                f"({self._tally()}, {self.seconds:.1f} s)")
        lines = [head] + [f"  {r.verdict:5s} {r.name}: {r.message}" for r in self.results]
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """A Markdown section: verdict line and one table row per check."""
        rows = [f"### {self.pruner}", "",
                f"**{'passed' if self.passed else 'failed'}**: "
                f"{', '.join(self.failed) or 'no unexpected failure'} ({self._tally()}); "
                f"claims `{_claims_text(self.claims)}`", "",
                "| check | verdict | message |", "|---|---|---|"]
        rows += [f"| {r.name} | {r.verdict} | {r.message.replace('|', '/')} |"
                 for r in self.results]
        return "\n".join(rows) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (numpy values converted)."""
        return _jsonable({"pruner": self.pruner, "claims": self.claims, "passed": self.passed,
                          "failed": list(self.failed), "skipped": list(self.skipped),
                          "counts": self.counts, "seconds": self.seconds,
                          "results": [r.__dict__ | {"passed": r.passed, "skipped": r.skipped,
                                                    "verdict": r.verdict}
                                      for r in self.results]})


def _claims_text(claims: Mapping[str, Any]) -> str:
    return json.dumps(_jsonable(claims), sort_keys=True)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if math.isfinite(v) else str(v)
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return repr(value)


def _kind(pruner: Any, kind: Any, func: str) -> str | None:
    """``kind`` if given, else the pruner's ``kind`` attribute, else None (from the layers)."""
    if kind is None:
        kind = getattr(pruner, "kind", None)
    return None if kind is None else check_option(kind, "kind", func, tuple(KINDS))


def _context(func: str, claims: Any, pruner: Any = None, **options: Any) -> AuditContext:
    """Validate the options of an audit into its context (no worker yet)."""
    o = OPTIONS | options
    layers = named_layers(o["layers"], func, _kind(pruner, o["kind"], func))
    method = KINDS[layers[0].kind] if o["method"] is None else o["method"]
    method = check_option(method, "method", func, ("gradient", "auto"))
    return AuditContext(
        claims=check_claims(claims, func), layers=layers,
        beta=check_positive(o["beta"], "beta", func),
        activation=check_activation(o["activation"], func),
        seed=check_int(0 if o["rng"] is None else o["rng"], "rng", func, minimum=0),
        time_limit=check_positive(o["time_limit"], "time_limit", func), method=method)


def _expected(expected: Any, func: str) -> dict[str, str]:
    if expected is None:
        return {}
    if not isinstance(expected, Mapping):
        raise fail(func, "expected_failed_checks", "a mapping check name -> reason",
                   type(expected).__name__)
    unknown = sorted(set(expected) - set(CHECKS))
    if unknown:
        raise fail(func, "expected_failed_checks", f"keys among {sorted(CHECKS)}",
                   f"unknown checks {unknown}")
    return {str(k): str(v) for k, v in expected.items()}


def _outcome_of_error(exc: Exception) -> Outcome:
    """A check that raised: the pruner's fault (or the battery's) as a failure."""
    if isinstance(exc, PrunerError):
        evidence = dict(exc.evidence)
        if "traceback" not in evidence and exc.__cause__ is not None:
            evidence["traceback"] = "".join(traceback.format_exception(exc.__cause__))[-2000:]
        return Outcome.fail(str(exc), evidence)
    return Outcome.fail(f"{type(exc).__name__}: {exc}",
                        {"traceback": "".join(traceback.format_exception(exc))[-2000:]})


def _run_one(name: str, check: Callable, pruner: Pruner, ctx: AuditContext,
             expected: Mapping[str, str]) -> CheckResult:
    t0 = time.perf_counter()
    try:
        out = check(pruner, ctx)
    except Exception as exc:  # a pruner's failure is a failed check
        out = _outcome_of_error(exc)
    return CheckResult(name=name, status=out.status, expected_failure=name in expected,
                       message=out.message, evidence=_jsonable(out.evidence),
                       seconds=time.perf_counter() - t0, reason=expected.get(name, ""))


def _check_callable(pruner: Any, func: str) -> None:
    if not callable(pruner):
        raise fail(func, "pruner", "a callable pruner(W_in, b_in, W_out, *, size, rng) or "
                   "pruner(conv_weight, conv_bias, next_weight, *, size, rng, geometry)",
                   type(pruner).__name__)


def check_pruner(
    pruner: Pruner,
    *,
    claims: Mapping[str, Any],
    rng: int | None = None,
    layers: Any = None,
    expected_failed_checks: Mapping[str, str] | None = None,
    time_limit: float = 2.0,
    pruner_time_limit: float | None = PRUNER_TIME_LIMIT,
    beta: float = 1.0,
    activation: str = "relu",
    method: str | None = None,
    name: str | None = None,
    kind: str | None = None,
    **unknown: Any,
) -> AuditReport:
    """Run every check of the battery on ``pruner``.

    Parameters
    ----------
    pruner : callable
        ``pruner(W_in, b_in, W_out, *, size, rng) -> (W_in', b_in', W_out')``,
        or a conv pruner ``pruner(conv_weight, conv_bias, next_weight, *,
        size, rng, geometry) -> (kept, next_weight')`` (see ``kind``).
    claims : mapping
        What the pruner promises: ``{"unbiased": bool}`` and optionally
        ``"deterministic"``, ``"drops_dead"``, ``"exact_at_full_size"`` (bools)
        and ``"guarantee": {"kind": "pointwise" | "uniform", "delta": float,
        "epsilon": float | callable, "beta": float}``. A numeric epsilon must
        be a finite number >= 0 (NaN, infinity and negative numbers are
        refused). A callable epsilon is ``epsilon(W_in, b_in, W_out, *, size,
        rng) -> float`` in units of ``T_i``; ``rng`` is a generator from the
        seed the pruner gets, so a bound that depends on the draws can
        recompute them (a NaN, infinite or negative value fails the check).
        Unknown keys are refused.
    rng : int, optional
        Base seed of every check (default 0). Only an int: the battery must
        be reproducible from its report.
    layers : optional
        A ``(W_in, b_in, W_out)`` triple, a list of them or a mapping name ->
        triple; default two small seeded layers. For a conv pruner,
        :class:`~coreset_verify.audit.ConvLayer` pairs (default two small
        seeded pairs, :func:`~coreset_verify.audit.default_conv_layers`).
    expected_failed_checks : mapping, optional
        ``{"check_name": "reason"}``: these failures do not fail the report.
    time_limit : float
        Seconds per worst-case search.
    pruner_time_limit : float or None, default 10.0
        Seconds each call into the pruner (and into a callable epsilon) may
        take. Calls run in one worker process per audit; a call that does not
        return in time is stopped and fails its check ("the pruner did not
        return within 10 s on layer 'heavy', size 16"). On Linux the worker is
        forked and inherits the pruner, so closures and lambdas work; on other
        platforms, and in a process that has initialised CUDA, it is spawned
        and the pruner must be picklable (a module-level function or class
        instance; anything else is refused up front). The pruner's side
        effects (globals, counters) happen in the worker, not here. ``None``
        calls the pruner in this process, without a limit.
    beta : float
        Ball radius of the checks (a claimed guarantee's own ``beta`` wins).
    activation : str
    method : {"gradient", "auto"}, optional
        Worst-case search method; default ``"gradient"`` for dense pairs and
        ``"auto"`` for conv pairs (``"gradient"`` where the search does not
        read the conv modules).
    name : str, optional
        Name in the report (default ``repr(pruner)``).
    kind : {"dense", "conv"}, optional
        Which protocol the pruner follows; default its ``kind`` attribute,
        else the kind of ``layers``, else ``"dense"``.
    **unknown
        Refused: a misspelt option raises InvalidArgumentError listing the
        known ones.

    Returns
    -------
    AuditReport
        A check that does not apply to the claims is *skipped*: a status of
        its own, neither passed nor failed.

    Notes
    -----
    The claims of a correct implementation of the paper's algorithm (``m =
    size`` i.i.d. draws from ``pr = s / t``, kept columns re-weighted by
    ``cnt_j / (m pr_j)``) are ``{"unbiased": True, "deterministic": False,
    "drops_dead": True, "exact_at_full_size": False, "guarantee": {...}}``:
    unbiased by construction; not exact at ``size = n`` (n draws with
    replacement rarely keep every neuron with weight 1), so
    ``check_full_size_exact`` is skipped and the degenerate check does not
    ask for exactness at full size; and a guarantee such as the pointwise
    Hoeffding bound ``epsilon = t sqrt(2 ln(2k / delta) / m)`` or the
    toolkit's :func:`~coreset_verify.theoretical_bound`. Such a pruner passes
    every check (``tests/audit/faulty_pruners.py: paper_sampler``).

    Examples
    --------
    >>> from coreset_verify.audit import check_pruner, uniform_pruner
    >>> report = check_pruner(uniform_pruner(reweight=False), claims={"unbiased": False})
    >>> report.passed, report.skipped
    (True, ('check_unbiased', 'check_guarantee'))
    """
    func = "check_pruner"
    check_unknown_options(unknown, CHECK_PRUNER_OPTIONS, func)
    _check_callable(pruner, func)
    ctx = _context(func, claims, pruner, rng=rng, layers=layers, time_limit=time_limit,
                   beta=beta, activation=activation, method=method, kind=kind)
    limit = check_pruner_time_limit(pruner_time_limit, func)
    expected = _expected(expected_failed_checks, func)
    t0 = time.perf_counter()
    with PrunerCalls(functions_of(pruner, ctx.claims), limit, func=func) as calls:
        ctx = dataclasses.replace(ctx, calls=calls)
        results = tuple(_run_one(n, c, pruner, ctx, expected)
                        for n, c in yield_checks(ctx.claims))
    return AuditReport(pruner=name or repr(pruner), claims=_jsonable(dict(claims)),
                       results=results, seconds=time.perf_counter() - t0)


class _PytestCheck:
    """One check bound to its context; fails (AssertionError) or skips in pytest."""

    def __init__(self, name: str, check: Callable, ctx: AuditContext,
                 limit: float | None) -> None:
        self.name, self.check, self.ctx, self.limit = name, check, ctx, limit
        self.__name__ = name

    def __repr__(self) -> str:
        return self.name

    def __call__(self, pruner: Pruner) -> CheckResult:
        import pytest

        with PrunerCalls(functions_of(pruner, self.ctx.claims), self.limit,
                         func="parametrize_with_checks") as calls:
            ctx = dataclasses.replace(self.ctx, calls=calls)
            result = _run_one(self.name, self.check, pruner, ctx, {})
        if result.skipped:
            pytest.skip(f"{self.name}: {result.message}")
        if not result.passed:
            raise AssertionError(f"{self.name}: {result.message}\nevidence: "
                                 f"{json.dumps(result.evidence)[:2000]}")
        return result


def _pairs(pruners: Any, func: str) -> Iterator[tuple[str, Pruner]]:
    if isinstance(pruners, Mapping):
        yield from ((str(k), v) for k, v in pruners.items())
    elif callable(pruners):
        yield repr(pruners), pruners
    else:
        for p in pruners:
            if not callable(p):
                raise fail(func, "pruners", "callables", type(p).__name__)
            yield getattr(p, "__name__", repr(p)), p


def _expected_of(expected_failed_checks: Any, label: str, func: str) -> dict[str, str]:
    """The expected failures of one pruner: shared, or per pruner name."""
    expect = expected_failed_checks or {}
    if label in expect and isinstance(expect[label], Mapping):
        expect = expect[label]
    elif any(isinstance(v, Mapping) for v in expect.values()):
        expect = {}
    return _expected(expect, func)


def parametrize_with_checks(
    pruners: Any,
    *,
    claims: Mapping[str, Any],
    expected_failed_checks: Mapping[str, str] | None = None,
    **options: Any,
) -> Any:
    """A ``pytest.mark.parametrize("pruner, check", ...)`` over every (pruner, check).

    Parameters
    ----------
    pruners : callable, list of callables or mapping name -> callable
    claims : mapping
        The claims of every pruner, or a mapping pruner name -> claims.
    expected_failed_checks : mapping, optional
        ``{"check_name": "reason"}`` (or name -> such a mapping, per pruner):
        these become ``xfail``.
    **options
        ``rng``, ``layers``, ``time_limit``, ``pruner_time_limit``, ``beta``,
        ``activation``, ``method``, ``kind`` of :func:`check_pruner`; any other
        name is refused. A skipped check becomes a skipped test.

    Raises
    ------
    InvalidArgumentError
        An unknown option (a misspelt ``time_limt=``), or a bad value.

    Examples
    --------
    In a user's test suite::

        @parametrize_with_checks({"mine": my_pruner}, claims={"unbiased": True})
        def test_my_pruner(pruner, check):
            check(pruner)
    """
    import pytest

    func = "parametrize_with_checks"
    check_unknown_options(options, tuple(OPTIONS), func)
    limit = check_pruner_time_limit(options.get("pruner_time_limit", PRUNER_TIME_LIMIT), func)
    options.pop("pruner_time_limit", None)
    params = []
    for label, pruner in _pairs(pruners, func):
        per_pruner = isinstance(claims, Mapping) and "unbiased" not in claims
        own = claims.get(label, claims) if per_pruner else claims
        expect = _expected_of(expected_failed_checks, label, func)
        ctx = _context(func, own, pruner, **options)
        for name, check in yield_checks(ctx.claims):
            marks = [pytest.mark.xfail(reason=expect[name], strict=False)] \
                if name in expect else []
            params.append(pytest.param(pruner, _PytestCheck(name, check, ctx, limit),
                                       id=f"{label}-{name}", marks=marks))
    return pytest.mark.parametrize(("pruner", "check"), params)


def run_audit(
    pruners: Mapping[str, Any] | None = None,
    *,
    rng: int | None = 0,
    layers: Any = None,
    time_limit: float = 2.0,
    pruner_time_limit: float | None = PRUNER_TIME_LIMIT,
    beta: float = 1.0,
    delta: float = 0.1,
    torch: bool = True,
    expected_failed_checks: Mapping[str, Mapping[str, str]] | None = None,
    kind: str | None = None,
    **unknown: Any,
) -> dict[str, AuditReport]:
    """Audit several pruners; the entry point of ``coreset-verify audit``.

    Parameters
    ----------
    pruners : mapping, optional
        ``name -> (pruner, claims)``; default every built-in of ``kind``
        (:func:`~coreset_verify.audit.builtin_pruners`, or
        :func:`~coreset_verify.audit.builtin_conv_pruners` for conv).
    rng, layers, time_limit, pruner_time_limit, beta
        As in :func:`check_pruner`.
    delta : float
        Failure probability of the built-in coresets' claimed guarantee.
    torch : bool
        Include the torch-based built-ins.
    expected_failed_checks : mapping, optional
        ``pruner name -> {check name: reason}``.
    kind : {"dense", "conv"}, optional
        ``"conv"``: the conv built-ins, on conv pairs. Default: the dense
        built-ins, and each given pruner audited as its ``kind`` attribute
        says (as in :func:`check_pruner`).
    **unknown
        Refused (InvalidArgumentError listing the known options).

    Returns
    -------
    dict
        ``name -> AuditReport``, in the order given.
    """
    from .baselines import builtin_pruners
    from .conv_adapters import builtin_conv_pruners

    func = "run_audit"
    check_unknown_options(unknown, RUN_AUDIT_OPTIONS, func)
    delta, torch = check_open_unit(delta, "delta", func), check_bool(torch, "torch", func)
    kind = None if kind is None else check_option(kind, "kind", func, tuple(KINDS))
    builtins = builtin_conv_pruners if kind == "conv" else builtin_pruners
    table = builtins(beta=beta, delta=delta, torch=torch) if pruners is None else pruners
    if not isinstance(table, Mapping):
        raise fail("run_audit", "pruners", "a mapping name -> (pruner, claims)",
                   type(table).__name__)
    expected = expected_failed_checks or {}
    reports = {}
    for label, entry in table.items():
        if not (isinstance(entry, (tuple, list)) and len(entry) == 2):
            raise fail("run_audit", f"pruners[{label!r}]", "a (pruner, claims) pair",
                       type(entry).__name__)
        pruner, claims = entry  # an Audited(pruner, claims) or any pair
        reports[label] = check_pruner(pruner, claims=claims, rng=rng, layers=layers,
                                      time_limit=time_limit,
                                      pruner_time_limit=pruner_time_limit, beta=beta,
                                      name=label, expected_failed_checks=expected.get(label),
                                      kind=kind)
    return reports
