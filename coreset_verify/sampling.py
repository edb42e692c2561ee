"""Draws, counts and re-weighting (proofs_notes/sampling.md).

Random numbers come only from a numpy Generator, on the host, from float64
probabilities: the same ``rng`` gives the same counts whatever backend holds
the weights.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ._validation import check_int, fail
from .errors import InvalidArgumentError

__all__ = [
    "DEFAULT_MAX_DRAWS",
    "MAX_DRAWS",
    "MAX_SAMPLE_SIZE",
    "Draws",
    "SplitSizes",
    "draw_counts",
    "draw_until_distinct",
    "reweight",
    "split_sample_size",
]

DEFAULT_MAX_DRAWS = 10_000_000
#: Largest number of draws: counts, their sums and ``m * pr`` stay exact
#: integers in float64 (proofs_notes/sampling.md, "Limits").
MAX_SAMPLE_SIZE = 2**53
#: Largest ``max_draws`` of the distinct mode (draws are made in chunks of at
#: most ``_MAX_CHUNK``, so memory stays bounded whatever the limit).
MAX_DRAWS = 2**53
_MAX_CHUNK = 1 << 20


class Draws(NamedTuple):
    """Counts of the draws made, shape (n,) int64, and their number ``m``."""

    counts: np.ndarray
    sample_size: int


class SplitSizes(NamedTuple):
    """Draws given to the positive and to the negative part of ``W_out``."""

    positive: int
    negative: int


def draw_counts(probabilities: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    """Counts of ``m`` i.i.d. draws from ``probabilities``, shape (n,), int64.

    A multinomial draw: the same law as ``m`` single draws, in O(n) time.
    Neurons of probability zero are never drawn.
    """
    return rng.multinomial(m, probabilities).astype(np.int64)


def draw_until_distinct(
    probabilities: np.ndarray,
    r: int,
    rng: np.random.Generator,
    *,
    max_draws: int = DEFAULT_MAX_DRAWS,
    func: str = "draw_until_distinct",
) -> Draws:
    """Draw i.i.d. from ``probabilities`` until ``r`` distinct indices came up.

    Draws are made in chunks (doubling from ``max(2 r, 64)`` up to 2**20), so
    memory stays O(n + 2**20) whatever ``max_draws`` is.

    Returns ``Draws(counts, m)``: the counts of all ``m`` draws made, the last of
    which brought the r-th distinct index.

    Raises
    ------
    InvalidArgumentError
        If fewer than ``r`` indices have positive probability (the loop would
        never end), or if ``max_draws`` draws did not reach ``r``.
    """
    r = check_int(r, "distinct", func)
    max_draws = check_int(max_draws, "max_draws", func)
    if max_draws > MAX_DRAWS:
        raise fail(func, "max_draws", "an integer <= MAX_DRAWS = 2**53", max_draws)
    live = int(np.count_nonzero(probabilities > 0))
    if r > live:
        raise InvalidArgumentError(
            f"{func}: distinct={r} asks for more distinct neurons than the layer has "
            f"live ones ({live} with positive sensitivity on the ball). Ask "
            f"for at most {live}."
        )
    n = probabilities.shape[0]
    seen = np.zeros(n, dtype=bool)
    n_seen, drawn, chunk = 0, 0, max(2 * r, 64)
    counts = np.zeros(n, dtype=np.int64)  # of the completed chunks: O(n) memory
    while drawn < max_draws:
        chunk = min(chunk, max_draws - drawn)
        draws = rng.choice(n, size=chunk, p=probabilities)
        values, first = np.unique(draws, return_index=True)
        fresh = np.sort(first[~seen[values]])
        if n_seen + fresh.size >= r:
            stop = int(fresh[r - n_seen - 1]) + 1
            counts += np.bincount(draws[:stop], minlength=n)
            return Draws(counts, drawn + stop)
        seen[values] = True
        n_seen += fresh.size
        counts += np.bincount(draws, minlength=n)
        drawn += chunk
        chunk = min(2 * chunk, _MAX_CHUNK)
    raise InvalidArgumentError(
        f"{func}: distinct={r}: {max_draws} draws found only {n_seen} distinct neurons "
        "(some live neurons have tiny probability). Ask for fewer distinct "
        "neurons or use sample_size."
    )


def split_sample_size(m: int, totals: tuple[float, float]) -> SplitSizes:
    """Split ``m`` draws between two parts in proportion to their sensitivities.

    ``m_p`` proportional to ``t_p`` equalises the two parts' Hoeffding terms
    ``t_p / sqrt(m_p)`` (proofs_notes/split_signs.md). A part with positive
    total gets at least one draw when ``m >= 2``; an empty part gets none.

    The totals must come from one code path on every backend (the float64
    host computation of :func:`~coreset_verify.coreset.layer_coreset`): a
    one-ulp difference can flip the rounding of ``m t+ / (t+ + t-)``.
    """
    t_pos, t_neg = totals
    if t_neg == 0:
        return SplitSizes(m, 0)
    if t_pos == 0:
        return SplitSizes(0, m)
    m_pos = round(m * (t_pos / (t_pos + t_neg)))
    m_pos = min(max(m_pos, 1), m - 1) if m >= 2 else m_pos
    return SplitSizes(m_pos, m - m_pos)


def reweight(xp: Any, W_out: Any, indices: Any, factor: np.ndarray) -> Any:
    """``W_out[:, indices] * factor``, in the namespace, dtype and device of W_out.

    ``factor[q] = cnt[j] / (m * pr[j])`` for the q-th kept neuron j.
    """
    device = getattr(W_out, "device", None)
    scale = xp.asarray(factor, dtype=W_out.dtype, device=device)
    out = xp.take(W_out, indices, axis=1)
    out *= scale  # in place: no second (k, r) allocation
    return out
