"""Radii and error propagation through convolutional units (proofs_notes/conv.md,
"Whole convolutional networks": Lemmas CR, CO and CPr).

The radius of a unit's input over the ball ``||x|| <= beta`` is the smaller
of two sound bounds: the norm of the box that interval propagation gives
(the conv's centre-radius form, computed with ``torch.nn.functional.conv2d``
in float64 and widened for rounding as in :mod:`coreset_verify.nets.intervals`),
and the chain of operator norms (:func:`conv_operator_bound`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._validation import check_finite_entries, check_int, fail, import_torch, to_numpy
from ..conv import _checked_conv
from ..nets.intervals import (
    Box,
    _relative,
    activation_range,
    affine_range,
    ball_range,
    box_norm,
    widen,
)
from .conv_model import Unit, pair

__all__ = ["box_radius", "chain_radius", "conv_operator_bound", "input_radius", "module_slack",
           "propagation", "window_overlap"]

#: Relative margin on a computed spectral norm (LAPACK's SVD is backward stable:
#: its error is far below this for matrices of fewer than 10**7 columns).
SPECTRAL_MARGIN = 1e-8


def window_overlap(kernel: int, stride: int, dilation: int = 1) -> int:
    """Most windows of a 1-D sliding window that read one input entry.

    Entry i is read at offset u by the window p with ``stride p + dilation u
    - pad = i``: one p per u at most, and only for the u with ``dilation u
    = i + pad (mod stride)``; the largest residue class of ``dilation u``.
    """
    residues = np.bincount([(dilation * u) % stride for u in range(kernel)], minlength=1)
    return int(residues.max())


def spectral_norm(W: np.ndarray) -> float:
    """An upper bound on ``||W||_2``: the SVD's value times ``1 + SPECTRAL_MARGIN``,
    capped by the Frobenius norm, neither underflowing nor overflowing.

    The SVD runs on ``W`` scaled by a power of two (its largest entry in
    [0.5, 1)) and is scaled back rounded up; the Frobenius norm is
    :func:`~coreset_verify.nets.intervals.box_norm` of the one-point box
    ``{W}`` (scaled row norms, widened for rounding). Weights of 1e-300 get
    their true norm instead of 0; an infinite value means the norm exceeds
    the largest float64.
    """
    W = np.asarray(W, dtype=np.float64)
    top = float(np.max(np.abs(W), initial=0.0))
    if top == 0.0:
        return 0.0
    e = int(np.frexp(top)[1])
    svd = float(np.linalg.norm(np.ldexp(W, -e), 2)) * (1 + SPECTRAL_MARGIN)
    with np.errstate(over="ignore"):
        svd = float(np.nextafter(np.ldexp(svd, e), np.inf))  # ldexp may round a subnormal
    frobenius = box_norm(Box(W.ravel(), W.ravel()))
    return min(svd, frobenius)


def _stride_like(func: str, name: str, value: Any) -> tuple[int, int]:
    """A user's stride or dilation: an integer >= 1 or a pair of them."""
    items = tuple(value) if isinstance(value, tuple | list) else (value, value)
    if len(items) != 2:
        raise fail(func, name, "an integer >= 1 or a pair (h, w) of them", value)
    return check_int(items[0], name, func), check_int(items[1], name, func)


def conv_operator_bound(weight: Any, *, stride: Any = 1, dilation: Any = 1) -> float:
    """Upper bound on the operator norm of a zero-padded Conv2d (without bias).

    ``||conv(x)||_2 <= ||W.reshape(C, -1)||_2 sqrt(N_h N_w) ||x||_2`` for every
    input size, padding and ``groups=1``, with ``N = window_overlap(k, s, d)``
    per spatial dimension (proofs_notes/conv.md, Lemma CO). The norm is
    computed scaled (:func:`spectral_norm`), so tiny and huge weights get a
    true bound; ``inf`` when it exceeds the largest float64.

    Parameters
    ----------
    weight : array, shape (C, C_in, kh, kw)
        float32 or float64, numpy or torch, finite, every size >= 1.
    stride, dilation : int or (int, int)
        Integers >= 1 (numpy integers accepted).

    Returns
    -------
    float

    Raises
    ------
    InvalidArgumentError
        ``weight`` not a 4-D float32/float64 array with every size >= 1
        (complex, integer, float16, bfloat16, strings, meta and sparse
        tensors refused), NaN or infinite weights; a stride or dilation that
        is not an integer >= 1 or a pair of them.

    Examples
    --------
    >>> import numpy as np
    >>> round(conv_operator_bound(np.ones((1, 1, 3, 3)), stride=1), 6)   # 3 * sqrt(9)
    9.0
    """
    func = "conv_operator_bound"
    (sh, sw), (dh, dw) = (_stride_like(func, "stride", stride),
                          _stride_like(func, "dilation", dilation))
    _, _, w, _ = _checked_conv(func, weight, None, name="weight")
    w = np.asarray(to_numpy(w), dtype=np.float64)
    check_finite_entries(func, "weight", w)
    kh, kw = w.shape[2:]
    overlap = window_overlap(kh, sh, dh) * window_overlap(kw, sw, dw)
    return spectral_norm(w.reshape(w.shape[0], -1)) * math.sqrt(overlap) * (1 + 1e-15)


def _pool_overlap(pool: Any) -> int:
    if pool is None:
        return 1
    dilation = pair(getattr(pool, "dilation", 1))
    stride = pair(pool.stride if pool.stride is not None else pool.kernel_size)
    sizes = zip(pair(pool.kernel_size), stride, dilation, strict=True)
    return math.prod(window_overlap(k, s, d) for k, s, d in sizes)


def _torch(array: np.ndarray) -> Any:
    return import_torch().as_tensor(np.ascontiguousarray(array, dtype=np.float64))


def _conv(unit: Unit, x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``conv2d`` of a batch ``x`` (B, C_in, H, W) with the unit's geometry."""
    F = import_torch().nn.functional
    m = unit.module
    return F.conv2d(_torch(x), _torch(weight), stride=m.stride, padding=m.padding,
                    dilation=m.dilation).numpy()


def _pool(unit: Unit, x: np.ndarray) -> np.ndarray:
    return unit.pool(_torch(x)).numpy()


def _affine_box(unit: Unit, box: Box) -> Box:
    """Range of the unit's affine map (BatchNorm folded) on a box of its input."""
    w, b = unit.folded()
    if not unit.is_conv:
        return affine_range(w, b, box.lo.ravel(), box.hi.ravel())
    lo, hi = box
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        inf = np.full(unit.out_shape, np.inf)
        return Box(-inf, inf)
    mid, rad = lo / 2 + hi / 2, hi / 2 - lo / 2
    spread = _conv(unit, rad[None], np.abs(w))[0]
    center = _conv(unit, mid[None], w)[0] + b[:, None, None]
    magnitude = _conv(unit, np.abs(mid)[None], np.abs(w))[0] + spread + np.abs(b)[:, None, None]
    return widen(center, spread, magnitude, w[0].size + 1)


def _after(unit: Unit, pre: Box) -> Box:
    """The box after the activation and the pooling."""
    box = activation_range(unit.act.activation, pre.lo, pre.hi)
    if unit.pool is None:
        return box
    lo, hi = _pool(unit, box.lo[None])[0], _pool(unit, box.hi[None])[0]
    if type(unit.pool).__name__ == "MaxPool2d":
        return Box(lo, hi)  # a max is exact
    window = math.prod(pair(unit.pool.kernel_size))
    top = _pool(unit, np.maximum(np.abs(box.lo), np.abs(box.hi))[None])[0]
    return widen(lo / 2 + hi / 2, hi / 2 - lo / 2, top + np.abs(lo) + np.abs(hi), window)


def _first_box(unit: Unit, beta: float) -> Box:
    """Lemma C1: every output position of the first conv lies in ``b_c +- beta ||w_c||``."""
    w, b = unit.folded()
    pre = ball_range(w.reshape(w.shape[0], -1), b, beta)
    if not unit.is_conv:
        return pre
    spread = np.ones(unit.out_shape)
    return Box(pre.lo[:, None, None] * spread, pre.hi[:, None, None] * spread)


def _norm_step(unit: Unit, radius: float) -> float:
    """Lemma CR (norms): a bound on the norm of the next unit's input."""
    w, b = unit.folded()
    if unit.is_conv:
        op = conv_operator_bound(w, stride=unit.module.stride, dilation=unit.module.dilation)
    else:
        op = spectral_norm(w)
    positions = math.prod(unit.out_hw)
    act = unit.act.activation
    pre = op * radius + float(np.linalg.norm(b)) * math.sqrt(positions)
    offset = abs(float(act.numpy(np.zeros(1))[0])) + act.module_slack
    after = act.lipschitz * pre + offset * math.sqrt(math.prod(unit.out_shape))
    return after * math.sqrt(_pool_overlap(unit.pool)) * (1 + 1e-9)


def box_radius(units: list[Unit], beta: float, layer: int) -> float:
    """Lemma CR (boxes): the norm of the interval box of unit ``layer``'s input."""
    box = _after(units[0], _first_box(units[0], beta))
    for unit in units[1:layer]:
        box = _after(unit, _affine_box(unit, box))
    return box_norm(Box(box.lo.ravel(), box.hi.ravel()))


def chain_radius(units: list[Unit], beta: float, layer: int) -> float:
    """Lemma CR (norms): the operator-norm chain up to unit ``layer``'s input."""
    radius = beta
    for unit in units[:layer]:
        radius = _norm_step(unit, radius)
    return radius


def input_radius(units: list[Unit], beta: float, layer: int) -> float:
    """Sound bound on the norm of unit ``layer``'s input over ``||x|| <= beta``:
    the smaller of :func:`box_radius` and :func:`chain_radius` (beta for the first)."""
    if layer == 0:
        return beta
    return min(box_radius(units, beta, layer), chain_radius(units, beta, layer))


def _error_step(unit: Unit, nxt: Unit, E: np.ndarray) -> np.ndarray:
    """A batch of error bounds at the unit's pre-activation, carried to ``nxt``'s."""
    E = E * unit.act.activation.lipschitz
    if unit.pool is not None:  # |max u - max v| <= max |u - v|; averages likewise
        E = _pool(unit, E) * (1 + _relative(math.prod(pair(unit.pool.kernel_size))))
    w, _ = nxt.folded()
    aw = np.abs(w)
    if nxt.is_conv:
        return _conv(nxt, E, aw) * (1 + _relative(aw[0].size))
    return (E.reshape(E.shape[0], -1) @ aw.T) * (1 + _relative(aw.shape[1]))


def propagation(units: list[Unit], layer: int) -> np.ndarray:
    """Lemma CPr: ``P`` (k_out, k), entrywise >= 0, such that errors
    ``|e_{i,q}| <= E_i`` at every position q of unit ``layer + 1``'s output give
    ``|output error| <= P E`` (the error of that unit's pre-activation carried
    through the later units, each with ``|W|`` and its activation's Lipschitz
    constant)."""
    nxt = units[layer + 1]
    k = nxt.W.shape[0]
    E = np.eye(k)
    if nxt.is_conv:
        E = E[:, :, None, None] * np.ones((1, 1, *nxt.out_hw))
    for q in range(layer + 1, len(units) - 1):
        E = _error_step(units[q], units[q + 1], E)
    return np.ascontiguousarray(E.T)


def module_slack(units: list[Unit]) -> np.ndarray:
    """Lemma M for images: the torch modules' activations (Softplus's threshold)
    against the exact ones, ``sum_q P_q (s_q ||W_{q+1}[i]||_1)``; zero otherwise."""
    total = np.zeros(units[-1].W.shape[0])
    for q, unit in enumerate(units[:-1]):
        slack = unit.act.activation.module_slack
        if slack > 0:
            w, _ = units[q + 1].folded()
            entering = np.abs(w).reshape(w.shape[0], -1).sum(axis=1) * slack
            total += propagation(units, q) @ entering
    return total * (1 + 1e-12)
