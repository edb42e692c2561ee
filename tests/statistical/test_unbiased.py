"""E[U] = W_out: the average re-weighting over many seeds (DESIGN.md).

Seeds and margins are fixed in advance; the tests never retry.

For a fixed m, the counts of one coreset are multinomial, so
``Var U_ij = W_ij^2 (1 - pr_j) / (m pr_j)``; the mean over N seeds has
variance ``Var U_ij / N``. Summed over seeds, the counts of neuron j are
exactly ``Binomial(N m, pr_j)`` (with ``N m pr_j`` in the thousands here), so
the mean is normal to high accuracy and a z-margin is accurate out in the
tails. Each test accepts a false-alarm rate of 1e-6 in total, split over its
entries by Bonferroni.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pytest

from coreset_verify import layer_coreset

FALSE_ALARM = 1e-6


def _layer(seed, n, d, k):
    gen = np.random.default_rng(seed)
    W_in = gen.normal(size=(n, d))
    b_in = 0.5 + np.abs(gen.normal(size=n))
    W_out = gen.normal(size=(k, n))
    b_in[0] = -1e3  # dead on the ball: never kept, its columns of U stay zero
    W_out[0, 1] = 0.0  # a zero weight stays exactly zero
    return W_in, b_in, W_out


def _mean_weight_out(layer, m, seeds, **options):
    W_in, b_in, W_out = layer
    total = np.zeros_like(W_out)
    for seed in seeds:
        c = layer_coreset(W_in, b_in, W_out, sample_size=m, beta=1.0, rng=seed, **options)
        total[:, np.asarray(c.indices)] += np.asarray(c.weight_out)
    return total / len(seeds), c


def _variance(W_out, coreset):
    """Exact Var U_ij of one coreset (multinomial counts), per sign part."""
    var = np.zeros_like(W_out)
    for part in coreset.parts:
        if part.sample_size == 0:
            continue
        mask = {0: np.ones_like(W_out, bool), 1: W_out > 0, -1: W_out < 0}[part.sign]
        pr, m = part.probabilities, part.sample_size
        live = pr > 0
        v = np.zeros_like(W_out)
        v[:, live] = W_out[:, live] ** 2 * (1 - pr[live]) / (m * pr[live])
        var = np.where(mask, v, var)
    return var


def _check_unbiased(layer, m, n_seeds, **options):
    W_out = layer[2]
    seeds = range(n_seeds)
    mean, c = _mean_weight_out(layer, m, seeds, **options)
    live = np.asarray(c.probabilities) > 0
    # Dead neurons and zero weights: exactly zero, whatever the seed.
    np.testing.assert_array_equal(mean[:, ~live], 0.0)
    np.testing.assert_array_equal(mean[W_out == 0], 0.0)
    sd = np.sqrt(_variance(W_out, c) / n_seeds)
    tested = (W_out != 0) & live[None, :]
    z_crit = NormalDist().inv_cdf(1 - FALSE_ALARM / (2 * int(tested.sum())))
    z = np.abs(mean - W_out)[tested] / sd[tested]
    assert np.all(z <= z_crit), f"max |z| = {z.max():.2f} > {z_crit:.2f}"
    return z


@pytest.mark.parametrize("split", [False, True], ids=["joint", "split"])
@pytest.mark.parametrize("reduction", ["per-output", "raw-max"])
def test_mean_weight_out_is_w_out(split, reduction):
    layer = _layer(2026, n=7, d=3, k=2)
    _check_unbiased(layer, m=6, n_seeds=3000, split_signs=split, reduction=reduction)


@pytest.mark.slow
@pytest.mark.parametrize("split", [False, True], ids=["joint", "split"])
def test_mean_weight_out_is_w_out_large(split):
    layer = _layer(7, n=40, d=5, k=4)
    _check_unbiased(layer, m=60, n_seeds=20_000, split_signs=split)


@pytest.mark.slow
def test_mean_weight_out_is_w_out_torch():
    torch = pytest.importorskip("torch")
    W_in, b_in, W_out = _layer(8, n=7, d=3, k=2)
    total = np.zeros_like(W_out)
    tensors = [torch.as_tensor(a) for a in (W_in, b_in, W_out)]
    n_seeds = 5000
    for seed in range(n_seeds):
        c = layer_coreset(*tensors, sample_size=6, beta=1.0, rng=seed)
        total[:, c.indices.numpy()] += c.weight_out.numpy()
    mean = total / n_seeds
    c_np = layer_coreset(W_in, b_in, W_out, sample_size=6, beta=1.0, rng=0)
    sd = np.sqrt(_variance(W_out, c_np) / n_seeds)
    tested = sd > 0
    z_crit = NormalDist().inv_cdf(1 - FALSE_ALARM / (2 * int(tested.sum())))
    assert np.all(np.abs(mean - W_out)[tested] <= z_crit * sd[tested])
