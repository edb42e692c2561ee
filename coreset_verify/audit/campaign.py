"""Campaigns: many seeds x sizes x pruners, streamed to a JSONL file, resumable.

Each trial (layer, pruner, size, seed) prunes once, runs the worst-case search
(a found error and, when the search proves one, a sound upper bound, both in
units of ``T_i``), asks the pruner for its theoretical epsilons when it has an
``epsilons`` method (the toolkit's coreset: pointwise, uniform, paper), and
measures the error on data when given. Each finished trial is one JSON line,
flushed and fsync'ed.

The file
--------
The first line is a header naming the configuration every trial of the file
shares (``delta``, ``beta``, ``activation``, ``method``, ``kinds``,
``time_limit`` and a hash of the data) and its hash; every trial record
carries that hash. Rerunning the same campaign skips the keys already in the
file; rerunning it under another configuration is refused (start a new
file). Layers, pruners, sizes and seeds may grow between runs: a trial's key
names them (and a hash of the layer's weights).

Readers never crash on a damaged file: a line that is not UTF-8, not JSON or
not a record is skipped, counted (``CampaignSummary.damaged``) and reported
with a warning, and its trial runs again on resume. A truncated last line (a
killed writer) is ignored by :func:`summarize` and cut by :func:`run_campaign`.
A trial key is counted once (the first record); later copies are counted in
``CampaignSummary.duplicates``.

Several processes on one file
-----------------------------
On POSIX systems, :func:`run_campaign` takes ``fcntl.lockf`` byte-range
locks on a sidecar file ``<path>.lock`` (left in place): one byte for the
file, held while the file is read and appended to, and one byte per trial
key, held while the trial runs. A process skips a trial another process is
running, re-reads the finished keys under the file lock before each write,
and at the end waits for the trials it skipped (running any whose owner died
without finishing). So two runs on one file split the work and write every
trial once. (With an ``executor`` a process claims every trial it submits at
once, so a second process started later mostly waits rather than shares.)
The locks are per process (threads of one process calling
``run_campaign`` on the same file concurrently are not serialised) and are
released by the kernel when a process dies. Without ``fcntl`` (Windows) no
lock is taken; de-duplication on read still counts every key once.

Scaling out: any ``concurrent.futures.Executor`` runs the trials; with Dask,
``run_campaign(..., executor=client.get_executor())``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import numbers
import os
import socket
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Executor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .._validation import (
    check_float_dtype,
    check_int,
    check_open_unit,
    check_option,
    check_positive,
    fail,
)
from ..activations import get_activation, require
from ..errors import InvalidArgumentError
from ._arguments import check_pruner_time_limit
from ._forward import forward, scale_of
from ._layers import Layer, named_layers
from ._search import search_worst_case
from ._worker import CallSpec, PrunerCalls

try:
    import fcntl
except ImportError:  # not POSIX: no locks (see the module's notes)
    fcntl = None

__all__ = ["CampaignConfig", "CampaignRecords", "CampaignSummary", "ConfidenceInterval",
           "SummaryRow", "clopper_pearson", "read_campaign", "run_campaign", "summarize"]

KINDS = ("pointwise", "uniform", "paper")
FORMAT = 1
#: Largest seed count :func:`run_campaign` accepts (one trial each; a list is kept in memory).
MAX_SEEDS = 10**6
#: Largest trial count :func:`clopper_pearson` accepts (counts exact in float64).
MAX_TRIALS = 2**53
_FUNC = "run_campaign"


class CampaignConfig(NamedTuple):
    """What every trial of one campaign file shares; hashed into its header.

    ``data`` is a hash of the data inputs (None without data).
    """

    delta: float
    beta: float
    activation: str
    method: str
    kinds: tuple[str, ...]
    time_limit: float | None
    data: str | None

    def to_json(self) -> dict[str, Any]:
        return self._asdict() | {"kinds": list(self.kinds)}

    @property
    def digest(self) -> str:
        """A short hash of the configuration (stored in the header and each record)."""
        text = json.dumps(self.to_json(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class _Trial:
    """Everything one trial needs (picklable, sent to executors)."""

    key: str
    layer: Layer
    pruner_name: str
    pruner: Any
    size: int
    seed: int
    config: CampaignConfig
    data: np.ndarray | None = field(default=None, repr=False)
    pruner_time_limit: float | None = None


def _fingerprint(*arrays: np.ndarray) -> str:
    digest = hashlib.sha1(usedforsecurity=False)
    for a in arrays:
        digest.update(str(a.shape).encode())
        digest.update(np.ascontiguousarray(a).tobytes())
    return digest.hexdigest()[:10]


def run_trial(trial: _Trial, workers: dict[str, PrunerCalls] | None = None) -> dict[str, Any]:
    """Run one trial; return its JSON record (errors of the pruner are recorded).

    ``workers`` (pruner label -> :class:`PrunerCalls`) keeps one worker process
    per pruner across the trials of this process; without it each trial
    starts its own.
    """
    t0 = time.perf_counter()
    cfg, layer = trial.config, trial.layer
    act = get_activation(cfg.activation)
    record: dict[str, Any] = {
        "key": trial.key, "layer": layer.name, "pruner": trial.pruner_name,
        "size": trial.size, "seed": trial.seed, "delta": cfg.delta, "beta": cfg.beta,
        "n": layer.n, "method": cfg.method, "worker": f"{socket.gethostname()}:{os.getpid()}",
    }
    try:
        pruned = tuple(np.asarray(a, dtype=np.float64) for a in _prune(trial, workers))
        found = search_worst_case(layer, pruned, beta=cfg.beta, activation=act,
                                  method=cfg.method, time_limit=cfg.time_limit,
                                  rng=np.random.default_rng([trial.seed, 1]))
        record |= {
            "n_kept": int(pruned[0].shape[0]), "found": found.error,
            "upper_bound": found.upper_bound if math.isfinite(found.upper_bound) else None,
            "certified": found.certified, "status": found.status,
            "search_seconds": found.seconds, "x": found.x.tolist(),
            "epsilon": _epsilons(trial), "data_error": _data_error(trial, pruned, act),
        }
    except Exception as exc:  # a failed trial is recorded, not raised
        record = {k: record[k] for k in ("key", "layer", "pruner", "size", "seed", "delta",
                                          "beta", "n", "method", "worker")}
        record["error"] = f"{type(exc).__name__}: {exc}"
    return record | {"seconds": time.perf_counter() - t0}


def _prune(trial: _Trial, workers: dict[str, PrunerCalls] | None) -> Any:
    """The pruner's output; in a worker process under the time limit when one is set."""
    spec = CallSpec(trial.layer, trial.size, trial.seed)
    if trial.pruner_time_limit is None:
        return trial.pruner(*spec.layer.arrays(), size=spec.size,
                            rng=np.random.default_rng(spec.seed))
    if workers is None:
        with PrunerCalls({"pruner": trial.pruner}, trial.pruner_time_limit,
                         func=_FUNC) as calls:
            return calls.run("pruner", [spec])[0]
    if trial.pruner_name not in workers:
        workers[trial.pruner_name] = PrunerCalls({"pruner": trial.pruner},
                                                 trial.pruner_time_limit, func=_FUNC)
    return workers[trial.pruner_name].run("pruner", [spec])[0]


def _epsilons(trial: _Trial) -> dict[str, float] | None:
    bounds = getattr(trial.pruner, "epsilons", None)
    if bounds is None:
        return None
    out = bounds(*trial.layer.arrays(), size=trial.size,
                 rng=np.random.default_rng(trial.seed), delta=trial.config.delta,
                 kinds=trial.config.kinds)
    return {k: float(v) for k, v in out.items()}


def _data_error(trial: _Trial, pruned: tuple, act) -> dict[str, float] | None:
    if trial.data is None:
        return None
    layer, x = trial.layer, trial.data
    gap = np.abs(forward(layer.W_in, layer.b_in, layer.W_out, x, act) - forward(*pruned, x, act))
    per_input = np.max(gap / scale_of(layer, trial.config.beta, act), axis=1)
    return {"max": float(per_input.max()), "mean": float(per_input.mean())}


# ------------------------------------------------------------ reading the file


def _real(value: Any) -> bool:
    """A JSON number, or a non-finite float written as a string ("inf", "nan")."""
    if isinstance(value, str):
        return value in ("inf", "-inf", "nan")
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _valid_record(rec: dict[str, Any]) -> bool:
    """The fields summaries read have the types they need."""
    if not (isinstance(rec.get("key"), str) and isinstance(rec.get("layer"), str)
            and isinstance(rec.get("pruner"), str) and isinstance(rec.get("size"), int)):
        return False
    if "error" in rec:
        return True
    eps, data, upper = rec.get("epsilon"), rec.get("data_error"), rec.get("upper_bound")
    return (_real(rec.get("found")) and (upper is None or _real(upper))
            and (eps is None or (isinstance(eps, dict) and all(map(_real, eps.values()))))
            and (data is None or (isinstance(data, dict) and _real(data.get("max")))))


@dataclass
class _Contents:
    """What the complete lines of a campaign file hold (fed in chunks)."""

    header: dict[str, Any] | None = None
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    damaged: list[int] = field(default_factory=list)
    duplicates: int = 0
    lines: int = 0

    @property
    def digest(self) -> str | None:
        return None if self.header is None else self.header["config_hash"]

    def add(self, raw: bytes) -> None:
        """Parse ``raw``, whole lines each ending with a newline."""
        for line in raw.split(b"\n")[:-1]:
            self.lines += 1
            if line.strip():
                self._add_line(line)

    def _add_line(self, line: bytes) -> None:
        try:
            rec = json.loads(line.decode("utf-8"))
        except (ValueError, RecursionError):  # not UTF-8, not JSON, nested too deep
            self.damaged.append(self.lines)
            return
        if isinstance(rec, dict) and "key" not in rec and isinstance(
                rec.get("config_hash"), str) and isinstance(rec.get("config"), dict) and _real(
                rec["config"].get("delta")):
            if self.header is None and not self.records:
                self.header = rec
            elif rec["config_hash"] != self.digest:
                self.damaged.append(self.lines)  # a second configuration
            return
        if not (isinstance(rec, dict) and _valid_record(rec)) or rec.get(
                "config_hash", self.digest) != self.digest:
            self.damaged.append(self.lines)
        elif rec["key"] in self.records:
            self.duplicates += 1
        else:
            self.records[rec["key"]] = rec


def _complete(raw: bytes) -> bytes:
    """``raw`` up to its last newline (a killed writer's half line is dropped)."""
    return raw[: raw.rfind(b"\n") + 1]


def _path(path: Any, func: str, name: str = "path") -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise fail(func, name, "a path (str or os.PathLike)", type(path).__name__)
    return Path(path)


def _read(path: Path) -> _Contents:
    contents = _Contents()
    contents.add(_complete(path.read_bytes()))
    return contents


class CampaignRecords(NamedTuple):
    """What :func:`read_campaign` found in a campaign file."""

    config: dict[str, Any] | None
    records: tuple[dict[str, Any], ...]
    damaged: tuple[int, ...]
    duplicates: int


def read_campaign(path: str | os.PathLike) -> CampaignRecords:
    """The trial records of a campaign file, each key once (the first record).

    ``config`` is the header's configuration (None for a file of an older
    version); ``damaged`` the numbers of the lines skipped (not UTF-8, not
    JSON, not a record, or of another configuration); ``duplicates`` the
    records skipped because their key came earlier. A truncated last line is
    ignored. Never raises on the file's content (``OSError`` when it cannot
    be read).
    """
    contents = _read(_path(path, "read_campaign"))
    config = None if contents.header is None else contents.header["config"]
    return CampaignRecords(config, tuple(contents.records.values()),
                           tuple(contents.damaged), contents.duplicates)


def _warn_damaged(path: Path, contents: _Contents) -> None:
    if contents.damaged:
        shown = ", ".join(map(str, contents.damaged[:10]))
        more = "" if len(contents.damaged) <= 10 else ", ..."
        warnings.warn(
            f"{path}: skipped {len(contents.damaged)} damaged line(s) (line {shown}{more}): "
            "not UTF-8, not JSON, not a trial record or of another configuration. Their "
            "trials run again when the campaign is resumed.", RuntimeWarning, stacklevel=3)


# -------------------------------------------------------------- locks, journal


class _Locks:
    """``fcntl.lockf`` byte-range locks on ``<path>.lock``: byte 0 is the file,
    byte ``1 + hash(key)`` a trial. No-ops without ``fcntl``."""

    def __init__(self, path: Path) -> None:
        self._fh = None if fcntl is None else open(  # closed in close()
            path.with_name(path.name + ".lock"), "a+b")

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()

    @contextlib.contextmanager
    def file(self) -> Iterator[None]:
        if self._fh is None:
            yield
            return
        fcntl.lockf(self._fh, fcntl.LOCK_EX, 1, 0)
        try:
            yield
        finally:
            fcntl.lockf(self._fh, fcntl.LOCK_UN, 1, 0)

    @staticmethod
    def _offset(key: str) -> int:
        return 1 + int(hashlib.sha256(key.encode()).hexdigest()[:14], 16)

    def claim(self, key: str, *, wait: bool) -> bool:
        """Take the trial's lock; False when another process holds it (``wait=False``)."""
        if self._fh is None:
            return True
        flags = fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB
        try:
            fcntl.lockf(self._fh, flags, 1, self._offset(key))
        except BlockingIOError:
            return False
        except PermissionError:  # some systems answer EACCES instead of EAGAIN
            return False
        return True

    def release(self, key: str) -> None:
        if self._fh is not None:
            fcntl.lockf(self._fh, fcntl.LOCK_UN, 1, self._offset(key))


class _Journal:
    """The campaign file opened for appending; its finished keys, re-read under the lock."""

    def __init__(self, path: Path, config: CampaignConfig) -> None:
        self.path, self.config = path, config
        self.fh = open(path, "a+b")  # closed in close()
        try:
            self.locks = _Locks(path)
        except OSError:
            self.fh.close()
            raise
        self.contents, self.offset = _Contents(), 0
        self.workers: dict[str, PrunerCalls] = {}  # the pruners' worker processes

    def close(self) -> None:
        for calls in self.workers.values():
            calls.close()
        self.fh.close()
        self.locks.close()

    def refresh(self) -> None:
        """Read what was appended since the last call (call under the file lock)."""
        size = self.fh.seek(0, os.SEEK_END)
        if size < self.offset:  # the file was cut by hand: read it again
            self.contents, self.offset = _Contents(), 0
        self.fh.seek(self.offset)
        raw = self.fh.read()
        whole = _complete(raw)
        if len(whole) < len(raw):  # a writer died mid-line (live ones hold the lock)
            self.fh.truncate(self.offset + len(whole))
            self.fh.flush()
            os.fsync(self.fh.fileno())
        self.contents.add(whole)
        self.offset += len(whole)

    def open_campaign(self) -> None:
        """Write the header to an empty file, or check the one there."""
        with self.locks.file():
            self.refresh()
            if self.offset == 0:
                self._append({"campaign": "coreset-verify", "format": FORMAT,
                              "config_hash": self.config.digest,
                              "config": self.config.to_json()})
                self.refresh()
            _check_header(self.path, self.contents, self.config)

    def done(self, key: str) -> bool:
        return key in self.contents.records

    def write(self, record: dict[str, Any]) -> None:
        """Append ``record`` unless its key was finished meanwhile (by anyone)."""
        with self.locks.file():
            self.refresh()
            if not self.done(record["key"]):
                self._append(record | {"config_hash": self.config.digest})
                self.refresh()

    def _append(self, record: dict[str, Any]) -> None:
        line = json.dumps(_json_safe(record), allow_nan=False, default=_json_default)
        self.fh.write(line.encode() + b"\n")
        self.fh.flush()
        os.fsync(self.fh.fileno())


def _check_header(path: Path, contents: _Contents, config: CampaignConfig) -> None:
    header = contents.header
    if header is None:
        raise InvalidArgumentError(
            f"{_FUNC}: {path} has no readable configuration header (written by an older "
            "version, or its first line is damaged), so it cannot be resumed safely. "
            "summarize() still reads it; pass a new path to start a new campaign file.")
    if header["config_hash"] == config.digest:
        return
    old = header["config"]
    diff = "; ".join(f"{name}={old.get(name)!r} in the file, {name}={value!r} now"
                     for name, value in config.to_json().items() if old.get(name) != value)
    raise InvalidArgumentError(
        f"{_FUNC}: {path} holds a campaign with another configuration ({diff or 'format'}); "
        "resuming it would mix trials of two configurations. Pass a new path to start a "
        "new campaign file, or rerun with the file's configuration.")


def _json_safe(value: Any) -> Any:
    """Non-finite floats become the strings "inf", "-inf", "nan" (JSON has none)."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)) and not math.isfinite(value):
        return str(float(value))
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return _json_safe(value.item())
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


# ------------------------------------------------------------------ arguments


def _pruner_table(pruners: Any) -> dict[str, Any]:
    if isinstance(pruners, Mapping):
        table = {str(k): (v[0] if isinstance(v, tuple) else v) for k, v in pruners.items()}
    elif callable(pruners):
        table = {repr(pruners): pruners}
    elif isinstance(pruners, Iterable) and not isinstance(pruners, (str, bytes)):
        table = {getattr(p, "__name__", repr(p)): p for p in pruners}
    else:
        raise fail(_FUNC, "pruners", "a mapping name -> pruner, a pruner or a list of pruners",
                   type(pruners).__name__)
    for label, p in table.items():
        if not callable(p):
            raise fail(_FUNC, f"pruners[{label!r}]", "a callable pruner", type(p).__name__)
    if not table:
        raise fail(_FUNC, "pruners", "at least one pruner", "none")
    return table


def _int_list(values: Any, name: str, minimum: int) -> list[int]:
    """A non-empty iterable of integers >= ``minimum``, duplicates dropped."""
    if not isinstance(values, Iterable) or isinstance(values, (str, bytes)):
        raise fail(_FUNC, name, f"a non-empty list of integers >= {minimum}", values)
    out = [check_int(v, name, _FUNC, minimum=minimum) for v in values]
    if not out:
        raise fail(_FUNC, name, f"a non-empty list of integers >= {minimum}", "none")
    return list(dict.fromkeys(out))


def _seed_list(seeds: Any) -> list[int]:
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        count = check_int(seeds, "seeds", _FUNC)
        if count > MAX_SEEDS:
            raise fail(_FUNC, "seeds", f"a count <= {MAX_SEEDS:,} (or a list of seeds)", count)
        return list(range(count))
    if not isinstance(seeds, Iterable) or isinstance(seeds, (str, bytes)):
        raise fail(_FUNC, "seeds", "a count >= 1 or a non-empty list of seeds >= 0", seeds)
    return _int_list(seeds, "seeds", 0)


def _kinds(kinds: Any) -> tuple[str, ...]:
    expected = f"a non-empty list of bound kinds among {list(KINDS)}"
    if not isinstance(kinds, Iterable) or isinstance(kinds, (str, bytes)):
        raise fail(_FUNC, "kinds", expected, kinds)
    out = tuple(dict.fromkeys(check_option(k, "kinds", _FUNC, KINDS) for k in kinds))
    if not out:
        raise fail(_FUNC, "kinds", expected, "none")
    return out


def _activation_name(activation: Any) -> str:
    act = get_activation(activation)
    # T_i, the unit of every error a campaign records, needs it
    require(act, "is_nondecreasing", theorem="additive (T_i, the unit of the campaign's errors)")
    try:
        same = get_activation(act.name) == act
    except InvalidArgumentError:
        same = False
    if not same:
        raise fail(_FUNC, "activation", "an activation that its name finds again (a "
                   "registered or parameterised name; see register_activation)", act.name)
    return act.name


def _data_for(data: Any, layer: Layer) -> np.ndarray | None:
    if data is None:
        return None
    x = data.get(layer.name) if isinstance(data, Mapping) else data
    if x is None:
        return None
    expected = f"a finite real array of shape (N, {layer.d}) for layer {layer.name!r}"
    if hasattr(x, "dtype"):
        check_float_dtype(x.dtype, "data", _FUNC)
    try:
        x = np.array(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise fail(_FUNC, "data", expected, type(x).__name__) from None
    if x.ndim != 2 or x.shape[1] != layer.d or x.shape[0] < 1:
        raise fail(_FUNC, "data", expected, f"shape {x.shape}")
    bad = int(np.count_nonzero(~np.isfinite(x)))
    if bad:
        row = int(np.argwhere(~np.isfinite(x))[0, 0])
        raise fail(_FUNC, "data", expected + " (no NaN or infinity)",
                   f"{bad} non-finite entries, the first in row {row}")
    x.setflags(write=False)
    return x


class _Plan(NamedTuple):
    """The validated campaign: its configuration and its trials."""

    config: CampaignConfig
    trials: tuple[_Trial, ...]


def _plan(layers, pruners, sizes, seeds, delta, kinds, beta, activation, method,
          time_limit, data, pruner_time_limit) -> _Plan:
    """Check every argument before any trial runs; build the trials."""
    from ..search.worst_case import METHODS

    layers = named_layers(layers, _FUNC)
    table, seeds = _pruner_table(pruners), _seed_list(seeds)
    pruner_time_limit = check_pruner_time_limit(pruner_time_limit, _FUNC)
    for pruner in table.values():  # refuses, up front, what a worker cannot receive
        PrunerCalls({"pruner": pruner}, pruner_time_limit, func=_FUNC)
    sizes = _int_list(sizes, "sizes", 1)
    for layer in layers:
        if max(sizes) > layer.n:
            raise fail(_FUNC, "sizes", f"integers <= n = {layer.n} (neurons of layer "
                       f"{layer.name!r})", max(sizes))
    inputs = {layer.name: _data_for(data, layer) for layer in layers}
    given = [(name, x) for name, x in inputs.items() if x is not None]
    config = CampaignConfig(
        delta=check_open_unit(delta, "delta", _FUNC), beta=check_positive(beta, "beta", _FUNC),
        activation=_activation_name(activation),
        method=check_option(method, "method", _FUNC, METHODS), kinds=_kinds(kinds),
        time_limit=None if time_limit is None else check_positive(
            time_limit, "time_limit", _FUNC),
        data=None if not given else _fingerprint(
            np.array([n for n, _ in given]), *(x for _, x in given)))
    trials: dict[str, _Trial] = {}
    for layer in layers:
        tag = _fingerprint(layer.W_in, layer.b_in, layer.W_out)
        for size in sizes:
            for label, pruner in table.items():
                for seed in seeds:
                    key = f"{layer.name}@{tag}|{label}|{size}|{seed}"
                    trials[key] = _Trial(key, layer, label, pruner, size, seed, config,
                                         inputs[layer.name], pruner_time_limit)
    return _Plan(config, tuple(trials.values()))


# ---------------------------------------------------------------- the campaign


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
    pruner_time_limit: float | None = 10.0,
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
        Neurons to keep (each at least 1 and at most every layer's n).
    seeds : int or iterable of int
        A count (seeds 0..count-1) or the seeds (each >= 0).
    delta : float in (0, 1)
        Failure probability of the bounds.
    path : path-like
        The JSONL file; created, or resumed when it exists. Its folder must
        exist (``OSError`` otherwise).
    kinds : iterable of str
        Bound kinds among "pointwise", "uniform", "paper".
    time_limit : float or None
        Seconds per worst-case search.
    data : array (N, d), or mapping layer name -> array, optional
        Finite inputs at which the error is also measured (units of ``T_i``).
    executor : concurrent.futures.Executor, optional
        Runs the trials (default: sequentially in this thread). Dask:
        ``client.get_executor()``.
    beta : float
        Ball radius of the search and of the relative errors.
    activation : str
        A registered or parameterised activation name (or an Activation that
        its name finds again).
    method : str
        Search method, one of :data:`coreset_verify.search.METHODS`.
    pruner_time_limit : float or None
        Seconds each call of the pruner may take; it runs in a worker process
        (see :func:`~coreset_verify.audit.check_pruner`), and a call that
        hangs, raises or kills its worker is recorded as that trial's error.
        None calls the pruner in the trial's own thread, without a limit
        (needed where trials run in daemonic processes, which cannot start
        workers).

    Returns
    -------
    CampaignSummary
        :func:`summarize` of the whole file.

    Raises
    ------
    InvalidArgumentError
        For any bad argument, before a trial runs or the file is touched; and
        when ``path`` holds a campaign of another configuration (``delta``,
        ``beta``, ``activation``, ``method``, ``kinds``, ``time_limit``, data)
        or has no readable header.

    Notes
    -----
    See the module's notes for the file's format and what happens when
    several processes run on one file (POSIX: they split the work). A
    trial's key names the layer (and a hash of its weights), pruner, size
    and seed. A pruner that raises is recorded as a failed trial, and is not
    retried on resume.
    """
    plan = _plan(layers, pruners, sizes, seeds, delta, kinds, beta, activation, method,
                 time_limit, data, pruner_time_limit)
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise fail(_FUNC, "executor", "None or a concurrent.futures.Executor",
                   type(executor).__name__)
    path = _path(path, _FUNC)
    if path.is_dir():
        raise fail(_FUNC, "path", "a file path (the campaign's JSONL file)",
                   f"{str(path)!r}, a directory")
    if not path.parent.is_dir():
        raise fail(_FUNC, "path", "a file in an existing folder (create the folder first)",
                   str(path))
    journal = _Journal(path, plan.config)
    try:
        journal.open_campaign()
        skipped = _first_pass(plan.trials, executor, journal)
        for trial in skipped:  # wait for whoever runs it; run it if they died
            _run_claimed(trial, journal, wait=True)
    finally:
        journal.close()
    return summarize(path)


def _claim(trial: _Trial, journal: _Journal, *, wait: bool) -> str:
    """"mine" (claimed, not done), "done" or "busy" (another process runs it)."""
    if journal.done(trial.key):
        return "done"
    if not journal.locks.claim(trial.key, wait=wait):
        return "busy"
    with journal.locks.file():
        journal.refresh()
    if journal.done(trial.key):
        journal.locks.release(trial.key)
        return "done"
    return "mine"


def _run_claimed(trial: _Trial, journal: _Journal, *, wait: bool) -> bool:
    """Claim, run and write one trial in this thread; False when it was busy."""
    state = _claim(trial, journal, wait=wait)
    if state == "mine":
        try:
            journal.write(run_trial(trial, journal.workers))
        finally:
            journal.locks.release(trial.key)
    return state != "busy"


def _first_pass(trials: Iterable[_Trial], executor: Executor | None,
                journal: _Journal) -> list[_Trial]:
    """Run every trial no other process holds; return those skipped as busy."""
    if executor is None:
        return [t for t in trials if not _run_claimed(t, journal, wait=False)]
    busy, mine = [], []
    for trial in trials:
        state = _claim(trial, journal, wait=False)
        (mine if state == "mine" else busy if state == "busy" else []).append(trial)
    futures = {executor.submit(run_trial, trial): trial for trial in mine}
    try:
        for future in as_completed(futures):
            journal.write(future.result())
            journal.locks.release(futures[future].key)
    finally:
        for trial in mine:
            journal.locks.release(trial.key)  # no-op for those already released
    return busy


# ---------------------------------------------------------------- summaries


class ConfidenceInterval(NamedTuple):
    """A two-sided interval for a proportion (unpacks as ``low, high``)."""

    low: float
    high: float


def clopper_pearson(failures: int, trials: int, confidence: float = 0.95,
                    ) -> ConfidenceInterval:
    """Two-sided Clopper-Pearson interval for a binomial proportion.

    Uses ``scipy.stats.beta`` when importable, else bisection on the
    binomial cdf (same values to 1e-12). ``trials`` is at most
    :data:`MAX_TRIALS` (2**53).

    Examples
    --------
    >>> lo, hi = clopper_pearson(0, 20)
    >>> lo, round(hi, 4)
    (0.0, 0.1684)
    >>> round(clopper_pearson(0, 40).high, 4)  # the same trials counted twice
    0.0881
    """
    failures = check_int(failures, "failures", "clopper_pearson", minimum=0)
    trials = check_int(trials, "trials", "clopper_pearson")
    if trials > MAX_TRIALS:  # beyond it the counts are not exact in float64
        raise fail("clopper_pearson", "trials", f"an integer <= 2**53 = {MAX_TRIALS}", trials)
    if failures > trials:
        raise fail("clopper_pearson", "failures", f"an integer <= trials = {trials}", failures)
    a = (1 - check_open_unit(confidence, "confidence", "clopper_pearson")) / 2
    try:
        from scipy.stats import beta
    except ImportError:
        return _cp_bisect(failures, trials, a)
    lo = 0.0 if failures == 0 else float(beta.ppf(a, failures, trials - failures + 1))
    hi = 1.0 if failures == trials else float(beta.ppf(1 - a, failures + 1, trials - failures))
    return ConfidenceInterval(lo, hi)


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


def _cp_bisect(x: int, n: int, a: float) -> ConfidenceInterval:
    lo = 0.0 if x == 0 else _bisect(lambda p: 1 - _binom_cdf(x - 1, n, p), a, True)
    hi = 1.0 if x == n else _bisect(lambda p: _binom_cdf(x, n, p), a, False)
    return ConfidenceInterval(lo, hi)


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
    """Summary of a campaign file: one :class:`SummaryRow` per group and kind.

    Attributes
    ----------
    path : str
    delta : float
        The file's ``delta`` (its header's; nan for an empty file of an old version).
    confidence : float
    rows : tuple of SummaryRow
    trials : int
        Distinct trial keys read (each counted once).
    errors : int
        Of those, trials that failed to run.
    damaged : int
        Lines skipped: not UTF-8, not JSON, not a trial record, or of another
        configuration (a warning names them).
    duplicates : int
        Records whose key was already counted (ignored).
    """

    path: str
    delta: float
    confidence: float
    rows: tuple[SummaryRow, ...]
    trials: int
    errors: int
    damaged: int = 0
    duplicates: int = 0

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
        skipped = "" if not (self.damaged or self.duplicates) else (
            f"; {self.damaged} damaged and {self.duplicates} duplicate lines skipped")
        return (f"Campaign {self.path}: {self.trials} trials ({self.errors} failed to run"
                f"{skipped})\n" + self.to_markdown())


def summarize(path: str | os.PathLike, *, confidence: float = 0.95) -> CampaignSummary:
    """Failure rates (with Clopper-Pearson intervals) and empirical epsilons per group.

    Parameters
    ----------
    path : path-like
        A campaign's JSONL file (a truncated last line is ignored, not cut;
        damaged lines are skipped with a warning and counted).
    confidence : float
        Of the Clopper-Pearson intervals.

    Returns
    -------
    CampaignSummary
    """
    path = _path(path, "summarize")
    if not path.is_file():
        raise fail("summarize", "path", "an existing campaign file", str(path))
    confidence = check_open_unit(confidence, "confidence", "summarize")
    contents = _read(path)
    _warn_damaged(path, contents)
    records = list(contents.records.values())
    ok = [r for r in records if "error" not in r]
    groups: dict[tuple, list[dict]] = {}
    for r in ok:
        groups.setdefault((r["layer"], r["pruner"], r["size"]), []).append(r)
    if contents.header is not None:
        delta = float(contents.header["config"].get("delta", math.nan))
    else:  # a file of an older version: the records carry it
        delta = float(ok[0]["delta"]) if ok else math.nan
    rows = []
    for (layer, pruner, size), recs in sorted(groups.items()):
        kinds = sorted({k for r in recs for k in (r.get("epsilon") or {})}) or [None]
        for kind in kinds:
            rows.append(_row(layer, pruner, size, kind, recs, delta, confidence))
    return CampaignSummary(str(path), delta, confidence, tuple(rows), len(records),
                           len(records) - len(ok), len(contents.damaged), contents.duplicates)


def _row(layer, pruner, size, kind, recs, delta, confidence) -> SummaryRow:
    found = np.array([float(r["found"]) for r in recs])
    eps = np.array([float((r.get("epsilon") or {}).get(kind, math.nan)) for r in recs])
    uppers = [float(r["upper_bound"]) for r in recs if r.get("upper_bound") is not None]
    data = [float(r["data_error"]["max"]) for r in recs if r.get("data_error")]
    if kind is None:
        failures, lo, hi, rate, verdict = 0, math.nan, math.nan, math.nan, "-"
    else:
        # a NaN error (a broken pruned layer) counts as a failure
        failures = int(np.sum(~(found <= eps * (1 + 1e-9))))
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
