"""Theorem P on instances where it is nearly tight (proofs_notes/pointwise.md).

* ``hadamard``: 64 identical ReLU neurons, ``W_out`` a 64 x 64 Hadamard matrix.
  Then ``T_i = 64``, ``s_i[j] = 1/64``, ``t = 1``, ``pr`` uniform, and at
  ``x* = e_0`` every draw of output ``i >= 1`` is ``+-T_i`` (Rademacher) while
  ``F_i(x*) = 0``. The 63 outputs are pairwise uncorrelated, so their errors are
  close to independent normals: the union over k outputs is nearly tight, and
  with ``t = 1`` Hoeffding is the smaller term (Bernstein >= Hoeffding at t = 1).
* ``pair``: two identical neurons with weights +1 and -1 (k = 1): every draw
  is ``+-T``, the Hoeffding case with one output.
* ``pairs``: k disjoint pairs, output i reads only pair i: ``t = k`` while the
  variance of a draw is ``k T_i^2``, so Bernstein is the smaller term.

Each failure count is compared with the exact binomial quantile of a correct
bound at level ``FALSE_ALARM = 1e-6`` (the false-alarm rate accepted); seeds
are fixed, the tests never retry. Each reference epsilon is computed here from
the derivation (``_truth_reference``), not read from the package. The worst
error / epsilon seen with these seeds must stay above a floor (about 0.85 of
its measured value): a loosened constant, a larger union or a wider range,
shows up there.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from _truth_reference import (
    X_STAR,
    bernstein,
    concentration,
    failure_limit,
    hadamard,
    hoeffding,
    identical_neurons,
    pruned_relu_forward,
    relu_forward,
)

from coreset_verify import layer_coreset, sample_size_for, theoretical_bound


def _hadamard_layer():
    W_in, b_in = identical_neurons(64)
    return W_in, b_in, hadamard(64)


def _pair_layer():
    W_in, b_in = identical_neurons(2)
    return W_in, b_in, np.array([[1.0, -1.0]])


def _pairs_layer(k):
    W_in, b_in = identical_neurons(2 * k)
    W_out = np.zeros((k, 2 * k))
    for i in range(k):
        W_out[i, 2 * i], W_out[i, 2 * i + 1] = 1.0, -1.0
    return W_in, b_in, W_out


def _failures(layer, m, delta, seeds):
    """(failures, worst error / epsilon, epsilons seen) at x* over real coresets."""
    F = relu_forward(*layer, X_STAR)[0]
    failures, worst, eps = 0, 0.0, set()
    for seed in seeds:
        c = layer_coreset(*layer, sample_size=m, beta=1.0, rng=seed)
        b = theoretical_bound(c, delta=delta, kind="pointwise")
        ratio = np.max(np.abs(F - pruned_relu_forward(c, X_STAR)[0]) / b.scale)
        failures += bool(ratio > b.epsilon)
        worst = max(worst, ratio / b.epsilon)
        eps.add(round(b.epsilon, 12))
    return failures, worst, eps


def test_hadamard_epsilon_is_the_derivation():
    m, delta, k = 400, 0.05, 64
    c = layer_coreset(*_hadamard_layer(), sample_size=m, beta=1.0, rng=0)
    b = theoretical_bound(c, delta=delta, kind="pointwise")
    L = math.log(2 * k / delta)  # union over the k outputs, two-sided
    assert hoeffding(m, 1.0, L) < bernstein(m, 1.0, L)
    np.testing.assert_allclose(b.sensitivity, 1.0, rtol=1e-12)
    np.testing.assert_allclose(b.statistical, hoeffding(m, 1.0, L), rtol=1e-12)
    np.testing.assert_allclose(b.deterministic, 2.0, rtol=1e-12)  # 1 + t
    np.testing.assert_allclose(b.scale, np.full(k, 64.0), rtol=1e-12)


def test_hadamard_many_outputs_fail_at_most_delta():
    # Measured: 3 failures in 600 seeds, worst error 1.03 of epsilon (the 0.95
    # quantile 0.86 in 2,000 seeds, benchmarks/tightness.py). Halving
    # Hoeffding fails ~95% of seeds; dropping the union over the 64 outputs
    # (log(2/delta) for log(2k/delta)) fails ~35%; the limit is 58 of 600.
    m, delta, n_seeds = 400, 0.05, 600
    failures, worst, eps = _failures(_hadamard_layer(), m, delta, range(n_seeds))
    assert len(eps) == 1  # the pointwise bound is fixed before the draws
    assert failures <= failure_limit(n_seeds, delta)
    assert worst >= 0.85, f"the instance is no longer tight: {worst}"


def test_pair_fails_at_most_delta():
    # k = 1, draws +-T: Hoeffding sqrt(2 log(2/delta) / m) against a
    # Rademacher mean. Halved, it fails ~7% of seeds against delta = 1%.
    m, delta, n_seeds = 100, 0.01, 2000
    layer = _pair_layer()
    failures, worst, _ = _failures(layer, m, delta, range(n_seeds))
    assert failures <= failure_limit(n_seeds, delta)
    assert worst >= 0.85, f"the instance is no longer tight: {worst}"


def test_pair_by_the_law_of_the_counts():
    # Independent oracle of the sampler: the count of neuron 0 is
    # Binomial(m, 1/2), and the error at x* is |2 cnt - m| / m of T. The
    # epsilon (fixed before the draws here: the cap is 1 + t = 2) comes from
    # the package; 200,000 simulated seeds.
    m, delta, n_seeds = 100, 0.01, 200_000
    c = layer_coreset(*_pair_layer(), sample_size=m, beta=1.0, rng=0)
    b = theoretical_bound(c, delta=delta, kind="pointwise")
    np.testing.assert_allclose(b.epsilon, hoeffding(m, 1.0, math.log(2 / delta)), rtol=1e-12)
    cnt = np.random.default_rng(2026).binomial(m, 0.5, size=n_seeds)
    err = np.abs(2 * cnt - m) / m
    assert int(np.sum(err > b.epsilon)) <= failure_limit(n_seeds, delta)
    assert err.max() / b.epsilon >= 0.95


@pytest.mark.parametrize("k", [8])
def test_bernstein_instance_fails_at_most_delta(k):
    m, delta, n_seeds = 2000, 0.05, 600
    layer = _pairs_layer(k)
    c = layer_coreset(*layer, sample_size=m, beta=1.0, rng=0)
    b = theoretical_bound(c, delta=delta, kind="pointwise")
    L = math.log(2 * k / delta)
    assert bernstein(m, k, L) < hoeffding(m, k, L)
    np.testing.assert_allclose(b.statistical, concentration(m, float(k), L), rtol=1e-12)
    failures, worst, _ = _failures(layer, m, delta, range(n_seeds))
    assert failures <= failure_limit(n_seeds, delta)
    assert worst >= 0.85, f"the instance is no longer tight: {worst}"


def _smallest_m(bound_of_m, epsilon):
    """Smallest m >= 1 with bound_of_m(m) <= epsilon (the bound decreases in m)."""
    m = 1
    while bound_of_m(m) > epsilon:
        m += 1
    return m


@pytest.mark.parametrize(("epsilon", "delta"), [(0.2, 0.01), (0.05, 0.3)])
def test_sample_size_for_is_the_smallest_m_of_theorem_p(epsilon, delta):
    # Pointwise.md, "Sample size": the smallest m with E(m, t_eff, L) <= epsilon;
    # t = 1 on the Hadamard layer, L = log(2k/delta), and the cap 1 + t = 2
    # never helps below epsilon = 1.
    layer = _hadamard_layer()
    L = math.log(2 * 64 / delta)
    want = _smallest_m(lambda m: concentration(m, 1.0, L), epsilon)
    got = sample_size_for(*layer, epsilon=epsilon, delta=delta, beta=1.0, kind="pointwise")
    assert got == want
    c = layer_coreset(*layer, sample_size=got, beta=1.0, rng=0)
    assert theoretical_bound(c, delta=delta, kind="pointwise").epsilon <= epsilon


def test_sample_size_for_split_signs_is_the_derivation():
    # The split layer of test_split_distinct_truth: t+ = t- = 2 (k = 32), m split
    # in halves, each part at delta / 2; the worse part decides.
    from test_split_distinct_truth import _split_layer

    layer, epsilon, delta = _split_layer(), 0.3, 0.05
    L = math.log(2 * 32 / (delta / 2))

    def bound(m):
        m_pos = round(m * 2 / 4)
        if m < 2:
            return math.inf
        return max(concentration(m_pos, 2.0, L), concentration(m - m_pos, 2.0, L))

    want = _smallest_m(bound, epsilon)
    got = sample_size_for(*layer, epsilon=epsilon, delta=delta, beta=1.0, kind="pointwise",
                          split_signs=True)
    assert got == want


def test_sample_size_for_uniform_meets_epsilon_and_is_minimal():
    # The uniform prior bound is not re-derived here (see test_uniform_truth);
    # its contract is: a coreset of the returned size meets epsilon, and the
    # returned size is at least the pointwise one (the uniform bound is larger).
    layer, epsilon, delta = _hadamard_layer(), 0.4, 0.05
    got = sample_size_for(*layer, epsilon=epsilon, delta=delta, beta=1.0, kind="uniform")
    pointwise = sample_size_for(*layer, epsilon=epsilon, delta=delta, beta=1.0,
                                kind="pointwise")
    assert got > pointwise
    for seed in range(5):
        c = layer_coreset(*layer, sample_size=got, beta=1.0, rng=seed)
        assert theoretical_bound(c, delta=delta, kind="uniform").epsilon <= epsilon


def test_defaults_are_the_documented_ones():
    # kind="uniform", form="additive", paper_constant=1, paper_dimension=d + 1.
    layer, delta = _hadamard_layer(), 0.05
    c = layer_coreset(*layer, sample_size=300, beta=1.0, rng=0)
    assert theoretical_bound(c, delta=delta).epsilon == theoretical_bound(
        c, delta=delta, kind="uniform", form="additive").epsilon
    kw = {"epsilon": 0.3, "delta": delta, "beta": 1.0}
    assert sample_size_for(*layer, **kw) == sample_size_for(*layer, kind="uniform", **kw)
    # The paper form with t = 1: sqrt(C (d' log 1 + log(1/delta)) / m), C = 1.
    want = _smallest_m(lambda m: math.sqrt(math.log(1 / delta) / m), 0.3)
    assert sample_size_for(*layer, kind="paper", **kw) == want
    paper = theoretical_bound(c, delta=delta, kind="paper")
    np.testing.assert_allclose(paper.statistical, math.sqrt(math.log(1 / delta) / 300),
                               rtol=1e-12)
