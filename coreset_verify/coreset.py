"""The coreset pruner: :func:`layer_coreset` and :func:`neuron_coreset`.

Mussay et al., "Data-Independent Neural Pruning via Coresets" (ICLR 2020),
Algorithm 1, with one kept set serving every next-layer neuron
(proofs_notes/sampling.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from array_api_compat import array_namespace, is_torch_array

from ._validation import check_int, check_layer, check_positive, check_rng, fail
from .activations import Activation, get_activation, require
from .errors import InvalidArgumentError
from .sampling import (
    DEFAULT_MAX_DRAWS,
    draw_counts,
    draw_until_distinct,
    reweight,
    split_sample_size,
)
from .sensitivity import REDUCTIONS, Sensitivities, _sensitivities

__all__ = ["LayerCoreset", "SampledPart", "layer_coreset", "neuron_coreset"]


@dataclass(frozen=True)
class SampledPart:
    """One sampling of the layer: the whole of ``W_out``, or one sign of it.

    Attributes
    ----------
    sign : {0, 1, -1}
        0: all of ``W_out``; 1: its positive part; -1: its negative part.
    probabilities : ndarray, shape (n,), float64
    counts : ndarray, shape (n,), int64
    sample_size : int
        Draws made for this part.
    """

    sign: int
    probabilities: np.ndarray = field(repr=False)
    counts: np.ndarray = field(repr=False)
    sample_size: int


@dataclass(frozen=True)
class LayerCoreset:
    """A pruned layer pair: the kept neurons and their new outgoing weights.

    Attributes
    ----------
    indices : array of int64, shape (r,)
        Sorted kept neurons (rows of ``W_in``).
    weight_out : array, shape (k, r)
        New outgoing weights ``U[:, indices]``, dtype and device of ``W_out``.
    probabilities : array of float64, shape (n,)
        The sampling distribution ``pr`` (for ``split_signs`` the mixture
        ``(m+ pr+ + m- pr-) / m``, the law of one draw).
    counts : array of int64, shape (n,)
        Times each neuron was drawn; sums to ``sample_size``.
    sample_size : int
        ``m``, the number of draws (for ``distinct=r``, the realised number).
    scale : ndarray of float64, shape (k,)
        ``T_i``, the unit of the additive guarantee.
    total_sensitivity : float
        ``t = sum_j s[j]`` (for ``split_signs``, ``t+ + t-``).
    activation, beta, reduction, split_signs, distinct
        The options the coreset was built with.
    parts : tuple of SampledPart
        One part, or two for ``split_signs``; the guarantees read these.
    """

    indices: Any = field(repr=False)
    weight_out: Any = field(repr=False)
    probabilities: Any = field(repr=False)
    counts: Any = field(repr=False)
    sample_size: int
    scale: np.ndarray = field(repr=False)
    total_sensitivity: float
    activation: Activation
    beta: float
    reduction: str
    split_signs: bool
    distinct: int | None
    parts: tuple[SampledPart, ...] = field(repr=False)
    layer: tuple[Any, Any, Any] = field(repr=False, compare=False)

    @property
    def n_kept(self) -> int:
        """Number of kept neurons, ``r``."""
        return int(self.indices.shape[0])

    @property
    def n_neurons(self) -> int:
        """Number of neurons before pruning, ``n``."""
        return int(self.layer[0].shape[0])

    def pruned(self) -> tuple[Any, Any, Any]:
        """``(W_in[indices], b_in[indices], weight_out)``: the smaller layer pair."""
        W_in, b_in, _ = self.layer
        return W_in[self.indices], b_in[self.indices], self.weight_out

    def __repr__(self) -> str:
        return (
            f"LayerCoreset(kept {self.n_kept} of {self.n_neurons} neurons, "
            f"sample_size={self.sample_size}, outputs={self.scale.shape[0]}, "
            f"activation={self.activation.name!r}, beta={self.beta}, "
            f"total_sensitivity={self.total_sensitivity:.4g})"
        )


def _index_array(xp, indices: np.ndarray, like):
    return xp.asarray(indices, dtype=xp.int64, device=getattr(like, "device", None))


def _sample(pr: np.ndarray, m: int | None, distinct: int | None, rng, max_draws):
    if distinct is not None:
        return draw_until_distinct(pr, distinct, rng, max_draws=max_draws)
    return draw_counts(pr, m, rng), m


def _factor(counts: np.ndarray, pr: np.ndarray, m: int) -> np.ndarray:
    """``cnt[j] / (m pr[j])``, zero where ``cnt[j] = 0``."""
    out = np.zeros_like(pr)
    drawn = counts > 0
    out[drawn] = counts[drawn] / (m * pr[drawn])
    return out


def layer_coreset(
    W_in: Any,
    b_in: Any,
    W_out: Any,
    *,
    sample_size: int | None = None,
    distinct: int | None = None,
    activation: str | Activation = "relu",
    beta: float,
    rng: int | np.random.Generator | None = None,
    split_signs: bool = False,
    reduction: str = "per-output",
    max_draws: int = DEFAULT_MAX_DRAWS,
) -> LayerCoreset:
    """Prune the neurons of a layer by sensitivity sampling and re-weight W_out.

    Draw ``m`` neurons i.i.d. with probability ``pr[j] = s[j] / t`` and set
    ``U[i, j] = W_out[i, j] * cnt[j] / (m * pr[j])``; ``E[U] = W_out``.

    Parameters
    ----------
    W_in : array, shape (n, d)
        Incoming weights of the layer's n neurons (numpy or torch).
    b_in : array, shape (n,)
    W_out : array, shape (k, n)
        Next layer's weights.
    sample_size : int, optional
        ``m``, the number of i.i.d. draws. Give this or ``distinct``.
    distinct : int, optional
        Draw until this many distinct neurons are kept (the practical form);
        the realised number of draws is recorded as ``sample_size``.
    activation : str or Activation, default "relu"
        Must be non-decreasing.
    beta : float
        Radius of the input ball ``||x||_2 <= beta``.
    rng : int, numpy.random.Generator or None
        Source of the draws; the same seed gives the same coreset on every
        backend.
    split_signs : bool, default False
        Sample the positive and negative parts of ``W_out`` separately,
        ``m`` split between them in proportion to their total sensitivities.
    reduction : {"per-output", "raw-max"}
        See :func:`~coreset_verify.sensitivity.layer_sensitivities`.
    max_draws : int
        Give up (with an error) after this many draws in ``distinct`` mode.

    Returns
    -------
    LayerCoreset

    Notes
    -----
    proofs_notes/sampling.md (unbiasedness, the bound on one draw) and
    proofs_notes/split_signs.md.

    Examples
    --------
    >>> import numpy as np
    >>> gen = np.random.default_rng(0)
    >>> W_in, b_in = gen.normal(size=(50, 8)), gen.normal(size=50)
    >>> W_out = gen.normal(size=(3, 50))
    >>> c = layer_coreset(W_in, b_in, W_out, sample_size=20, beta=1.0, rng=0)
    >>> int(c.counts.sum()), c.weight_out.shape[0]
    (20, 3)
    >>> W_in_small, b_in_small, W_out_small = c.pruned()
    >>> W_out_small.shape == (3, c.n_kept)
    True
    """
    func = "layer_coreset"
    act, beta, rng, m, distinct = _check_options(
        func, activation, beta, rng, sample_size, distinct, reduction, split_signs
    )
    max_draws = check_int(max_draws, "max_draws", func)
    xp, W_in, b_in, W_out = check_layer(func, W_in, b_in, W_out)
    if split_signs:
        parts, weight_out_fn, sens_total, scale = _split_parts(
            func, xp, W_in, b_in, W_out, beta, act, reduction, m, rng
        )
    else:
        sens = _sensitivities(func, xp, W_in, b_in, W_out, beta, act, reduction)
        pr = sens.probabilities
        counts, m = _sample(pr, m, distinct, rng, max_draws)
        parts = (SampledPart(0, pr, counts, m),)
        sens_total, scale = sens.total, sens.scale
        factor = _factor(counts, pr, m)

        def weight_out_fn(idx, kept):
            return reweight(xp, W_out, idx, factor[kept])

    counts = sum(p.counts for p in parts)
    kept = np.flatnonzero(counts)
    idx = _index_array(xp, kept, W_out)
    mixture = sum(p.sample_size * p.probabilities for p in parts) / m
    return LayerCoreset(
        indices=idx,
        weight_out=weight_out_fn(idx, kept),
        probabilities=xp.asarray(mixture, dtype=xp.float64, device=getattr(W_out, "device", None)),
        counts=_index_array(xp, counts, W_out),
        sample_size=m,
        scale=scale,
        total_sensitivity=sens_total,
        activation=act,
        beta=beta,
        reduction=reduction,
        split_signs=split_signs,
        distinct=distinct,
        parts=parts,
        layer=(W_in, b_in, W_out),
    )


def _check_options(func, activation, beta, rng, sample_size, distinct, reduction, split):
    act = get_activation(activation)
    require(act, "is_nondecreasing", theorem="coreset")
    beta = check_positive(beta, "beta", func)
    rng = check_rng(rng, func)
    if reduction not in REDUCTIONS:
        raise fail(func, "reduction", f"one of {list(REDUCTIONS)}", reduction)
    if (sample_size is None) == (distinct is None):
        raise InvalidArgumentError(
            f"{func} needs exactly one of sample_size (the number of draws m) "
            f"and distinct (the number of distinct neurons to keep); got "
            f"sample_size={sample_size!r}, distinct={distinct!r}."
        )
    if not isinstance(split, bool):
        raise fail(func, "split_signs", "True or False", split)
    if distinct is not None:
        distinct = check_int(distinct, "distinct", func)
        if split:
            raise InvalidArgumentError(
                f"{func}: distinct and split_signs=True cannot be combined; "
                "give sample_size with split_signs."
            )
    else:
        sample_size = check_int(sample_size, "sample_size", func)
    return act, beta, rng, sample_size, distinct


def _split_parts(func, xp, W_in, b_in, W_out, beta, act, reduction, m, rng):
    """Separate coresets for the positive and the negative part of W_out."""
    zero = xp.zeros_like(W_out)
    signed = {1: xp.where(W_out > 0, W_out, zero), -1: xp.where(W_out < 0, -W_out, zero)}
    sens: dict[int, Sensitivities] = {
        sign: _sensitivities(func, xp, W_in, b_in, part, beta, act, reduction,
                             allow_zero=True)
        for sign, part in signed.items()
    }
    totals = (sens[1].total, sens[-1].total)
    if totals == (0.0, 0.0):
        _sensitivities(func, xp, W_in, b_in, W_out, beta, act, reduction)  # raises
    if m < 2 and min(totals) > 0:
        raise fail(func, "sample_size", "an integer >= 2 with split_signs=True "
                   "(one draw per sign part at least)", m)
    sizes = dict(zip((1, -1), split_sample_size(m, totals), strict=True))
    parts, factors = [], {}
    for sign in (1, -1):
        s = sens[sign]
        pr = s.sensitivity / s.total if s.total > 0 else np.zeros_like(s.sensitivity)
        counts = draw_counts(pr, sizes[sign], rng) if sizes[sign] else np.zeros(pr.shape, np.int64)
        parts.append(SampledPart(sign, pr, counts, sizes[sign]))
        factors[sign] = _factor(counts, pr, max(sizes[sign], 1))

    def weight_out_fn(idx, kept):
        positive = reweight(xp, W_out, idx, factors[1][kept])
        negative = reweight(xp, W_out, idx, factors[-1][kept])
        return xp.where(xp.take(W_out, idx, axis=1) > 0, positive, negative)

    return tuple(parts), weight_out_fn, sum(totals), sens[1].scale + sens[-1].scale


def neuron_coreset(
    points: Any,
    weights: Any,
    *,
    sample_size: int | None = None,
    distinct: int | None = None,
    activation: str | Activation = "relu",
    beta: float,
    rng: int | np.random.Generator | None = None,
    biases: Any = None,
    split_signs: bool = False,
) -> LayerCoreset:
    """Coreset for one next-layer neuron (k = 1): the paper's Algorithm 1.

    Parameters
    ----------
    points : array, shape (n, d)
        Incoming weights of the n neurons.
    weights : array, shape (n,)
        Their weights into the single next-layer neuron.
    biases : array, shape (n,), optional
        Biases of the n neurons; zero by default.

    Other parameters are those of :func:`layer_coreset`; ``weight_out`` of
    the result has shape (1, r).

    Examples
    --------
    >>> import numpy as np
    >>> pts = np.eye(3); w = np.array([1.0, 2.0, 1.0])
    >>> c = neuron_coreset(pts, w, sample_size=4, beta=1.0, rng=1)
    >>> c.probabilities
    array([0.25, 0.5 , 0.25])
    """
    func = "neuron_coreset"
    if getattr(weights, "ndim", np.ndim(weights)) != 1:
        raise fail(func, "weights", "a 1-D array of shape (n,)",
                   f"shape {tuple(np.shape(weights))}")
    if biases is None:
        biases = _zeros_like_first_column(points)
    return layer_coreset(
        points, biases, weights[None, :],
        sample_size=sample_size, distinct=distinct, activation=activation,
        beta=beta, rng=rng, split_signs=split_signs,
    )


def _zeros_like_first_column(points: Any) -> Any:
    if getattr(points, "ndim", np.ndim(points)) != 2:
        raise fail("neuron_coreset", "points", "a 2-D array of shape (n, d)",
                   f"shape {tuple(np.shape(points))}")
    xp = array_namespace(points) if is_torch_array(points) else np
    return xp.zeros_like(points[:, 0])
