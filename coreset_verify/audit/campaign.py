"""Campaigns: many seeds x sizes x pruners, streamed to a JSONL file, resumable.

Each trial (layer, pruner, size, seed) prunes once, runs the worst-case search
(a found error and, when the search proves one, a sound upper bound, both in
units of ``T_i``), asks the pruner for its theoretical epsilons when it has an
``epsilons`` method (the toolkit's coreset: pointwise, uniform, paper), and
measures the error on data when given. Each finished trial is one JSON line,
flushed and fsync'ed; rerunning the same campaign skips the keys already in
the file, and a truncated last line (a killed run) is dropped first.

Scaling out: any ``concurrent.futures.Executor`` runs the trials; with Dask,
``run_campaign(..., executor=client.get_executor())``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import Executor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import check_int, check_open_unit, check_positive, fail
from ..activations import get_activation
from ..errors import InvalidArgumentError
from ._common import Layer, named_layers, scale_of
from ._search import search_worst_case

__all__ = ["CampaignSummary", "SummaryRow", "clopper_pearson", "run_campaign", "summarize"]

KINDS = ("pointwise", "uniform", "paper")


@dataclass(frozen=True)
class _Trial:
    """Everything one trial needs (picklable, sent to executors)."""

    key: str
    layer: Layer
    pruner_name: str
    pruner: Any
    size: int
    seed: int
    delta: float
    kinds: tuple[str, ...]
    beta: float
    activation: str
    method: str
    time_limit: float | None
    data: np.ndarray | None


def _fingerprint(layer: Layer) -> str:
    digest = hashlib.sha1(usedforsecurity=False)
    for a in (layer.W_in, layer.b_in, layer.W_out):
        digest.update(np.ascontiguousarray(a).tobytes())
    return digest.hexdigest()[:10]


def run_trial(trial: _Trial) -> dict[str, Any]:
    """Run one trial; return its JSON record (errors of the pruner are recorded)."""
    t0 = time.perf_counter()
    act = get_activation(trial.activation)
    layer = trial.layer
    record: dict[str, Any] = {
        "key": trial.key, "layer": layer.name, "pruner": trial.pruner_name,
        "size": trial.size, "seed": trial.seed, "delta": trial.delta, "beta": trial.beta,
        "n": layer.n, "method": trial.method,
    }
    try:
        pruned = tuple(np.asarray(a, dtype=np.float64) for a in trial.pruner(
            *layer.arrays(), size=trial.size, rng=np.random.default_rng(trial.seed)))
        found = search_worst_case(layer, pruned, beta=trial.beta, activation=act,
                                  method=trial.method, time_limit=trial.time_limit,
                                  rng=np.random.default_rng([trial.seed, 1]))
    except Exception as exc:  # a failed trial is recorded, not raised
        return record | {"error": f"{type(exc).__name__}: {exc}",
                         "seconds": time.perf_counter() - t0}
    record |= {
        "n_kept": int(pruned[0].shape[0]), "found": found.error,
        "upper_bound": found.upper_bound if math.isfinite(found.upper_bound) else None,
        "certified": found.certified, "status": found.status,
        "search_seconds": found.seconds, "x": found.x.tolist(),
        "epsilon": _epsilons(trial), "data_error": _data_error(trial, pruned, act),
    }
    return record | {"seconds": time.perf_counter() - t0}


def _epsilons(trial: _Trial) -> dict[str, float] | None:
    bounds = getattr(trial.pruner, "epsilons", None)
    if bounds is None:
        return None
    out = bounds(*trial.layer.arrays(), size=trial.size,
                 rng=np.random.default_rng(trial.seed), delta=trial.delta, kinds=trial.kinds)
    return {k: float(v) for k, v in out.items()}


def _data_error(trial: _Trial, pruned: tuple, act) -> dict[str, float] | None:
    if trial.data is None:
        return None
    from ._common import forward

    layer, x = trial.layer, trial.data
    gap = np.abs(forward(layer.W_in, layer.b_in, layer.W_out, x, act) - forward(*pruned, x, act))
    per_input = np.max(gap / scale_of(layer, trial.beta, act), axis=1)
    return {"max": float(per_input.max()), "mean": float(per_input.mean())}


def _read_records(path: Path) -> list[dict[str, Any]]:
    """Parse the JSONL file; drop (and cut off) a truncated last line."""
    if not path.exists():
        return []
    raw = path.read_bytes()
    if raw and not raw.endswith(b"\n"):
        cut = raw.rfind(b"\n") + 1
        with open(path, "r+b") as fh:
            fh.truncate(cut)
            fh.flush()
            os.fsync(fh.fileno())
        raw = raw[:cut]
    return _parse(raw)


def _parse(raw: bytes) -> list[dict[str, Any]]:
    records = []
    for line in raw.splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # only a damaged line can fail; its trial reruns
        if isinstance(rec, dict) and "key" in rec:
            records.append(rec)
    return records


def _pruner_table(pruners: Any) -> dict[str, Any]:
    if isinstance(pruners, Mapping):
        table = {str(k): (v[0] if isinstance(v, tuple) else v) for k, v in pruners.items()}
    elif callable(pruners):
        table = {repr(pruners): pruners}
    else:
        table = {getattr(p, "__name__", repr(p)): p for p in pruners}
    for label, p in table.items():
        if not callable(p):
            raise fail("run_campaign", f"pruners[{label!r}]", "a callable pruner",
                       type(p).__name__)
    if not table:
        raise fail("run_campaign", "pruners", "at least one pruner", "none")
    return table


def _seed_list(seeds: Any) -> list[int]:
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        return list(range(check_int(seeds, "seeds", "run_campaign")))
    out = [check_int(s, "seeds", "run_campaign", minimum=0) for s in seeds]
    if not out:
        raise fail("run_campaign", "seeds", "a positive count or a list of seeds", "none")
    return out


def _data_for(data: Any, layer: Layer) -> np.ndarray | None:
    if data is None:
        return None
    x = data.get(layer.name) if isinstance(data, Mapping) else data
    if x is None:
        return None
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != layer.d:
        raise fail("run_campaign", "data", f"an array of shape (N, {layer.d}) for layer "
                   f"{layer.name!r}", f"shape {x.shape}")
    return x


def _trials(layers, table, sizes, seeds, delta, kinds, beta, activation, method,
            time_limit, data) -> list[_Trial]:
    trials = []
    for layer in layers:
        tag, x = _fingerprint(layer), _data_for(data, layer)
        for size in sizes:
            if size > layer.n:
                raise fail("run_campaign", "sizes", f"integers <= n = {layer.n} (neurons of "
                           f"layer {layer.name!r})", size)
            for label, pruner in table.items():
                for seed in seeds:
                    key = f"{layer.name}@{tag}|{label}|{size}|{seed}"
                    trials.append(_Trial(key, layer, label, pruner, size, seed, delta, kinds,
                                         beta, activation, method, time_limit, x))
    return trials


def run_campaign(
    layers: Any,
    *,
    pruners: Any,
    sizes: Iterable[int],
    seeds: int | Iterable[int],
    delta: float,
    path: str | os.PathLike,
    kinds: Iterable[str] = KINDS,
    time_limit: float | None = 1.0,
    data: Any = None,
    executor: Executor | None = None,
    beta: float = 1.0,
    activation: str = "relu",
    method: str = "auto",
) -> CampaignSummary:
    """Run (or resume) a campaign; every finished trial is one line of ``path``.

    Parameters
    ----------
    layers : triple, list of triples, mapping name -> triple, or Layer
        The layer pairs ``(W_in, b_in, W_out)``.
    pruners : mapping name -> pruner, or a list of pruners
        A pruner with an ``epsilons(W_in, b_in, W_out, *, size, rng, delta,
        kinds)`` method (:class:`~coreset_verify.audit.CoresetPruner`) also
        reports its theoretical epsilons.
    sizes : iterable of int
        Neurons to keep (each at most the layer's n).
    seeds : int or iterable of int
        A count (seeds 0..count-1) or the seeds.
    delta : float in (0, 1)
        Failure probability of the bounds.
    path : path-like
        The JSONL file; created, or appended to when it exists.
    kinds : iterable of str
        Bound kinds among "pointwise", "uniform", "paper".
    time_limit : float or None
        Seconds per worst-case search.
    data : array (N, d), or mapping layer name -> array, optional
        Inputs at which the error is also measured (units of ``T_i``).
    executor : concurrent.futures.Executor, optional
        Runs the trials (default: sequentially in this thread). Dask:
        ``client.get_executor()``.
    beta : float
        Ball radius of the search and of the relative errors.
    activation : str
    method : str
        Search method (see :func:`coreset_verify.search.worst_case`).

    Returns
    -------
    CampaignSummary
        :func:`summarize` of the whole file.

    Notes
    -----
    The file holds one configuration: resuming with another ``delta`` or
    ``beta`` raises. A trial's key names the layer (and a hash of its
    weights), pruner, size and seed.
    """
    func = "run_campaign"
    delta = check_open_unit(delta, "delta", func)
    beta = check_positive(beta, "beta", func)
    kinds = tuple(kinds)
    if not kinds or set(kinds) - set(KINDS):
        raise fail(func, "kinds", f"a non-empty subset of {list(KINDS)}", kinds)
    if time_limit is not None:
        time_limit = check_positive(time_limit, "time_limit", func)
    sizes = [check_int(s, "sizes", func) for s in sizes]
    trials = _trials(named_layers(layers, func), _pruner_table(pruners), sizes,
                     _seed_list(seeds), delta, kinds, beta, get_activation(activation).name,
                     method, time_limit, data)
    path = Path(path)
    done = _read_records(path)
    for rec in done:
        if rec.get("delta") != delta or rec.get("beta") != beta:
            raise InvalidArgumentError(
                f"{func}: {path} holds a campaign with delta={rec.get('delta')}, beta="
                f"{rec.get('beta')}; got delta={delta}, beta={beta}. Use a new path."
            )
    seen = {rec["key"] for rec in done}
    todo = [t for t in trials if t.key not in seen]
    with open(path, "a", encoding="utf-8") as fh:
        for record in _results(todo, executor):
            fh.write(json.dumps(record, allow_nan=False, default=_json_default) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
    return summarize(path)


def _results(todo: list[_Trial], executor: Executor | None):
    if executor is None:
        for trial in todo:
            yield run_trial(trial)
        return
    futures = [executor.submit(run_trial, trial) for trial in todo]
    for future in as_completed(futures):
        yield future.result()


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


# ---------------------------------------------------------------- summaries


def clopper_pearson(failures: int, trials: int, confidence: float = 0.95,
                    ) -> tuple[float, float]:
    """Two-sided Clopper-Pearson interval for a binomial proportion.

    Uses ``scipy.stats.beta`` when importable, else bisection on the
    binomial cdf (same values to 1e-12).

    Examples
    --------
    >>> lo, hi = clopper_pearson(0, 20)
    >>> lo, round(hi, 4)
    (0.0, 0.1684)
    """
    failures = check_int(failures, "failures", "clopper_pearson", minimum=0)
    trials = check_int(trials, "trials", "clopper_pearson")
    if failures > trials:
        raise fail("clopper_pearson", "failures", f"an integer <= trials = {trials}", failures)
    a = (1 - check_open_unit(confidence, "confidence", "clopper_pearson")) / 2
    try:
        from scipy.stats import beta
    except ImportError:
        return _cp_bisect(failures, trials, a)
    lo = 0.0 if failures == 0 else float(beta.ppf(a, failures, trials - failures + 1))
    hi = 1.0 if failures == trials else float(beta.ppf(1 - a, failures + 1, trials - failures))
    return lo, hi


def _binom_cdf(x: int, n: int, p: float) -> float:
    """``P(Binomial(n, p) <= x)``."""
    return math.fsum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(x + 1))


def _bisect(f, target: float, increasing: bool) -> float:
    lo, hi = 0.0, 1.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if (f(mid) < target) == increasing:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _cp_bisect(x: int, n: int, a: float) -> tuple[float, float]:
    lo = 0.0 if x == 0 else _bisect(lambda p: 1 - _binom_cdf(x - 1, n, p), a, True)
    hi = 1.0 if x == n else _bisect(lambda p: _binom_cdf(x, n, p), a, False)
    return lo, hi


@dataclass(frozen=True)
class SummaryRow:
    """Failure rate of one bound for one (layer, pruner, size).

    Attributes
    ----------
    layer, pruner : str
    size : int
    kind : str or None
        Bound kind; None for a pruner that states no epsilon.
    trials : int
        Finished trials without error.
    failures : int
        Trials whose found worst case exceeds epsilon.
    rate, ci_low, ci_high : float
        ``failures / trials`` and its Clopper-Pearson interval.
    verdict : str
        ``"exceeds delta"`` when ``ci_low > delta``, else ``"consistent"``
        (``"-"`` without epsilon).
    empirical_epsilon : float
        The ``1 - delta`` quantile of the found worst cases: the smallest found
        value with at least ``1 - delta`` of the trials at or below it.
    theoretical_epsilon : float
        Median over trials of the theoretical epsilon (nan without one).
    found_mean, certified_fraction, certified_max : float
        Mean found error; fraction of certified searches; largest finite sound
        upper bound (nan when none).
    data_error : float
        Mean over trials of the largest error on data (nan without data).
    """

    layer: str
    pruner: str
    size: int
    kind: str | None
    trials: int
    failures: int
    rate: float
    ci_low: float
    ci_high: float
    verdict: str
    empirical_epsilon: float
    theoretical_epsilon: float
    found_mean: float
    certified_fraction: float
    certified_max: float
    data_error: float


@dataclass(frozen=True)
class CampaignSummary:
    """Summary of a campaign file: one :class:`SummaryRow` per group and kind."""

    path: str
    delta: float
    confidence: float
    rows: tuple[SummaryRow, ...]
    trials: int
    errors: int

    def to_markdown(self) -> str:
        """A Markdown table of every row."""
        head = ("| layer | pruner | size | bound | trials | failures | rate [CP "
                f"{self.confidence:.0%}] | verdict vs delta={self.delta:g} | empirical eps "
                "| theoretical eps | mean found | certified | data error |")
        lines = [head, "|" + "---|" * 13]
        for r in self.rows:
            lines.append(
                f"| {r.layer} | {r.pruner} | {r.size} | {r.kind or '-'} | {r.trials} | "
                f"{r.failures} | {r.rate:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}] | "
                f"{r.verdict} | {r.empirical_epsilon:.4g} | {r.theoretical_epsilon:.4g} | "
                f"{r.found_mean:.4g} | {r.certified_fraction:.0%} | {r.data_error:.4g} |")
        return "\n".join(lines) + "\n"

    def __str__(self) -> str:
        return (f"Campaign {self.path}: {self.trials} trials ({self.errors} failed to run)\n"
                + self.to_markdown())


def summarize(path: str | os.PathLike, *, confidence: float = 0.95) -> CampaignSummary:
    """Failure rates (with Clopper-Pearson intervals) and empirical epsilons per group.

    Parameters
    ----------
    path : path-like
        A campaign's JSONL file (a truncated last line is ignored, not cut).
    confidence : float
        Of the Clopper-Pearson intervals.

    Returns
    -------
    CampaignSummary
    """
    path = Path(path)
    if not path.exists():
        raise fail("summarize", "path", "an existing campaign file", str(path))
    records = _parse(path.read_bytes())
    ok = [r for r in records if "error" not in r]
    groups: dict[tuple, list[dict]] = {}
    for r in ok:
        groups.setdefault((r["layer"], r["pruner"], r["size"]), []).append(r)
    delta = float(ok[0]["delta"]) if ok else math.nan
    rows = []
    for (layer, pruner, size), recs in sorted(groups.items()):
        kinds = sorted({k for r in recs for k in (r.get("epsilon") or {})}) or [None]
        for kind in kinds:
            rows.append(_row(layer, pruner, size, kind, recs, delta, confidence))
    return CampaignSummary(str(path), delta, confidence, tuple(rows), len(records),
                           len(records) - len(ok))


def _row(layer, pruner, size, kind, recs, delta, confidence) -> SummaryRow:
    found = np.array([r["found"] for r in recs], dtype=float)
    eps = np.array([(r.get("epsilon") or {}).get(kind, math.nan) for r in recs], dtype=float)
    uppers = [r["upper_bound"] for r in recs if r.get("upper_bound") is not None]
    data = [r["data_error"]["max"] for r in recs if r.get("data_error")]
    if kind is None:
        failures, lo, hi, rate, verdict = 0, math.nan, math.nan, math.nan, "-"
    else:
        failures = int(np.sum(found > eps * (1 + 1e-9)))
        lo, hi = clopper_pearson(failures, len(recs), confidence)
        rate, verdict = failures / len(recs), "exceeds delta" if lo > delta else "consistent"
    return SummaryRow(
        layer=layer, pruner=pruner, size=int(size), kind=kind, trials=len(recs),
        failures=failures, rate=rate, ci_low=lo, ci_high=hi, verdict=verdict,
        empirical_epsilon=float(np.quantile(found, 1 - delta, method="inverted_cdf")),
        theoretical_epsilon=float(np.median(eps)) if kind else math.nan,
        found_mean=float(found.mean()),
        certified_fraction=float(np.mean([bool(r.get("certified")) for r in recs])),
        certified_max=float(max(uppers)) if uppers else math.nan,
        data_error=float(np.mean(data)) if data else math.nan,
    )
