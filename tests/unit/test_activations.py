"""Each registered activation has the properties it claims (numerically)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from coreset_verify import (
    Activation,
    available_activations,
    get_activation,
    layer_coreset,
    phi_hi,
    register_activation,
    sample_size_for,
    theoretical_bound,
)
from coreset_verify import activations as activations_module

NAMES = available_activations()
# Dense grid: steps of 1e-4 on [-60, 60].
GRID = np.linspace(-60.0, 60.0, 1_200_001)
HUGE = np.array([-np.finfo(np.float64).max, -1e300, -1e10, -1e3, -745.0, -710.0,
                 710.0, 745.0, 1e3, 1e10, 1e300, np.finfo(np.float64).max])


def test_builtins_registered():
    assert set(NAMES) >= {"relu", "leaky_relu", "sigmoid", "softplus", "tanh", "elu", "silu"}


@pytest.mark.parametrize("name", NAMES)
def test_claimed_properties_hold_on_a_dense_grid(name):
    act = get_activation(name)
    y = act(GRID)
    assert y.dtype == np.float64
    assert np.all(np.isfinite(y))
    dy = np.diff(y)
    if act.is_nondecreasing:
        assert np.all(dy >= 0), f"{name} decreases at z={GRID[np.argmin(dy)]}"
    else:
        assert np.any(dy < 0), f"{name} claims not non-decreasing but never decreases"
    if act.is_nonnegative:
        assert np.all(y >= 0)
    if act.is_positive:
        assert np.all(y > 0)
    slopes = np.abs(dy) / np.diff(GRID)
    assert np.max(slopes) <= act.lipschitz * (1 + 1e-9)


@pytest.mark.parametrize(
    ("name", "z", "want"),
    [
        ("relu", [-2.0, 0.0, 3.0], [0.0, 0.0, 3.0]),
        ("leaky_relu", [-2.0, 0.0, 3.0], [-0.02, 0.0, 3.0]),
        ("sigmoid", [0.0, math.log(3.0)], [0.5, 0.75]),
        ("softplus", [0.0, math.log(math.e - 1)], [math.log(2.0), 1.0]),
        ("tanh", [0.0, math.atanh(0.5)], [0.0, 0.5]),
        ("elu", [-math.log(2.0), 2.0], [-0.5, 2.0]),
        ("silu", [0.0, math.log(3.0)], [0.0, 0.75 * math.log(3.0)]),
    ],
)
def test_known_values(name, z, want):
    np.testing.assert_allclose(get_activation(name)(np.array(z)), want, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("name", NAMES)
def test_no_overflow_warnings_on_large_inputs(name):
    act = get_activation(name)
    # Underflow to zero (exp(-1e3)) is harmless; overflow and NaN are not.
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        y = act(HUGE)
    assert np.all(~np.isnan(y))
    if act.is_nondecreasing:
        assert np.all(np.diff(y) >= 0)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_numpy_and_torch_agree(name, dtype):
    torch = pytest.importorskip("torch")
    act = get_activation(name)
    z = np.concatenate([GRID[::500], HUGE if dtype == "float64" else np.array([-1e30, 1e30])])
    z = z.astype(dtype)
    got = act(torch.as_tensor(z))
    assert isinstance(got, torch.Tensor)
    assert got.dtype == getattr(torch, dtype)
    want = act(z)
    assert want.dtype == np.dtype(dtype)
    rtol = 1e-12 if dtype == "float64" else 1e-6
    tiny = float(np.finfo(dtype).tiny)
    np.testing.assert_allclose(got.numpy(), want, rtol=rtol, atol=tiny)


@pytest.mark.parametrize("name", [n for n in NAMES if get_activation(n).torch_module])
def test_torch_module_matches(name):
    torch = pytest.importorskip("torch")
    act = get_activation(name)
    z = torch.as_tensor(GRID[::500])
    module = act.torch_module()
    # torch.nn.Softplus returns z itself above its threshold 20, an absolute
    # difference log1p(exp(-20)) < 2.1e-9 from the exact softplus.
    atol = 2.1e-9 if name == "softplus" else 1e-15
    np.testing.assert_allclose(module(z).numpy(), act(z).numpy(), rtol=1e-12, atol=atol)


@pytest.fixture
def private_registry(monkeypatch):
    """A copy of the registry, restored after the test."""
    monkeypatch.setattr(activations_module, "_REGISTRY", dict(activations_module._REGISTRY))


def _relu6():
    return Activation("relu6_test", lambda z, xp: xp.clip(z, 0.0, 6.0),
                      is_nondecreasing=True, is_nonnegative=True, is_positive=False,
                      lipschitz=1.0)


def test_user_registered_activation_end_to_end(private_registry):
    register_activation(_relu6())
    assert "relu6_test" in available_activations()
    gen = np.random.default_rng(3)
    W_in, b_in, W_out = gen.normal(size=(20, 3)), gen.normal(size=20) * 5, gen.normal(size=(2, 20))
    want_hi = np.clip(b_in + 1.5 * np.linalg.norm(W_in, axis=1), 0.0, 6.0)
    np.testing.assert_allclose(phi_hi(W_in, b_in, beta=1.5, activation="relu6_test"), want_hi,
                               rtol=1e-12, atol=0)
    m = sample_size_for(W_in, b_in, W_out, epsilon=0.5, delta=0.1, beta=1.5,
                        activation="relu6_test", kind="pointwise")
    c = layer_coreset(W_in, b_in, W_out, sample_size=m, beta=1.5, activation="relu6_test", rng=0)
    assert c.activation.name == "relu6_test"
    assert theoretical_bound(c, delta=0.1, kind="pointwise").epsilon <= 0.5
    # The instance itself works too, without the registry.
    c2 = layer_coreset(W_in, b_in, W_out, sample_size=m, beta=1.5, activation=_relu6(), rng=0)
    np.testing.assert_array_equal(c2.counts, c.counts)


def test_overwrite(private_registry):
    register_activation(_relu6())
    register_activation(_relu6(), overwrite=True)
    assert available_activations().count("relu6_test") == 1
