"""The sound upper bounds of ``worst_case(method="bounds")``
(proofs_notes/search_bounds.md) against maxima known exactly.

* interval (sections 1-2): one neuron shared by both networks, sigmoid (so
  neither the linear nor the LP relaxation applies) or ReLU: the difference is
  ``D phi(w . x + b)``, largest at ``x = beta w / ||w||``, where the interval
  bound is exact. The bound must lie in ``[max, max (1 + 1e-8)]``.
* linear relaxation (section 3): three stably active ReLU neurons in three
  directions: ``f - g = g . x + c`` on the ball, maximum ``beta ||g|| + |c|``
  exactly, which the linear relaxation attains (the interval bound does not).
* triangle LP (section 4): unstable ReLU neurons on R^2; the maximum comes
  from a dense polar grid of the disk, refined at its best point, a lower
  bound on the truth; the bound must be above it and is reported for tightness.

A bound below the maximum, by more than float64 rounding, is a wrong sign or
margin. The tolerances are fixed: 1e-12 relative below, 1e-8 relative above
where the bound is exact.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("cvxpy")

from coreset_verify import worst_case  # noqa: E402


def _pair(W, b, a_f, a_g, act, bias_f=0.0, bias_g=0.0):
    """Two one-hidden-layer networks sharing the first layer ``(W, b)``."""
    def net(a, bias):
        model = torch.nn.Sequential(torch.nn.Linear(W.shape[1], W.shape[0]), act(),
                                    torch.nn.Linear(W.shape[0], 1)).double()
        with torch.no_grad():
            model[0].weight.copy_(torch.as_tensor(W))
            model[0].bias.copy_(torch.as_tensor(b))
            model[2].weight.copy_(torch.as_tensor(np.atleast_2d(a)))
            model[2].bias.fill_(bias)
        return model
    return net(a_f, bias_f), net(a_g, bias_g)


def _bound(f, g, beta=1.0):
    return worst_case(f, g, beta=beta, method="bounds", rng=0).upper_bound


@pytest.mark.parametrize(("act", "phi", "bias"), [
    (torch.nn.Sigmoid, lambda z: 1 / (1 + np.exp(-z)), 0.5),
    (torch.nn.ReLU, lambda z: np.maximum(z, 0.0), 0.5),
    # Unstable with hi < -lo: the chord's intercept alone is below the maximum.
    (torch.nn.ReLU, lambda z: np.maximum(z, 0.0), -1.0),
])
def test_interval_bound_is_exact_on_one_neuron(act, phi, bias):
    W, b = np.array([[1.0, 2.0, 2.0]]), np.array([bias])
    f, g = _pair(W, b, [2.0], [0.5], act)
    exact = 1.5 * phi(3.0 + bias)  # at x = w / ||w||, beta = 1
    ub = _bound(f, g)
    assert exact * (1 - 1e-12) <= ub <= exact * (1 + 1e-8)


def test_linear_relaxation_is_exact_on_stable_neurons():
    gen = np.random.default_rng(4)
    W = gen.normal(size=(3, 4))
    b = 2.0 + np.linalg.norm(W, axis=1)  # active on the whole unit ball
    D = np.array([1.0, -2.0, 0.5])
    f, g = _pair(W, b, D, np.zeros(3), torch.nn.ReLU, bias_f=0.3)
    grad, const = D @ W, D @ b + 0.3
    exact = np.linalg.norm(grad) + abs(const)
    interval = np.abs(D) @ (b + np.linalg.norm(W, axis=1)) + 0.3
    assert interval > exact * 1.1  # only the linear relaxation is exact here
    ub = _bound(f, g)
    assert exact * (1 - 1e-12) <= ub <= exact * (1 + 1e-8)


def _grid_max(f, g, beta):
    """Max of |f - g| over a polar grid of the disk (a lower bound on the max)."""
    r = beta * np.sqrt(np.linspace(0, 1, 300))
    th = np.linspace(0, 2 * np.pi, 1200, endpoint=False)
    X = (r[:, None, None] * np.stack([np.cos(th), np.sin(th)], -1)[None]).reshape(-1, 2)
    with torch.no_grad():
        xt = torch.as_tensor(X)
        return float((f(xt) - g(xt)).abs().max())


@pytest.mark.parametrize("seed", [0, 1])
def test_triangle_relaxation_is_above_the_maximum(seed):
    gen = np.random.default_rng(seed)
    W, b = gen.normal(size=(6, 2)), 0.3 * gen.normal(size=6)
    a = gen.normal(size=6)
    keep = np.zeros(6)
    keep[:3] = a[:3] * 2  # a pruned network: half the neurons, re-weighted
    f, g = _pair(W, b, a, keep, torch.nn.ReLU)
    lower = _grid_max(f, g, 1.0)
    result = worst_case(f, g, beta=1.0, method="bounds", rng=0)
    ub = result.upper_bound
    assert ub >= lower * (1 - 1e-12)
    for stage in result.trace:  # interval, linear, LP: each one is sound
        assert stage.upper_bound >= lower * (1 - 1e-12), stage
    assert ub <= 3 * lower, f"the relaxation is far looser than expected: {ub} vs {lower}"


def _two_output_pair(seed):
    """Two networks sharing a 6-neuron ReLU layer on R^2, two outputs each."""
    gen = np.random.default_rng(seed)
    W, b = gen.normal(size=(6, 2)), 0.4 * gen.normal(size=6)
    A, B = gen.normal(size=(2, 6)), gen.normal(size=(2, 6))
    B[:, :2] = 0.0  # the pruned network drops two neurons
    bf, bg = gen.normal(size=2), gen.normal(size=2)

    def net(out, bias):
        model = torch.nn.Sequential(torch.nn.Linear(2, 6), torch.nn.ReLU(),
                                    torch.nn.Linear(6, 2)).double()
        with torch.no_grad():
            model[0].weight.copy_(torch.as_tensor(W))
            model[0].bias.copy_(torch.as_tensor(b))
            model[2].weight.copy_(torch.as_tensor(out))
            model[2].bias.copy_(torch.as_tensor(bias))
        return model

    return (W, b, A, B, bf, bg), net(A, bf), net(B, bg)


def _hand_bounds(W, b, A, B, bf, bg, scale, beta=1.0):
    """search_bounds.md sections 1-3 by hand: (interval, linear) pair bounds, (k, 2)."""
    reach = beta * np.linalg.norm(W, axis=1)
    lo, hi = b - reach, b + reach  # section 1: exact on the ball
    plo, phi = np.maximum(lo, 0), np.maximum(hi, 0)
    mid, rad = (plo + phi) / 2, (phi - plo) / 2

    def affine(M, c):
        return M @ mid + c - np.abs(M) @ rad, M @ mid + c + np.abs(M) @ rad

    (flo, fhi), (glo, ghi) = affine(A, bf), affine(B, bg)
    jlo, jhi = affine(A - B, bf - bg)  # section 2: the difference network
    dlo, dhi = np.maximum(flo - ghi, jlo), np.minimum(fhi - glo, jhi)
    interval = np.stack([dhi, -dlo], axis=1) / scale[:, None]
    # Section 3: chord above, z or 0 below (the closer on the larger side).
    unstable = (lo < 0) & (hi > 0)
    su = np.where(lo >= 0, 1.0, np.where(hi <= 0, 0.0, hi / np.where(unstable, hi - lo, 1)))
    tu = np.where(unstable, -su * lo, 0.0)
    sl = np.where(lo >= 0, 1.0, np.where(hi <= 0, 0.0, (hi >= -lo).astype(float)))
    linear = np.empty_like(interval)
    for i in range(A.shape[0]):
        for s, sign in enumerate((1.0, -1.0)):
            coef = sign * (A[i] - B[i]) / scale[i]
            slopes = np.where(coef >= 0, coef * su, coef * sl)
            const = slopes @ b + np.sum(np.where(coef >= 0, coef * tu, 0.0))
            const += sign * (bf[i] - bg[i]) / scale[i]
            linear[i, s] = const + beta * np.linalg.norm(slopes @ W)
    return interval, linear


@pytest.mark.parametrize("seed", [0, 3, 5])
def test_interval_and_linear_stages_are_the_derivation(seed):
    (W, b, A, B, bf, bg), f, g = _two_output_pair(seed)
    scale = np.array([2.0, 0.5])
    interval, linear = _hand_bounds(W, b, A, B, bf, bg, scale)
    result = worst_case(f, g, beta=1.0, scale=scale, method="bounds", rng=0)
    stages = {stage.name: stage.upper_bound for stage in result.trace}
    np.testing.assert_allclose(stages["bounds:interval"], max(interval.max(), 0), rtol=1e-9)
    want = max(np.minimum(interval, linear).max(), 0)
    np.testing.assert_allclose(stages["bounds:linear"], want, rtol=1e-9)
    assert result.upper_bound <= want * (1 + 1e-9)
    with torch.no_grad():  # the grid maximum of the scaled objective is below every bound
        r = np.sqrt(np.linspace(0, 1, 200))
        th = np.linspace(0, 2 * np.pi, 800, endpoint=False)
        X = (r[:, None, None] * np.stack([np.cos(th), np.sin(th)], -1)[None]).reshape(-1, 2)
        xt = torch.as_tensor(X)
        lower = float(((f(xt) - g(xt)).abs().numpy() / scale).max())
    assert result.upper_bound >= lower * (1 - 1e-12)
