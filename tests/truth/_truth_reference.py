"""Hand formulas for the truth tests, written from proofs_notes/, never imported
from the package under test.

Everything here is a derivation or a statistical helper: the concentration
bounds of Theorem P (pointwise.md), the deterministic cap (sampling.md), the
union over the draws of ``distinct`` (sampling.md), the exact binomial quantile
used as the failure-count limit, and the tight instances shared by the tests.
"""

from __future__ import annotations

import math

import numpy as np

#: False-alarm rate accepted by every failure-count test: a correct bound gives
#: more failures than the limit with probability at most this.
FALSE_ALARM = 1e-6


def hoeffding(m: int, t: float, L: float) -> float:
    """``t sqrt(2 L / m)``: each draw in ``[-t, t]`` (pointwise.md, Theorem P)."""
    return t * math.sqrt(2 * L / m)


def bernstein(m: int, t: float, L: float) -> float:
    """Positive root of ``m e^2 - a e - 2 t L = 0``, ``a = 2 (t + 1) L / 3``."""
    a = 2 * (t + 1) * L / 3
    return (a + math.sqrt(a * a + 8 * m * t * L)) / (2 * m)


def concentration(m: int, t: float, L: float) -> float:
    """``E(m, t, L) = min(Hoeffding, Bernstein)``."""
    return min(hoeffding(m, t, L), bernstein(m, t, L))


def failure_limit(n: int, p: float, alpha: float = FALSE_ALARM) -> int:
    """Smallest c with ``P(Binomial(n, p) > c) <= alpha`` (exact up to float64).

    A test that sees at most c failures in n independent seeds, each failing
    with probability at most p, raises a false alarm with probability <= alpha.
    The pmf comes from the ratio ``pmf(j + 1) / pmf(j) = (n - j) p / ((j + 1) (1 - p))``.
    """
    j = np.arange(n)
    steps = np.log(n - j) - np.log(j + 1) + math.log(p) - math.log1p(-p)
    log_pmf = np.concatenate([[n * math.log1p(-p)], n * math.log1p(-p) + np.cumsum(steps)])
    tail = np.cumsum(np.exp(log_pmf)[::-1])[::-1]  # tail[c] = P(X >= c)
    above = np.append(tail[1:], 0.0)  # P(X > c)
    return int(np.flatnonzero(above <= alpha)[0])


def hadamard(order: int) -> np.ndarray:
    """Sylvester's Hadamard matrix of a power-of-two order: rows orthogonal, entries +-1."""
    H = np.ones((1, 1))
    while H.shape[0] < order:
        H = np.block([[H, H], [H, -H]])
    return H


def identical_neurons(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` identical ReLU neurons ``relu(x_0)`` on R^2 (``W_in`` rows e_0, bias 0).

    On the unit ball every neuron is 1 at ``x* = e_0``, its largest value, so
    ``env = 1`` and each draw of output i is ``W_out[i, J] / pr[J]`` there.
    """
    W_in = np.zeros((n, 2))
    W_in[:, 0] = 1.0
    return W_in, np.zeros(n)


X_STAR = np.array([[1.0, 0.0]])  # the input where every identical neuron is largest


def relu_forward(W_in, b_in, W_out, X):
    """``F(X) = W_out relu(W_in X + b)``, (b, k), float64."""
    return np.maximum(X @ W_in.T + b_in, 0.0) @ W_out.T


def pruned_relu_forward(coreset, X):
    W_in, b_in, U = (np.asarray(a, dtype=np.float64) for a in coreset.pruned())
    return relu_forward(W_in, b_in, U, X)
