"""A correct channel sampler and deliberately faulty variants of it (conv protocol).

Each faulty pruner breaks one promise; CONV_FAULTS maps it to the claims it
makes and to the checks that must flag it (and no other check may). The
pruners are module-level functions: the battery's worker may need to pickle
them.
"""

from __future__ import annotations

import numpy as np

from coreset_verify.audit import channel_coreset_pruner
from coreset_verify.audit._conv import next_channels

#: The builtin channel coreset (draws), whose sampling every pruner here reuses.
CORESET = channel_coreset_pruner()


def _draw(w, b, V, size, rng, geometry):
    """``(kept, counts, probabilities, m)`` of one channel coreset draw, or None
    when ``size`` covers every live channel."""
    core = CORESET.coreset(w, b, V, size=size, rng=rng, geometry=geometry)
    if core is None:
        return None
    kept = np.asarray(core.indices, dtype=np.int64)
    return kept, core.counts, core.probabilities, core.sample_size


def _exact(w, b, V):
    """Every live channel, weights unchanged (exact on the ball)."""
    live = np.flatnonzero(CORESET._live(w, b, V))
    return live, next_channels(V, w.shape[0], live)


def channel_sample(w, b, V, *, size, rng, geometry):
    """Correct: the channel coreset's draws, re-weighted cnt / (m pr)."""
    draw = _draw(w, b, V, size, rng, geometry)
    if draw is None:
        return _exact(w, b, V)
    kept, counts, pr, m = draw
    return kept, next_channels(V, w.shape[0], kept, counts[kept] / (m * pr[kept]))


def forgets_reweighting(w, b, V, *, size, rng, geometry):
    """Samples by sensitivity but keeps the next weight as it is (no cnt / (m pr))."""
    draw = _draw(w, b, V, size, rng, geometry)
    if draw is None:
        return _exact(w, b, V)
    return draw[0], next_channels(V, w.shape[0], draw[0])


def wrong_probability(w, b, V, *, size, rng, geometry):
    """Samples by sensitivity, re-weights as if sampling were uniform (pr = 1/C): biased."""
    draw = _draw(w, b, V, size, rng, geometry)
    if draw is None:
        return _exact(w, b, V)
    kept, counts, _, m = draw
    return kept, next_channels(V, w.shape[0], kept, counts[kept] * w.shape[0] / m)


def mutates_input(w, b, V, *, size, rng, geometry):
    """Correct result, but normalises next_weight in place on the way."""
    out = channel_sample(w, b, V, size=size, rng=rng, geometry=geometry)
    V /= np.abs(V).max()
    return out


def ignores_rng(w, b, V, *, size, rng, geometry):
    """Draws from a fresh unseeded generator instead of rng."""
    return channel_sample(w, b, V, size=size, rng=np.random.default_rng(), geometry=geometry)


def keeps_more(w, b, V, *, size, rng, geometry):
    """Uniform sampling of size + 1 channels, re-weighted C / r."""
    C = w.shape[0]
    r = min(size + 1, C)
    kept = np.sort(rng.choice(C, size=r, replace=False))
    return kept, next_channels(V, C, kept, C / r)


def returns_float32(w, b, V, *, size, rng, geometry):
    """Correct values, a float32 next weight."""
    kept, U = channel_sample(w, b, V, size=size, rng=rng, geometry=geometry)
    return kept, U.astype(np.float32)


def first_channels(w, b, V, *, size, rng, geometry):
    """Keeps channels 0..size-1: depends on the order of the channels."""
    kept = np.arange(min(size, w.shape[0]))
    return kept, next_channels(V, w.shape[0], kept)


def too_small_epsilon(w, b, V, *, size, rng, geometry):
    """A claimed uniform epsilon of 0.001 T: far below the error at half the channels."""
    return 0.001


RANDOM_UNBIASED = {"unbiased": True, "deterministic": False}

#: The claims of the correct sampler: those of the builtin channel coreset.
CORRECT_CLAIMS = CORESET.claims(kind="uniform", delta=0.1)

#: name -> (pruner, claims, the checks that must flag it: exactly these fail)
CONV_FAULTS = {
    "forgets_reweighting": (forgets_reweighting, RANDOM_UNBIASED, ("check_unbiased",)),
    "wrong_probability": (wrong_probability, RANDOM_UNBIASED, ("check_unbiased",)),
    "mutates_input": (mutates_input, RANDOM_UNBIASED, ("check_inputs_not_mutated",)),
    "ignores_rng": (ignores_rng, RANDOM_UNBIASED, ("check_rng",)),
    "keeps_more": (keeps_more, RANDOM_UNBIASED, ("check_size_budget",)),
    # float32 rounding (1e-7) also breaks exactness at full size (1e-9).
    "returns_float32": (returns_float32, RANDOM_UNBIASED, (
        "check_returns_arrays", "check_full_size_exact", "check_degenerate_neurons")),
    "first_channels": (first_channels, {"unbiased": False, "deterministic": True},
                       ("check_permutation",)),
    "too_small_epsilon": (channel_sample, CORRECT_CLAIMS | {"guarantee": {
        "kind": "uniform", "delta": 0.1, "epsilon": too_small_epsilon}},
        ("check_guarantee",)),
}
