"""The battery: built-in pruners pass, each faulty pruner fails the right check."""

from __future__ import annotations

import json

import numpy as np
import pytest
from faulty_pruners import FAULTS, RANDOM_UNBIASED, sensitivity_sample

from coreset_verify.audit import (
    CHECKS,
    builtin_pruners,
    check_pruner,
    coreset_pruner,
    run_audit,
    uniform_pruner,
)

TIME_LIMIT = 0.5


@pytest.fixture(scope="module")
def builtin_reports():
    return run_audit(time_limit=TIME_LIMIT)


#: Failures of the built-ins that are findings, not bugs of the battery: the
#: magnitude baselines rank neurons by incoming norm and ignore the 10x
#: outgoing weights of the "heavy" layer, so their error hardly moves from
#: n/8 to n/2 neurons.
KNOWN_FAILURES = {
    "top-norm": ("check_error_shrinks",),
    "torch-prune-l1": ("check_error_shrinks",),
}


@pytest.mark.parametrize("name", list(builtin_pruners()))
def test_builtin_pruners_pass_their_claims(builtin_reports, name):
    report = builtin_reports[name]
    assert report.failed == KNOWN_FAILURES.get(name, ()), str(report)


def test_correct_sensitivity_sampling_passes_everything():
    report = check_pruner(sensitivity_sample, claims=RANDOM_UNBIASED, time_limit=TIME_LIMIT)
    assert report.passed, str(report)
    assert report["check_unbiased"].skipped is False
    assert [r.name for r in report.results] == list(CHECKS)


@pytest.mark.parametrize("fault", list(FAULTS))
def test_each_faulty_pruner_is_flagged_in_the_right_check(fault):
    pruner, claims, check = FAULTS[fault]
    report = check_pruner(pruner, claims=claims, time_limit=TIME_LIMIT, name=fault)
    assert check in report.failed, str(report)
    assert not report.passed


def test_overclaimed_uniform_epsilon_is_found_by_the_search():
    pruner = coreset_pruner(mode="draws")
    honest = pruner.claims(kind="uniform", delta=0.1)
    claims = dict(honest)
    claims["guarantee"] = dict(honest["guarantee"])
    claims["guarantee"]["epsilon"] = lambda *a, size, rng: 0.02
    report = check_pruner(pruner, claims=claims, time_limit=TIME_LIMIT)
    assert report.failed == ("check_guarantee",), str(report)
    evidence = report["check_guarantee"].evidence["gaussian"]
    assert evidence["found"] > 0.02
    assert np.linalg.norm(evidence["x"]) <= 1.0 + 1e-9


def test_overclaimed_pointwise_epsilon_is_flagged():
    claims = {"unbiased": True, "guarantee": {"kind": "pointwise", "delta": 0.05,
                                             "epsilon": 0.01}}
    report = check_pruner(uniform_pruner(), claims=claims)
    assert "check_guarantee" in report.failed
    honest = coreset_pruner(mode="draws").claims(kind="pointwise", delta=0.1)
    assert check_pruner(coreset_pruner(mode="draws"), claims=honest).passed


def test_expected_failures_are_xfail_and_do_not_fail_the_report():
    pruner, claims, check = FAULTS["keeps_more"]
    report = check_pruner(pruner, claims=claims,
                          expected_failed_checks={check: "keeps one extra on purpose"})
    assert report.passed
    assert report.xfailed == (check,)
    assert report[check].verdict == "xfail"
    assert report[check].reason == "keeps one extra on purpose"


def test_report_is_reproducible_and_serialisable():
    first = check_pruner(sensitivity_sample, claims=RANDOM_UNBIASED, rng=3)
    second = check_pruner(sensitivity_sample, claims=RANDOM_UNBIASED, rng=3)
    assert [r.evidence for r in first.results] == [r.evidence for r in second.results]
    text = json.dumps(first.to_dict())
    assert "check_unbiased" in text
    assert str(first).startswith("Audit of")
    assert "| check_rng | pass |" in first.to_markdown()


def test_unbiased_evidence_records_seeds_and_margin():
    report = check_pruner(uniform_pruner(), claims={"unbiased": True})
    ev = report["check_unbiased"].evidence["gaussian"]
    assert ev["test_seeds"][1] == 200
    assert ev["alpha"] == pytest.approx(1e-3)
    assert 0 <= ev["worst_gap"] <= ev["margin_at_worst"]


def test_pruner_exceptions_become_failed_checks():
    def broken(W_in, b_in, W_out, *, size, rng):
        raise RuntimeError("boom")

    report = check_pruner(broken, claims={"unbiased": False})
    assert set(report.failed) >= {"check_returns_arrays", "check_size_budget"}
    assert "boom" in report["check_returns_arrays"].message


def test_user_layers_are_used():
    gen = np.random.default_rng(5)
    layer = (gen.normal(size=(16, 3)), gen.normal(size=16), gen.normal(size=(2, 16)))
    report = check_pruner(uniform_pruner(), claims={"unbiased": True}, layers={"mine": layer})
    assert set(report["check_unbiased"].evidence) == {"mine"}
