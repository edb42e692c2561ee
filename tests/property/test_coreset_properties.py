"""Properties of every coreset, for every layer Hypothesis can build."""

from __future__ import annotations

import numpy as np
import pytest
from _magnitudes import reject_magnitudes
from hypothesis import assume, given, target
from hypothesis import strategies as st

from coreset_verify import (
    InvalidArgumentError,
    envelope,
    get_activation,
    phi_hi,
    theoretical_bound,
)
from coreset_verify import (
    layer_coreset as _layer_coreset,
)
from coreset_verify.strategies import activations, balls, layers, points_in_ball

layer_coreset = reject_magnitudes(_layer_coreset)

RTOL = 1e-12
seeds = st.integers(0, 2**32 - 1)
reductions = st.sampled_from(["per-output", "raw-max"])


def _numpy(a):
    return a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)


def _scatter(c, n):
    full = np.zeros((_numpy(c.weight_out).shape[0], n))
    full[:, _numpy(c.indices)] = _numpy(c.weight_out)
    return full


def _live(c):
    return _numpy(c.probabilities) > 0


# --------------------------------------------------------------------------
# Counts and indices
# --------------------------------------------------------------------------


@given(layer=layers(), activation=activations(), beta=balls(), m=st.integers(1, 80),
       seed=seeds, split=st.booleans(), reduction=reductions)
def test_counts_and_indices(xp, layer, activation, beta, m, seed, split, reduction):
    W_in, b_in, W_out = (xp.asarray(a) for a in layer)
    if split and m < 2:
        m = 2
    c = layer_coreset(W_in, b_in, W_out, sample_size=m, beta=beta, activation=activation,
                      rng=seed, split_signs=split, reduction=reduction)
    counts, idx = _numpy(c.counts), _numpy(c.indices)
    n, k = layer[0].shape[0], layer[2].shape[0]
    assert counts.shape == (n,)
    assert int(counts.sum()) == m == c.sample_size
    assert np.all(counts >= 0)
    live = _live(c)
    assert c.n_kept <= min(m, int(live.sum()))
    assert not np.any(counts[~live]), "a neuron of probability 0 was kept"
    np.testing.assert_array_equal(idx, np.flatnonzero(counts))  # sorted, unique
    assert np.all(np.diff(idx) > 0)
    assert xp.is_native(c.weight_out)
    assert tuple(c.weight_out.shape) == (k, c.n_kept)
    W_in_r, b_in_r, _ = c.pruned()
    assert tuple(W_in_r.shape) == (c.n_kept, layer[0].shape[1])
    assert tuple(b_in_r.shape) == (c.n_kept,)


@given(layer=layers(min_n=2, max_n=10), activation=activations(), beta=balls(), seed=seeds,
       data=st.data())
def test_distinct_keeps_exactly_r(xp, layer, activation, beta, seed, data):
    W_in, b_in, W_out = (xp.asarray(a) for a in layer)
    c0 = layer_coreset(W_in, b_in, W_out, sample_size=1, beta=beta, activation=activation,
                       rng=0)
    pr = _numpy(c0.probabilities)
    live = int(np.count_nonzero(pr > 0))
    # Neurons of tiny probability would need millions of draws: keep r to the
    # live neurons of probability >= 1e-3 (the rest is the max_draws test).
    reachable = int(np.count_nonzero(pr >= 1e-3))
    assume(reachable >= 1)
    r = data.draw(st.integers(1, reachable), label="r")
    c = layer_coreset(W_in, b_in, W_out, distinct=r, beta=beta, activation=activation,
                      rng=seed)
    assert c.n_kept == r
    assert c.distinct == r
    assert c.sample_size >= r
    assert int(_numpy(c.counts).sum()) == c.sample_size
    with pytest.raises(InvalidArgumentError, match=f"distinct={live + 1}"):
        layer_coreset(W_in, b_in, W_out, distinct=live + 1, beta=beta, activation=activation,
                      rng=seed)


# --------------------------------------------------------------------------
# Invariances
# --------------------------------------------------------------------------


@given(layer=layers(), activation=activations(), beta=balls(), m=st.integers(1, 50),
       seed=seeds, data=st.data(), reduction=reductions)
def test_permutation_equivariance(layer, activation, beta, m, seed, data, reduction):
    W_in, b_in, W_out = layer
    n = W_in.shape[0]
    perm = np.array(data.draw(st.permutations(range(n)), label="perm"))
    inv = np.argsort(perm)
    kw = {"beta": beta, "activation": activation, "reduction": reduction}
    c = layer_coreset(W_in, b_in, W_out, sample_size=m, rng=seed, **kw)
    cp = layer_coreset(W_in[perm], b_in[perm], W_out[:, perm], sample_size=m, rng=seed, **kw)
    # Probabilities are permuted exactly (up to summation order).
    np.testing.assert_allclose(cp.probabilities, c.probabilities[perm], rtol=RTOL, atol=0)
    np.testing.assert_allclose(cp.scale, c.scale, rtol=RTOL, atol=0)
    # By construction: the permuted coreset's re-weighting, mapped back, is
    # the original layer's re-weighting W cnt / (m pr) of the mapped counts.
    cnt = np.asarray(cp.counts)[inv]
    pr = np.asarray(c.probabilities)
    want = np.zeros_like(W_out)
    drawn = cnt > 0
    want[:, drawn] = W_out[:, drawn] * cnt[drawn] / (m * pr[drawn])
    np.testing.assert_allclose(_scatter(cp, n)[:, inv], want, rtol=RTOL, atol=0)


@given(layer=layers(), activation=activations(), beta=balls(), m=st.integers(1, 50),
       seed=seeds, exponent=st.integers(-20, 20), split=st.booleans(), reduction=reductions)
def test_scaling_w_out_by_power_of_two(layer, activation, beta, m, seed, exponent, split,
                                       reduction):
    # c = 2**e scales every float exactly: the same seed gives the same draws
    # and weight_out is scaled by c.
    W_in, b_in, W_out = layer
    if split:
        m = max(m, 2)
    scale = 2.0**exponent
    kw = {"beta": beta, "activation": activation, "split_signs": split, "reduction": reduction}
    c = layer_coreset(W_in, b_in, W_out, sample_size=m, rng=seed, **kw)
    cs = layer_coreset(W_in, b_in, scale * W_out, sample_size=m, rng=seed, **kw)
    np.testing.assert_allclose(cs.probabilities, c.probabilities, rtol=RTOL, atol=0)
    np.testing.assert_array_equal(cs.counts, c.counts)
    np.testing.assert_allclose(cs.weight_out, scale * c.weight_out, rtol=RTOL, atol=0)
    np.testing.assert_allclose(cs.scale, scale * c.scale, rtol=RTOL, atol=0)


@given(layer=layers(), activation=activations(), beta=balls(), m=st.integers(1, 50),
       seed=seeds, exponent=st.integers(-6, 6), mantissa=st.floats(1.0, 2.0),
       reduction=reductions)
def test_scaling_w_out(layer, activation, beta, m, seed, exponent, mantissa, reduction):
    # Any c > 0: probabilities unchanged up to rounding. A last-bit change of
    # pr may move a draw between (e.g. duplicate) neurons, so the draws are
    # compared through the re-weighting: weight_out = c W cnt / (m pr).
    W_in, b_in, W_out = layer
    scale = mantissa * 10.0**exponent
    kw = {"beta": beta, "activation": activation, "reduction": reduction}
    c = layer_coreset(W_in, b_in, W_out, sample_size=m, rng=seed, **kw)
    cs = layer_coreset(W_in, b_in, scale * W_out, sample_size=m, rng=seed, **kw)
    np.testing.assert_allclose(cs.probabilities, c.probabilities, rtol=RTOL, atol=0)
    np.testing.assert_allclose(cs.scale, scale * c.scale, rtol=RTOL, atol=0)
    cnt, pr = np.asarray(cs.counts), np.asarray(c.probabilities)
    drawn = cnt > 0
    want = np.zeros_like(W_out)
    want[:, drawn] = scale * W_out[:, drawn] * cnt[drawn] / (m * pr[drawn])
    np.testing.assert_allclose(_scatter(cs, W_in.shape[0]), want, rtol=RTOL, atol=0)


@given(layer=layers(dead=False), beta=balls(), beta2=balls(), split=st.booleans(),
       reduction=reductions)
def test_relu_without_bias_ignores_beta(layer, beta, beta2, split, reduction):
    W_in, _, W_out = layer
    b_in = np.zeros(W_in.shape[0])
    assume(np.any(np.abs(W_out) @ np.linalg.norm(W_in, axis=1) > 0))
    kw = {"sample_size": 10, "rng": 0, "split_signs": split, "reduction": reduction}
    c = layer_coreset(W_in, b_in, W_out, beta=beta, **kw)
    c2 = layer_coreset(W_in, b_in, W_out, beta=beta2, **kw)
    np.testing.assert_allclose(c2.probabilities, c.probabilities, rtol=RTOL, atol=0)
    for p, p2 in zip(c.parts, c2.parts, strict=True):
        np.testing.assert_allclose(p2.probabilities, p.probabilities, rtol=RTOL, atol=0)


@given(layer=layers(max_k=1), activation=activations(nonnegative=True), beta=balls(),
       m=st.integers(1, 200), seed=seeds)
def test_k1_nonnegative_weights_reproduce_T_exactly(layer, activation, beta, m, seed):
    # pr_j = w_j phi_hi_j / T, so u_j phi_hi_j = w_j cnt_j phi_hi_j / (m pr_j)
    # = cnt_j T / m and the sum over j is exactly T, for every draw.
    W_in, b_in, W_out = layer
    W_out = np.abs(W_out)
    c = layer_coreset(W_in, b_in, W_out, sample_size=m, beta=beta, activation=activation,
                      rng=seed)
    hi = phi_hi(W_in, b_in, beta=beta, activation=activation)
    got = float(np.asarray(c.weight_out)[0] @ hi[np.asarray(c.indices)])
    T = float(W_out[0] @ hi)
    target(abs(got - T) / T, label="relative error of sum_j u_j phi_hi_j")
    np.testing.assert_allclose(got, T, rtol=RTOL, atol=0)
    np.testing.assert_allclose(c.scale, [T], rtol=RTOL, atol=0)


@given(layer=layers(), activation=activations(), beta=balls(), m=st.integers(2, 50),
       seed=seeds, split=st.booleans(), reduction=reductions)
def test_every_draw_is_bounded_by_t_eff(layer, activation, beta, m, seed, split, reduction):
    # One draw of neuron j adds |W_out[i, j]| env_j / pr_j to output i; the
    # proof bounds it by t_eff T_i (t_eff = Bound.sensitivity), for every
    # live j and every i, in each sign part.
    W_in, b_in, W_out = layer
    c = layer_coreset(W_in, b_in, W_out, sample_size=m, beta=beta, activation=activation,
                      rng=seed, split_signs=split, reduction=reduction)
    t_eff = theoretical_bound(c, delta=0.1, kind="pointwise").sensitivity
    env = envelope(W_in, b_in, beta=beta, activation=activation)
    worst = 0.0
    for part in c.parts:
        if part.sample_size == 0:
            continue
        W = {0: W_out, 1: np.maximum(W_out, 0), -1: np.maximum(-W_out, 0)}[part.sign]
        A = np.abs(W) * env
        T = A.sum(axis=1)
        live = part.probabilities > 0
        assert np.all(A[:, ~live] == 0), "a neuron of probability 0 carries weight"
        contribution = A[:, live] / part.probabilities[live]
        rows = T > 0
        ratio = contribution[rows] / T[rows, None]
        worst = max(worst, float(ratio.max(initial=0.0)))
        assert np.all(contribution[rows] <= t_eff * T[rows, None] * (1 + 1e-12))
    target(worst / t_eff, label="largest draw / (t_eff T_i)")
    if reduction == "per-output":
        np.testing.assert_allclose(t_eff, max(c.total_sensitivity if not split else 0.0,
                                              *(_part_total(W_in, b_in, W_out, p, beta,
                                                            activation) for p in c.parts)),
                                   rtol=1e-9, atol=0)


def _part_total(W_in, b_in, W_out, part, beta, activation):
    """t of one sign part (per-output reduction): t_eff equals it when pr = s / t."""
    if part.sample_size == 0:
        return 0.0
    W = {0: W_out, 1: np.maximum(W_out, 0), -1: np.maximum(-W_out, 0)}[part.sign]
    env = envelope(W_in, b_in, beta=beta, activation=activation)
    A = np.abs(W) * env
    T = A.sum(axis=1, keepdims=True)
    S = np.divide(A, T, out=np.zeros_like(A), where=T > 0)
    return float(S.max(axis=0).sum())


@given(layer=layers(), activation=activations(), beta=balls(), m=st.integers(1, 40),
       seed=seeds, split=st.booleans(), data=st.data())
def test_deterministic_bound_holds_everywhere(layer, activation, beta, m, seed, split, data):
    # Bound.deterministic bounds max_i (|F_i| + |F~_i|) / T_i from the weights
    # alone: it holds with probability one, at every input of the ball.
    W_in, b_in, W_out = layer
    if split:
        m = max(m, 2)
    c = layer_coreset(W_in, b_in, W_out, sample_size=m, beta=beta, activation=activation,
                      rng=seed, split_signs=split)
    b = theoretical_bound(c, delta=0.5, kind="pointwise")
    x = data.draw(points_in_ball(W_in.shape[1], beta, W_in=W_in), label="x")
    act = get_activation(activation)
    F = W_out @ act(W_in @ x + b_in)
    Wr, br, U = c.pruned()
    G = np.asarray(U) @ act(np.asarray(Wr) @ x + np.asarray(br))
    rows = b.scale > 0
    ratio = np.abs(F - G)[rows] / b.scale[rows]
    target(float(ratio.max(initial=0.0)) / b.deterministic, label="error / deterministic")
    assert np.all(ratio <= b.deterministic * (1 + 1e-9))
    assert np.all(np.abs(F - G)[~rows] <= 1e-300)
