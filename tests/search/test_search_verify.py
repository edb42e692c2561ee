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
        pytest.param({"output": 5}, id="output-out-of-range"),
        pytest.param({"output": 0.5}, id="output-not-int"),
        pytest.param({"upper_bound": math.nan}, id="upper-bound-nan"),
        pytest.param({"x": np.zeros(5)}, id="x-of-another-dimension"),
        pytest.param({"x": "x"}, id="x-not-an-array"),
        pytest.param({"scale": np.ones(3)}, id="scale-of-another-length"),
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
    doctored = dataclasses.replace(honest, x=x, error=err, upper_bound=math.inf)
    assert not verify(doctored, f, g)
    assert verify(dataclasses.replace(doctored, x=honest.x, error=honest.error), f, g)


def test_verify_rejects_non_result(pair):
    with pytest.raises(ValueError, match="'result' parameter of verify"):
        verify({"x": 0}, *pair)
    assert WorstCase.__dataclass_params__.frozen


def test_certified_is_derived_from_the_bracket(honest):
    # Not a stored field: a record cannot say certified with an open bracket.
    assert "certified" not in {f.name for f in dataclasses.fields(WorstCase)}
    assert honest.certified
    opened = dataclasses.replace(honest, upper_bound=honest.error * 2 + 1)
    assert not opened.certified
    assert not dataclasses.replace(honest, upper_bound=math.inf).certified
    assert dataclasses.replace(honest, upper_bound=honest.error * (1 + 1e-6)).certified


@pytest.mark.parametrize("rng", [5, None, "generator"], ids=["int", "None", "Generator"])
def test_result_stores_its_options_and_replays(pair, rng):
    f, g = pair
    if rng == "generator":
        rng = np.random.default_rng(5)
    first = worst_case(f, g, beta=1.0, method="gradient", restarts=7, rng=rng)
    assert (first.method, first.restarts, first.time_limit, first.beta) == (
        "gradient", 7, None, 1.0)
    again = worst_case(f, g, **first.replay_options())
    np.testing.assert_array_equal(again.x, first.x)
    assert again.error == first.error
