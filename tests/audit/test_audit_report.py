"""Markdown + PNG reports of audits and campaigns."""

from __future__ import annotations

import numpy as np
import pytest
from faulty_pruners import FAULTS, RANDOM_UNBIASED, sensitivity_sample

from coreset_verify import InvalidArgumentError
from coreset_verify.audit import (
    CHECKS,
    check_pruner,
    coreset_pruner,
    run_campaign,
    uniform_pruner,
)
from coreset_verify.audit._layers import default_layers
from coreset_verify.report import write_audit_report, write_campaign_report

PNG = b"\x89PNG\r\n\x1a\n"


def test_audit_report_has_a_table_of_pruners_by_checks(tmp_path):
    reports = {
        "correct": check_pruner(sensitivity_sample, claims=RANDOM_UNBIASED),
        "keeps_more": check_pruner(FAULTS["keeps_more"][0], claims=RANDOM_UNBIASED),
    }
    md = write_audit_report(reports, tmp_path / "audit")
    text = md.read_text()
    # check_guarantee is skipped (no guarantee claimed): not counted as passed.
    n = len(CHECKS)
    assert f"| correct | {n - 1}/{n - 1} | 1 |" in text
    assert "**FAIL**" in text.split("| keeps_more |")[1].splitlines()[0]
    assert "![checks by pruner](audit.png)" in text
    assert (tmp_path / "audit" / "audit.png").read_bytes().startswith(PNG)
    assert (tmp_path / "audit" / "audit.json").stat().st_size > 0


def test_campaign_report_plots_every_layer(tmp_path):
    layers = {"a": default_layers()[0], "b": default_layers()[1]}
    path = tmp_path / "c.jsonl"
    data = {"a": np.random.default_rng(0).normal(size=(20, 5)) / 5}
    run_campaign(layers, pruners={"coreset": coreset_pruner(mode="draws"),
                                  "uniform": uniform_pruner()},
                 sizes=[4, 8], seeds=2, delta=0.1, path=path, time_limit=0.05,
                 method="gradient", data=data)
    md = write_campaign_report(path, tmp_path / "report")
    text = md.read_text()
    for name in ("a", "b"):
        png = tmp_path / "report" / f"error_vs_size_{name}.png"
        assert png.read_bytes().startswith(PNG)
        assert f"![error against size](error_vs_size_{name}.png)" in text
    assert "| a | coreset | 4 | uniform |" in text


def test_report_arguments_are_validated(tmp_path):
    with pytest.raises(InvalidArgumentError, match="path_jsonl"):
        write_campaign_report(tmp_path / "missing.jsonl", tmp_path)
    with pytest.raises(InvalidArgumentError, match="reports"):
        write_audit_report({}, tmp_path)
    (tmp_path / "file").write_text("x")
    report = check_pruner(uniform_pruner(), claims={"unbiased": True})
    with pytest.raises(InvalidArgumentError, match="folder"):
        write_audit_report([report], tmp_path / "file")
