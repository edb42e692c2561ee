"""``split_signs`` (proofs_notes/split_signs.md) and ``distinct``
(proofs_notes/sampling.md): epsilons from the derivation, failure rates on
near-tight instances.

* split: 64 identical ReLU neurons; ``W_out = [P; -P]`` with ``P`` the 0/1
  rows ``(1 + H_i) / 2`` of a Hadamard matrix (i = 1..16). Each sign part has
  ``s_j = 1/32`` for every neuron, ``t = 2``, ``pr`` uniform, and ``m`` is
  split ``m/2, m/2``. At ``x*`` each draw of an output is 0 or ``2 T_i``
  around ``F_i = T_i``: a Rademacher mean again, with both parts live.
* distinct: the Hadamard layer of test_pointwise_truth drawn until r = 48
  distinct neurons (about 89 draws); its bound spends ``delta / (m (m + 1))``.

Failure counts are compared with the binomial quantile of a correct bound at
level ``FALSE_ALARM = 1e-6`` (the false-alarm rate accepted). Neither
``delta`` share can be seen in failure rates (the union over the two parts,
and the one over every m, are loose by construction: a stopping rule that
counts distinct neurons hardly correlates with the error); the derivation
tests catch a missing share.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from _truth_reference import (
    X_STAR,
    concentration,
    failure_limit,
    hadamard,
    identical_neurons,
    pruned_relu_forward,
    relu_forward,
)

from coreset_verify import layer_coreset, theoretical_bound


def _split_layer():
    W_in, b_in = identical_neurons(64)
    P = (1 + hadamard(64)[1:17]) / 2
    return W_in, b_in, np.vstack([P, -P])


def _hadamard_layer():
    W_in, b_in = identical_neurons(64)
    return W_in, b_in, hadamard(64)


def _part_totals(W_out):
    """``t`` of the positive and the negative part (env = 1 for every neuron)."""
    totals = []
    for part in (np.maximum(W_out, 0), np.maximum(-W_out, 0)):
        T = part.sum(axis=1)
        s = np.max(np.divide(part, T[:, None], out=np.zeros_like(part), where=T[:, None] > 0),
                   axis=0)
        totals.append(s.sum())
    return totals


@pytest.mark.parametrize("m", [200, 201])
def test_split_epsilon_is_the_derivation(m):
    layer = _split_layer()
    k, delta = layer[2].shape[0], 0.05
    t_pos, t_neg = _part_totals(layer[2])
    np.testing.assert_allclose([t_pos, t_neg], [2.0, 2.0], rtol=1e-12)
    m_pos = round(m * t_pos / (t_pos + t_neg))  # split_signs.md: m_p proportional to t_p
    sizes = (m_pos, m - m_pos)
    c = layer_coreset(*layer, sample_size=m, beta=1.0, rng=0, split_signs=True)
    assert sorted(p.sample_size for p in c.parts) == sorted(sizes)
    b = theoretical_bound(c, delta=delta, kind="pointwise")
    # Each part at confidence delta / 2; the worse part wins.
    want = max(concentration(mp, 2.0, math.log(2 * k / (delta / 2))) for mp in sizes)
    np.testing.assert_allclose(b.statistical, want, rtol=1e-12)


def test_split_fails_at_most_delta():
    layer = _split_layer()
    m, delta, n_seeds = 400, 0.05, 400
    F = relu_forward(*layer, X_STAR)[0]
    failures, worst = 0, 0.0
    for seed in range(n_seeds):
        c = layer_coreset(*layer, sample_size=m, beta=1.0, rng=seed, split_signs=True)
        b = theoretical_bound(c, delta=delta, kind="pointwise")
        ratio = np.max(np.abs(F - pruned_relu_forward(c, X_STAR)[0]) / b.scale)
        failures += bool(ratio > b.epsilon)
        worst = max(worst, ratio / b.epsilon)
    assert failures <= failure_limit(n_seeds, delta)
    assert worst >= 0.48, f"the instance is no longer as tight: {worst}"


@pytest.mark.parametrize("kind", ["pointwise", "uniform"])
def test_distinct_spends_delta_over_m_m_plus_1(kind):
    layer = _hadamard_layer()
    delta = 0.05
    c = layer_coreset(*layer, distinct=48, beta=1.0, rng=3)
    m = c.sample_size
    assert m >= 48
    b = theoretical_bound(c, delta=delta, kind=kind)
    if kind == "pointwise":
        want = concentration(m, 1.0, math.log(2 * 64 * m * (m + 1) / delta))
        np.testing.assert_allclose(b.statistical, want, rtol=1e-12)
    # The same draws at a fixed m with delta / (m (m + 1)) give the same bound.
    fixed = layer_coreset(*layer, sample_size=m, beta=1.0, rng=3)
    b_fixed = theoretical_bound(fixed, delta=delta / (m * (m + 1)), kind=kind)
    if kind == "pointwise":
        np.testing.assert_allclose(b.statistical, b_fixed.statistical, rtol=1e-12)
    else:
        assert b.statistical > theoretical_bound(fixed, delta=delta, kind=kind).statistical


def test_distinct_fails_at_most_delta():
    layer = _hadamard_layer()
    delta, n_seeds = 0.05, 300
    F = relu_forward(*layer, X_STAR)[0]
    failures, worst = 0, 0.0
    for seed in range(n_seeds):
        c = layer_coreset(*layer, distinct=48, beta=1.0, rng=seed)
        b = theoretical_bound(c, delta=delta, kind="pointwise")
        ratio = np.max(np.abs(F - pruned_relu_forward(c, X_STAR)[0]) / b.scale)
        failures += bool(ratio > b.epsilon)
        worst = max(worst, ratio / b.epsilon)
    assert failures <= failure_limit(n_seeds, delta)
    assert worst >= 0.55, f"the instance is no longer as tight: {worst}"
