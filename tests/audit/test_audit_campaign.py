"""Campaigns: streaming, resume after a truncation or a kill, Dask, summaries."""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from coreset_verify import InvalidArgumentError
from coreset_verify.audit import (
    clopper_pearson,
    coreset_pruner,
    run_campaign,
    summarize,
    uniform_pruner,
)
from coreset_verify.audit._common import default_layers
from coreset_verify.audit.campaign import KINDS, _cp_bisect

FAST = {"time_limit": 0.05, "method": "gradient", "delta": 0.1}


@pytest.fixture(scope="module")
def layer():
    return default_layers()[0]


def _pruners():
    return {"coreset": coreset_pruner(mode="draws"), "uniform": uniform_pruner()}


def _lines(path: Path) -> list[str]:
    """The trial lines (the first line is the configuration header)."""
    return path.read_text().splitlines()[1:]


def test_campaign_streams_one_line_per_trial_and_summarizes(layer, tmp_path):
    path = tmp_path / "c.jsonl"
    data = np.random.default_rng(0).normal(size=(50, layer.d)) / 4
    summary = run_campaign(layer, pruners=_pruners(), sizes=[4, 12], seeds=2, path=path,
                           data=data, **FAST)
    records = [json.loads(line) for line in _lines(path)]
    assert len(records) == 8
    assert len({r["key"] for r in records}) == 8
    coreset = [r for r in records if r["pruner"] == "coreset"]
    assert all(set(r["epsilon"]) == {"pointwise", "uniform", "paper"} for r in coreset)
    assert all(r["epsilon"] is None for r in records if r["pruner"] == "uniform")
    assert all(0 <= r["data_error"]["max"] for r in records)
    assert all(r["n_kept"] <= r["size"] for r in records)
    kinds = {(r.pruner, r.size, r.kind) for r in summary.rows}
    assert ("coreset", 4, "uniform") in kinds
    assert ("uniform", 12, None) in kinds
    assert summary.trials == 8
    assert summary.errors == 0
    # Rerunning the finished campaign adds nothing.
    before = path.read_bytes()
    run_campaign(layer, pruners=_pruners(), sizes=[4, 12], seeds=2, path=path, data=data,
                 **FAST)
    assert path.read_bytes() == before


def test_resume_after_truncated_last_line_loses_and_repeats_nothing(layer, tmp_path):
    path = tmp_path / "c.jsonl"
    run_campaign(layer, pruners=_pruners(), sizes=[6], seeds=3, path=path, **FAST)
    full = _lines(path)
    raw = path.read_bytes()
    keep = raw[: raw.rfind(b"\n", 0, len(raw) - 1) + 1]  # all but the last line
    path.write_bytes(keep + raw[len(keep): len(keep) + 25])  # ... plus half of it
    summarize(path)  # a truncated line is ignored by readers
    run_campaign(layer, pruners=_pruners(), sizes=[6], seeds=3, path=path, **FAST)
    again = _lines(path)
    assert again[:-1] == full[:-1]
    keys = [json.loads(line)["key"] for line in again]
    assert sorted(keys) == sorted(json.loads(line)["key"] for line in full)
    assert len(keys) == len(set(keys))


_SCRIPT = """
import sys
from coreset_verify.audit import run_campaign, uniform_pruner
from coreset_verify.audit._common import default_layers
run_campaign(default_layers()[0], pruners={"uniform": uniform_pruner()}, sizes=[3, 6, 12],
             seeds=10, path=sys.argv[1], time_limit=0.05, method="gradient", delta=0.1)
"""


def test_resume_after_killed_process(tmp_path):
    path = tmp_path / "killed.jsonl"
    # A session of its own, so that the kill reaches the pruner's worker process too.
    proc = subprocess.Popen([sys.executable, "-c", _SCRIPT, str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if path.exists() and path.read_bytes().count(b"\n") >= 4:  # header + 3
                break
            time.sleep(0.02)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    before = [json.loads(line) for line in _lines(path) if line.endswith("}")]
    assert 3 <= len(before) < 30
    run_campaign(default_layers()[0], pruners={"uniform": uniform_pruner()}, sizes=[3, 6, 12],
                 seeds=10, path=path, time_limit=0.05, method="gradient", delta=0.1)
    after = [json.loads(line) for line in _lines(path)]
    keys = [r["key"] for r in after]
    assert len(keys) == 30 == len(set(keys))
    assert after[: len(before)] == before


def test_thread_pool_executor_gives_the_same_trials(layer, tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    run_campaign(layer, pruners=_pruners(), sizes=[5], seeds=2, path=a, **FAST)
    with ThreadPoolExecutor(max_workers=2) as pool:
        run_campaign(layer, pruners=_pruners(), sizes=[5], seeds=2, path=b, executor=pool,
                     **FAST)
    first = {r["key"]: r for r in map(json.loads, _lines(a))}
    second = {r["key"]: r for r in map(json.loads, _lines(b))}
    assert first.keys() == second.keys()
    for key, rec in first.items():
        assert rec["epsilon"] == second[key]["epsilon"]
        assert rec["n_kept"] == second[key]["n_kept"]


def test_dask_local_cluster_executor(layer, tmp_path):
    distributed = pytest.importorskip("distributed")
    path = tmp_path / "dask.jsonl"
    with distributed.LocalCluster(n_workers=1, processes=False, threads_per_worker=1,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        summary = run_campaign(layer, pruners=_pruners(), sizes=[6], seeds=2, path=path,
                               executor=client.get_executor(), **FAST)
    assert summary.trials == 4
    assert all("error" not in json.loads(line) for line in _lines(path))


def test_summarize_known_answer(tmp_path):
    path = tmp_path / "known.jsonl"
    found = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    with open(path, "w") as fh:
        for seed, f in enumerate(found):
            fh.write(json.dumps({"key": f"L|p|4|{seed}", "layer": "L", "pruner": "p",
                                 "size": 4, "seed": seed, "delta": 0.2, "found": f,
                                 "upper_bound": None, "certified": False,
                                 "epsilon": {"uniform": 0.75}, "data_error": None}) + "\n")
        fh.write('{"key": "L|p|4|99", "layer"')  # a killed writer's half line
    (row,) = summarize(path).rows
    assert (row.trials, row.failures, row.rate) == (10, 3, 0.3)
    assert (row.ci_low, row.ci_high) == pytest.approx(clopper_pearson(3, 10))
    assert row.verdict == "consistent"
    assert row.empirical_epsilon == 0.8  # 8 of 10 trials at or below it
    assert row.theoretical_epsilon == 0.75
    assert math.isnan(row.certified_max)
    assert math.isnan(row.data_error)


@pytest.mark.parametrize(("x", "n"), [(0, 10), (3, 10), (10, 10), (1, 200), (57, 100)])
def test_clopper_pearson_scipy_and_bisection_agree(x, n):
    pytest.importorskip("scipy")
    lo, hi = clopper_pearson(x, n)
    blo, bhi = _cp_bisect(x, n, 0.025)
    assert (lo, hi) == pytest.approx((blo, bhi), abs=1e-9)
    assert lo <= x / n <= hi


def test_resuming_with_another_delta_is_refused(layer, tmp_path):
    path = tmp_path / "c.jsonl"
    run_campaign(layer, pruners=_pruners(), sizes=[4], seeds=1, path=path, **FAST)
    with pytest.raises(InvalidArgumentError, match=r"delta=0\.1"):
        run_campaign(layer, pruners=_pruners(), sizes=[4], seeds=1, path=path,
                     **(FAST | {"delta": 0.2}))


def test_pruner_errors_are_recorded_not_raised(layer, tmp_path):
    def broken(W_in, b_in, W_out, *, size, rng):
        raise RuntimeError("boom")

    path = tmp_path / "c.jsonl"
    summary = run_campaign(layer, pruners={"broken": broken}, sizes=[4], seeds=2, path=path,
                           **FAST)
    assert summary.errors == 2
    assert summary.rows == ()
    assert "boom" in json.loads(_lines(path)[0])["error"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"delta": 1.5}, "delta", id="delta=1.5"),
        pytest.param({"sizes": [100]}, "sizes", id="sizes>n"),
        pytest.param({"sizes": [0]}, "sizes", id="sizes=0"),
        pytest.param({"seeds": 0}, "seeds", id="seeds=0"),
        pytest.param({"kinds": ("exact",)}, "kinds", id="kinds=exact"),
        pytest.param({"time_limit": -1}, "time_limit", id="time_limit=-1"),
        pytest.param({"data": np.zeros((3, 2))}, "data", id="data wrong width"),
        pytest.param({"data": np.full((3, 5), np.nan)}, "data.*non-finite", id="data NaN"),
        pytest.param({"data": {"gaussian": [[0, 0, 0, 0, np.inf]]}}, "data.*non-finite",
                     id="data inf"),
        pytest.param({"data": "abc"}, "data", id="data text"),
        pytest.param({"data": np.zeros((3, 5), np.float16)}, "data.*float16", id="data half"),
        pytest.param({"path": None}, "path", id="path None"),
        pytest.param({"method": "gradiant"}, "method", id="method misspelt"),
        pytest.param({"method": None}, "method", id="method None"),
        pytest.param({"activation": "rleu"}, "activation", id="activation misspelt"),
        pytest.param({"activation": "silu"}, "non-decreasing", id="activation silu"),
        pytest.param({"kinds": "uniform"}, "kinds", id="kinds a string"),
        pytest.param({"kinds": ()}, "kinds", id="kinds empty"),
        pytest.param({"seeds": 2.5}, "seeds", id="seeds float"),
        pytest.param({"seeds": [-1]}, "seeds", id="seeds negative"),
        pytest.param({"seeds": 2**63}, "seeds", id="seeds=2**63"),
        pytest.param({"seeds": 10**400}, "seeds", id="seeds=10**400"),
        pytest.param({"sizes": 4}, "sizes", id="sizes not a list"),
        pytest.param({"sizes": []}, "sizes", id="sizes empty"),
        pytest.param({"beta": -1.0}, "beta", id="beta<0"),
        pytest.param({"delta": math.nan}, "delta", id="delta NaN"),
        pytest.param({"time_limit": math.inf}, "time_limit", id="time_limit inf"),
        pytest.param({"pruners": 3}, "pruners", id="pruners a number"),
        pytest.param({"executor": "pool"}, "executor", id="executor a string"),
        pytest.param({"pruners": {"x": 3}}, "pruners", id="pruner not callable"),
    ],
)
def test_campaign_arguments_are_validated(layer, tmp_path, kwargs, match):
    args = {"pruners": _pruners(), "sizes": [4], "seeds": 1, "path": tmp_path / "c.jsonl"}
    args |= FAST | kwargs
    with pytest.raises(InvalidArgumentError, match=match):
        run_campaign(layer, **args)
    assert not os.path.exists(tmp_path / "c.jsonl") or not _lines(tmp_path / "c.jsonl")


def test_audit_search_is_in_units_of_T_and_verified(layer):
    from coreset_verify.activations import get_activation
    from coreset_verify.audit._common import relative_error
    from coreset_verify.audit._search import search_worst_case

    act = get_activation("relu")
    pruned = uniform_pruner()(*layer.arrays(), size=6, rng=np.random.default_rng(0))
    best = search_worst_case(layer, pruned, beta=1.0, activation=act, method="auto",
                             time_limit=3.0, rng=np.random.default_rng(0))
    assert np.linalg.norm(best.x) <= 1.0 + 1e-12
    assert 0 < best.error <= best.upper_bound * (1 + 1e-9)
    at_x = relative_error(layer, pruned, best.x[None], 1.0, act)
    assert float(np.max(at_x)) == pytest.approx(best.error, rel=1e-9)


def test_guarantee_check_is_skipped_without_the_search(monkeypatch):
    from coreset_verify.audit import check_pruner, checks, coreset_pruner

    monkeypatch.setattr(checks, "search_available", lambda: False)
    pruner = coreset_pruner(mode="draws")
    report = check_pruner(pruner, claims=pruner.claims(kind="uniform", delta=0.1),
                          time_limit=1.0)
    result = report["check_guarantee"]
    assert result.skipped
    assert "torch" in result.message


# ------------------------------------------------ issue 8: robust campaign files

_TWO = """
import sys, time
from pathlib import Path
from coreset_verify.audit import coreset_pruner, run_campaign
from coreset_verify.audit._common import default_layers
go = Path(sys.argv[2])
deadline = time.monotonic() + 120
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.01)
run_campaign(default_layers()[0], pruners={"coreset": coreset_pruner(mode="draws")},
             sizes=[6], seeds=20, path=sys.argv[1], time_limit=0.02, method="gradient",
             delta=0.1, kinds=["pointwise"])
"""


def test_two_processes_on_one_file_write_every_trial_once(tmp_path):
    path, go = tmp_path / "shared.jsonl", tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", _TWO, str(path), str(go)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for _ in range(2)]
    go.touch()  # both start their campaigns at once (after their imports)
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
    keys = [json.loads(line)["key"] for line in _lines(path)]
    assert len(keys) == 20 == len(set(keys))
    summary = summarize(path)
    assert (summary.trials, summary.duplicates, summary.damaged) == (20, 0, 0)
    (row,) = summary.rows
    assert (row.kind, row.trials) == ("pointwise", 20)
    # counted twice, 20 trials without failure would read as 0 of 40 (upper limit 0.088)
    assert (row.ci_low, row.ci_high) == pytest.approx(clopper_pearson(row.failures, 20))


def _known_record(seed: int, found: object = 0.1) -> dict:
    return {"key": f"L|p|4|{seed}", "layer": "L", "pruner": "p", "size": 4, "seed": seed,
            "delta": 0.1, "found": found, "upper_bound": None, "certified": False,
            "epsilon": {"uniform": 0.5}, "data_error": None}


def test_clopper_pearson_limits():
    assert clopper_pearson(0, 40).high == pytest.approx(0.08811, abs=1e-4)
    lo, hi = clopper_pearson(5, 2**53)
    assert 0 < lo < 5 / 2**53 < hi < 1e-14
    with pytest.raises(InvalidArgumentError, match="trials"):
        clopper_pearson(0, 10**400)


def test_summarize_counts_a_repeated_key_once(tmp_path):
    # 20 trials, none failing: the 95% Clopper-Pearson upper limit is 0.168;
    # counted twice (40 trials) it would be 0.088.
    path = tmp_path / "twice.jsonl"
    lines = [json.dumps(_known_record(seed)) for seed in range(20)]
    path.write_text("\n".join(lines + lines) + "\n")
    summary = summarize(path)
    (row,) = summary.rows
    assert (summary.trials, summary.duplicates, row.trials, row.failures) == (20, 20, 20, 0)
    assert row.ci_high == pytest.approx(0.16843, abs=1e-4)


def test_a_non_finite_found_error_is_a_failure(tmp_path):
    path = tmp_path / "nan.jsonl"
    recs = [_known_record(0, "nan"), _known_record(1, "inf"), _known_record(2, 0.1)]
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    (row,) = summarize(path).rows
    assert (row.trials, row.failures) == (3, 2)


def test_a_non_utf8_byte_is_skipped_reported_and_its_trial_rerun(layer, tmp_path):
    path = tmp_path / "c.jsonl"
    run_campaign(layer, pruners=_pruners(), sizes=[6], seeds=2, path=path, **FAST)
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2][:20] + b"\xff" + lines[2][21:]  # the second trial
    path.write_bytes(b"\n".join(lines))
    with pytest.warns(RuntimeWarning, match=r"1 damaged line.*line 3"):
        summary = summarize(path)
    assert (summary.trials, summary.damaged) == (3, 1)
    with pytest.warns(RuntimeWarning, match="damaged"):
        summary = run_campaign(layer, pruners=_pruners(), sizes=[6], seeds=2, path=path,
                               **FAST)
    assert (summary.trials, summary.damaged, summary.errors) == (4, 1, 0)
    assert "1 damaged" in str(summary)


@pytest.mark.parametrize("junk", [b"\xff\xfe", b"[1, 2]", b"\x00", b"[" * 100_000,
                                  b'{"key": 3}', b'{"key": "k", "layer": "L"}',
                                  b'{"config_hash": "h", "config": {"delta": "x"}}'],
                         ids=["not utf-8", "a list", "NUL", "deep", "key not str",
                              "fields missing", "bad header"])
def test_summarize_skips_every_kind_of_damaged_line(tmp_path, junk):
    path = tmp_path / "junk.jsonl"
    path.write_bytes(junk + b"\n" + json.dumps(_known_record(0)).encode() + b"\n")
    with pytest.warns(RuntimeWarning, match="1 damaged"):
        summary = summarize(path)
    assert (summary.trials, summary.damaged) == (1, 1)


def test_a_misspelt_method_is_refused_before_any_trial(layer, tmp_path):
    path = tmp_path / "c.jsonl"
    with pytest.raises(InvalidArgumentError, match=r"'method' parameter of run_campaign"):
        run_campaign(layer, pruners=_pruners(), sizes=[4], seeds=2, path=path,
                     **(FAST | {"method": "gradiant"}))
    assert not path.exists()


def test_the_header_names_the_configuration(layer, tmp_path):
    path = tmp_path / "c.jsonl"
    run_campaign(layer, pruners=_pruners(), sizes=[4], seeds=1, path=path, **FAST)
    header, *records = map(json.loads, path.read_text().splitlines())
    assert header["config"] == {"delta": 0.1, "beta": 1.0, "activation": "relu",
                                "method": "gradient", "kinds": list(KINDS),
                                "time_limit": 0.05, "data": None}
    assert all(r["config_hash"] == header["config_hash"] for r in records)


@pytest.mark.parametrize("change", [{"method": "auto"}, {"time_limit": 0.1},
                                   {"kinds": ("uniform",)}, {"beta": 2.0},
                                   {"activation": "sigmoid"}, {"data": "yes"}],
                         ids=["method", "time_limit", "kinds", "beta", "activation", "data"])
def test_resuming_under_another_configuration_is_refused(layer, tmp_path, change):
    path = tmp_path / "c.jsonl"
    run_campaign(layer, pruners=_pruners(), sizes=[4], seeds=1, path=path, **FAST)
    before = path.read_bytes()
    if "data" in change:
        change = {"data": np.zeros((2, layer.d))}
    with pytest.raises(InvalidArgumentError, match=r"another configuration.*new path"):
        run_campaign(layer, pruners=_pruners(), sizes=[4], seeds=2, path=path,
                     **(FAST | change))
    assert path.read_bytes() == before


def test_more_seeds_extend_a_campaign(layer, tmp_path):
    path = tmp_path / "c.jsonl"
    run_campaign(layer, pruners=_pruners(), sizes=[4], seeds=1, path=path, **FAST)
    summary = run_campaign(layer, pruners=_pruners(), sizes=[4], seeds=[0, 1, 1], path=path,
                           **FAST)
    assert summary.trials == 4
    assert len(_lines(path)) == 4


def test_path_errors_are_documented(layer, tmp_path):
    with pytest.raises(InvalidArgumentError, match=r"'path'.*directory"):
        run_campaign(layer, pruners=_pruners(), sizes=[4], seeds=1, path=tmp_path, **FAST)
    with pytest.raises(InvalidArgumentError, match=r"'path'.*existing folder"):
        run_campaign(layer, pruners=_pruners(), sizes=[4], seeds=1,
                     path=tmp_path / "no" / "c.jsonl", **FAST)
    for bad in (None, tmp_path, tmp_path / "missing.jsonl"):
        with pytest.raises(InvalidArgumentError, match="'path' parameter of summarize"):
            summarize(bad)


def test_a_file_without_header_is_not_resumed(layer, tmp_path):
    path = tmp_path / "old.jsonl"
    path.write_text(json.dumps(_known_record(0)) + "\n")
    with pytest.raises(InvalidArgumentError, match="no readable configuration header"):
        run_campaign(layer, pruners=_pruners(), sizes=[4], seeds=1, path=path, **FAST)
    assert summarize(path).trials == 1  # still readable


def _hangs(W_in, b_in, W_out, *, size, rng):
    if size == 4:  # loops forever, as the authors' code does on some requests
        time.sleep(3600)
    keep = np.arange(size)
    return W_in[keep], b_in[keep], W_out[:, keep]


def test_a_hanging_pruner_fails_its_trial_instead_of_hanging_the_campaign(layer, tmp_path):
    path = tmp_path / "c.jsonl"
    start = time.monotonic()
    summary = run_campaign(layer, pruners={"hangs": _hangs}, sizes=[4, 6], seeds=2, path=path,
                           pruner_time_limit=0.5, **FAST)
    assert time.monotonic() - start < 60
    assert (summary.trials, summary.errors) == (4, 2)
    errors = [r for r in map(json.loads, _lines(path)) if "error" in r]
    assert {r["size"] for r in errors} == {4}
    assert all("PrunerTimeout" in r["error"] and "0.5 s" in r["error"] for r in errors)


def test_without_fcntl_no_lock_is_taken_and_the_campaign_runs(layer, tmp_path, monkeypatch):
    from coreset_verify.audit import campaign

    monkeypatch.setattr(campaign, "fcntl", None)  # as on Windows
    path = tmp_path / "c.jsonl"
    summary = run_campaign(layer, pruners=_pruners(), sizes=[4], seeds=2, path=path, **FAST)
    assert (summary.trials, summary.errors) == (4, 0)
    assert not (tmp_path / "c.jsonl.lock").exists()


def test_with_fcntl_the_lock_file_sits_beside_the_campaign(layer, tmp_path):
    pytest.importorskip("fcntl")
    path = tmp_path / "c.jsonl"
    run_campaign(layer, pruners=_pruners(), sizes=[4], seeds=1, path=path, **FAST)
    assert (tmp_path / "c.jsonl.lock").exists()
