"""``error`` is the objective at ``x``; ``verify`` accepts honest results and
rejects doctored ones."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from _search_helpers import tiny_pair, torch

from coreset_verify.search import METHODS, WorstCase, verify, worst_case


@pytest.fixture(scope="module")
def pair():
    return tiny_pair(7, d=3, n_f=5, n_g=3, k=2, shared=True)


@pytest.fixture(scope="module")
def honest(pair):
    return worst_case(*pair, beta=1.0, rng=0)


@pytest.mark.parametrize("method", METHODS)
def test_error_is_reevaluated_at_x(pair, method):
    f, g = pair
    res = worst_case(f, g, beta=1.0, method=method, rng=0)
    with torch.no_grad():
        diff = (f(torch.as_tensor(res.x)[None]) - g(torch.as_tensor(res.x)[None]))
    diff = diff.abs()[0].numpy()
    assert res.error == pytest.approx(float(diff.max()), rel=1e-9, abs=1e-15)
    assert res.output == int(np.argmax(diff))
    assert np.linalg.norm(res.x) <= 1.0 + 1e-12
    assert res.x.dtype == np.float64
    assert res.x.shape == (3,)
    assert res.method == method
    assert res.error <= res.upper_bound
    assert verify(res, f, g)


def test_verify_accepts_honest(pair, honest):
    assert honest.certified
    assert verify(honest, *pair)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"error": 1.5}, id="error-too-large"),
        pytest.param({"error": 0.5}, id="error-too-small"),
        pytest.param({"upper_bound": 0.1}, id="error-above-upper-bound"),
        pytest.param({"certified": False}, id="certified-flag-wrong"),
        pytest.param({"output": 5}, id="output-out-of-range"),
    ],
)
def test_verify_rejects_doctored(pair, honest, change):
    values = {k: (v * honest.error if k == "error" else v) for k, v in change.items()}
    assert not verify(dataclasses.replace(honest, **values), *pair)


def test_verify_rejects_x_outside_ball(pair, honest):
    f, g = pair
    x = honest.x / np.linalg.norm(honest.x) * 1.1
    with torch.no_grad():
        err = float((f(torch.as_tensor(x)[None]) - g(torch.as_tensor(x)[None]))
                    .abs().max())
    doctored = dataclasses.replace(honest, x=x, error=err,
                                   upper_bound=math.inf, certified=False)
    assert not verify(doctored, f, g)
    assert verify(dataclasses.replace(doctored, x=honest.x, error=honest.error), f, g)


def test_verify_rejects_non_result(pair):
    with pytest.raises(ValueError, match="result must be a WorstCase"):
        verify({"x": 0}, *pair)
    assert WorstCase.__dataclass_params__.frozen
