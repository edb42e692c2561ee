"""Neuron sensitivities over the input ball (proofs_notes/sensitivity.md).

For a layer pair ``(W_in, b_in, W_out)`` and inputs ``||x|| <= beta`` the
pre-activation of neuron j ranges over exactly
``[b_in[j] - beta*||W_in[j]||, b_in[j] + beta*||W_in[j]||]``, so for a
non-decreasing ``phi`` its activation lies in ``[phi_lo[j], phi_hi[j]]``.
The sensitivities are built from the envelope ``max(|phi_lo|, |phi_hi|)``,
which equals ``phi_hi`` whenever ``phi >= 0`` (the case of DESIGN.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from array_api_compat import array_namespace, is_numpy_namespace

from ._validation import (
    check_finite_entries,
    check_finite_rows,
    check_layer,
    check_option,
    check_positive,
    to_numpy,
)
from .activations import Activation, get_activation, require
from .errors import InvalidArgumentError, MagnitudeError

__all__ = [
    "REDUCTIONS",
    "Sensitivities",
    "envelope",
    "layer_sensitivities",
    "output_sensitivities",
    "phi_hi",
    "phi_lo",
    "row_norms",
    "safe_range",
]

REDUCTIONS = ("per-output", "raw-max")

# Rows of W_out processed per step on a CPU: small enough that the |W_out|
# block stays in cache between its three uses, large enough that per-call
# overhead is amortised (benchmarks/construction.py measures it).
_CPU_BLOCK_ELEMENTS = 1 << 17


@dataclass(frozen=True)
class Sensitivities:
    """Per-neuron sensitivities of one layer pair (float64, numpy).

    Attributes
    ----------
    sensitivity : ndarray, shape (n,)
        ``s[j] = max_i |W_out[i, j]| * env[j] / T[i]`` (``"per-output"``) or
        ``max_i |W_out[i, j]| * env[j]`` (``"raw-max"``).
    total : float
        ``t = sum_j s[j]``.
    scale : ndarray, shape (k,)
        ``T[i] = sum_j |W_out[i, j]| * env[j]``, the largest ``|F_i(x)|`` the
        triangle inequality allows on the ball.
    envelope : ndarray, shape (n,)
        ``env[j] = max(|phi_lo[j]|, |phi_hi[j]|)``.
    reduction : str
    """

    sensitivity: np.ndarray
    total: float
    scale: np.ndarray
    envelope: np.ndarray
    reduction: str

    @property
    def probabilities(self) -> np.ndarray:
        """``pr = s / t``, shape (n,)."""
        return self.sensitivity / self.total


def safe_range(dtype: Any) -> tuple[float, float]:
    """``(low, high)``: the magnitudes a dtype carries to full relative precision.

    ``low`` is the smallest normal number (2**-1022 in float64, 2**-126 in
    float32): below it a number is subnormal and has lost relative precision.
    ``high`` is the largest finite number. The sensitivity quantities (row
    norms, reaches ``beta ||w_j||``, envelopes, scales ``T_i``) must be zero
    or inside this range (proofs_notes/sensitivity.md, "Magnitudes").
    """
    info = np.finfo(np.float32 if "float32" in str(dtype) else np.float64)
    return float(info.tiny), float(info.max)


def _unsafe(values: np.ndarray, dtype: Any) -> np.ndarray:
    """Mask of entries that are non-finite or non-zero outside :func:`safe_range`."""
    low, high = safe_range(dtype)
    a = np.abs(values)
    return ~np.isfinite(a) | ((a != 0) & ((a < low) | (a > high)))


def row_norms(xp: Any, W: Any) -> Any:
    """Euclidean norms of the rows of ``W`` (n, d), without underflow or overflow.

    The fast path reads W once (``sqrt(w . w)``); the rows whose squared
    norm is above the largest finite number, or below ``2 d`` times the
    smallest normal one (where subnormal squares of the entries could have
    lost more than half an ulp of it; a row of 1e-300 squares to 0), are
    recomputed scaled, as ``hypot`` does: ``s sqrt(sum((w / s)^2))`` with
    ``s = max |w|``. Same namespace, dtype and device as ``W``.

    Examples
    --------
    >>> import numpy as np
    >>> row_norms(np, np.array([[3e-300, 4e-300], [3e200, 4e200], [0.0, 0.0]]))
    array([5.e-300, 5.e+200, 0.e+000])
    """
    # Measured (benchmarks/construction.py): numpy's vector_norm builds a
    # temporary of W's size and vecdot does not; torch's is the other way round.
    if is_numpy_namespace(xp):
        with np.errstate(over="ignore", under="ignore"):
            norms = np.sqrt(np.vecdot(W, W, axis=1))
    else:
        norms = xp.linalg.vector_norm(W, axis=1)
    low, high = safe_range(W.dtype)
    # Squares below `low` are subnormal and each loses up to low * 2**-53
    # absolutely; d of them are below a half ulp of the squared norm only when it
    # is at least 2 d low (a row of 2**20 entries of 2**-521 has a squared norm of
    # 2**-1022 from subnormal squares: recomputed scaled, not trusted).
    floor = max(low, 2.0 * W.shape[1] * low)
    host = to_numpy(norms)
    with np.errstate(over="ignore"):
        redo = np.flatnonzero(~((host >= math.sqrt(floor)) & (host <= math.sqrt(high))))
    if redo.size == 0:
        return norms
    rows = _index(xp, redo, W)
    part = W[rows]
    top = xp.max(xp.abs(part), axis=1)
    safe = xp.where(top > 0, top, xp.ones_like(top))
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        fixed = top * xp.sqrt(xp.sum((part / safe[:, None]) ** 2, axis=1))
    if is_numpy_namespace(xp):
        norms = np.array(norms, copy=True)
        norms[redo] = fixed
        return norms
    return norms.index_copy(0, rows, fixed)


def _index(xp, indices: np.ndarray, like):
    if is_numpy_namespace(xp):
        return indices
    return xp.asarray(indices, dtype=xp.int64, device=getattr(like, "device", None))


def check_magnitudes(func: str, name: str, values: Any, dtype: Any, hint: str) -> None:
    """Refuse a quantity the arithmetic cannot carry (see :func:`safe_range`).

    ``values`` is a small reduced array (n,) or (k,); on failure the message
    names the first bad entry, its value and the range of ``dtype``.
    """
    v = np.asarray(to_numpy(values), dtype=np.float64)
    bad = np.flatnonzero(_unsafe(v, dtype))
    if bad.size == 0:
        return
    low, high = safe_range(dtype)
    j = int(bad[0])
    if "float32" in str(dtype):
        hint += " Or cast the weights to float64."
    raise MagnitudeError(
        f"{func}: {name} at index {j} is {float(v[j])!r} and cannot be carried to full "
        f"precision in {np.dtype(np.float32 if 'float32' in str(dtype) else np.float64).name} "
        f"(every non-zero magnitude must lie in [{low:.3g}, {high:.3g}]; "
        f"{bad.size} entries do not). {hint} No bound would be true otherwise."
    )


_RESCALE = (
    "Rescale the weights toward 1 (for ReLU, multiplying W_in and b_in by c > 0 "
    "and dividing W_out by c leaves the layer pair unchanged), or reduce beta."
)


class ActivationRange(NamedTuple):
    """``phi_lo``, ``phi_hi`` and the row norms, namespace and dtype of ``W_in``."""

    lo: Any
    hi: Any
    norms: Any


def _activation_range(xp, W_in, b_in, beta: float, act: Activation,
                      func="sensitivities") -> ActivationRange:
    """``ActivationRange(phi_lo, phi_hi, row_norms)`` in the namespace and dtype of ``W_in``.

    Refuses (InvalidArgumentError) a reach ``beta ||w_j||`` or an envelope
    the dtype cannot carry (proofs_notes/sensitivity.md, "Magnitudes"). For
    an activation with ``phi > 0`` everywhere, ``phi_hi`` is raised to the
    smallest normal number (an underflowed positive value, still an upper
    envelope).
    """
    norms = row_norms(xp, W_in)
    check_finite_rows(func, "W_in", norms, W_in, axis=1)
    # a subnormal norm has lost relative precision (beta * ||w|| would be low)
    check_magnitudes(func, "the row norm ||W_in[j]||", norms, W_in.dtype, _RESCALE)
    check_finite_rows(func, "b_in", b_in, b_in, axis=0)
    with np.errstate(over="ignore", under="ignore"):
        reach = beta * norms
    check_magnitudes(func, "the reach beta * ||W_in[j]||", reach, W_in.dtype, _RESCALE)
    lost = np.flatnonzero((to_numpy(reach) == 0) & (to_numpy(norms) > 0))
    if lost.size:  # beta * ||w_j|| underflowed to 0 from a non-zero row
        j = int(lost[0])
        raise MagnitudeError(
            f"{func}: the reach beta * ||W_in[j]|| at index {j} underflowed to 0 "
            f"(beta = {beta!r}, ||W_in[{j}]|| = {float(to_numpy(norms)[j])!r}). {_RESCALE}"
        )
    lo, hi = act(b_in - reach), act(b_in + reach)
    if not act.is_positive:  # phi > 0: underflowed envelopes are judged in check_scale
        check_magnitudes(func, "the envelope max|phi| of neuron j",
                         _envelope(xp, lo, hi), W_in.dtype, _RESCALE)
    return ActivationRange(lo, hi, norms)


def _envelope(xp, lo, hi):
    return xp.maximum(xp.abs(lo), xp.abs(hi))


def _prepare(func, W_in, b_in, beta, activation):
    act = get_activation(activation)
    require(act, "is_nondecreasing", theorem="coreset")
    beta = check_positive(beta, "beta", func)
    return act, beta


def phi_hi(W_in: Any, b_in: Any, *, beta: float, activation: str | Activation = "relu"):
    """Largest activation of each neuron on the ball, ``phi(beta*||w_j|| + b_j)``.

    Parameters
    ----------
    W_in : array, shape (n, d)
    b_in : array, shape (n,)
    beta : float
        Radius of the input ball.
    activation : str or Activation
        Must be non-decreasing.

    Returns
    -------
    array, shape (n,)
        Same namespace, dtype and device as ``W_in``.

    Examples
    --------
    >>> import numpy as np
    >>> phi_hi(np.array([[3.0, 4.0], [0.0, 0.0]]), np.array([-1.0, 2.0]), beta=2.0)
    array([9., 2.])
    """
    act, beta = _prepare("phi_hi", W_in, b_in, beta, activation)
    xp, W_in, b_in, _ = check_layer("phi_hi", W_in, b_in)
    return _activation_range(xp, W_in, b_in, beta, act, "phi_hi")[1]


def phi_lo(W_in: Any, b_in: Any, *, beta: float, activation: str | Activation = "relu"):
    """Smallest activation of each neuron on the ball, ``phi(-beta*||w_j|| + b_j)``.

    Examples
    --------
    >>> import numpy as np
    >>> phi_lo(np.array([[3.0, 4.0]]), np.array([12.0]), beta=2.0)
    array([2.])
    """
    act, beta = _prepare("phi_lo", W_in, b_in, beta, activation)
    xp, W_in, b_in, _ = check_layer("phi_lo", W_in, b_in)
    return _activation_range(xp, W_in, b_in, beta, act, "phi_lo")[0]


def envelope(W_in: Any, b_in: Any, *, beta: float, activation: str | Activation = "relu"):
    """``max |phi(W_in[j] . x + b_in[j])|`` over the ball: ``max(|phi_lo|, |phi_hi|)``.

    Equal to :func:`phi_hi` for a non-negative activation.
    """
    act, beta = _prepare("envelope", W_in, b_in, beta, activation)
    xp, W_in, b_in, _ = check_layer("envelope", W_in, b_in)
    lo, hi, _ = _activation_range(xp, W_in, b_in, beta, act, "envelope")
    return _envelope(xp, lo, hi)


def _block_rows(W_out) -> int:
    k, n = W_out.shape
    device = getattr(W_out, "device", "cpu")
    if str(device).startswith("cpu"):
        return max(1, _CPU_BLOCK_ELEMENTS // max(n, 1))
    return k  # on an accelerator one large kernel beats a Python loop


def _column_scores(xp, W_out, env, per_output: bool):
    """``(max_i |W_out[i, j]| * c_i, T)`` in one pass over ``W_out``.

    ``c_i = 1/T_i`` (zero where ``T_i = 0``) for the per-output reduction,
    1 for raw-max. The block of ``|W_out|`` is reused while it is in cache.
    """
    if is_numpy_namespace(xp) and W_out.flags.c_contiguous:
        return _host_column_scores(W_out, env, per_output)
    k, n = W_out.shape
    step = _block_rows(W_out)
    colmax = xp.zeros((n,), dtype=W_out.dtype, device=getattr(W_out, "device", None))
    scale = []
    for start in range(0, k, step):
        block = xp.abs(W_out[start : start + step, :])
        T = block @ env
        scale.append(T)
        if per_output:
            # divide (not multiply by 1/T_i: that overflows for subnormal T_i);
            # T_i = 0 rows become 0 (they carry no error at all). In place, in cache.
            block /= xp.where(T > 0, T, xp.inf)[:, None]
        colmax = xp.maximum(colmax, xp.max(block, axis=0))
    return colmax, xp.concat(scale)


def _host_column_scores(W_out: np.ndarray, env: np.ndarray, per_output: bool):
    """:func:`_column_scores` for C-ordered numpy (and torch CPU viewed as numpy).

    The same blocks and the same operations as the generic loop, so the same
    bits (``T`` depends on the rows per BLAS call), without its allocations:
    one block buffer, ``T`` written in place, the column maxima reduced into a
    reused row. The ufunc buffer is set to at most a row: numpy's default of
    8192 elements makes the division by the broadcast ``T_i`` copy through a
    buffer when a row is shorter. At n = 4096 (float32) the pass takes 8.6 ms
    instead of the generic loop's 11.1 ms (benchmarks/RESULTS.md).
    """
    k, n = W_out.shape
    step = _block_rows(W_out)
    colmax = np.zeros(n, dtype=W_out.dtype)
    scale = np.empty(k, dtype=np.result_type(W_out.dtype, env.dtype))
    buffer = np.empty((min(step, k), n), dtype=W_out.dtype)
    peak = np.empty(n, dtype=W_out.dtype)
    with np.errstate():  # restores the ufunc buffer size on exit
        if 256 <= n < 8192:
            np.setbufsize(n // 16 * 16)
        for start in range(0, k, step):
            rows = W_out[start : start + step]
            block = buffer[: rows.shape[0]]
            np.abs(rows, out=block)
            T = np.matmul(block, env, out=scale[start : start + step])
            if per_output:
                # divide (not multiply by 1/T_i: that overflows for subnormal T_i);
                # T_i = 0 rows become 0 (they carry no error at all).
                np.divide(block, np.where(T > 0, T, np.inf)[:, None], out=block)
            np.max(block, axis=0, out=peak)
            np.maximum(colmax, peak, out=colmax)
    return colmax, scale


def layer_sensitivities(
    W_in: Any,
    b_in: Any,
    W_out: Any,
    *,
    beta: float,
    activation: str | Activation = "relu",
    reduction: str = "per-output",
) -> Sensitivities:
    """Sensitivities of the neurons of one layer, for every next-layer output.

    Parameters
    ----------
    W_in : array, shape (n, d)
        Incoming weights, one row per neuron.
    b_in : array, shape (n,)
    W_out : array, shape (k, n)
        Next layer's weights.
    beta : float
        Radius of the input ball ``||x||_2 <= beta``.
    activation : str or Activation
        Must be non-decreasing.
    reduction : {"per-output", "raw-max"}
        ``"per-output"`` normalises each output row by ``T_i`` before the
        maximum (DESIGN.md); ``"raw-max"`` takes ``max_i |W_out[i, j]| *
        env[j]`` without normalisation, as the authors' released code does.

    Returns
    -------
    Sensitivities
        float64 numpy arrays whatever the input backend.

    Raises
    ------
    AssumptionError
        If the activation is not non-decreasing.
    InvalidArgumentError
        Bad shapes, dtypes, non-finite weights, ``beta <= 0``, an all-zero
        layer (every sensitivity zero).

    Notes
    -----
    proofs_notes/sensitivity.md; checked against a loop implementation in
    tests/unit/test_oracle.py.

    Examples
    --------
    >>> import numpy as np
    >>> W_in = np.array([[1.0, 0.0], [0.0, 2.0]]); b_in = np.zeros(2)
    >>> s = layer_sensitivities(W_in, b_in, np.array([[1.0, 1.0]]), beta=1.0)
    >>> s.sensitivity, s.total, s.scale
    (array([0.33333333, 0.66666667]), 1.0, array([3.]))
    """
    func = "layer_sensitivities"
    act, beta = _prepare(func, W_in, b_in, beta, activation)
    check_option(reduction, "reduction", func, REDUCTIONS)
    xp, W_in, b_in, W_out = check_layer(func, W_in, b_in, W_out)
    return _sensitivities(func, xp, W_in, b_in, W_out, beta, act, reduction)


def _sensitivities(
    func, xp, W_in, b_in, W_out, beta, act, reduction, *, allow_zero=False
) -> Sensitivities:
    """Sensitivities in the dtype of the weights; float32 ones that the float32
    arithmetic cannot carry are recomputed in float64 (the rare path)."""
    try:
        return _sensitivities_in(func, xp, W_in, b_in, W_out, beta, act, reduction, allow_zero)
    except MagnitudeError:
        if "float32" not in str(W_in.dtype):
            raise
    W_in, b_in, W_out = (xp.astype(a, xp.float64) for a in (W_in, b_in, W_out))
    return _sensitivities_in(func, xp, W_in, b_in, W_out, beta, act, reduction, allow_zero)


def _sensitivities_in(func, xp, W_in, b_in, W_out, beta, act, reduction, allow_zero):
    lo, hi, _ = _activation_range(xp, W_in, b_in, beta, act, func)
    env = _envelope(xp, lo, hi)
    with np.errstate(invalid="ignore", over="ignore", under="ignore", divide="ignore"):
        colmax, scale = _column_scores(xp, W_out, env, reduction == "per-output")
    check_scale(func, to_numpy(scale), W_out, env, act)
    check_finite_rows(func, "W_out", colmax, W_out, axis=0)
    _check_lost_columns(func, to_numpy(colmax), to_numpy(env), W_out)
    s = to_numpy(colmax).astype(np.float64) * to_numpy(env).astype(np.float64)
    total = float(np.sum(s))
    if not (total > 0 or allow_zero):
        raise InvalidArgumentError(
            f"{func}: every neuron has sensitivity 0 on the ball of radius "
            f"{beta} (all-zero layer: W_out is zero, or every neuron is dead "
            "on the whole ball). There is nothing to sample."
        )
    return Sensitivities(
        sensitivity=s,
        total=total,
        scale=to_numpy(scale).astype(np.float64),
        envelope=to_numpy(env).astype(np.float64),
        reduction=reduction,
    )


def _check_lost_columns(func: str, colmax: np.ndarray, env: np.ndarray, W_out: Any) -> None:
    """A live neuron whose score ``max_i |W_ij| / T_i`` underflowed to 0 would
    never be drawn although its sensitivity is positive: refused (float32
    inputs then retry in float64). Reads only the columns concerned."""
    suspect = np.flatnonzero((colmax == 0) & (env > 0))
    if suspect.size == 0:
        return
    xp = array_namespace(W_out)
    columns = xp.take(W_out, _index(xp, suspect, W_out), axis=1)
    nonzero = np.asarray(to_numpy(xp.any(columns != 0, axis=0)))
    if np.any(nonzero):
        j = int(suspect[np.flatnonzero(nonzero)[0]])
        raise MagnitudeError(
            f"{func}: the score max_i |W_out[i, {j}]| / T_i of a live neuron underflowed "
            f"to 0 in {W_out.dtype}: it would never be drawn. {_RESCALE}"
        )


def check_scale(func: str, scale: np.ndarray, W_out: Any, env: Any, act: Activation) -> None:
    """``T_i = sum_j |W_out[i, j]| env_j`` must be carried exactly or refused.

    NaN or infinite weights are named; an overflowing or subnormal ``T_i`` is
    refused; a ``T_i = 0`` is accepted only if every product
    ``|W_out[i, j]| env_j`` is truly zero, not underflowed. For ``phi > 0``
    an envelope below the smallest normal number ``tiny`` is an underflow of a
    positive value; it is accepted where its largest contribution,
    ``sum_j |W_out[i, j]| (env_j + 16 ulps)``, is below ``max(eps_machine * T_i, tiny)``
    (rounding level, or below every representable error), and refused otherwise.
    """
    if not np.all(np.isfinite(scale)):
        check_finite_entries(func, "W_out", W_out)
    check_magnitudes(func, "the scale T_i", scale, W_out.dtype, _RESCALE)
    env_host = np.asarray(to_numpy(env), dtype=np.float64)
    tiny = safe_range(W_out.dtype)[0]
    if act.is_positive and np.any(env_host < tiny):
        under = np.flatnonzero(env_host < tiny)
        columns = np.abs(np.asarray(to_numpy(W_out[:, _index(array_namespace(W_out), under,
                                                                W_out)]), dtype=np.float64))
        # an underflowed phi_j is below env_j + 16 ulps of the subnormal range
        ulps = 16 * float(np.finfo(np.float32 if "float32" in str(W_out.dtype)
                                   else np.float64).smallest_subnormal)
        hidden = columns @ (env_host[under] + ulps)
        eps = float(np.finfo(np.float32 if "float32" in str(W_out.dtype) else np.float64).eps)
        excess = hidden - np.maximum(eps * scale, tiny)
        if np.any(excess > 0):
            i = int(np.argmax(excess))
            raise MagnitudeError(
                f"{func}: phi underflowed for {under.size} neuron(s) (max|phi| below "
                f"{tiny:.3g}) whose outgoing weights in row {i} of W_out are large enough "
                f"for the lost part to matter next to T[{i}] = {scale[i]!r}. {_RESCALE}"
            )
    zero = np.flatnonzero(scale == 0)
    if zero.size == 0:
        return
    rows = np.abs(np.asarray(to_numpy(W_out))[zero]) > 0
    # phi > 0 everywhere: every neuron is alive, so a non-zero row has T_i > 0
    live = rows if act.is_positive else rows & (env_host > 0)[None, :]
    if np.any(live):
        i = int(zero[np.flatnonzero(live.any(axis=1))[0]])
        raise MagnitudeError(
            f"{func}: the scale T_i at index {i} = sum_j |W_out[{i}, j]| env_j underflowed to 0 "
            f"although some products are non-zero. {_RESCALE}"
        )


def output_sensitivities(
    W_in: Any, b_in: Any, W_out: Any, *, beta: float,
    activation: str | Activation = "relu",
) -> np.ndarray:
    """Per-output sensitivities ``s_i[j] = |W_out[i, j]| env[j] / T_i``, (k, n).

    float64 numpy; rows with ``T_i = 0`` are zero. Materialises a (k, n)
    array: meant for inspection and tests, not for large layers.
    """
    func = "output_sensitivities"
    act, beta = _prepare(func, W_in, b_in, beta, activation)
    xp, W_in, b_in, W_out = check_layer(func, W_in, b_in, W_out)
    # the same checks of magnitudes as every other function (scaled norms,
    # reach, envelope, T_i carried or refused)
    sens = _sensitivities(func, xp, W_in, b_in, W_out, beta, act, "per-output",
                          allow_zero=True)
    W = np.abs(np.asarray(to_numpy(W_out), dtype=np.float64))
    with np.errstate(under="ignore"):
        A = W * sens.envelope  # each product <= T_i, which is finite
    T = sens.scale[:, None]
    return np.divide(A, T, out=np.zeros_like(A), where=T > 0)
