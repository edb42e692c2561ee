"""Pruners of a user's own, for ``coreset-verify audit --pruner cli_user_pruners:NAME``.

Imported by name from this folder (the tests put it on ``sys.path``).
"""

from __future__ import annotations

import numpy as np

NOT_A_PRUNER = 3


def uniform_reweighted(W_in, b_in, W_out, *, size, rng):
    """Keep ``size`` neurons uniformly at random, re-weighted by ``n / size``: unbiased."""
    n = W_in.shape[0]
    keep = np.sort(rng.choice(n, size=min(size, n), replace=False))
    return W_in[keep], b_in[keep], W_out[:, keep] * (n / keep.size)


uniform_reweighted.claims = {"unbiased": True, "deterministic": False}


def forgets_one_over_m(W_in, b_in, W_out, *, size, rng):
    """The same, re-weighted by ``n`` instead of ``n / size``: biased, claims otherwise."""
    n = W_in.shape[0]
    keep = np.sort(rng.choice(n, size=min(size, n), replace=False))
    return W_in[keep], b_in[keep], W_out[:, keep] * n


forgets_one_over_m.claims = {"unbiased": True, "deterministic": False}
