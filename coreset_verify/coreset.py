"""The coreset pruner: :func:`layer_coreset` and :func:`neuron_coreset`.

Mussay et al., "Data-Independent Neural Pruning via Coresets" (ICLR 2020),
Algorithm 1, with one kept set serving every next-layer neuron
(proofs_notes/sampling.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np
from array_api_compat import array_namespace, is_torch_array

from ._validation import (
    as_array,
    check_bool,
    check_exactly_one,
    check_finite_entries,
    check_int,
    check_layer,
    check_option,
    check_positive,
    check_rng,
    fail,
    to_numpy,
)
from .activations import Activation, get_activation, require
from .errors import InvalidArgumentError
from .sampling import (
    DEFAULT_MAX_DRAWS,
    MAX_DRAWS,
    MAX_SAMPLE_SIZE,
    Draws,
    draw_counts,
    draw_until_distinct,
    reweight,
    split_sample_size,
)
from .sensitivity import REDUCTIONS, Sensitivities, _sensitivities

__all__ = ["LayerCoreset", "SampledPart", "layer_coreset", "neuron_coreset"]

_HOST = array_namespace(np.zeros(1))


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

    The record stores the options that made it and derives the rest, so
    :meth:`replay` redraws it faithfully.

    Attributes
    ----------
    indices : array of int64, shape (r,)
        Sorted kept neurons (rows of ``W_in``).
    weight_out : array, shape (k, r)
        New outgoing weights ``U[:, indices]``, dtype and device of ``W_out``.
    sample_size : int
        ``m``, the number of draws (for ``distinct=r``, the realised number).
    scale : ndarray of float64, shape (k,)
        ``T_i``, the unit of the additive guarantee.
    total_sensitivity : float
        ``t = sum_j s[j]`` (for ``split_signs``, ``t+ + t-``).
    activation, beta, reduction, split_signs, distinct, max_draws
        The options the coreset was built with.
    parts : tuple of SampledPart
        One part, or two for ``split_signs``; the guarantees read these.
    layer : tuple
        ``(W_in, b_in, W_out)`` as given.
    rng_state : dict or None
        The state of the bit generator before the first draw
        (``Generator.bit_generator.state``), from which :meth:`replay`
        redraws; ``rng_seed`` is the int seed when one was given.

    Derived (properties): ``counts`` (sum of the parts' counts), ``probabilities``
    (the law of one draw: the mixture ``sum_p m_p pr_p / m``), ``n_kept``,
    ``n_neurons``, ``options``.
    """

    indices: Any = field(repr=False)
    weight_out: Any = field(repr=False)
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
    max_draws: int = DEFAULT_MAX_DRAWS
    rng_seed: int | None = None
    rng_state: dict | None = field(default=None, repr=False, compare=False)

    def _like(self, values: np.ndarray, dtype_name: str):
        W_out = self.layer[2]
        xp = array_namespace(W_out) if is_torch_array(W_out) else np
        return xp.asarray(values, dtype=getattr(xp, dtype_name),
                          device=getattr(W_out, "device", None))

    @cached_property
    def counts(self) -> Any:
        """Times each neuron was drawn, shape (n,) int64; sums to ``sample_size``."""
        return self._like(sum(p.counts for p in self.parts), "int64")

    @cached_property
    def probabilities(self) -> Any:
        """The law of one draw, shape (n,) float64 (for ``split_signs`` the
        mixture ``(m+ pr+ + m- pr-) / m``)."""
        mixture = sum(p.sample_size * p.probabilities for p in self.parts) / self.sample_size
        return self._like(mixture, "float64")

    @property
    def n_kept(self) -> int:
        """Number of kept neurons, ``r``."""
        return int(self.indices.shape[0])

    @property
    def n_neurons(self) -> int:
        """Number of neurons before pruning, ``n``."""
        return int(self.layer[0].shape[0])

    @property
    def options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`layer_coreset` that made this coreset."""
        size = {"distinct": self.distinct} if self.distinct is not None else {
            "sample_size": self.sample_size}
        return {**size, "activation": self.activation, "beta": self.beta,
                "split_signs": self.split_signs, "reduction": self.reduction,
                "max_draws": self.max_draws}

    def replay(self, rng: int | np.random.Generator | None = None) -> LayerCoreset:
        """Redraw with the same options: the same coreset, or new draws.

        Parameters
        ----------
        rng : int, numpy.random.Generator or None
            None (default) restarts the generator from the stored state, which
            gives an identical coreset (``split_signs``, ``distinct`` and
            ``raw-max`` included); anything else draws afresh.

        Examples
        --------
        >>> import numpy as np
        >>> gen = np.random.default_rng(0)
        >>> c = layer_coreset(gen.normal(size=(9, 2)), gen.normal(size=9),
        ...                   gen.normal(size=(2, 9)), distinct=4, beta=1.0, rng=7)
        >>> bool(np.array_equal(c.replay().counts, c.counts))
        True
        """
        if rng is None:
            rng = _generator_from_state(self.rng_state)
        return layer_coreset(*self.layer, **self.options, rng=rng)

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


def _generator_from_state(state: dict | None) -> np.random.Generator:
    if state is None:
        raise InvalidArgumentError(
            "LayerCoreset.replay: this coreset stores no generator state; pass rng."
        )
    bit_generator = getattr(np.random, state["bit_generator"])()
    bit_generator.state = state
    return np.random.Generator(bit_generator)


class _Sampled(NamedTuple):
    parts: tuple[SampledPart, ...]
    weight_out: Callable[[Any, np.ndarray], Any]
    total: float
    scale: np.ndarray
    sample_size: int


def _index_array(xp, indices: np.ndarray, like):
    return xp.asarray(indices, dtype=xp.int64, device=getattr(like, "device", None))


def _sample(pr: np.ndarray, m: int | None, distinct: int | None, rng, max_draws):
    if distinct is not None:
        return draw_until_distinct(pr, distinct, rng, max_draws=max_draws,
                                   func="layer_coreset")
    return Draws(draw_counts(pr, m, rng), m)


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
        ``m``, the number of i.i.d. draws, at most ``MAX_SAMPLE_SIZE = 2**53``
        (counts stay exact in float64). Give this or ``distinct``.
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
        Give up (with an error) after this many draws in ``distinct`` mode;
        at most ``MAX_DRAWS = 2**53`` (draws are made in bounded chunks).

    Returns
    -------
    LayerCoreset
        Stores its options and the generator state; ``.replay()`` redraws it.

    Raises
    ------
    InvalidArgumentError
        Bad shapes, dtypes (only float32 and float64), backends, option
        values; non-finite weights; an all-zero layer.
    MagnitudeError
        Weights whose norms, reaches, envelopes or scales ``T_i`` float64
        cannot carry (proofs_notes/sensitivity.md, "Magnitudes").
    AssumptionError
        A non-monotone activation.

    Notes
    -----
    proofs_notes/sampling.md (unbiasedness, the bound on one draw, limits)
    and proofs_notes/split_signs.md (computed on the host in float64, so the
    same seed gives the same coreset on every backend).

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
    act, beta, m, distinct = _check_options(
        func, activation, beta, sample_size, distinct, reduction, split_signs
    )
    max_draws = check_int(max_draws, "max_draws", func)
    if max_draws > MAX_DRAWS:
        raise fail(func, "max_draws", "an integer <= MAX_DRAWS = 2**53 (see sampling.py)",
                   max_draws)
    rng_seed = _seed_of(rng)
    rng = check_rng(rng, func)
    rng_state = rng.bit_generator.state
    xp, W_in, b_in, W_out = check_layer(func, W_in, b_in, W_out)
    if split_signs:
        sampled = _split_parts(func, W_in, b_in, W_out, beta, act, reduction, m, rng)
    else:
        sampled = _whole(func, xp, W_in, b_in, W_out, beta, act, reduction, m, distinct,
                         rng, max_draws)
    counts = sum(p.counts for p in sampled.parts)
    kept = np.flatnonzero(counts)
    idx = _index_array(xp, kept, W_out)
    return LayerCoreset(
        indices=idx,
        weight_out=sampled.weight_out(idx, kept),
        sample_size=sampled.sample_size,
        scale=sampled.scale,
        total_sensitivity=sampled.total,
        activation=act,
        beta=beta,
        reduction=reduction,
        split_signs=split_signs,
        distinct=distinct,
        parts=sampled.parts,
        layer=(W_in, b_in, W_out),
        max_draws=max_draws,
        rng_seed=rng_seed,
        rng_state=rng_state,
    )


def _seed_of(rng: Any) -> int | None:
    if isinstance(rng, int | np.integer) and not isinstance(rng, bool) and rng >= 0:
        return int(rng)
    return None


def _check_options(func, activation, beta, sample_size, distinct, reduction, split):
    act = get_activation(activation)
    require(act, "is_nondecreasing", theorem="coreset")
    beta = check_positive(beta, "beta", func)
    check_option(reduction, "reduction", func, REDUCTIONS)
    split = check_bool(split, "split_signs", func)
    check_exactly_one(func, sample_size=(sample_size, "the number of draws m"),
                      distinct=(distinct, "the number of distinct neurons to keep"))
    if distinct is not None:
        distinct = check_int(distinct, "distinct", func)
        if split:
            raise InvalidArgumentError(
                f"{func}: distinct and split_signs=True cannot be combined; "
                "give sample_size with split_signs."
            )
    else:
        sample_size = check_int(sample_size, "sample_size", func)
        if sample_size > MAX_SAMPLE_SIZE:
            raise fail(func, "sample_size", "an integer <= MAX_SAMPLE_SIZE = 2**53 (counts "
                       "stay exact in float64)", sample_size)
    return act, beta, sample_size, distinct


def _whole(func, xp, W_in, b_in, W_out, beta, act, reduction, m, distinct, rng, max_draws):
    """One coreset for all of W_out (sensitivities in the weights' backend)."""
    sens = _sensitivities(func, *_host_views(xp, W_in, b_in, W_out), beta, act, reduction)
    pr = sens.probabilities
    counts, m = _sample(pr, m, distinct, rng, max_draws)
    factor = _factor(counts, pr, m)

    def weight_out(idx, kept):
        out = reweight(xp, W_out, idx, factor[kept])
        return _checked_weights(func, out, factor[kept], sens.envelope[kept], sens.scale)

    return _Sampled((SampledPart(0, pr, counts, m),), weight_out, sens.total, sens.scale, m)


def _host_views(xp, W_in, b_in, W_out) -> tuple:
    """Torch CPU tensors as zero-copy numpy views: the sensitivities, hence the
    probabilities and the draws, are then computed by the numpy code path,
    bit for bit as for numpy input (and faster, benchmarks/construction.py).
    Accelerator tensors stay where they are (a transfer would cost more)."""
    if not is_torch_array(W_out) or W_out.device.type != "cpu":
        return xp, W_in, b_in, W_out
    return (_HOST, *(a.detach().numpy() for a in (W_in, b_in, W_out)))


def _checked_weights(func: str, weight_out: Any, factor: np.ndarray, env: np.ndarray,
                     scale: np.ndarray) -> Any:
    """Refuse a re-weighted ``W_out`` that overflowed its dtype (float32: 3.4e38).

    ``|U_ij| <= factor_j max_i T_i / env_j`` (as ``T_i >= |W_ij| env_j``); only
    when this host bound comes near the dtype's largest number is
    ``weight_out`` itself searched, so the usual construction pays nothing.
    """
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        bound = float(np.max(factor / env, initial=0.0)) * float(np.max(scale, initial=0.0))
    if bound < 0.5 * float(np.finfo(str(weight_out.dtype).removeprefix("torch.")).max):
        return weight_out
    xp = array_namespace(weight_out)
    if not bool(xp.all(xp.isfinite(weight_out))):
        raise InvalidArgumentError(
            f"{func}: a re-weighted outgoing weight cnt_j W_out[i, j] / (m pr_j) overflows "
            f"{weight_out.dtype}. Cast the weights to float64 or rescale them."
        )
    return weight_out


def host_split(func, W_in, b_in, W_out, beta, act, reduction) -> dict[int, Sensitivities]:
    """Sensitivities of the positive and the negative part of ``W_out``.

    Computed on the host in float64 by one code path whatever the backend of
    the weights, so that the split of ``m`` (which rounds ``m t+ / t``) and
    the draws are the same on every backend (proofs_notes/split_signs.md).
    Refuses NaN or infinite ``W_out`` exactly as without ``split_signs``.
    """
    W_in, b_in, W = (np.asarray(to_numpy(a), dtype=np.float64) for a in (W_in, b_in, W_out))
    with np.errstate(over="ignore", invalid="ignore"):
        if not np.all(np.isfinite(W.sum(axis=1))):
            check_finite_entries(func, "W_out", W_out)
    signed = {1: np.where(W > 0, W, 0.0), -1: np.where(W < 0, -W, 0.0)}
    sens = {
        sign: _sensitivities(func, _HOST, W_in, b_in, part, beta, act, reduction,
                             allow_zero=True)
        for sign, part in signed.items()
    }
    if (sens[1].total, sens[-1].total) == (0.0, 0.0):
        _sensitivities(func, _HOST, W_in, b_in, W, beta, act, reduction)  # raises
    return sens


def _split_parts(func, W_in, b_in, W_out, beta, act, reduction, m, rng) -> _Sampled:
    """Separate coresets for the positive and the negative part of W_out."""
    xp = array_namespace(W_out) if is_torch_array(W_out) else _HOST
    sens = host_split(func, W_in, b_in, W_out, beta, act, reduction)
    totals = (sens[1].total, sens[-1].total)
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

    def weight_out(idx, kept):
        positive = reweight(xp, W_out, idx, factors[1][kept])
        negative = reweight(xp, W_out, idx, factors[-1][kept])
        both = xp.where(xp.take(W_out, idx, axis=1) > 0, positive, negative)
        largest = np.maximum(factors[1][kept], factors[-1][kept])
        return _checked_weights(func, both, largest, sens[1].envelope[kept],
                                sens[1].scale + sens[-1].scale)

    return _Sampled(tuple(parts), weight_out, sum(totals), sens[1].scale + sens[-1].scale, m)


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
    points = as_array(func, "points", points)
    weights = as_array(func, "weights", weights)
    if weights.ndim != 1:
        raise fail(func, "weights", "a 1-D array of shape (n,)", f"shape {tuple(weights.shape)}")
    if points.ndim != 2:
        raise fail(func, "points", "a 2-D array of shape (n, d)", f"shape {tuple(points.shape)}")
    if biases is None:
        xp = array_namespace(points) if is_torch_array(points) else np
        biases = xp.zeros_like(points[:, 0])
    return layer_coreset(
        points, biases, weights[None, :],
        sample_size=sample_size, distinct=distinct, activation=activation,
        beta=beta, rng=rng, split_signs=split_signs,
    )
