"""The guarantees hold as often as they claim (seeds and margins fixed in advance).

* Pointwise: at an input fixed before sampling, the bound fails in at most a
  delta fraction of seeds. With N seeds the number of failures is at most
  Binomial(N, delta) (stochastically), so the test accepts up to the upper
  quantile at level 1e-6: a correct bound raises a false alarm with
  probability <= 1e-6.
* Uniform: one claim about every input of the ball at once, checked at many
  inputs (extreme points beta W_in[j] / ||W_in[j]|| and their opposites,
  boundary points, interior points, the centre). With delta = 1e-6 per seed
  and S seeds, a correct bound fails somewhere with probability <= S * 1e-6,
  the false-alarm rate accepted; the test demands no failure at all.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from coreset_verify import get_activation, layer_coreset, sample_size_for, theoretical_bound

ALPHA = 1e-6


def binomial_upper_quantile(n: int, p: float, alpha: float) -> int:
    """Smallest c with P(Binomial(n, p) > c) <= alpha (exact, via math.comb)."""
    tail = 0.0
    for c in range(n, -1, -1):
        # tail = P(X > c) before adding the pmf at c
        if tail > alpha:
            return c + 1
        log_pmf = math.log(math.comb(n, c)) + c * math.log(p) + (n - c) * math.log1p(-p)
        tail += math.exp(log_pmf)
    return 0


def test_binomial_upper_quantile_known_values():
    # P(Bin(10, 1/2) > 8) = 11/1024 > 0.01 >= P(> 9) = 1/1024.
    assert binomial_upper_quantile(10, 0.5, 0.01) == 9
    assert binomial_upper_quantile(10, 0.5, 11 / 1024 * (1 + 1e-9)) == 8
    assert binomial_upper_quantile(10, 0.5, 11 / 1024 * (1 - 1e-9)) == 9
    assert binomial_upper_quantile(200, 0.1, 1e-6) > 20


def forward(layer, activation, X):
    """F(x) for inputs X (b, d): (b, k), float64."""
    W_in, b_in, W_out = layer
    return get_activation(activation)(X @ W_in.T + b_in) @ W_out.T


def pruned_forward(coreset, X):
    W_in, b_in, U = (np.asarray(a, dtype=np.float64) for a in coreset.pruned())
    return coreset.activation(X @ W_in.T + b_in) @ U.T


def sample_inputs(W_in, beta, n_random, seed):
    """Extreme points (both signs), boundary, interior and the centre; (b, d)."""
    gen = np.random.default_rng(seed)
    d = W_in.shape[1]
    norms = np.linalg.norm(W_in, axis=1)
    rows = W_in[norms > 0] / norms[norms > 0, None]
    direction = gen.normal(size=(n_random, d))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    radius = gen.uniform(size=(n_random, 1)) ** (1 / d)
    X = np.concatenate([beta * rows, -beta * rows, beta * direction,
                        beta * radius * direction, np.zeros((1, d))])
    norm = np.linalg.norm(X, axis=1, keepdims=True)
    # Rounding may put beta * w / ||w|| an ulp outside: pull such rows inside.
    return np.where(norm > beta, X * (beta / np.maximum(norm, beta)) * (1 - 1e-15), X)


def _alternating_layer(seed, n=24, d=3, k=2):
    """Signed weights whose F nearly cancels: concentration bounds are near-tight."""
    gen = np.random.default_rng(seed)
    W_in = gen.normal(size=(n, d))
    b_in = np.abs(gen.normal(size=n))
    W_out = np.abs(gen.normal(size=(k, n))) * np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    return W_in, b_in, W_out


@pytest.mark.parametrize(("activation", "m", "delta", "n_seeds"), [
    ("relu", 20, 0.2, 200),
    ("softplus", 8, 0.5, 200),
])
def test_pointwise_bound_holds_at_fixed_input(activation, m, delta, n_seeds):
    layer = _alternating_layer(1)
    x = np.array([[0.3, -0.5, 0.2]])  # fixed before any draw
    F = forward(layer, activation, x)[0]
    failures = 0
    for seed in range(n_seeds):
        c = layer_coreset(*layer, sample_size=m, beta=1.0, activation=activation, rng=seed)
        b = theoretical_bound(c, delta=delta, kind="pointwise")
        err = np.abs(F - pruned_forward(c, x)[0])
        failures += bool(np.any(err > b.epsilon * b.scale))
    assert failures <= binomial_upper_quantile(n_seeds, delta, ALPHA)


@pytest.mark.slow
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("split", [False, True], ids=["joint", "split"])
def test_pointwise_bound_holds_at_fixed_input_many_seeds(activation, split):
    layer = _alternating_layer(2, n=40, d=4, k=3)
    x = np.array([[0.1, 0.4, -0.2, 0.5]])
    F = forward(layer, activation, x)[0]
    n_seeds, delta = 10_000, 0.3
    failures = 0
    for seed in range(n_seeds):
        c = layer_coreset(*layer, sample_size=10, beta=1.0, activation=activation, rng=seed,
                          split_signs=split)
        b = theoretical_bound(c, delta=delta, kind="pointwise")
        failures += bool(np.any(np.abs(F - pruned_forward(c, x)[0]) > b.epsilon * b.scale))
    assert failures <= binomial_upper_quantile(n_seeds, delta, ALPHA)


def _check_uniform(layer, activation, beta, epsilon, n_seeds, n_random, form, split=False):
    delta = 1e-6
    kw = {"beta": beta, "activation": activation}
    m = sample_size_for(*layer, epsilon=epsilon, delta=delta, kind="uniform", form=form,
                        split_signs=split, **kw)
    X = sample_inputs(layer[0], beta, n_random, seed=123)  # fixed before sampling
    assert np.all(np.linalg.norm(X, axis=1) <= beta)
    F = forward(layer, activation, X)
    worst = 0.0
    for seed in range(n_seeds):
        c = layer_coreset(*layer, sample_size=m, rng=seed, split_signs=split, **kw)
        b = theoretical_bound(c, delta=delta, kind="uniform", form=form)
        assert b.epsilon <= epsilon
        ratio = np.abs(F - pruned_forward(c, X)) / b.scale_at(X)
        assert np.all(np.isfinite(ratio))
        worst = max(worst, float(ratio.max()))
        assert ratio.max() <= b.epsilon, f"seed {seed}: {ratio.max()} > {b.epsilon}"
    return worst


@pytest.mark.parametrize("split", [False, True], ids=["joint", "split"])
def test_uniform_bound_never_beaten(split):
    layer = _alternating_layer(3, n=16, d=3, k=2)
    layer[1][:2] = -10.0  # two dead neurons
    _check_uniform(layer, "relu", 2.0, 0.5, n_seeds=20, n_random=300, form="additive",
                   split=split)


@pytest.mark.parametrize("activation", ["sigmoid", "softplus"])
def test_uniform_multiplicative_bound_never_beaten(activation):
    layer = _alternating_layer(4, n=12, d=2, k=2)
    _check_uniform(layer, activation, 1.0, 0.5, n_seeds=20, n_random=300,
                   form="multiplicative")


@pytest.mark.slow
@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "sigmoid", "softplus", "elu"])
@pytest.mark.parametrize("split", [False, True], ids=["joint", "split"])
def test_uniform_bound_never_beaten_many_seeds(activation, split):
    layer = _alternating_layer(5, n=30, d=4, k=3)
    _check_uniform(layer, activation, 1.5, 0.3, n_seeds=400, n_random=5000, form="additive",
                   split=split)


@pytest.mark.slow
@pytest.mark.parametrize("activation", ["sigmoid", "softplus"])
def test_uniform_multiplicative_bound_never_beaten_many_seeds(activation):
    layer = _alternating_layer(6, n=30, d=4, k=3)
    _check_uniform(layer, activation, 1.5, 0.3, n_seeds=400, n_random=5000,
                   form="multiplicative")
