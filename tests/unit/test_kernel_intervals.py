"""The interval kernel (coreset_verify.nets.intervals) at ordinary and extreme magnitudes."""

from __future__ import annotations

import numpy as np
import pytest

from coreset_verify.activations import get_activation, softplus
from coreset_verify.nets.intervals import (
    activation_range,
    affine_range,
    ball_range,
    box_norm,
    error_propagation,
    row_norms,
)

SCALES = [5e-324, 1e-310, 1e-300, 1e-150, 1.0, 1e150, 1e200, 1e300]


@pytest.mark.parametrize("scale", SCALES)
def test_row_norms_neither_underflow_nor_overflow(scale):
    v = np.array([[3.0, 4.0], [0.0, 0.0], [1.0, 0.0]])
    got = row_norms(scale * v)
    # (scale * 3, scale * 4) is exact in float64 down to 1e-310 only; at 5e-324
    # the entries themselves round, so compare with the rounded entries.
    want = np.array([np.hypot(scale * 3.0, scale * 4.0), 0.0, scale * 1.0])
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=0)
    assert got[0] > 0


def test_the_unscaled_norm_underflows_where_row_norms_does_not():
    w = np.full((1, 4), 1e-300)
    assert np.sqrt(np.einsum("ij,ij->i", w, w))[0] == 0.0  # what the old code computed
    np.testing.assert_allclose(row_norms(w), [2e-300], rtol=1e-15)


@pytest.mark.parametrize("scale", [1e-300, 1e-200, 1.0, 1e100, 1e200])
def test_ball_range_contains_sampled_values(scale):
    rng = np.random.default_rng(0)
    W, b = scale * rng.standard_normal((6, 5)), scale * rng.standard_normal(6)
    lo, hi = ball_range(W, b, 2.0)
    u = rng.standard_normal((2000, 5))
    x = 2.0 * u / np.linalg.norm(u, axis=1, keepdims=True)
    x = np.vstack([x, 2.0 * W / row_norms(W)[:, None], -2.0 * W / row_norms(W)[:, None]])
    z = x @ W.T + b
    assert np.all(z >= lo)
    assert np.all(z <= hi)
    assert np.all(hi - lo > 0)
    # tight: the extreme points attain the range up to the widening
    np.testing.assert_allclose(hi, z.max(axis=0), rtol=1e-9)


def test_affine_range_with_infinite_inputs_is_infinite_not_nan():
    W = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    lo, hi = affine_range(W, np.zeros(3), np.array([-np.inf, -1.0]), np.array([np.inf, 1.0]))
    assert not np.any(np.isnan(lo))
    assert not np.any(np.isnan(hi))
    assert lo[0] == -np.inf
    assert hi[0] == np.inf
    assert lo[2] == -np.inf
    assert -2.0 >= lo[1] > -2.0 - 1e-9
    assert 2.0 <= hi[1] < 2.0 + 1e-9


def test_softplus_threshold_range_is_sound():
    # torch's Softplus(threshold=5) drops by log1p(exp(-5)) at z = 5: on [4.999, 5.001]
    # its largest value, softplus(5) = 5.0067, is above both ends (5.0057 and 5.001).
    torch = pytest.importorskip("torch")
    act = softplus(1.0, 5.0)
    lo, hi = np.array([4.999]), np.array([5.001])
    out = activation_range(act, lo, hi)
    z = torch.linspace(4.999, 5.001, 20001, dtype=torch.float64)
    values = torch.nn.Softplus(beta=1.0, threshold=5.0)(z).numpy()
    assert values.max() > act.numpy(hi)[0]
    assert values.max() > act.numpy(lo)[0]
    assert out.lo[0] <= values.min()
    assert values.max() <= out.hi[0]


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "sigmoid", "tanh", "softplus", "elu"])
def test_activation_range_contains_the_module_values(name):
    torch = pytest.importorskip("torch")
    act = get_activation(name)
    rng = np.random.default_rng(1)
    a, b = np.sort(rng.normal(scale=10, size=(2, 50)), axis=0)
    out = activation_range(act, a, b)
    t = np.linspace(0, 1, 401)[:, None]
    z = torch.as_tensor(a + t * (b - a))
    v = act.torch_module()(z).numpy()
    assert np.all(v >= out.lo)
    assert np.all(v <= out.hi)


def test_box_norm_bounds_every_point_of_the_box():
    lo, hi = np.array([-1e-300, 2.0, -3.0]), np.array([1e-300, 3.0, 1.0])
    bound = box_norm(type(ball_range(np.eye(1), np.zeros(1), 1.0))(lo, hi))
    assert bound >= np.sqrt(9 + 9 + 1e-600)
    assert bound < np.sqrt(18) * (1 + 1e-9)


def test_error_propagation_is_the_product_of_abs_weights_times_lipschitz():
    W1, W2 = np.array([[1.0, -2.0]]), np.array([[3.0], [-1.0]])
    P = error_propagation(2, [W1, W2], [0.5, 2.0])
    want = np.abs(W2) @ (2.0 * (np.abs(W1) * 0.5))
    assert np.all(P >= want)
    np.testing.assert_allclose(P, want, rtol=3e-12)  # two products, 1e-12 margin each
    np.testing.assert_array_equal(error_propagation(3, [], []), np.eye(3))


@pytest.mark.parametrize(("first", "second"), [(1e-300, 1e300), (1e200, 1e-200)])
def test_search_interval_bound_holds_at_extreme_first_layer_weights(first, second):
    torch = pytest.importorskip("torch")
    from coreset_verify.search._intervals import interval_bounds
    from coreset_verify.search._problem import make_problem

    rng = np.random.default_rng(2)

    def net(w1, b1, w2):
        m = torch.nn.Sequential(torch.nn.Linear(3, w1.shape[0]), torch.nn.ReLU(),
                                torch.nn.Linear(w1.shape[0], 1, bias=False)).double()
        with torch.no_grad():
            m[0].weight.copy_(torch.as_tensor(w1))
            m[0].bias.copy_(torch.as_tensor(b1))
            m[2].weight.copy_(torch.as_tensor(w2))
        return m

    w1, b1 = first * rng.standard_normal((8, 3)), first * 0.1 * rng.standard_normal(8)
    w2 = second * rng.standard_normal((1, 8))
    f = net(w1, b1, w2)
    g = net(w1[:3], b1[:3], 2.0 * w2[:, :3])
    problem = make_problem(f, g, beta=1.0, lower=None, upper=None, scale=None)
    bound = interval_bounds(problem).bound
    assert np.isfinite(bound)
    assert bound > 0
    u = rng.standard_normal((3000, 3))
    x = u / np.linalg.norm(u, axis=1, keepdims=True)
    x[:1500] *= rng.random((1500, 1)) ** (1 / 3)
    with torch.no_grad():
        err = (f(torch.as_tensor(x)) - g(torch.as_tensor(x))).abs().numpy()
    assert err.max() > 0
    assert err.max() <= bound


@pytest.mark.parametrize("scale", [1e-300, 1e-250, 1.0, 1e200])
def test_input_basis_keeps_the_rank_of_extreme_weights(scale):
    # (float64-subnormal weights, 1e-310, are refused by the model reader:
    # tests/unit/test_kernel_model.py)
    torch = pytest.importorskip("torch")
    from coreset_verify.search._problem import make_problem

    rng = np.random.default_rng(5)
    net = torch.nn.Sequential(torch.nn.Linear(6, 3), torch.nn.ReLU(),
                              torch.nn.Linear(3, 1)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.as_tensor(scale * rng.standard_normal((3, 6))))
    problem = make_problem(net, net, beta=1.0, lower=None, upper=None, scale=None)
    Q = problem.input_basis
    assert Q.shape == (6, 3)
    W = problem.shared.weight
    x = rng.standard_normal(6)
    np.testing.assert_allclose(W @ (Q @ (Q.T @ x)), W @ x, rtol=1e-12,
                               atol=1e-12 * np.abs(W).sum(axis=1).max())


def _extreme_arrays(draw, shape, low, high):
    from hypothesis import strategies as st

    exponent = draw(st.integers(low, high))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return 10.0**exponent * rng.standard_normal(shape)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "softplus(beta=2.0, threshold=3.0)"])
def test_fuzz_propagation_contains_sampled_values_at_any_magnitude(activation):
    # Hypothesis draws magnitudes from 1e-320 (subnormal) to 1e300; 40 examples each.
    hyp = pytest.importorskip("hypothesis")
    from hypothesis import strategies as st

    act = get_activation(activation)

    @hyp.settings(max_examples=40, deadline=None, derandomize=True)
    @hyp.given(st.data())
    def check(data):
        W0 = _extreme_arrays(data.draw, (5, 3), -320, 300)
        b0 = _extreme_arrays(data.draw, 5, -320, 300)
        W1 = _extreme_arrays(data.draw, (2, 5), -300, 300)
        beta = 10.0 ** data.draw(st.integers(-5, 5))
        pre = ball_range(W0, b0, beta)
        post = activation_range(act, *pre)
        out = affine_range(W1, np.zeros(2), *post)
        rng = np.random.default_rng(0)
        u = rng.standard_normal((200, 3))
        x = beta * u / np.linalg.norm(u, axis=1, keepdims=True)
        x[100:] *= rng.random((100, 1))
        with np.errstate(all="ignore"):
            z = x @ W0.T + b0
            h = act.numpy(z)
            y = h @ W1.T
        for v, box in ((z, pre), (h, post), (y, out)):
            ok = np.isfinite(v)  # values float64 cannot hold: nothing to contain
            assert np.all(v[ok] >= np.broadcast_to(box.lo, v.shape)[ok])
            assert np.all(v[ok] <= np.broadcast_to(box.hi, v.shape)[ok])
            assert not np.any(np.isnan(box.lo))
            assert not np.any(np.isnan(box.hi))

    check()


def test_activation_range_refuses_an_activation_not_monotone_on_each_side():
    # SiLU's minimum (-0.2785 near -1.28) lies inside [-3, -0.5], below both ends
    # and below silu(0): the ends-and-zero rule would return a range that misses it.
    from coreset_verify import InvalidArgumentError, get_activation
    from coreset_verify.nets.intervals import activation_range

    with pytest.raises(InvalidArgumentError, match=r"activation_range.*monotone"):
        activation_range(get_activation("silu"), np.array([-3.0]), np.array([-0.5]))
    z = np.linspace(-3.0, -0.5, 10001)
    assert float(np.min(z / (1 + np.exp(-z)))) < -0.2784  # the dip the rule would miss
