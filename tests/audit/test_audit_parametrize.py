"""parametrize_with_checks: each (pruner, check) is a test of a user's suite."""

from __future__ import annotations

import pytest
from faulty_pruners import RANDOM_UNBIASED, returns_float32, sensitivity_sample

from coreset_verify.audit import CHECKS, parametrize_with_checks

DECORATOR = parametrize_with_checks(
    {"sensitivity": sensitivity_sample, "float32": returns_float32},
    claims=RANDOM_UNBIASED,
    expected_failed_checks={"float32": {
        "check_returns_arrays": "returns float32 on purpose",
        "check_full_size_exact": "float32 rounding",
        "check_degenerate_neurons": "float32 rounding",
    }},
    time_limit=0.5,
)


@DECORATOR
def test_pruner_battery(pruner, check):
    check(pruner)


def test_ids_and_xfail_marks():
    params = DECORATOR.args[1]
    ids = [p.id for p in params]
    assert ids[: len(CHECKS)] == [f"sensitivity-{name}" for name in CHECKS]
    xfails = [p.id for p in params if p.marks]
    assert xfails == ["float32-check_returns_arrays", "float32-check_full_size_exact",
                      "float32-check_degenerate_neurons"]


def test_a_check_that_does_not_apply_is_a_skipped_test():
    params = {p.id: p.values for p in DECORATOR.args[1]}
    pruner, check = params["sensitivity-check_guarantee"]
    with pytest.raises(pytest.skip.Exception, match="no guarantee claimed"):
        check(pruner)
