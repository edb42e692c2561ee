"""The public strategies produce what they promise."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from coreset_verify import InvalidArgumentError, get_activation, layer_sensitivities
from coreset_verify.strategies import activations, balls, layers, points_in_ball


@given(layer=layers(min_n=2, max_n=5, min_d=2, max_d=3, min_k=2, max_k=2))
def test_layers_shapes_and_finiteness(layer):
    W_in, b_in, W_out = layer
    n, d = W_in.shape
    assert 2 <= n <= 5
    assert 2 <= d <= 3
    assert b_in.shape == (n,)
    assert W_out.shape == (2, n)
    for a in layer:
        assert a.dtype == np.float64
        assert np.all(np.isfinite(a))


@given(layer=layers(beta=2.0), activation=activations(), beta=st.floats(0.01, 2.0))
def test_layers_are_never_all_zero(layer, activation, beta):
    s = layer_sensitivities(*layer, beta=beta, activation=activation)
    assert s.total > 0


@given(layer=layers(beta=2.0, duplicates=False, zeros=False), beta=st.floats(0.01, 2.0))
def test_dead_neurons_are_dead_on_the_ball(layer, beta):
    W_in, b_in, _ = layer
    reach = b_in + beta * np.linalg.norm(W_in, axis=1)
    dead = b_in < -2.0 * np.linalg.norm(W_in, axis=1)
    assert np.all(reach[dead] < 0)


def test_layers_draw_every_kind_of_neuron():
    seen = {"dead": False, "duplicate": False, "zero_in": False, "zero_out": False,
            "wide_scale": False}

    @given(layers(min_n=4, max_n=8))
    def record(layer):
        W_in, b_in, W_out = layer
        norms = np.linalg.norm(W_in, axis=1)
        seen["dead"] |= bool(np.any(b_in + norms < 0))
        seen["zero_in"] |= bool(np.any((norms == 0) & (b_in == 0)))
        seen["zero_out"] |= bool(np.any(np.all(W_out == 0, axis=0)))
        rows = np.column_stack([W_in, b_in])
        seen["duplicate"] |= len({r.tobytes() for r in rows if np.any(r)}) < np.sum(
            np.any(rows != 0, axis=1))
        nonzero = np.abs(W_out[W_out != 0])
        seen["wide_scale"] |= bool(nonzero.size and nonzero.max() / nonzero.min() > 1e3)

    from hypothesis import settings

    settings(max_examples=300, database=None)(record)()
    assert all(seen.values()), seen


def test_allow_all_zero():
    found = []

    @given(layers(max_n=2, dead=True, zeros=True, allow_all_zero=True))
    def record(layer):
        W_in, b_in, W_out = layer
        live = (b_in + np.linalg.norm(W_in, axis=1) > 0) & np.any(W_out != 0, axis=0)
        if not np.any(live):
            found.append(layer)

    from hypothesis import settings

    settings(max_examples=300, database=None)(record)()
    assert found


@given(activation=activations(monotone_only=False))
def test_activations_strategy(activation):
    get_activation(activation)


@given(activation=activations(positive=True))
def test_positive_activations(activation):
    assert get_activation(activation).is_positive


@given(beta=balls())
def test_balls(beta):
    assert 0.01 <= beta < 1000.0


@given(data=st.data(), layer=layers(), beta=balls())
def test_points_in_ball(data, layer, beta):
    W_in = layer[0]
    x = data.draw(points_in_ball(W_in.shape[1], beta, W_in=W_in))
    assert x.shape == (W_in.shape[1],)
    assert np.linalg.norm(x) <= beta


def test_points_in_ball_reach_the_boundary_and_extreme_points():
    W_in = np.array([[3.0, 4.0], [0.0, 0.0], [1.0, 0.0]])
    found = {"boundary": False, "extreme": False, "interior": False}

    @given(points_in_ball(2, 2.0, W_in=W_in))
    def record(x):
        r = np.linalg.norm(x)
        found["boundary"] |= bool(np.isclose(r, 2.0, rtol=1e-15, atol=0))
        found["interior"] |= bool(0 < r < 1.9)
        found["extreme"] |= bool(np.allclose(x, [1.2, 1.6], rtol=1e-15, atol=0))

    from hypothesis import settings

    settings(max_examples=200, database=None)(record)()
    assert all(found.values()), found


@pytest.mark.parametrize(("factory", "kwargs", "match"), [
    pytest.param(layers, {"min_n": 3, "max_n": 2}, "min_n=3 is larger than max_n=2", id="n"),
    pytest.param(layers, {"min_d": 0}, "'min_d' parameter of layers", id="d"),
    pytest.param(layers, {"dead": "yes"}, "'dead' parameter of layers", id="dead"),
    pytest.param(layers, {"max_exponent": 101}, "'max_exponent'", id="max_exponent"),
    pytest.param(layers, {"beta": 10**400}, "'beta' parameter of layers", id="beta huge"),
    pytest.param(activations, {"positive": 1}, "'positive' parameter of activations",
                 id="activations positive"),
    pytest.param(layers, {"beta": 0.0}, "beta", id="beta"),
    pytest.param(balls, {"min_exponent": 2, "max_exponent": 1}, "min_exponent", id="balls"),
    pytest.param(points_in_ball, {"d": 0, "beta": 1.0}, "'d' parameter of points_in_ball",
                 id="points d"),
    pytest.param(points_in_ball, {"d": 2, "beta": 1.0, "W_in": np.ones((2, 3))}, "'W_in'",
                 id="points W_in"),
    pytest.param(points_in_ball, {"d": 2, "beta": -1.0}, "beta", id="points beta"),
])
def test_strategy_arguments_checked(factory, kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        factory(**kwargs)
