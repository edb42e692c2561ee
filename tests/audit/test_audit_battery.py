"""The battery: built-in pruners pass, each faulty pruner fails the right check."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
from faulty_pruners import (
    FAULTS,
    PAPER_CLAIMS,
    RANDOM_UNBIASED,
    bias_from_next_neuron,
    distinct_forever,
    normalises_rows,
    paper_epsilon,
    paper_sampler,
    sensitivity_sample,
)

from coreset_verify.audit import (
    CHECKS,
    builtin_pruners,
    check_pruner,
    coreset_pruner,
    run_audit,
    uniform_pruner,
)
from coreset_verify.audit._layers import default_layers

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


def test_the_papers_sampler_passes_with_the_claims_that_describe_it():
    # m = size i.i.d. draws, re-weighted cnt / (m pr), not exact at size = n.
    report = check_pruner(paper_sampler, claims=PAPER_CLAIMS, time_limit=TIME_LIMIT)
    assert report.passed, str(report)
    assert report.skipped == ("check_full_size_exact",)
    assert report["check_guarantee"].passed
    assert report["check_unbiased"].passed
    # Without declaring exact_at_full_size=False it is (rightly) flagged where
    # size = n is asked to be exact.
    claims = PAPER_CLAIMS | {"exact_at_full_size": True}
    assert check_pruner(paper_sampler, claims=claims).failed == (
        "check_full_size_exact", "check_degenerate_neurons")


def test_a_skipped_check_is_neither_passed_nor_failed():
    report = check_pruner(paper_sampler, claims=PAPER_CLAIMS, time_limit=TIME_LIMIT)
    result = report["check_full_size_exact"]
    assert (result.status, result.passed, result.failed, result.verdict) == \
        ("skipped", False, False, "skip")
    assert report.counts == {"passed": len(CHECKS) - 1, "failed": 0, "skipped": 1}
    assert f"{len(CHECKS) - 1}/{len(CHECKS) - 1} checks passed, 1 skipped" in str(report)
    assert "| check_full_size_exact | skip |" in report.to_markdown()
    as_dict = report.to_dict()
    assert as_dict["skipped"] == ["check_full_size_exact"]
    row = next(r for r in as_dict["results"] if r["name"] == "check_full_size_exact")
    assert (row["status"], row["passed"], row["skipped"]) == ("skipped", False, True)


def test_a_bias_from_the_wrong_neuron_is_named_by_row_and_field():
    report = check_pruner(bias_from_next_neuron, claims=RANDOM_UNBIASED, time_limit=TIME_LIMIT)
    message = report["check_kept_rows"].message
    assert report["check_kept_rows"].failed
    assert "kept row 0: W_in'[0] is row" in message
    assert "but b_in'[0] = " in message
    assert "layer 'gaussian'" in message
    evidence = report["check_kept_rows"].evidence
    assert (evidence["row"], evidence["field"]) == (0, "b_in'")


def test_a_row_that_is_no_original_row_is_named():
    report = check_pruner(normalises_rows, claims={"unbiased": False, "deterministic": True})
    assert "W_in'[0] is not a row of W_in" in report["check_kept_rows"].message


def test_a_pruner_that_loops_forever_fails_its_check_within_the_limit():
    # The authors' distinct sampling never returns on the degenerate layer at
    # size 18 (12 neurons have positive sensitivity); the rest of the battery runs.
    t0 = time.perf_counter()
    report = check_pruner(distinct_forever, claims={"unbiased": False, "deterministic": False},
                          pruner_time_limit=0.5, time_limit=TIME_LIMIT)
    assert time.perf_counter() - t0 < 10
    assert report.failed == ("check_degenerate_neurons",), str(report)
    result = report["check_degenerate_neurons"]
    assert "did not return within 0.5 s on layer 'degenerate', size 18" in result.message
    assert (result.evidence["layer"], result.evidence["size"]) == ("degenerate", 18)


def test_a_closure_that_always_hangs_fails_every_check_that_calls_it():
    def hangs(W_in, b_in, W_out, *, size, rng):  # a closure: cannot be pickled
        while True:
            pass

    t0 = time.perf_counter()
    report = check_pruner(hangs, claims={"unbiased": True}, pruner_time_limit=0.1)
    assert time.perf_counter() - t0 < 10
    assert set(report.failed) == set(CHECKS) - {"check_guarantee"}
    assert all("did not return within 0.1 s" in report[n].message for n in report.failed)


def test_a_pruner_that_kills_its_process_or_returns_unpicklable_output_fails():
    def exits(W_in, b_in, W_out, *, size, rng):
        os._exit(3)

    report = check_pruner(exits, claims={"unbiased": False}, pruner_time_limit=5)
    assert "ended its worker process (exit code 3)" in report["check_returns_arrays"].message

    def unpicklable(W_in, b_in, W_out, *, size, rng):
        return W_in, b_in, lambda: W_out

    report = check_pruner(unpicklable, claims={"unbiased": False}, pruner_time_limit=5)
    assert "cannot be sent back" in report["check_returns_arrays"].message


def test_without_a_time_limit_the_pruner_runs_in_this_process():
    calls = []

    def records(W_in, b_in, W_out, *, size, rng):
        calls.append(size)
        return sensitivity_sample(W_in, b_in, W_out, size=size, rng=rng)

    small = {"small": default_layers()[0]}
    report = check_pruner(records, claims=RANDOM_UNBIASED, layers=small, pruner_time_limit=None)
    assert report.passed
    assert len(calls) > 100
    calls.clear()
    check_pruner(records, claims=RANDOM_UNBIASED, layers=small)
    assert calls == []  # called in the worker


def test_a_callable_epsilon_of_nan_fails_the_guarantee():
    def nan_epsilon(W_in, b_in, W_out, *, size, rng):
        return float("nan")

    claims = PAPER_CLAIMS | {"guarantee": PAPER_CLAIMS["guarantee"] | {"epsilon": nan_epsilon}}
    report = check_pruner(paper_sampler, claims=claims)
    assert report.failed == ("check_guarantee",)
    assert "returned nan, not a finite number >= 0" in report["check_guarantee"].message
    assert paper_epsilon  # the honest one is in PAPER_CLAIMS


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
    assert ev["test_seeds"]["count"] == 200
    assert ev["test_seeds"]["spawn_key"] != ev["pilot_seeds"]["spawn_key"]
    assert ev["alpha"] == pytest.approx(1e-3)
    assert 0 <= ev["worst_gap"] <= ev["margin_at_worst"]


def test_pruner_exceptions_become_failed_checks():
    def broken(W_in, b_in, W_out, *, size, rng):
        raise RuntimeError("boom")

    report = check_pruner(broken, claims={"unbiased": False})
    assert set(report.failed) >= {"check_returns_arrays", "check_size_budget"}
    result = report["check_returns_arrays"]
    assert "the pruner raised RuntimeError: boom (layer 'gaussian'" in result.message
    assert "RuntimeError: boom" in result.evidence["traceback"]


def test_user_layers_are_used():
    gen = np.random.default_rng(5)
    layer = (gen.normal(size=(16, 3)), gen.normal(size=16), gen.normal(size=(2, 16)))
    report = check_pruner(uniform_pruner(), claims={"unbiased": True}, layers={"mine": layer})
    assert set(report["check_unbiased"].evidence) == {"mine"}


def test_an_output_that_is_no_triple_fails_with_a_clear_message():
    def pair(W_in, b_in, W_out, *, size, rng):
        return W_in[:size], b_in[:size]

    report = check_pruner(pair, claims={"unbiased": False})
    assert "expected a 3-tuple" in report["check_returns_arrays"].message
    assert "the pruner returned tuple, not three arrays" in report["check_size_budget"].message

    def one_bias_too_many(W_in, b_in, W_out, *, size, rng):
        return W_in[:size], b_in[: size + 1], W_out[:, :size]

    report = check_pruner(one_bias_too_many, claims={"unbiased": False})
    assert "returned arrays of shapes (8, 5), (9,), (3, 8), not (r, 5), (r,), (3, r)" in \
        report["check_kept_rows"].message
