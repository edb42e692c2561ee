"""The deterministic cap (proofs_notes/sampling.md) where it is nearly reached.

Two always-on ReLU neurons (zero incoming rows, biases 4 and 1) with weights
+1 and -1: ``env = (4, 1)``, ``T = 5``, ``s = pr = (0.8, 0.2)``, ``t = 1`` and
``F = 3`` on the whole ball. One draw of neuron 1 (probability 0.2) gives
``F~ = -1 / 0.2 = -5``, an error of ``8 = 1.6 T``, while the cap is
``1 + sum_j cnt_j s_j / (m pr_j) = 2``: the error reaches 0.8 of the cap. With
``delta = 0.01`` and m = 1 the statistical bound (3.26) exceeds the cap, so
the cap is the epsilon. The cap holds with probability one: no failure at all
is accepted (a correct cap cannot raise a false alarm).
"""

from __future__ import annotations

import numpy as np
import pytest
from _truth_reference import pruned_relu_forward, relu_forward

from coreset_verify import layer_coreset, theoretical_bound

W_IN = np.zeros((2, 2))
B_IN = np.array([4.0, 1.0])
W_OUT = np.array([[1.0, -1.0]])


@pytest.mark.parametrize("kind", ["pointwise", "uniform"])
@pytest.mark.parametrize("m", [1, 2])
def test_cap_holds_and_is_nearly_reached(kind, m):
    X = np.array([[0.0, 0.0], [0.6, -0.8]])
    F = relu_forward(W_IN, B_IN, W_OUT, X)
    worst, drawn_one = 0.0, 0
    for seed in range(200):
        c = layer_coreset(W_IN, B_IN, W_OUT, sample_size=m, beta=1.0, rng=seed)
        b = theoretical_bound(c, delta=0.01, kind=kind)
        ratio = np.max(np.abs(F - pruned_relu_forward(c, X)) / b.scale)
        assert ratio <= b.epsilon * (1 + 1e-12), f"seed {seed}: {ratio} > {b.epsilon}"
        worst = max(worst, ratio / b.epsilon)
        drawn_one += bool(np.asarray(c.counts)[1] == m)
    assert drawn_one > 0  # the draw that nearly reaches the cap happened
    np.testing.assert_allclose(worst, 0.8, rtol=1e-12)


def test_cap_is_the_derivation():
    # cap = 1 + sum_j cnt_j s_j / (m pr_j) = 2 whatever the draws (k = 1, t = 1);
    # the statistical bound at m = 1 (3.26) is larger, so the cap is epsilon.
    for m in (1, 2):
        for seed in range(10):
            c = layer_coreset(W_IN, B_IN, W_OUT, sample_size=m, beta=1.0, rng=seed)
            for kind in ("pointwise", "uniform"):
                b = theoretical_bound(c, delta=0.01, kind=kind)
                np.testing.assert_allclose(b.deterministic, 2.0, rtol=1e-12)
                assert b.epsilon == b.deterministic


def test_cap_uses_the_per_output_sensitivities():
    # k = 2: W_out = [[1, -1], [0, 1]], T = (5, 1), s_1 = (0.8, 0.2),
    # s_2 = (0, 1), s = (0.8, 1), t = 1.8, pr = (4/9, 5/9). One draw of neuron
    # 1: cap_1 = 1 + 0.2 / (5/9) = 1.36, cap_2 = 1 + 1 / (5/9) = 2.8; of neuron
    # 0: cap_1 = 1 + 0.8 / (4/9) = 2.8, cap_2 = 1.
    W_out = np.array([[1.0, -1.0], [0.0, 1.0]])
    for seed in range(20):
        c = layer_coreset(W_IN, B_IN, W_out, sample_size=1, beta=1.0, rng=seed)
        b = theoretical_bound(c, delta=0.01, kind="pointwise")
        np.testing.assert_allclose(b.deterministic, 2.8, rtol=1e-12)
        np.testing.assert_allclose(b.sensitivity, 1.8, rtol=1e-12)
