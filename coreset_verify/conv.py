"""Filter (channel) coresets of a convolutional layer (proofs_notes/conv.md).

Each output channel of a Conv2d is one "neuron": over the input ball its
activation lies in ``[phi_lo[c], phi_hi[c]]`` at every position, and channel
c contributes at most ``||V[i, c]||_1 env[c]`` to any output of the next layer
(a Conv2d, or a Linear after Flatten). The problem is reduced to the dense
layer pair ``(w.reshape(C, -1), b, A)`` with ``A[i, c] = ||V[i, c]||_1``: the
dense sensitivities, draws, re-weighting and guarantee arithmetic are called
on it; what differs (the blocks of the next weight, the union over the ``k Q``
output channels and positions, the net of dimension ``D``) is done here.

What the caller handles, for a torch model
``Conv2d -> [BatchNorm2d] -> phi -> [MaxPool2d | AvgPool2d] -> (Conv2d | Flatten -> Linear)``:

* weights: ``conv.weight``, ``conv.bias`` (None when absent), ``next.weight``
  (detached). A BatchNorm2d in eval mode between the conv and ``phi`` must
  be folded into the weights the coreset is computed on
  (:func:`fold_batchnorm`); the pruned model then uses the folded conv, or
  the original conv and BatchNorm both indexed with ``indices``. A
  BatchNorm *after* ``phi`` is not covered: refuse it.
* a Linear after Flatten: ``channel_shape=(H, W)``, the spatial shape of each
  channel where the Linear reads it (after pooling). Pooling needs nothing
  else (proofs_notes/conv.md).
* ``padding_mode=conv.padding_mode``: anything but ``"zeros"`` is refused.
* groups: a grouped *first* conv is fine for the bound, but dropping channels
  breaks its equal group sizes; a grouped *next* conv must be expanded to its
  dense (block-diagonal) weight. Simplest: refuse ``groups != 1``.
* the smaller pair: ``w, b, V = coreset.pruned()`` gives the new conv's
  weight (r, C_in, kh, kw) and bias, and the next layer's weight with r input
  channels (its bias unchanged).
* the guarantee: :func:`channel_bound` (or ``coreset.bound``) needs
  ``output_positions`` (``H_out * W_out`` of the next conv's output, 1 for a
  Linear) and ``input_size`` (``C_in * H_in * W_in`` of the conv's input);
  read both from one forward pass of a dummy input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from array_api_compat import array_namespace, is_torch_array

from ._validation import (
    _as_arrays,
    _as_float,
    _check_dtype,
    check_finite_entries,
    check_finite_rows,
    check_int,
    check_option,
    check_rng,
    fail,
    to_numpy,
)
from .activations import Activation
from .coreset import (
    _check_options,
    _checked_weights,
    _factor,
    _generator_from_state,
    _host_views,
    _index_array,
    _seed_of,
)
from .errors import MagnitudeError
from .guarantees import Bound, Geometry, _check_kind_form, _combine, _layer_stats
from .sampling import DEFAULT_MAX_DRAWS, MAX_DRAWS, draw_counts, draw_until_distinct, reweight
from .sensitivity import _sensitivities

__all__ = [
    "CHANNEL_KINDS",
    "PADDING_MODES",
    "ChannelCoreset",
    "channel_bound",
    "channel_coreset",
    "fold_batchnorm",
]

PADDING_MODES = ("zeros",)
CHANNEL_KINDS = ("pointwise", "uniform")
#: Largest ``input_size`` of :func:`channel_bound` (the net's dimension, a float).
MAX_INPUT_SIZE = 2**53

_OTHER_PADDING = (
    "padding other than zeros repeats input entries inside a patch, so "
    "||patch|| <= ||x|| fails (proofs_notes/conv.md, Lemma C1). Pad the input "
    "yourself with that mode, prune the conv as an unpadded one on the padded "
    "input, and pass beta * sqrt(M_h * M_w) (M = 3 for reflect or circular, "
    "2 * pad + 1 for replicate, per spatial dimension)"
)


@dataclass(frozen=True)
class ChannelCoreset:
    """Kept output channels of a Conv2d and the re-weighted next layer.

    Attributes
    ----------
    indices : array of int64, shape (r,)
        Sorted kept channels, backend and device of the weights.
    weight_next : array, shape (k, r, kh', kw') or (k, r * H * W)
        ``U[i, c, o] = V[i, c, o] cnt[c] / (m pr[c])`` on the kept channels,
        the shape of ``next_weight`` with ``C`` replaced by ``r``.
    counts : ndarray of int64, shape (C,)
        Times each channel was drawn; sums to ``sample_size``.
    probabilities : ndarray of float64, shape (C,)
        ``pr = s / t``.
    sensitivity : ndarray of float64, shape (C,)
        ``s[c] = max_i ||V[i, c]||_1 env[c] / T_i``.
    envelope : ndarray of float64, shape (C,)
        ``env[c] = max(|phi_lo[c]|, |phi_hi[c]|)``: bounds channel c's
        activation at every position, pooled or not, on the ball (``phi_hi``
        for ``phi >= 0``).
    total_sensitivity : float
        ``t``.
    scale : ndarray of float64, shape (k,)
        ``T_i = sum_c ||V[i, c]||_1 env[c]``, the unit of the guarantees.
    sample_size : int
        ``m`` (the realised number of draws for ``distinct``).
    activation, beta, distinct, max_draws, channel_shape
        The options the coreset was built with (``channel_shape`` is None
        when the next layer is a Conv2d).
    layer : tuple
        ``(conv_weight, conv_bias, next_weight)`` as given (a None bias as zeros).
    rng_seed, rng_state
        The int seed when one was given; the bit generator's state before
        the first draw.
    """

    indices: Any = field(repr=False)
    weight_next: Any = field(repr=False)
    counts: np.ndarray = field(repr=False)
    probabilities: np.ndarray = field(repr=False)
    sensitivity: np.ndarray = field(repr=False)
    envelope: np.ndarray = field(repr=False)
    total_sensitivity: float
    scale: np.ndarray = field(repr=False)
    sample_size: int
    activation: Activation
    beta: float
    distinct: int | None
    max_draws: int
    channel_shape: tuple[int, int] | None
    layer: tuple[Any, Any, Any] = field(repr=False, compare=False)
    rng_seed: int | None = None
    rng_state: dict | None = field(default=None, repr=False, compare=False)

    @property
    def n_kept(self) -> int:
        """Number of kept channels, ``r``."""
        return int(self.indices.shape[0])

    @property
    def n_channels(self) -> int:
        """Number of output channels of the conv before pruning, ``C``."""
        return int(self.layer[0].shape[0])

    def pruned(self) -> tuple[Any, Any, Any]:
        """The physically smaller pair, as arrays of the weights' backend.

        Returns
        -------
        conv_weight : array, shape (r, C_in, kh, kw)
        conv_bias : array, shape (r,)
        next_weight : array, shape (k, r, kh', kw') or (k, r * H * W)
            ``weight_next``; the next layer's bias is unchanged.
        """
        w, b, _ = self.layer
        return w[self.indices], b[self.indices], self.weight_next

    def replay(self, rng: int | np.random.Generator | None = None) -> ChannelCoreset:
        """Redraw with the same options: None (default) restarts the stored
        generator state (the same coreset); anything else draws afresh."""
        if rng is None:
            rng = _generator_from_state(self.rng_state)
        size = ({"distinct": self.distinct} if self.distinct is not None
                else {"sample_size": self.sample_size})
        return channel_coreset(*self.layer, **size, activation=self.activation, beta=self.beta,
                               channel_shape=self.channel_shape, max_draws=self.max_draws,
                               rng=rng)

    def bound(self, *, delta: float, kind: str = "uniform", output_positions: int = 1,
              input_size: int | None = None) -> Bound:
        """:func:`channel_bound` of this coreset."""
        return channel_bound(self, delta=delta, kind=kind, output_positions=output_positions,
                             input_size=input_size)

    def __repr__(self) -> str:
        return (
            f"ChannelCoreset(kept {self.n_kept} of {self.n_channels} channels, "
            f"sample_size={self.sample_size}, outputs={self.scale.shape[0]}, "
            f"activation={self.activation.name!r}, beta={self.beta}, "
            f"total_sensitivity={self.total_sensitivity:.4g})"
        )


class _Reduced(NamedTuple):
    """The dense pair a conv reduces to: ``w_flat`` (C, C_in kh kw), ``b`` (C,),
    ``A`` (k, C) with ``A[i, c] = ||V[i, c]||_1``, and ``P`` columns per channel."""

    xp: Any
    w_flat: Any
    bias: Any
    A: Any
    positions: int


def _shape(a) -> tuple[int, ...]:
    return tuple(int(s) for s in a.shape)


def _check_padding(func: str, padding_mode: Any) -> None:
    if isinstance(padding_mode, str) and padding_mode in ("reflect", "replicate", "circular"):
        raise fail(func, "padding_mode", f"'zeros' ({_OTHER_PADDING})", padding_mode)
    check_option(padding_mode, "padding_mode", func, PADDING_MODES)


def _checked_conv(func: str, conv_weight, conv_bias, name: str = "conv_weight",
                  **others) -> tuple[Any, dict, Any, Any]:
    """Validate a conv's weight (C, C_in, kh, kw), the argument ``name``, and bias
    (C,) or None, with ``others`` in the same backend and dtype; return
    ``(xp, arrays, w, b)`` (a None bias as zeros)."""
    arrays = {name: conv_weight, **others}
    if conv_bias is not None:
        arrays["conv_bias"] = conv_bias
    xp, arrays = _as_arrays(func, arrays)
    _check_dtype(func, arrays, xp)
    w = arrays[name]
    if w.ndim != 4 or min(_shape(w)) < 1:
        raise fail(func, name, "a 4-D array (C, C_in, kh, kw), every size >= 1",
                   f"shape {_shape(w)}")
    C = _shape(w)[0]
    b = arrays.get("conv_bias")
    if b is None:
        b = xp.zeros((C,), dtype=w.dtype, device=getattr(w, "device", None))
    elif _shape(b) != (C,):
        raise fail(func, "conv_bias", f"of shape (C,) with C = {C} (conv_weight.shape[0])",
                   f"shape {_shape(b)}")
    return xp, arrays, w, b


def _check_next(func: str, V, C: int, channel_shape) -> tuple[int, int] | None:
    if V.ndim == 4:
        if _shape(V)[1] != C or min(_shape(V)) < 1:
            raise fail(func, "next_weight", f"of shape (k, C, kh', kw') with C = {C} "
                       "(output channels of conv_weight)", f"shape {_shape(V)}")
        if channel_shape is not None:
            raise fail(func, "channel_shape", "None when next_weight is a Conv2d weight "
                       "(4-D)", channel_shape)
        return None
    if V.ndim != 2 or min(_shape(V)) < 1:
        raise fail(func, "next_weight", "a 4-D Conv2d weight (k, C, kh', kw') or a 2-D "
                   "Linear weight (k, C * H * W)", f"shape {_shape(V)}")
    if not (isinstance(channel_shape, tuple | list) and len(channel_shape) == 2):
        raise fail(func, "channel_shape", "a pair (H, W), the spatial shape of each channel "
                   "where the Linear reads it (after pooling), when next_weight is 2-D",
                   channel_shape)
    H, W = (check_int(s, "channel_shape", func) for s in channel_shape)
    if _shape(V)[1] != C * H * W:
        raise fail(func, "next_weight", f"of shape (k, C * H * W) = (k, {C * H * W}) with "
                   f"C = {C} (conv_weight) and (H, W) = {(H, W)} (channel_shape)",
                   f"shape {_shape(V)}")
    return (H, W)


def _reduced(func: str, xp, w, b, V) -> _Reduced:
    """The dense pair ``(w_flat, b, A)`` (proofs_notes/conv.md, Definition C)."""
    C = _shape(w)[0]
    k = _shape(V)[0]
    P = _shape(V)[1] // C if V.ndim == 2 else _shape(V)[2] * _shape(V)[3]
    check_finite_entries(func, "conv_weight", w)
    check_finite_entries(func, "conv_bias", b)
    with np.errstate(over="ignore", invalid="ignore"):
        A = xp.sum(xp.abs(xp.reshape(V, (k, C, P))), axis=2)
    check_finite_rows(func, "next_weight", A, V, axis=2)
    return _Reduced(xp, xp.reshape(w, (C, -1)), b, A, P)


def channel_coreset(
    conv_weight: Any,
    conv_bias: Any,
    next_weight: Any,
    *,
    sample_size: int | None = None,
    distinct: int | None = None,
    activation: str | Activation = "relu",
    beta: float,
    rng: int | np.random.Generator | None = None,
    channel_shape: tuple[int, int] | None = None,
    padding_mode: str = "zeros",
    max_draws: int = DEFAULT_MAX_DRAWS,
) -> ChannelCoreset:
    """Prune the output channels of a Conv2d by sensitivity sampling.

    Channel c is kept with probability ``pr[c] = s[c] / t``,
    ``s[c] = max_i ||V[i, c]||_1 phi_hi[c] / T_i`` (``env`` for signed
    activations), and the next layer's input channel c is re-weighted by
    ``cnt[c] / (m pr[c])``; the estimate is unbiased.

    Parameters
    ----------
    conv_weight : array, shape (C, C_in, kh, kw)
        The conv's filters (BatchNorm before the activation folded in,
        :func:`fold_batchnorm`). Stride, dilation, groups and zero padding
        of the conv do not enter.
    conv_bias : array, shape (C,), or None
        None (a conv without bias) is zeros.
    next_weight : array, shape (k, C, kh', kw') or (k, C * H * W)
        A Conv2d's weight (groups=1: expand a grouped one to its dense,
        block-diagonal weight), or a Linear's after Flatten.
    sample_size, distinct : int
        ``m`` i.i.d. draws, or draw until this many distinct channels.
    activation : str or Activation, default "relu"
        Non-decreasing (the activation between the conv and the pooling).
    beta : float
        Radius of the input ball ``||x||_2 <= beta``; x is the whole input
        tensor of the conv (all channels and positions).
    rng : int, numpy.random.Generator or None
    channel_shape : (H, W), optional
        Required when ``next_weight`` is 2-D: the spatial shape of each
        channel as the Linear reads it (after pooling), Flatten order (C, H, W).
    padding_mode : {"zeros"}
        The conv's padding mode; others are refused (proofs_notes/conv.md).
    max_draws : int
        Limit of the ``distinct`` mode.

    Returns
    -------
    ChannelCoreset

    Raises
    ------
    InvalidArgumentError
        Bad shapes (channel counts that do not match), dtypes (only float32
        and float64), mixed backends, non-finite weights, a padding mode
        other than zeros, an all-zero layer, bad options.
    AssumptionError
        A non-monotone activation.

    Notes
    -----
    proofs_notes/conv.md. What the caller handles: a BatchNorm between the
    conv and the activation is folded first (:func:`fold_batchnorm`); a
    BatchNorm after the activation is not covered. Max- and average-pooling
    between the activation and the next layer need nothing (only
    ``channel_shape`` for a Linear). The guarantees need the input dimension
    and the next layer's number of output positions: :func:`channel_bound`.

    Examples
    --------
    >>> import numpy as np
    >>> gen = np.random.default_rng(0)
    >>> w, b = gen.normal(size=(16, 3, 3, 3)), gen.normal(size=16)
    >>> V = gen.normal(size=(8, 16, 3, 3))
    >>> c = channel_coreset(w, b, V, sample_size=30, beta=1.0, rng=0)
    >>> w_small, b_small, V_small = c.pruned()
    >>> V_small.shape == (8, c.n_kept, 3, 3) and w_small.shape[0] == c.n_kept
    True
    """
    func = "channel_coreset"
    act, beta, m, distinct = _check_options(func, activation, beta, sample_size, distinct,
                                            "per-output", False)
    max_draws = check_int(max_draws, "max_draws", func)
    if max_draws > MAX_DRAWS:
        raise fail(func, "max_draws", "an integer <= MAX_DRAWS = 2**53", max_draws)
    rng_seed = _seed_of(rng)
    rng = check_rng(rng, func)
    rng_state = rng.bit_generator.state
    _check_padding(func, padding_mode)
    xp, arrays, w, b = _checked_conv(func, conv_weight, conv_bias, next_weight=next_weight)
    V = arrays["next_weight"]
    channel_shape = _check_next(func, V, _shape(w)[0], channel_shape)
    red = _reduced(func, xp, w, b, V)
    sens = _sensitivities(func, *_host_views(xp, red.w_flat, red.bias, red.A), beta, act,
                          "per-output")
    if distinct is not None:
        counts, m = draw_until_distinct(sens.probabilities, distinct, rng,
                                        max_draws=max_draws, func=func)
    else:
        counts = draw_counts(sens.probabilities, m, rng)
    kept = np.flatnonzero(counts)
    return ChannelCoreset(
        indices=_index_array(xp, kept, V),
        weight_next=_reweight_next(func, xp, V, kept, red.positions, sens, counts, m),
        counts=counts, probabilities=sens.probabilities, sensitivity=sens.sensitivity,
        envelope=sens.envelope, total_sensitivity=sens.total, scale=sens.scale,
        sample_size=m, activation=act,
        beta=beta, distinct=distinct, max_draws=max_draws, channel_shape=channel_shape,
        layer=(w, b, V), rng_seed=rng_seed, rng_state=rng_state,
    )


def _reweight_next(func, xp, V, kept: np.ndarray, P: int, sens, counts, m):
    """``U[:, kept]``: the dense :func:`~coreset_verify.sampling.reweight` on the
    ``P`` columns of each kept channel of ``V`` seen as (k, C P)."""
    factor = _factor(counts, sens.probabilities, m)[kept]
    k = _shape(V)[0]
    columns = (kept[:, None] * P + np.arange(P)[None, :]).ravel()
    flat = reweight(xp, xp.reshape(V, (k, -1)), _index_array(xp, columns, V),
                    np.repeat(factor, P))
    flat = _checked_weights(func, flat, factor, sens.envelope[kept], sens.scale)
    shape = (k, kept.size, *_shape(V)[2:]) if V.ndim == 4 else (k, kept.size * P)
    return xp.reshape(flat, shape)


def channel_bound(
    coreset: ChannelCoreset,
    *,
    delta: float,
    kind: str = "uniform",
    output_positions: int = 1,
    input_size: int | None = None,
) -> Bound:
    """The epsilon a channel coreset meets, with probability ``>= 1 - delta``.

    The claim: ``|F_{i,q}(x) - F~_{i,q}(x)| <= epsilon * scale[i]`` for every
    output channel i and output position q of the next layer, at one input
    x fixed before the draws (``"pointwise"``) or at every x of the ball at
    once (``"uniform"``).

    Parameters
    ----------
    coreset : ChannelCoreset
    delta : float in (0, 1)
    kind : {"pointwise", "uniform"}
    output_positions : int, default 1
        ``Q``, the number of output positions of the next layer per output
        channel (``H_out * W_out`` of the next conv's output; 1 for a Linear).
        An upper bound is valid (the union is over ``k Q`` events).
    input_size : int, optional
        ``D``, the number of entries of the conv's input tensor
        (``C_in * H_in * W_in``); required for ``"uniform"`` (the net's
        dimension). An upper bound is valid.

    Returns
    -------
    Bound
        Additive form, ``scale = T``; ``net`` is ``"ball"`` for the uniform kind.

    Raises
    ------
    InvalidArgumentError
        ``coreset`` not a ChannelCoreset, or a record that no draw of
        :func:`channel_coreset` produces (edited with ``dataclasses.replace``:
        beta not finite > 0, sample_size < 1 or not the sum of the counts,
        probabilities not finite >= 0, a non-finite ``weight_next``); bad
        delta or kind; ``output_positions`` not an integer >= 1 (or not 1
        after a Linear); ``input_size`` missing for ``"uniform"``, not an
        integer in [1, MAX_INPUT_SIZE = 2**53].

    Notes
    -----
    proofs_notes/conv.md, Theorems CP and CU: the dense guarantee arithmetic
    (pointwise.md, uniform.md) with ``k Q`` events and a ball net of
    dimension ``D``, on the reduced pair ``(w_flat, b, ||V||_1)``.

    Examples
    --------
    >>> import numpy as np
    >>> gen = np.random.default_rng(0)
    >>> w, b = gen.normal(size=(16, 3, 3, 3)), gen.normal(size=16)
    >>> c = channel_coreset(w, b, gen.normal(size=(8, 16, 3, 3)), sample_size=400,
    ...                     beta=1.0, rng=0)
    >>> bound = channel_bound(c, delta=0.1, kind="pointwise", output_positions=36)
    >>> 0 < bound.epsilon <= bound.deterministic
    True
    """
    func = "channel_bound"
    if not isinstance(coreset, ChannelCoreset):
        raise fail(func, "coreset", "a ChannelCoreset", type(coreset).__name__)
    _check_record(func, coreset)
    check_option(kind, "kind", func, CHANNEL_KINDS)
    delta, needs = _check_kind_form(func, coreset.activation, kind, "additive", delta)
    Q = check_int(output_positions, "output_positions", func)
    if coreset.channel_shape is not None and Q != 1:
        raise fail(func, "output_positions", "1 when the next layer is a Linear", Q)
    D = _input_size(func, kind, input_size)
    log_delta = math.log(delta)
    if coreset.distinct is not None:  # a union over every realised m (sampling.md)
        log_delta -= math.log(coreset.sample_size) + math.log(coreset.sample_size + 1)
    return _channel_bound(coreset, kind, delta, log_delta, Q, D, needs)


def _check_record(func: str, coreset: ChannelCoreset) -> None:
    """Refuse a ChannelCoreset record that no draw of channel_coreset can produce
    (as ``theoretical_bound`` does for a LayerCoreset): the bound describes it."""
    beta, m, counts = coreset.beta, coreset.sample_size, np.asarray(coreset.counts)
    if not (isinstance(beta, float) and math.isfinite(beta) and beta > 0):
        raise fail(func, "coreset", "a ChannelCoreset with a finite beta > 0", f"beta={beta!r}")
    if not (isinstance(m, int) and m >= 1 and int(np.sum(counts)) == m):
        raise fail(func, "coreset", "a ChannelCoreset whose counts sum to sample_size >= 1",
                   f"sample_size={m!r}, counts summing to {int(np.sum(counts))}")
    pr = np.asarray(coreset.probabilities, dtype=np.float64)
    if not (np.all(np.isfinite(pr)) and np.all(pr >= 0)):
        raise fail(func, "coreset", "a ChannelCoreset with finite probabilities >= 0",
                   "NaN, infinite or negative probabilities")
    if not np.all(np.isfinite(to_numpy(coreset.weight_next))):
        raise fail(func, "coreset", "a ChannelCoreset with a finite weight_next",
                   "NaN or infinite entries in weight_next")


def _input_size(func: str, kind: str, input_size) -> int:
    expected = ("an integer in [1, MAX_INPUT_SIZE = 2**53] (C_in * H_in * W_in of the "
                "conv's input)")
    if kind == "uniform" and input_size is None:
        raise fail(func, "input_size", f"{expected} for kind='uniform'", None)
    if input_size is None:
        return 0
    D = check_int(input_size, "input_size", func)
    if D > MAX_INPUT_SIZE:
        raise fail(func, "input_size", expected, input_size)
    return D


def _channel_bound(coreset, kind, delta, log_delta, Q, D, needs) -> Bound:
    """Theorems CP and CU through the dense ``_layer_stats`` and ``_combine``."""
    w, b, V = coreset.layer
    xp = array_namespace(V) if is_torch_array(V) else np
    red = _reduced("channel_bound", xp, w, b, V)
    w_flat, bias, A = (np.asarray(to_numpy(a), dtype=np.float64)
                       for a in (red.w_flat, red.bias, red.A))
    stats = _layer_stats(w_flat, bias, A, coreset.activation, coreset.beta, "additive",
                         coreset.probabilities, coreset.counts, coreset.sample_size,
                         "channel_bound")
    k = A.shape[0]
    geometry = Geometry(dim=D, axes=np.zeros(0), length=0.0)  # the ball net only
    statistical, deterministic, radius, net = _combine(
        [stats], kind=kind, form="additive", log_delta=log_delta, k=k * Q,
        beta=coreset.beta, geometry=geometry, paper=None)
    return Bound(
        epsilon=min(statistical, deterministic), scale=stats.scale, kind=kind,
        form="additive", delta=delta, sample_size=coreset.sample_size,
        statistical=statistical, deterministic=deterministic, sensitivity=stats.t_eff,
        net_radius=radius, net=net, assumptions=needs,
        layer=(w_flat, bias, A, coreset.activation), log_event_delta=log_delta,
    )


def fold_batchnorm(
    conv_weight: Any,
    conv_bias: Any,
    *,
    weight: Any,
    bias: Any,
    running_mean: Any,
    running_var: Any,
    eps: float = 1e-5,
) -> tuple[Any, Any]:
    """Fold an eval-mode BatchNorm2d that follows a conv into the conv.

    ``s = weight / sqrt(running_var + eps)``; returns
    ``(conv_weight * s[:, None, None, None], (conv_bias - running_mean) * s + bias)``.

    Computed in float64 on mantissas and exponents (:func:`numpy.frexp`),
    rounded to the weights' dtype once at the end: no intermediate (``s``,
    ``running_var + eps``, ``conv_bias - running_mean``) overflows or
    underflows, so a weight of 1e300 over a variance of 1e-300 folds a
    filter of 1e-300 to its exact 1e150.

    Parameters
    ----------
    conv_weight : array, shape (C, C_in, kh, kw)
    conv_bias : array, shape (C,), or None (zeros)
    weight, bias, running_mean, running_var : array, shape (C,)
        The BatchNorm's affine parameters and running statistics; float32
        or float64, one backend and dtype with the conv's, finite.
    eps : float
        The BatchNorm's ``eps``, a finite number >= 0.

    Returns
    -------
    (array (C, C_in, kh, kw), array (C,))
        Backend, dtype and device of ``conv_weight``.

    Raises
    ------
    InvalidArgumentError
        Bad shapes, dtypes or backends, NaN or infinite entries, a negative
        ``running_var`` or ``running_var + eps = 0``, ``eps`` not a finite
        number >= 0 (``10**400`` included).
    MagnitudeError
        A folded weight or bias whose exact value exceeds the largest number
        of the dtype (3.4e38 in float32, 1.8e308 in float64).

    Examples
    --------
    >>> import numpy as np
    >>> w, b = fold_batchnorm(np.ones((1, 1, 1, 1)), None, weight=np.array([2.0]),
    ...                       bias=np.array([1.0]), running_mean=np.array([3.0]),
    ...                       running_var=np.array([4.0]), eps=0.0)
    >>> float(w.ravel()[0]), float(b[0])
    (1.0, -2.0)
    """
    func = "fold_batchnorm"
    stats = {"weight": weight, "bias": bias, "running_mean": running_mean,
             "running_var": running_var}
    xp, arrays, w, b = _checked_conv(func, conv_weight, conv_bias, **stats)
    C = _shape(w)[0]
    for name in stats:
        if _shape(arrays[name]) != (C,):
            raise fail(func, name, f"of shape (C,) with C = {C} (conv_weight.shape[0])",
                       f"shape {_shape(arrays[name])}")
    eps_value = _as_float(eps)
    if eps_value is None or not (math.isfinite(eps_value) and eps_value >= 0):
        raise fail(func, "eps", "a finite number >= 0", eps)
    host = {name: np.asarray(to_numpy(a), dtype=np.float64)
            for name, a in {"conv_weight": w, "conv_bias": b, **arrays}.items()}
    for name, a in host.items():
        check_finite_entries(func, name, a)
    var = host["running_var"]
    if not (np.all(var >= 0) and (eps_value > 0 or np.all(var > 0))):
        raise fail(func, "running_var", "a variance >= 0 with running_var + eps > 0",
                   var)
    s = _scale_factor(host["weight"], var, eps_value)
    folded_w = _value(_times(np.frexp(host["conv_weight"]), (s[0][:, None, None, None],
                                                             s[1][:, None, None, None])))
    shift = _plus(np.frexp(host["conv_bias"]), np.frexp(-host["running_mean"]))
    folded_b = _value(_plus(_times(shift, s), np.frexp(host["bias"])))
    dtype = np.float32 if "float32" in str(w.dtype) else np.float64
    out = []
    for name, value in (("weight", folded_w), ("bias", folded_b)):
        with np.errstate(over="ignore"):
            value = value.astype(dtype)
        if not np.all(np.isfinite(value)):
            at = tuple(int(i) for i in np.argwhere(~np.isfinite(value))[0])
            raise MagnitudeError(
                f"{func}: the folded {name}{list(at)} exceeds the largest {dtype.__name__} "
                f"number ({float(np.finfo(dtype).max):.3g}); rescale the BatchNorm's "
                "weight or the conv's weights.")
        out.append(xp.asarray(value, device=getattr(w, "device", None)))
    return out[0], out[1]


# Numbers as pairs (mantissa, exponent), x = m 2**e (numpy.frexp): products and sums
# of a few such pairs have mantissas below 8, so nothing overflows or underflows
# before _value rounds the result once.


def _scale_factor(weight: np.ndarray, var: np.ndarray, eps: float) -> tuple:
    """``weight / sqrt(var + eps)`` as a pair (``var + eps > 0``)."""
    top = np.maximum(var, eps)
    tm, te = np.frexp(top)
    odd = te % 2  # sqrt(var + eps) = root 2**((te - odd) / 2)
    root = np.sqrt(tm * (var / top + eps / top) * np.ldexp(1.0, odd))
    gm, ge = np.frexp(weight)
    return gm / root, ge - (te - odd) // 2


def _times(a: tuple, b: tuple) -> tuple:
    return a[0] * b[0], a[1] + b[1]


def _plus(a: tuple, b: tuple) -> tuple:
    # the common exponent of the larger term (a zero's exponent must not set it)
    e = np.maximum(np.where(a[0] == 0, b[1], a[1]), np.where(b[0] == 0, a[1], b[1]))
    return np.ldexp(a[0], a[1] - e) + np.ldexp(b[0], b[1] - e), e


def _value(a: tuple) -> np.ndarray:
    with np.errstate(over="ignore", under="ignore"):
        return np.ldexp(a[0], a[1])
