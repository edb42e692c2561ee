"""The library behind the command line checks its arguments before any work.

``run_demo`` refuses bad arguments before training, ``construction_benchmark``
before allocating, and the report writers name the bad argument.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from coreset_verify import InvalidArgumentError
from coreset_verify.benchmark import LoopCoreset, construction_benchmark, loop_coreset
from coreset_verify.demo import run_demo, write_demo_report
from coreset_verify.report import write_audit_report, write_campaign_report


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"seed": -1}, "'seed' parameter of run_demo", id="seed=-1"),
        pytest.param({"sample_size": 0}, "'sample_size'", id="sample_size=0"),
        pytest.param({"beta": math.nan}, "'beta'", id="beta=nan"),
        pytest.param({"delta": 1.0}, "'delta'", id="delta=1"),
        pytest.param({"epochs": 0}, "'epochs'", id="epochs=0"),
        pytest.param({"finetune_epochs": -1}, "'finetune_epochs'", id="finetune_epochs=-1"),
        pytest.param({"target_params": 1.5}, "'target_params'", id="target_params=1.5"),
        pytest.param({"time_limit": 0}, "'time_limit'", id="time_limit=0"),
        pytest.param({"progress": "yes"}, "'progress'", id="progress=str"),
    ],
)
def test_run_demo_refuses_bad_arguments_before_training(kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        run_demo(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"size": -5}, "'size' parameter of construction_benchmark", id="size=-5"),
        pytest.param({"size": 2**40}, r"'size'.*memory", id="size=2**40"),
        pytest.param({"repeats": 0}, "'repeats'", id="repeats=0"),
        pytest.param({"sample_size": 1.5}, "'sample_size'", id="sample_size=1.5"),
        pytest.param({"progress": 3}, "'progress'", id="progress=3"),
    ],
)
def test_construction_benchmark_refuses_bad_arguments(kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        construction_benchmark(**kwargs)


def test_loop_coreset_returns_a_named_tuple():
    gen = np.random.default_rng(0)
    W_in, b_in, W_out = gen.normal(size=(30, 4)), gen.normal(size=30), gen.normal(size=(2, 30))
    out = loop_coreset(W_in, b_in, W_out, 25, 1.0, 0)
    assert isinstance(out, LoopCoreset)
    kept, weight_out = out
    assert weight_out.shape == (2, kept.size)
    assert np.all(np.diff(kept) > 0)


def test_report_writers_name_the_bad_argument(tmp_path):
    with pytest.raises(InvalidArgumentError, match="'result' parameter of write_demo_report"):
        write_demo_report({"dense_accuracy": 1.0}, tmp_path)
    with pytest.raises(InvalidArgumentError, match=r"'reports'.*AuditReport"):
        write_audit_report({"x": 3}, tmp_path)
    with pytest.raises(InvalidArgumentError, match="'reports'"):
        write_audit_report(None, tmp_path)
    with pytest.raises(InvalidArgumentError, match="'path_jsonl'"):
        write_campaign_report(None, tmp_path)
    (tmp_path / "x.jsonl").write_text("")
    with pytest.raises(InvalidArgumentError, match="'folder'"):
        write_campaign_report(tmp_path / "x.jsonl", None)


def test_campaign_report_of_a_damaged_file(tmp_path):
    pytest.importorskip("matplotlib")
    record = {"key": "L|p|4|0", "layer": "L", "pruner": "p", "size": 4, "seed": 0,
              "delta": 0.1, "found": 0.2, "upper_bound": None, "certified": False,
              "epsilon": {"uniform": 0.5}, "data_error": None}
    path = tmp_path / "c.jsonl"
    path.write_bytes(json.dumps(record).encode() + b"\n\xff\xfe\n" +
                     json.dumps(record).encode() + b"\n")
    with pytest.warns(RuntimeWarning, match="1 damaged"):
        md = write_campaign_report(path, tmp_path / "report")
    assert "| L | p | 4 | uniform | 1 |" in md.read_text()
