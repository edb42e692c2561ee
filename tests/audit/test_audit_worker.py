"""The time-limited worker behind every call into an audited pruner."""

from __future__ import annotations

import time

import numpy as np
import pytest

from coreset_verify import InvalidArgumentError
from coreset_verify.audit import uniform_pruner
from coreset_verify.audit._layers import default_layers
from coreset_verify.audit._worker import CallSpec, PrunerCalls, PrunerTimeout


def test_the_worker_stops_a_hanging_call_and_serves_the_next_one():
    def sometimes(W_in, b_in, W_out, *, size, rng):
        while size == 3:
            pass
        return uniform_pruner()(W_in, b_in, W_out, size=size, rng=rng)

    layer = default_layers()[0]
    with PrunerCalls({"pruner": sometimes}, 0.3) as calls:
        t0 = time.perf_counter()
        with pytest.raises(PrunerTimeout, match=r"did not return within 0\.3 s on layer "
                           r"'gaussian', size 3"):
            calls.run("pruner", [CallSpec(layer, 2, 0), CallSpec(layer, 3, 1)])
        assert time.perf_counter() - t0 < 3
        out = calls.run("pruner", [CallSpec(layer, 4, 0)])[0]
    expected = uniform_pruner()(*layer.arrays(), size=4, rng=np.random.default_rng(0))
    assert all(np.array_equal(a, b) for a, b in zip(out, expected, strict=True))


def test_without_fork_an_unpicklable_pruner_is_refused_with_the_fix():
    with pytest.raises(InvalidArgumentError, match=r"picklable.*pruner_time_limit=None"):
        PrunerCalls({"pruner": lambda *a, size, rng: a}, 1.0, start_method="spawn")
    PrunerCalls({"pruner": lambda *a, size, rng: a}, None, start_method="spawn")  # no worker


def test_a_spawned_worker_runs_a_picklable_pruner():
    # The start method of platforms without fork (macOS, Windows).
    layer = default_layers()[0]
    with PrunerCalls({"pruner": uniform_pruner()}, 30.0, start_method="spawn") as calls:
        out, arguments = calls.run("pruner", [CallSpec(layer, 3, 0)], keep=True)[0]
    assert [a.shape for a in out] == [(3, 5), (3,), (3, 3)]
    assert np.array_equal(arguments[0], layer.W_in)


def test_a_process_with_cuda_initialised_spawns_its_workers(monkeypatch):
    import coreset_verify.audit._worker as worker

    monkeypatch.setattr(worker, "_cuda_initialized", lambda: True)
    assert worker.default_start_method() == "spawn"
    with pytest.raises(InvalidArgumentError, match=r"start method 'spawn'"):
        PrunerCalls({"pruner": lambda *a, size, rng: a}, 1.0)


def test_a_worker_that_died_between_requests_is_replaced():
    layer = default_layers()[0]
    with PrunerCalls({"pruner": uniform_pruner()}, 5.0) as calls:
        calls.run("pruner", [CallSpec(layer, 2, 0)])
        calls._process.kill()
        calls._process.join()
        assert len(calls.run("pruner", [CallSpec(layer, 2, 0)])) == 1


_ORPHAN_SCRIPT = """
import sys, time
import numpy as np
from coreset_verify.audit._layers import default_layers
from coreset_verify.audit._worker import CallSpec, PrunerCalls

def pruner(W_in, b_in, W_out, *, size, rng):
    if size == 2:
        time.sleep(3600)  # hangs: the worker is busy when the parent dies
    return W_in[:size], b_in[:size], W_out[:, :size]

calls = PrunerCalls({"pruner": pruner}, 600.0)
calls._start()
print(calls._process.pid, flush=True)
calls.run("pruner", [CallSpec(default_layers()[0], 2, 0)])
"""


@pytest.mark.parametrize("busy", [False, True], ids=["idle", "inside a hanging pruner"])
def test_a_worker_dies_with_its_killed_parent(busy):
    # A SIGKILLed audit must not leave its worker behind, idle or stuck in a pruner.
    import os
    import signal
    import subprocess
    import sys

    script = _ORPHAN_SCRIPT if busy else _ORPHAN_SCRIPT.replace(
        'calls.run("pruner", [CallSpec(default_layers()[0], 2, 0)])', "time.sleep(3600)")
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                              text=True)
    try:
        worker = int(parent.stdout.readline())
        time.sleep(0.3)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(worker, 0)
            except ProcessLookupError:
                break
            with open(f"/proc/{worker}/stat") as stat:  # a zombie counts as gone
                if stat.read().split(")")[-1].split()[0] == "Z":
                    break
            time.sleep(0.1)
        else:
            os.kill(worker, signal.SIGKILL)
            pytest.fail(f"worker {worker} outlived its killed parent by 10 s")
    finally:
        parent.kill()
        parent.wait()
