"""Theorems U and U' (proofs_notes/uniform.md): the epsilon from the
derivation, and the true supremum of the error over the ball.

The instance is the Hadamard layer of test_pointwise_truth (64 identical ReLU
neurons ``relu(x_0)`` on R^2, ``W_out`` a 64 x 64 Hadamard matrix). Its error
is ``e_i(x) = relu(x_0) e_i(x*)``, so the supremum over the ball is attained at
``x* = e_0`` and is known exactly: the test compares the uniform bound with the
truth, not with samples. The uniform bound is looser than the pointwise one (the
0.95 quantile of the supremum is about 0.52 of it, against 0.86 for Theorem
P): its union over a net of the ball, ``d' log(1 + 2 beta / r)``, and
over the 1,366 candidate nets cost ``log`` terms that the supremum of this
error (a Rademacher mean in one direction) never uses. No layer can make them
tight: the supremum over the ball of ``(1/m) sum_l X_l(x)`` for these ReLU
classes grows like ``sqrt(1/m)`` whatever d (a contraction argument), so
removing the net-size or the Lipschitz term cannot be seen in failure rates;
the derivation test below catches those mutations instead.

The reference epsilon uses the grid constants of proofs_notes/uniform.md:
141 ball radii ``beta * logspace(-14, 0)``, the ellipsoid grid
``a_1 * logspace(-8, 0.5, 35)`` for both tau and rho, ``C = 141 + 35^2 =
1366`` candidates, singular values raised by ``1e-10 sigma_1``.
"""

from __future__ import annotations

import math

import numpy as np
from _truth_reference import (
    X_STAR,
    concentration,
    failure_limit,
    hadamard,
    identical_neurons,
    pruned_relu_forward,
    relu_forward,
)

from coreset_verify import layer_coreset, sample_size_for, theoretical_bound

BALL_RADII = np.logspace(-14, 0, 141)  # uniform.md, "All candidates at once"
ELLIPSOID_GRID = np.logspace(-8, 0.5, 35)
CANDIDATES = 141 + 35 * 35
SVD_MARGIN = 1e-10


def uniform_epsilon(W_in, W_out, counts, m, *, beta, delta, lipschitz=1.0):
    """Theorem U / U' with every candidate net, additive form, one part.

    Assumes ``pr`` uniform and ``t_eff = 1`` with all ``T_i`` equal to
    ``sum_j |W_ij| env_j``, as on the Hadamard layer (env = beta ||w_j||).
    The realised Lipschitz constants: ``Lip_i = Lphi sum_j |W_ij - U_ij| ||w_j||``
    in x, ``zLip_i = Lphi ||W_i - U_i||_2`` in z = W_in x.
    """
    n = W_out.shape[1]
    norms = np.linalg.norm(W_in, axis=1)
    T = np.abs(W_out) @ (beta * norms)
    c = counts / (m / n)  # U = W c, pr = 1/n
    lip = lipschitz * (np.abs(W_out) * np.abs(1 - c) * norms).sum(axis=1)
    zlip = lipschitz * np.linalg.norm(np.abs(W_out) * np.abs(1 - c), axis=1)
    return _best_net(W_in, m, W_out.shape[0], beta=beta, delta=delta,
                     ball_slope=np.max(lip / T), z_slope=np.max(zlip / T))


def _best_net(W_in, m, k, *, beta, delta, ball_slope, z_slope):
    """min over the 1,366 candidate nets of E(m, 1, L_net) + radius * slope."""
    L0 = math.log(2 * k / delta) + math.log(CANDIDATES)
    best = math.inf
    dim = min(W_in.shape)
    for r in beta * BALL_RADII:
        L = L0 + dim * math.log1p(2 * beta / r)
        best = min(best, concentration(m, 1.0, L) + r * ball_slope)
    sigma = np.linalg.svd(W_in, compute_uv=False)
    axes = beta * (sigma + SVD_MARGIN * sigma[0])
    for tau in axes[0] * ELLIPSOID_GRID:
        big = axes[axes > tau]
        for rho in axes[0] * ELLIPSOID_GRID:
            L = L0 + big.size * math.log(2) / 2 + np.sum(np.log1p(2 * big / rho))
            best = min(best, concentration(m, 1.0, L) + math.hypot(rho, tau) * z_slope)
    return best


def _layer():
    W_in, b_in = identical_neurons(64)
    return W_in, b_in, hadamard(64)


def test_uniform_epsilon_is_the_derivation():
    layer = _layer()
    for m, seed in ((400, 0), (3000, 1), (20, 2)):
        c = layer_coreset(*layer, sample_size=m, beta=1.0, rng=seed)
        b = theoretical_bound(c, delta=0.05, kind="uniform")
        want = uniform_epsilon(layer[0], layer[2], np.asarray(c.counts, dtype=float), m,
                               beta=1.0, delta=0.05)
        np.testing.assert_allclose(b.statistical, want, rtol=1e-9)
        np.testing.assert_allclose(b.epsilon, min(want, 2.0), rtol=1e-9)


def test_uniform_bound_against_the_exact_supremum():
    # sup over the ball of |e_i(x)| / T_i is at x*; 300 seeds, delta = 0.05.
    # Measured: no failure, worst supremum 0.63 of epsilon (0.95 quantile 0.54).
    layer = _layer()
    m, delta, n_seeds = 400, 0.05, 300
    F = relu_forward(*layer, X_STAR)[0]
    failures, worst = 0, 0.0
    for seed in range(n_seeds):
        c = layer_coreset(*layer, sample_size=m, beta=1.0, rng=seed)
        b = theoretical_bound(c, delta=delta, kind="uniform")
        sup = np.max(np.abs(F - pruned_relu_forward(c, X_STAR)[0]) / b.scale)
        failures += bool(sup > b.epsilon)
        worst = max(worst, sup / b.epsilon)
    assert failures <= failure_limit(n_seeds, delta)
    assert worst >= 0.5, f"the instance is no longer as tight: {worst}"


def test_sample_size_for_uniform_is_the_derivation():
    # Before the draws the Lipschitz constants are the priors of uniform.md:
    # Lip_prior_i / T_i = (sum_j |W_ij| ||w_j|| + max_j |W_ij| ||w_j|| / pr_j) / T_i
    # = (64 + 64) / 64 = 2, zLip_prior_i / T_i = (||W_i||_2 + max_j |W_ij| / pr_j) / T_i
    # = (8 + 64) / 64; the cap before the draws is 1 + t = 2.
    W_in, b_in, W_out = _layer()
    epsilon, delta = 0.5, 0.05

    def prior(m):
        return min(_best_net(W_in, m, 64, beta=1.0, delta=delta, ball_slope=2.0,
                             z_slope=72 / 64), 2.0)

    low, high = 1, 2
    while prior(high) > epsilon:
        low, high = high, 2 * high
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if prior(mid) <= epsilon else (mid, high)
    got = sample_size_for(W_in, b_in, W_out, epsilon=epsilon, delta=delta, beta=1.0,
                          kind="uniform")
    assert got == high
    assert prior(got) <= epsilon < prior(got - 1)
