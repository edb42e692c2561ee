"""Correct sensitivity-sampling pruners and deliberately faulty variants of them.

Each faulty pruner breaks one promise; FAULTS maps it to the claims it makes
and to the check that must flag it. ``paper_sampler`` is the paper's
algorithm exactly (not exact at full size) with PAPER_CLAIMS, the claims that
describe it; ``distinct_forever`` hangs as the authors' released code does.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from coreset_verify import layer_sensitivities


def _probabilities(W_in, b_in, W_out):
    """pr = s / t on the unit ball (cached: the battery calls a pruner ~1000 times)."""
    key = tuple((a.shape, a.tobytes()) for a in (W_in, b_in, W_out))
    return _cached_probabilities(key)


@functools.lru_cache(maxsize=64)
def _cached_probabilities(key):
    W_in, b_in, W_out = (np.frombuffer(data).reshape(shape) for shape, data in key)
    pr = layer_sensitivities(W_in, b_in, W_out, beta=1.0).probabilities
    pr.setflags(write=False)
    return pr


def paper_sampler(W_in, b_in, W_out, *, size, rng):
    """The paper's Algorithm: m = size i.i.d. draws from pr = s / t, re-weighted cnt / (m pr).

    No shortcut at size >= n: n draws with replacement are not the layer.
    """
    pr = _probabilities(W_in, b_in, W_out)
    counts = rng.multinomial(size, pr)
    kept = np.flatnonzero(counts)
    factor = counts[kept] / (size * pr[kept])
    return W_in[kept].copy(), b_in[kept].copy(), W_out[:, kept] * factor


def paper_epsilon(W_in, b_in, W_out, *, size, rng, delta=0.1):
    """Pointwise Hoeffding bound of paper_sampler, in units of T_i (derived here).

    For a fixed x each draw contributes W_out[i, j] phi_j(x) / pr_j, of size
    at most |W_out[i, j]| phi_hi[j] t / s[j] <= t T_i (s[j] >= s_i[j] =
    |W_out[i, j]| phi_hi[j] / T_i). Hoeffding on the mean of m draws in
    [-t T_i, t T_i] and a union over the k outputs: with probability >=
    1 - delta, |F_i - F~_i| <= t sqrt(2 ln(2k / delta) / m) T_i for every i.
    """
    del rng
    t = layer_sensitivities(W_in, b_in, W_out, beta=1.0).total
    return t * math.sqrt(2 * math.log(2 * W_out.shape[0] / delta) / size)


#: The claims that describe paper_sampler (see check_pruner's Notes).
PAPER_CLAIMS = {
    "unbiased": True, "deterministic": False, "drops_dead": True,
    "exact_at_full_size": False,
    "guarantee": {"kind": "pointwise", "delta": 0.1, "epsilon": paper_epsilon},
}


def distinct_forever(W_in, b_in, W_out, *, size, rng):
    """Draws by sensitivity until ``size`` distinct neurons, as the authors' code does.

    Loops forever when fewer than ``size`` neurons have positive sensitivity.
    """
    pr = _probabilities(W_in, b_in, W_out)
    seen = set()
    while len(seen) < min(size, W_in.shape[0]):
        seen.add(int(rng.choice(W_in.shape[0], p=pr)))
    kept = np.array(sorted(seen))
    return W_in[kept].copy(), b_in[kept].copy(), W_out[:, kept].copy()


def bias_from_next_neuron(W_in, b_in, W_out, *, size, rng):
    """Correct sampling, but each kept bias is taken from the next neuron's column."""
    W_kept, _, W_out_kept = sensitivity_sample(W_in, b_in, W_out, size=size, rng=rng)
    kept = [int(np.flatnonzero(np.all(W_in == row, axis=1))[0]) for row in W_kept]
    return W_kept, b_in[(np.array(kept, dtype=int) + 1) % W_in.shape[0]], W_out_kept


def sensitivity_sample(W_in, b_in, W_out, *, size, rng):
    """Correct: m = size i.i.d. draws by sensitivity, W_out re-weighted cnt / (m pr)."""
    n = W_in.shape[0]
    if size >= n:
        return W_in.copy(), b_in.copy(), W_out.copy()
    pr = _probabilities(W_in, b_in, W_out)
    counts = rng.multinomial(size, pr)
    kept = np.flatnonzero(counts)
    factor = counts[kept] / (size * pr[kept])
    return W_in[kept].copy(), b_in[kept].copy(), W_out[:, kept] * factor


def forgets_one_over_m(W_in, b_in, W_out, *, size, rng):
    """Re-weights by cnt / pr, forgetting the 1/m."""
    out = sensitivity_sample(W_in, b_in, W_out, size=size, rng=rng)
    if size >= W_in.shape[0]:
        return out
    return out[0], out[1], out[2] * size


def wrong_probability(W_in, b_in, W_out, *, size, rng):
    """Samples by sensitivity but re-weights as if sampling were uniform (pr = 1/n)."""
    n = W_in.shape[0]
    if size >= n:
        return W_in.copy(), b_in.copy(), W_out.copy()
    counts = rng.multinomial(size, _probabilities(W_in, b_in, W_out))
    kept = np.flatnonzero(counts)
    return W_in[kept].copy(), b_in[kept].copy(), W_out[:, kept] * (counts[kept] * n / size)


def mutates_input(W_in, b_in, W_out, *, size, rng):
    """Correct result, but normalises W_out in place on the way."""
    out = sensitivity_sample(W_in, b_in, W_out, size=size, rng=rng)
    W_out /= np.abs(W_out).max()
    return out


def ignores_rng(W_in, b_in, W_out, *, size, rng):
    """Draws from a fresh unseeded generator instead of rng."""
    return sensitivity_sample(W_in, b_in, W_out, size=size, rng=np.random.default_rng())


def fixed_seed(W_in, b_in, W_out, *, size, rng):
    """Ignores rng for a seed of its own: always the same draw."""
    return sensitivity_sample(W_in, b_in, W_out, size=size, rng=np.random.default_rng(1234))


def keeps_more(W_in, b_in, W_out, *, size, rng):
    """Uniform sampling of size + 1 neurons."""
    n = W_in.shape[0]
    r = min(size + 1, n)
    kept = np.sort(rng.choice(n, size=r, replace=False))
    return W_in[kept].copy(), b_in[kept].copy(), W_out[:, kept] * (n / r)


def returns_float32(W_in, b_in, W_out, *, size, rng):
    """Correct values, float32 arrays."""
    return tuple(a.astype(np.float32)
                 for a in sensitivity_sample(W_in, b_in, W_out, size=size, rng=rng))


def drops_sign(W_in, b_in, W_out, *, size, rng):
    """Re-weights |W_out| instead of W_out."""
    out = sensitivity_sample(W_in, b_in, W_out, size=size, rng=rng)
    return out[0], out[1], np.abs(out[2])


def first_neurons(W_in, b_in, W_out, *, size, rng):
    """Keeps neurons 0..size-1: depends on the order of the neurons."""
    return W_in[:size].copy(), b_in[:size].copy(), W_out[:, :size].copy()


def normalises_rows(W_in, b_in, W_out, *, size, rng):
    """Top rows by norm, rescaled to unit norm (exact for ReLU), NaN for zero rows."""
    norms = np.linalg.norm(W_in, axis=1)
    kept = np.sort(np.argsort(-norms, kind="stable")[:size])
    with np.errstate(invalid="ignore", divide="ignore"):
        return (W_in[kept] / norms[kept, None], b_in[kept] / norms[kept],
                W_out[:, kept] * norms[kept])


def uniform_keeps_dead(W_in, b_in, W_out, *, size, rng):
    """Uniform re-weighted sampling, which keeps dead neurons (claims it does not)."""
    n = W_in.shape[0]
    if size >= n:
        return W_in.copy(), b_in.copy(), W_out.copy()
    kept = np.sort(rng.choice(n, size=size, replace=False))
    return W_in[kept].copy(), b_in[kept].copy(), W_out[:, kept] * (n / size)


RANDOM_UNBIASED = {"unbiased": True, "deterministic": False}

#: name -> (pruner, claims, the check that must flag it)
FAULTS = {
    "forgets_one_over_m": (forgets_one_over_m, RANDOM_UNBIASED, "check_unbiased"),
    "wrong_probability": (wrong_probability, RANDOM_UNBIASED, "check_unbiased"),
    "mutates_input": (mutates_input, RANDOM_UNBIASED, "check_inputs_not_mutated"),
    "ignores_rng": (ignores_rng, RANDOM_UNBIASED, "check_rng"),
    "fixed_seed": (fixed_seed, RANDOM_UNBIASED, "check_rng"),
    "keeps_more": (keeps_more, RANDOM_UNBIASED, "check_size_budget"),
    "returns_float32": (returns_float32, RANDOM_UNBIASED, "check_returns_arrays"),
    "drops_sign": (drops_sign, RANDOM_UNBIASED, "check_full_size_exact"),
    "drops_sign_unbiased": (drops_sign, RANDOM_UNBIASED, "check_unbiased"),
    "first_neurons": (first_neurons, {"unbiased": False, "deterministic": True},
                      "check_permutation"),
    "normalises_rows": (normalises_rows, {"unbiased": False, "deterministic": True},
                        "check_degenerate_neurons"),
    "uniform_keeps_dead": (uniform_keeps_dead, RANDOM_UNBIASED | {"drops_dead": True},
                           "check_degenerate_neurons"),
    "forgets_one_over_m_grows": (forgets_one_over_m, RANDOM_UNBIASED, "check_error_shrinks"),
    "bias_from_next_neuron": (bias_from_next_neuron, RANDOM_UNBIASED, "check_kept_rows"),
}
