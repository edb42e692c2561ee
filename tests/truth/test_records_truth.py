"""What a Bound says about itself, and the multiplicative uniform bound, against
the derivation (proofs_notes/multiplicative.md, uniform.md, split_signs.md).

These are the fast checks that mutation testing showed missing: the record's
fields are the ones asked for, the scale at x is ``T`` or ``G(x)`` by hand,
a sign part with no weight costs no delta, and Theorem U for the
multiplicative form is recomputed term by term.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from _truth_reference import concentration, hadamard, identical_neurons
from test_uniform_truth import BALL_RADII, CANDIDATES, ELLIPSOID_GRID, SVD_MARGIN

from coreset_verify import layer_coreset, theoretical_bound


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


@pytest.mark.parametrize("distinct", [False, True])
def test_bound_records_what_was_asked(distinct):
    W_in, b_in = identical_neurons(64)
    options = {"distinct": 40} if distinct else {"sample_size": 300}
    c = layer_coreset(W_in, b_in, hadamard(64), beta=1.0, rng=0, **options)
    b = theoretical_bound(c, delta=0.05, kind="pointwise")
    assert b.delta == 0.05  # the delta the user asked for, distinct or not
    assert b.sample_size == c.sample_size
    assert b.kind == "pointwise"
    assert b.form == "additive"
    assert b.assumptions == ("is_nondecreasing",)
    np.testing.assert_allclose(b.scale, np.full(64, 64.0), rtol=1e-12)
    m = theoretical_bound(c, delta=0.05, kind="pointwise", form="multiplicative")
    assert m.assumptions == ("is_nondecreasing", "is_nonnegative")


def test_scale_at_is_t_or_g_of_x_by_hand():
    gen = np.random.default_rng(3)
    W_in, b_in, W_out = gen.normal(size=(7, 3)), gen.normal(size=7), gen.normal(size=(2, 7))
    c = layer_coreset(W_in, b_in, W_out, sample_size=50, beta=1.0, activation="sigmoid",
                      rng=0)
    X = 0.3 * gen.normal(size=(5, 3))
    env = _sigmoid(b_in + np.linalg.norm(W_in, axis=1))
    T = np.abs(W_out) @ env
    additive = theoretical_bound(c, delta=0.1, kind="pointwise")
    np.testing.assert_allclose(additive.scale_at(X), np.tile(T, (5, 1)), rtol=1e-12)
    mult = theoretical_bound(c, delta=0.1, kind="pointwise", form="multiplicative")
    G = _sigmoid(X @ W_in.T + b_in) @ np.abs(W_out).T
    np.testing.assert_allclose(mult.scale_at(X), G, rtol=1e-12)


def test_an_empty_sign_part_costs_no_delta():
    # W_out >= 0: split_signs samples one part, at the full delta, exactly as
    # without split_signs (split_signs.md: "delta when one part is empty").
    W_in, b_in = identical_neurons(64)
    W_out = (1 + hadamard(64)[1:9]) / 2
    for kind in ("pointwise", "uniform"):
        joint = layer_coreset(W_in, b_in, W_out, sample_size=200, beta=1.0, rng=4)
        split = layer_coreset(W_in, b_in, W_out, sample_size=200, beta=1.0, rng=4,
                              split_signs=True)
        a = theoretical_bound(joint, delta=0.05, kind=kind)
        b = theoretical_bound(split, delta=0.05, kind=kind)
        np.testing.assert_allclose(b.statistical, a.statistical, rtol=1e-12)


def test_uniform_multiplicative_epsilon_is_the_derivation():
    # The sigmoid layer of test_multiplicative_truth: 50 neurons, rows +-20 on
    # R^1, weights 1, beta = 1. multiplicative.md, "Uniform": on every
    # candidate net, eps_net + r (eps_net Lip_G + Lip) / G_lo, with
    # Lip_G = Lphi sum_j |W_j| ||w_j|| (in x) or Lphi ||W||_2 (in z), the
    # realised Lip of uniform.md, G_lo = sum_j |W_j| phi_lo[j], Lphi = 1/4.
    W_in = np.array([[20.0]] + [[-20.0]] * 49)
    b_in, W_out, m, delta = np.zeros(50), np.ones((1, 50)), 400, 0.1
    c = layer_coreset(W_in, b_in, W_out, sample_size=m, beta=1.0, activation="sigmoid", rng=1)
    b = theoretical_bound(c, delta=delta, kind="uniform", form="multiplicative")
    hi, lo = _sigmoid(20.0), _sigmoid(-20.0)
    g_lo = 50 * lo
    S = hi / (hi + g_lo - lo)
    t = 50 * S
    cnt = np.asarray(c.counts, dtype=float)
    draws = cnt * 50 / m  # cnt_j / (m pr_j)
    lip = 0.25 * 20 * np.sum(np.abs(1 - draws))
    zlip = 0.25 * np.linalg.norm(1 - draws)
    lip_g, zlip_g = 0.25 * 20 * 50, 0.25 * math.sqrt(50)
    L0 = math.log(2 / delta) + math.log(CANDIDATES)
    best = math.inf
    for r in BALL_RADII:
        eps = concentration(m, t, L0 + math.log1p(2 / r))  # d' = min(50, 1) = 1
        best = min(best, eps + r * (eps * lip_g + lip) / g_lo)
    a1 = math.sqrt(50 * 400) * (1 + SVD_MARGIN)
    for tau in a1 * ELLIPSOID_GRID:
        big = 1 if a1 > tau else 0
        for rho in a1 * ELLIPSOID_GRID:
            L = L0 + big * (math.log(2) / 2 + math.log1p(2 * a1 / rho))
            eps = concentration(m, t, L)
            best = min(best, eps + math.hypot(rho, tau) * (eps * zlip_g + zlip) / g_lo)
    np.testing.assert_allclose(b.statistical, best, rtol=1e-9)
    # The cap: 1 + sum_j cnt_j S_j / (m pr_j) = 1 + S sum_j draws_j = 1 + 50 S.
    np.testing.assert_allclose(b.deterministic, 1 + S * np.sum(draws), rtol=1e-9)


def test_sample_size_for_asymmetric_split_is_the_derivation():
    # + part: 16 rows (1 + H_i)/2 over 64 identical neurons, t+ = 2; - part: one
    # row of -1, t- = 1. m+ = round(2 m / 3); each part at delta / 2, k = 17.
    from test_pointwise_truth import _smallest_m

    W_in, b_in = identical_neurons(64)
    W_out = np.vstack([(1 + hadamard(64)[1:17]) / 2, -np.ones((1, 64))])
    epsilon, delta = 0.3, 0.05
    L = math.log(2 * 17 / (delta / 2))

    def bound(m):
        if m < 2:
            return math.inf
        m_pos = min(max(round(m * 2 / 3), 1), m - 1)
        return max(concentration(m_pos, 2.0, L), concentration(m - m_pos, 1.0, L))

    from coreset_verify import sample_size_for

    got = sample_size_for(W_in, b_in, W_out, epsilon=epsilon, delta=delta, beta=1.0,
                          kind="pointwise", split_signs=True)
    assert got == _smallest_m(bound, epsilon)
    c = layer_coreset(W_in, b_in, W_out, sample_size=got, beta=1.0, rng=0, split_signs=True)
    assert sorted(p.sample_size for p in c.parts) == sorted(
        [round(got * 2 / 3), got - round(got * 2 / 3)])
    np.testing.assert_allclose(theoretical_bound(c, delta=delta, kind="pointwise").statistical,
                               bound(got), rtol=1e-12)


def test_lemma_1_needs_a_monotone_activation():
    from coreset_verify import AssumptionError, envelope, layer_sensitivities, phi_hi, phi_lo

    W_in, b_in = np.ones((2, 2)), np.zeros(2)
    for func in (phi_hi, phi_lo, envelope):
        with pytest.raises(AssumptionError):
            func(W_in, b_in, beta=1.0, activation="silu")
    with pytest.raises(AssumptionError):
        layer_sensitivities(W_in, b_in, np.ones((1, 2)), beta=1.0, activation="silu")


def test_distinct_draws_follow_the_coupon_law():
    # Two neurons with probabilities 0.98 and 0.02 (weights 49 and 1 on two
    # identical neurons), distinct = 2: m = 1 + the wait for the other one,
    # E[m] = 1 + p / (1 - p) + (1 - p) / p = 50.02; most runs need more than
    # one chunk of draws. 1,000 seeds; the sample mean of m is within 6
    # standard errors (Var m <= (1 - p) / p^2 = 2450), false-alarm rate < 1e-8.
    W_in, b_in = identical_neurons(2)
    W_out = np.array([[49.0, 1.0]])
    ms = []
    for seed in range(1000):
        c = layer_coreset(W_in, b_in, W_out, distinct=2, beta=1.0, rng=seed)
        counts = np.asarray(c.counts)
        assert counts.sum() == c.sample_size
        assert np.all(counts >= 1)  # both neurons, each drawn
        ms.append(c.sample_size)
    p = 0.02
    mean = 1 + p / (1 - p) + (1 - p) / p
    assert abs(np.mean(ms) - mean) <= 6 * math.sqrt((1 - p) / p**2 / 1000)
    assert max(ms) > 128  # the multi-chunk path was taken
