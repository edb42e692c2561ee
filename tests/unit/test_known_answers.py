"""Known answers derived by hand (cvxpy's habit: tiny problems, exact optima).

The layer, worked out on paper (ReLU, beta = 1)::

    W_in = [[3, 4],      ||W_in[0]|| = 5,  b_in[0] = -1
            [0, 1]]      ||W_in[1]|| = 1,  b_in[1] =  1
    phi_hi = [relu(5 - 1), relu(1 + 1)] = [4, 2]
    phi_lo = [relu(-5 - 1), relu(-1 + 1)] = [0, 0]

    W_out = [[1, -3],    T_1 = 1*4 + 3*2 = 10,  s_1 = [4/10, 6/10] = [0.4, 0.6]
             [2,  0]]    T_2 = 2*4 + 0*2 = 8,   s_2 = [8/8, 0/8]  = [1.0, 0.0]

    per-output: s = [max(0.4, 1), max(0.6, 0)] = [1, 0.6], t = 1.6,
                pr = [1/1.6, 0.6/1.6] = [0.625, 0.375]
    raw-max:    s = [max(4, 8), max(6, 0)] = [8, 6], t = 14, pr = [4/7, 3/7]
    k = 1 (first row only): s = [0.4, 0.6], t = 1, pr = [0.4, 0.6]

Given counts cnt from m draws, U = W_out * cnt / (m * pr), e.g. m = 4,
cnt = [3, 1] gives U = [[3/2.5, -3/1.5], [6/2.5, 0]] = [[1.2, -2], [2.4, 0]].

Concentration (guarantees.concentration_epsilon), L = log(2k/delta):
    m = 100, t = 1.6, k = 2, delta = 0.1: L = log 40 = 3.688879...
    Hoeffding t sqrt(2L/m) = 1.6 * 0.2716206 = 0.4345925
    Bernstein: a = 2 (t + 1) L / 3 = 6.394057, root of m e^2 = L(2t + 2(t+1)e/3)
               e = (a + sqrt(a^2 + 8 m t L)) / (2m) = (6.394057 + 69.012) / 200
                 = 0.3770301  (the smaller: the pointwise epsilon)
    m = 100, t = 1, L = log 20 = 2.995732: Hoeffding 0.2447747 is the smaller.
Paper form, C = 1, d' = d + 1 = 3: sqrt(1.6 (3 log 1.6 + log 10) / 100)
    = sqrt(1.6 * 3.7125960 / 100) = 0.2437243.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from coreset_verify import (
    envelope,
    layer_coreset,
    layer_sensitivities,
    neuron_coreset,
    output_sensitivities,
    phi_hi,
    phi_lo,
    theoretical_bound,
)
from coreset_verify.guarantees import concentration_epsilon  # checked, never the reference


def hand_concentration(m, t, L):
    """The reference for Theorem P, from proofs_notes/pointwise.md: min of
    Hoeffding ``t sqrt(2L/m)`` and the Bernstein root
    ``(a + sqrt(a^2 + 8 m t L)) / (2m)``, ``a = 2 (t + 1) L / 3``."""
    a = 2 * (t + 1) * L / 3
    return min(t * math.sqrt(2 * L / m), (a + math.sqrt(a * a + 8 * m * t * L)) / (2 * m))


W_IN = np.array([[3.0, 4.0], [0.0, 1.0]])
B_IN = np.array([-1.0, 1.0])
W_OUT = np.array([[1.0, -3.0], [2.0, 0.0]])
RTOL = 1e-12


def test_phi_hi_phi_lo_envelope():
    np.testing.assert_allclose(phi_hi(W_IN, B_IN, beta=1.0), [4.0, 2.0], rtol=RTOL, atol=0)
    np.testing.assert_allclose(phi_lo(W_IN, B_IN, beta=1.0), [0.0, 0.0], rtol=RTOL, atol=0)
    np.testing.assert_allclose(envelope(W_IN, B_IN, beta=1.0), [4.0, 2.0], rtol=RTOL, atol=0)


def test_per_output_sensitivities():
    np.testing.assert_allclose(
        output_sensitivities(W_IN, B_IN, W_OUT, beta=1.0),
        [[0.4, 0.6], [1.0, 0.0]], rtol=RTOL, atol=1e-300,
    )
    s = layer_sensitivities(W_IN, B_IN, W_OUT, beta=1.0)
    np.testing.assert_allclose(s.scale, [10.0, 8.0], rtol=RTOL, atol=0)
    np.testing.assert_allclose(s.sensitivity, [1.0, 0.6], rtol=RTOL, atol=0)
    np.testing.assert_allclose(s.total, 1.6, rtol=RTOL, atol=0)
    np.testing.assert_allclose(s.probabilities, [0.625, 0.375], rtol=RTOL, atol=0)


def test_raw_max_sensitivities():
    s = layer_sensitivities(W_IN, B_IN, W_OUT, beta=1.0, reduction="raw-max")
    np.testing.assert_allclose(s.sensitivity, [8.0, 6.0], rtol=RTOL, atol=0)
    np.testing.assert_allclose(s.total, 14.0, rtol=RTOL, atol=0)
    np.testing.assert_allclose(s.probabilities, [4 / 7, 3 / 7], rtol=RTOL, atol=0)


def test_single_output_is_algorithm_1():
    c = neuron_coreset(W_IN, W_OUT[0], biases=B_IN, sample_size=10, beta=1.0, rng=0)
    np.testing.assert_allclose(c.probabilities, [0.4, 0.6], rtol=RTOL, atol=0)
    np.testing.assert_allclose(c.total_sensitivity, 1.0, rtol=RTOL, atol=0)
    np.testing.assert_allclose(c.scale, [10.0], rtol=RTOL, atol=0)


@pytest.mark.parametrize("seed", range(5))
def test_reweighting_by_hand(seed):
    m = 4
    c = layer_coreset(W_IN, B_IN, W_OUT, sample_size=m, beta=1.0, rng=seed)
    cnt = np.asarray(c.counts)
    full = np.zeros((2, 2))
    full[:, np.asarray(c.indices)] = c.weight_out
    want = W_OUT * cnt / (m * np.array([0.625, 0.375]))
    np.testing.assert_allclose(full, want, rtol=RTOL, atol=0)
    if tuple(cnt) == (3, 1):
        np.testing.assert_allclose(full, [[1.2, -2.0], [2.4, 0.0]], rtol=RTOL, atol=0)


def test_concentration_epsilon_formulas():
    L = math.log(40.0)
    hoeffding = 1.6 * math.sqrt(2 * L / 100)
    a = 2 * 2.6 * L / 3
    bernstein = (a + math.sqrt(a * a + 8 * 100 * 1.6 * L)) / 200
    assert hoeffding == pytest.approx(0.4345925, rel=1e-6)
    assert bernstein == pytest.approx(0.3770301, rel=1e-6)
    # The Bernstein root solves m e^2 = L (2t + 2(t+1) e / 3).
    assert 100 * bernstein**2 == pytest.approx(L * (3.2 + 2 * 2.6 * bernstein / 3), rel=1e-12)
    assert concentration_epsilon(100, 1.6, L) == pytest.approx(bernstein, rel=RTOL)
    # t = 1: Hoeffding is the smaller one.
    assert concentration_epsilon(100, 1.0, math.log(20)) == pytest.approx(
        math.sqrt(2 * math.log(20) / 100), rel=RTOL
    )
    assert concentration_epsilon(100, 1.0, math.log(20)) == pytest.approx(0.2447747, rel=1e-6)
    assert concentration_epsilon(0, 1.0, 1.0) == math.inf


def test_pointwise_epsilon_is_concentration_of_log_2k_over_delta():
    c = layer_coreset(W_IN, B_IN, W_OUT, sample_size=100, beta=1.0, rng=0)
    b = theoretical_bound(c, delta=0.1, kind="pointwise")
    np.testing.assert_allclose(b.sensitivity, 1.6, rtol=RTOL, atol=0)
    want = hand_concentration(100, 1.6, math.log(2 * 2 / 0.1))
    np.testing.assert_allclose(b.statistical, want, rtol=RTOL, atol=0)
    np.testing.assert_allclose(b.statistical, 0.3770301, rtol=1e-6, atol=0)
    # The deterministic bound is >= 1 here, so the statistical one is epsilon.
    assert b.deterministic >= 1.0
    np.testing.assert_allclose(b.epsilon, want, rtol=RTOL, atol=0)
    np.testing.assert_allclose(b.scale, [10.0, 8.0], rtol=RTOL, atol=0)


def test_paper_form_by_hand():
    c = layer_coreset(W_IN, B_IN, W_OUT, sample_size=100, beta=1.0, rng=0)
    b = theoretical_bound(c, delta=0.1, kind="paper")
    want = math.sqrt(1.6 * (3 * math.log(1.6) + math.log(10)) / 100)
    np.testing.assert_allclose(b.statistical, want, rtol=RTOL, atol=0)
    np.testing.assert_allclose(b.statistical, 0.2437243, rtol=1e-6, atol=0)


def test_distinct_spends_delta_over_m_m_plus_1():
    c = layer_coreset(W_IN, B_IN, W_OUT, distinct=2, beta=1.0, rng=0)
    m = c.sample_size
    b = theoretical_bound(c, delta=0.1, kind="pointwise")
    want = hand_concentration(m, 1.6, math.log(2 * 2 / (0.1 / (m * (m + 1)))))
    np.testing.assert_allclose(b.statistical, want, rtol=RTOL, atol=0)
