"""Hand-derived worst cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _search_helpers import one_hidden, torch

from coreset_verify.search import METHODS, OPTIMAL, verify, worst_case

nn = torch.nn


def _single(weight, bias=0.0):
    net = nn.Sequential(nn.Linear(len(weight), 1), nn.ReLU()).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([weight], dtype=torch.float64))
        net[0].bias.fill_(bias)
    return net


@pytest.mark.parametrize("method", METHODS)
def test_relu_against_zero_on_ball_is_norm_times_beta(method):
    # max_{||x|| <= 2} relu(3 x1 + 4 x2) - 0 = 2 * ||(3, 4)|| = 10 at x = 2 w/||w||.
    f, g = _single([3.0, 4.0]), _single([0.0, 0.0])
    res = worst_case(f, g, beta=2.0, method=method, rng=0)
    if method in ("auto", "exact", "gradient", "region"):
        assert res.error == pytest.approx(10.0, rel=1e-6)
        np.testing.assert_allclose(res.x, [1.2, 1.6], rtol=1e-4, atol=1e-6)
    if method in ("auto", "bounds", "exact"):
        assert res.upper_bound == pytest.approx(10.0, rel=1e-4)
    assert verify(res, f, g)


@pytest.mark.parametrize("method", METHODS)
def test_identical_networks_give_zero_and_certified(method):
    f = one_hidden(np.array([[1.0, -2.0], [0.5, 0.3]]), np.array([0.1, -0.2]),
                   np.array([[1.0, -1.0]]), np.array([0.3]))
    g = one_hidden(np.array([[1.0, -2.0], [0.5, 0.3]]), np.array([0.1, -0.2]),
                   np.array([[1.0, -1.0]]), np.array([0.3]))
    res = worst_case(f, g, beta=1.0, method=method, rng=0)
    assert res.error == 0.0
    if method in ("auto", "bounds", "exact"):
        assert res.upper_bound == pytest.approx(0.0, abs=1e-9)
        assert res.certified
        assert res.status == OPTIMAL


def test_dropped_neuron_on_box_is_its_largest_value():
    # f = relu(x1 + x2 - 0.5) + relu(x1), g keeps the second neuron only (shared).
    # |f - g| = relu(x1 + x2 - 0.5), largest at the corner (1, 1): 1.5.
    w1 = np.array([[1.0, 1.0], [1.0, 0.0]])
    b1 = np.array([-0.5, 0.0])
    f = one_hidden(w1, b1, np.array([[1.0, 1.0]]), np.array([0.0]))
    g = one_hidden(w1[1:], b1[1:], np.array([[1.0]]), np.array([0.0]))
    for method in ("exact", "auto", "gradient"):
        res = worst_case(f, g, lower=-1.0, upper=1.0, method=method, rng=1)
        assert res.error == pytest.approx(1.5, rel=1e-9)
        np.testing.assert_allclose(res.x, [1.0, 1.0], atol=1e-6)
    res = worst_case(f, g, lower=-1.0, upper=1.0, method="bounds")
    assert res.upper_bound == pytest.approx(1.5, rel=1e-6)


def test_reweighted_shared_neuron_scales_the_gap():
    # f = 2 relu(w.x), g = 3 relu(w.x) (same neuron): |f - g| = relu(w.x), max
    # beta ||w|| = 1.5 * 5; with scale 2 the objective is 3.75.
    w = np.array([[3.0, 4.0]])
    f = one_hidden(w, np.zeros(1), np.array([[2.0]]), np.zeros(1))
    g = one_hidden(w, np.zeros(1), np.array([[3.0]]), np.zeros(1))
    res = worst_case(f, g, beta=1.5, scale=[2.0], rng=0)
    assert res.error == pytest.approx(3.75, rel=1e-6)
    assert res.certified
    assert [s.name for s in res.trace][:2] == ["gradient", "region"]


def test_sigmoid_networks_use_gradient_and_bounds_only():
    rng = np.random.default_rng(3)
    w1, w2 = rng.standard_normal((3, 2)), rng.standard_normal((1, 3))
    f = one_hidden(w1, np.zeros(3), w2, np.zeros(1), nn.Sigmoid())
    g = one_hidden(w1[:2], np.zeros(2), w2[:, :2], np.zeros(1), nn.Sigmoid())
    res = worst_case(f, g, beta=1.0, rng=0)
    # |f - g| = |w2[2]| sigmoid(w1[2].x) <= |w2[2]| sigmoid(||w1[2]||).
    top = abs(w2[0, 2]) / (1 + math.exp(-np.linalg.norm(w1[2])))
    assert res.error == pytest.approx(top, rel=1e-5)
    assert res.error <= res.upper_bound
    # Here interval arithmetic alone is exact (one dropped monotone neuron).
    assert res.certified
    exact = worst_case(f, g, beta=1.0, method="exact")
    assert [s.status for s in exact.trace if s.name == "exact"] == ["not_applicable"]
    assert worst_case(f, g, beta=1.0, method="region").status == "not_applicable"
