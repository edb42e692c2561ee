"""Calls into the audited pruner, each under a time limit.

The battery must survive the pruners it judges: a pruner may raise, loop
forever (the authors' released coreset code does when asked for more
distinct neurons than have positive sensitivity) or kill its process. Every
call therefore runs in one persistent worker process per audit, started
once and reused for every call (a fork per call would cost more than the
calls). The parent waits for each call at most ``limit`` seconds; a call that
takes longer is stopped by killing the worker, reported as
:class:`PrunerTimeout`, and the next call starts a fresh worker.

Start method
------------
On Linux the worker is started with ``fork``: it inherits the pruner (and a
claimed epsilon callable), so closures, lambdas and other objects that cannot
be pickled work. Elsewhere (macOS, Windows) it is started with ``spawn``,
which sends the pruner to the worker by pickling: the pruner must then be
picklable (a module-level function or an instance of a module-level class).
An unpicklable pruner is refused up front with the fix: define it at module
level, or pass ``pruner_time_limit=None`` to call it in this process without
a time limit. A process that has initialised CUDA cannot fork a child that
uses CUDA, so such a process spawns its workers too. In the forked worker
torch (when already imported) is set to one thread: an OpenMP pool forked
from a parent that used it deadlocks.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from .._validation import fail
from ._layers import Layer

__all__ = ["CallSpec", "PrunerCalls", "PrunerError", "PrunerTimeout", "Returned"]

#: Seconds a worker may take to start (imports under ``spawn``), beyond the limit.
STARTUP_ALLOWANCE = 60.0
#: What the functions of a worker are called in messages.
_LABELS = {"pruner": "the pruner", "epsilon": "the claimed epsilon callable"}


class CallSpec(NamedTuple):
    """One call: ``fn(*layer.arrays(), size=size, rng=default_rng(seed), **layer.keywords())``.

    ``layer.keywords()`` is empty for a dense layer and ``{"geometry": ...}``
    for a conv pair.
    """

    layer: Layer
    size: int
    seed: int


class Returned(NamedTuple):
    """A call's result with the arguments as the callee left them (mutation check)."""

    output: Any
    arguments: tuple


class PrunerError(Exception):
    """A call into the pruner raised, timed out or killed its worker.

    Attributes
    ----------
    evidence : dict
        The call (layer, size, seed) and, where known, the traceback.
    """

    def __init__(self, message: str, evidence: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.evidence = dict(evidence or {})


class PrunerTimeout(PrunerError):
    """A call into the pruner did not return within the time limit."""


def _where(spec: CallSpec) -> str:
    return f"layer {spec.layer.name!r}, size={spec.size}, seed={spec.seed}"


def _call_evidence(spec: CallSpec) -> dict[str, Any]:
    return {"layer": spec.layer.name, "size": spec.size, "seed": spec.seed}


def _call_one(fn: Callable, spec: CallSpec, keep: bool) -> Any:
    arrays = spec.layer.arrays()
    out = fn(*arrays, size=spec.size, rng=np.random.default_rng(spec.seed),
             **spec.layer.keywords())
    return Returned(out, tuple(arrays)) if keep else out


# How often an idle worker checks that its parent still lives. A forked worker
# holds a copy of the parent's end of the pipe, so it would never see EOF.
_PARENT_POLL_S = 0.5


def _die_with_parent() -> int:
    """Ask Linux to kill this worker when its parent dies; return the parent's pid.

    ``PR_SET_PDEATHSIG`` also ends a worker stuck inside a hanging pruner; where
    it is not available the idle loop's ``getppid`` check still ends the worker.
    """
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(0)
    return parent


def _serve(conn: Any, functions: Mapping[str, Callable], counter: Any) -> None:
    """The worker: answer ``(kind, specs, keep)`` requests until None or EOF."""
    if "torch" in sys.modules:  # a forked OpenMP pool deadlocks; one thread does not
        sys.modules["torch"].set_num_threads(1)
    parent = _die_with_parent()
    while True:
        try:
            while not conn.poll(_PARENT_POLL_S):
                if os.getppid() != parent:  # orphaned: the parent was killed
                    return
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        kind, specs, keep = request
        outputs: list[Any] = []
        reply: tuple = ()
        for i, spec in enumerate(specs):
            counter.value += 1
            try:
                outputs.append(_call_one(functions[kind], spec, keep))
            except Exception as exc:
                reply = ("raised", i, f"{type(exc).__name__}: {exc}",
                         traceback.format_exc()[-2000:])
                break
        try:
            conn.send(reply or ("ok", outputs))
        except Exception:  # an output does not pickle: say which
            conn.send(_unsendable(outputs))


def _unsendable(outputs: list[Any]) -> tuple:
    """The reply naming the first output that cannot be pickled."""
    for i, out in enumerate(outputs):
        try:
            pickle.dumps(out)
        except Exception as exc:
            return ("unsendable", i, f"{type(exc).__name__}: {exc}", "")
    return ("unsendable", 0, "unknown pickling error", "")


def _cuda_initialized() -> bool:
    """Whether this process has initialised CUDA (a forked child cannot use it then)."""
    torch = sys.modules.get("torch")
    try:
        return bool(torch is not None and torch.cuda.is_initialized())
    except Exception:  # a torch without CUDA support
        return False


def default_start_method() -> str:
    """``"fork"`` on Linux, ``"spawn"`` elsewhere or once CUDA is initialised here."""
    if (sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()
            and not _cuda_initialized()):
        return "fork"
    return "spawn"


class PrunerCalls:
    """Calls into the pruner (and a claimed epsilon callable) for one audit.

    Parameters
    ----------
    functions : mapping
        ``{"pruner": pruner}`` and optionally ``{"epsilon": callable}``.
    limit : float or None
        Seconds each call may take; None calls in this process, without limit.
    func : str
        Public function named in argument errors.
    start_method : {"fork", "spawn", "forkserver"}, optional
        Default :func:`default_start_method`.

    Raises
    ------
    InvalidArgumentError
        Without fork, a function that cannot be pickled.
    """

    def __init__(self, functions: Mapping[str, Callable], limit: float | None, *,
                 func: str = "check_pruner", start_method: str | None = None) -> None:
        self.functions, self.limit = dict(functions), limit
        self.start_method = start_method or default_start_method()
        self._process: Any = None
        self._conn: Any = None
        self._counter: Any = None
        self._lock = threading.Lock()  # one request at a time on the pipe
        if limit is not None and self.start_method != "fork":
            for name, fn in self.functions.items():
                try:
                    pickle.dumps(fn)
                except Exception as exc:
                    raise fail(func, "pruner" if name == "pruner" else "claims['guarantee']"
                               "['epsilon']", "picklable where the worker process is not "
                               f"forked (start method {self.start_method!r}): define it at "
                               "module level, or pass pruner_time_limit=None to call it "
                               "without a time limit", f"{type(exc).__name__}: {exc}"
                               ) from None

    @property
    def pruner(self) -> Callable:
        """The pruner these calls go to."""
        return self.functions["pruner"]

    def __enter__(self) -> PrunerCalls:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def run(self, kind: str, specs: Sequence[CallSpec], *, keep: bool = False) -> list[Any]:
        """Call ``functions[kind]`` once per spec, in order; the outputs.

        With ``keep`` each output is a :class:`Returned` with the arguments as
        the callee left them.

        Raises
        ------
        PrunerError
            The first call that raised, or whose output cannot be sent back.
        PrunerTimeout
            The first call that did not return within ``limit`` seconds.
        """
        specs = list(specs)
        if not specs:
            return []
        if self.limit is None:
            return self._run_here(kind, specs, keep)
        with self._lock:
            return self._run_worker(kind, specs, keep)

    def _run_worker(self, kind: str, specs: list[CallSpec], keep: bool) -> list[Any]:
        if self._process is not None and not self._process.is_alive():
            self._kill()  # ended between requests: start afresh
        self._start()
        first = self._counter.value
        self._conn.send((kind, specs, keep))
        self._wait(kind, specs, first)
        try:
            reply = self._conn.recv()
        except (EOFError, OSError):
            raise self._died(kind, specs, first) from None
        return self._unpack(kind, specs, reply)

    def _run_here(self, kind: str, specs: list[CallSpec], keep: bool) -> list[Any]:
        out = []
        for spec in specs:
            try:
                out.append(_call_one(self.functions[kind], spec, keep))
            except Exception as exc:
                raise PrunerError(f"{_LABELS[kind]} raised {type(exc).__name__}: {exc} "
                                  f"({_where(spec)})", _call_evidence(spec)) from exc
        return out

    def _wait(self, kind: str, specs: list[CallSpec], first: int) -> None:
        """Return when a reply (or EOF) is ready; kill the worker on a timeout.

        A call's time is counted from when this process first sees the
        worker's counter at it, so it is never over-counted: a call is
        stopped after ``limit`` to ``limit + step`` seconds.
        """
        step = min(0.05, max(self.limit / 4, 1e-3))
        seen, since = first, time.monotonic()
        while not self._conn.poll(step):
            now, current = time.monotonic(), self._counter.value
            if current != seen:
                seen, since = current, now
            elif current == first and now - since > self.limit + STARTUP_ALLOWANCE:
                self._kill()
                raise PrunerTimeout(f"the worker process did not start {_LABELS[kind]} "
                                    f"within {self.limit + STARTUP_ALLOWANCE:g} s "
                                    f"({_where(specs[0])})", _call_evidence(specs[0]))
            elif current > first and now - since > self.limit:
                spec = specs[current - first - 1]
                self._kill()
                raise PrunerTimeout(
                    f"{_LABELS[kind]} did not return within {self.limit:g} s on layer "
                    f"{spec.layer.name!r}, size {spec.size} (seed={spec.seed}); the call "
                    "was stopped", _call_evidence(spec) | {"time_limit": self.limit})

    def _died(self, kind: str, specs: list[CallSpec], first: int) -> PrunerError:
        index = max(self._counter.value - first - 1, 0)
        self._process.join(1.0)
        code = self._process.exitcode
        self._kill()
        spec = specs[min(index, len(specs) - 1)]
        return PrunerError(f"{_LABELS[kind]} ended its worker process (exit code {code}) "
                           f"({_where(spec)})", _call_evidence(spec) | {"exit_code": code})

    def _unpack(self, kind: str, specs: list[CallSpec], reply: tuple) -> list[Any]:
        status, *rest = reply
        if status == "ok":
            return rest[0]
        index, message, trace = rest
        spec = specs[index]
        if status == "raised":
            raise PrunerError(f"{_LABELS[kind]} raised {message} ({_where(spec)})",
                              _call_evidence(spec) | {"traceback": trace})
        raise PrunerError(f"{_LABELS[kind]} returned an output that cannot be sent back "
                          f"from its worker process ({message}) ({_where(spec)})",
                          _call_evidence(spec))

    def _start(self) -> None:
        if self._process is not None:
            return
        context = multiprocessing.get_context(self.start_method)
        self._conn, child = context.Pipe()
        self._counter = context.RawValue("q", 0)
        process = context.Process(target=_serve, args=(child, self.functions, self._counter),
                                  name="coreset-verify-audit-worker")
        with warnings.catch_warnings():  # Python >= 3.12 warns on fork with threads
            warnings.simplefilter("ignore", DeprecationWarning)
            process.start()
        child.close()
        self._process = process

    def _kill(self) -> None:
        if self._process is None:
            return
        self._process.kill()
        self._process.join()
        self._conn.close()
        self._process = self._conn = None

    def close(self) -> None:
        """Stop the worker (politely, then by force); a later call starts a new one."""
        if self._process is None:
            return
        try:
            self._conn.send(None)
        except (OSError, ValueError):
            pass
        self._process.join(1.0)
        self._kill()
