"""The layer-pair kernel: F, T_i and the torch modules agree with each other."""

from __future__ import annotations

import numpy as np
import pytest

from coreset_verify.errors import AssumptionError, InvalidArgumentError
from coreset_verify.nets import layer_pair_forward, layer_pair_modules, layer_pair_scale
from coreset_verify.sensitivity import layer_sensitivities


def _pair(seed=0, n=7, d=4, k=3):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.standard_normal(n), rng.standard_normal((k, n))


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "softplus", "elu"])
def test_forward_matches_modules_and_loop(activation):
    torch = pytest.importorskip("torch")
    W_in, b_in, W_out = _pair()
    x = np.random.default_rng(1).standard_normal((5, 4))
    got = layer_pair_forward(W_in, b_in, W_out, x, activation)
    net = layer_pair_modules(W_in, b_in, W_out, activation=activation)
    with torch.no_grad():
        ref = net(torch.as_tensor(x)).numpy()
    assert got.shape == (5, 3)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    one = layer_pair_forward(W_in, b_in, W_out, x[2], activation)
    np.testing.assert_allclose(one, got[2:3], rtol=1e-14, atol=1e-14)


def test_scale_is_the_sensitivity_scale_and_bounds_forward():
    W_in, b_in, W_out = _pair(seed=3)
    T = layer_pair_scale(W_in, b_in, W_out, beta=2.0, activation="tanh")
    ref = layer_sensitivities(W_in, b_in, W_out, beta=2.0, activation="tanh").scale
    np.testing.assert_allclose(T, ref, rtol=1e-15)
    rng = np.random.default_rng(4)
    u = rng.standard_normal((200, 4))
    x = 2.0 * u / np.linalg.norm(u, axis=1, keepdims=True)
    F = layer_pair_forward(W_in, b_in, W_out, x, "tanh")
    assert np.all(np.abs(F) <= T * (1 + 1e-12))


def test_forward_refuses_wrong_x_shape():
    W_in, b_in, W_out = _pair()
    with pytest.raises(InvalidArgumentError, match="'x' parameter of layer_pair_forward"):
        layer_pair_forward(W_in, b_in, W_out, np.zeros((2, 5)), "relu")


def test_scale_refuses_non_monotone_and_nan():
    W_in, b_in, W_out = _pair()
    with pytest.raises(AssumptionError):
        layer_pair_scale(W_in, b_in, W_out, beta=1.0, activation="silu")
    W_out[1, 2] = np.nan
    with pytest.raises(InvalidArgumentError, match="W_out"):
        layer_pair_scale(W_in, b_in, W_out, beta=1.0)


def test_network_reexports_layer_pair_modules():
    from coreset_verify import nets, network

    assert network.layer_pair_modules is nets.layer_pair_modules


@pytest.mark.parametrize(("first", "second"), [(1e-300, 1e300), (1e-150, 1.0), (1e150, 1e-150)])
def test_scale_bounds_forward_at_extreme_magnitudes(first, second):
    W_in, b_in, W_out = _pair(seed=5)
    W_in, b_in, W_out = first * W_in, first * b_in, second * W_out
    T = layer_pair_scale(W_in, b_in, W_out, beta=1.0, activation="relu")
    rng = np.random.default_rng(6)
    u = rng.standard_normal((500, 4))
    x = u / np.linalg.norm(u, axis=1, keepdims=True)
    F = layer_pair_forward(W_in, b_in, W_out, x, "relu")
    assert np.all(T > 0)
    assert np.all(np.abs(F) <= T * (1 + 1e-12))
    assert np.all(np.abs(F).max(axis=0) >= 0.1 * T)  # not vacuous
