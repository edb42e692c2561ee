"""The fuzz oracle itself: it must catch planted false claims (else a passing fuzz
proves nothing). Each test plants one lie in a genuine result and expects FalseClaim."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from _fuzz_cases import Base, FalseClaim, check_bound
from _fuzz_models import check_worst_case, pair_modules

import coreset_verify as cv

W_IN = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.5]])
B_IN = np.array([0.5, 0.2, 0.1, 0.3])
W_OUT = np.array([[1.0, -1.0, 0.5, 2.0]])
BASE = Base(W_IN, B_IN, W_OUT, "relu", 1.0, 3, "planted")


def _coreset():
    return cv.layer_coreset(W_IN, B_IN, W_OUT, sample_size=2, beta=1.0, rng=1)


def test_genuine_bound_passes():
    c = _coreset()
    check_bound(cv.theoretical_bound(c, delta=1e-6, kind="uniform"), c, BASE)


@pytest.mark.parametrize("field", ["deterministic", "scale"])
def test_a_bound_shrunk_to_almost_nothing_is_caught(field):
    c = _coreset()
    bound = cv.theoretical_bound(c, delta=1e-6, kind="uniform")
    value = 1e-6 * getattr(bound, field)
    lie = dataclasses.replace(bound, **{field: value})
    with pytest.raises(FalseClaim):
        check_bound(lie, c, BASE)


def test_worst_case_lies_are_caught():
    original = pair_modules(W_IN, B_IN, W_OUT, "relu")
    pruned = pair_modules(W_IN[:2], B_IN[:2], W_OUT[:, :2] * 1.5, "relu")
    r = cv.worst_case(original, pruned, beta=1.0, method="bounds", time_limit=2.0, rng=0)
    check_worst_case(r, original, pruned, 1.0, None, 0)
    for lie in (dict(error=r.error * 2 + 1), dict(upper_bound=r.error / 4),
                dict(x=np.array([2.0, 0.0]))):
        with pytest.raises(FalseClaim):
            check_worst_case(dataclasses.replace(r, **lie), original, pruned, 1.0, None, 0)
