"""Editing a model's layers: a coreset put in place, baselines keeping chosen neurons."""

from __future__ import annotations

import copy
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._validation import fail, import_torch
from ..coreset import LayerCoreset
from ..errors import MagnitudeError
from ..nets.model import module_at, replace_at
from ..sensitivity import safe_range
from .reading import Weights, position_of, read, rebuild

__all__ = ["replace_layer_pair", "select_neurons"]


def replace_layer_pair(model: Any, position: int | tuple[int, ...],
                       coreset: LayerCoreset) -> Any:
    """A copy of ``model`` whose Linear at ``position`` keeps only the coreset's
    neurons and whose next Linear takes the re-weighted outgoing weights.

    The next layer keeps its bias. The returned model is physically smaller;
    each new Linear has the dtype and device of the one it replaces.

    Raises
    ------
    InvalidArgumentError
        ``position`` is not a hidden Linear, ``coreset`` is not a
        :class:`~coreset_verify.LayerCoreset`, or its shapes do not fit the
        layer pair at ``position``.
    """
    torch = import_torch()
    func = "replace_layer_pair"
    mlp, _ = read(model, func)
    hidden = [position_of(p) for p in mlp.paths[:-1]]
    if position not in hidden:
        raise fail(func, "position",
                   f"the index of a Linear that has a next Linear (one of {hidden})", position)
    if not isinstance(coreset, LayerCoreset):
        raise fail(func, "coreset", "a LayerCoreset", type(coreset).__name__)
    i = hidden.index(position)
    first_op, second_op = mlp.linears[i], mlp.linears[i + 1]
    W_in, b_in, W_out = (np.asarray(a, dtype=np.float64) for a in _to_numpy(coreset.pruned()))
    n, d = first_op.weight.shape
    k = second_op.weight.shape[0]
    if W_in.shape[1] != d or W_out.shape[0] != k or coreset.probabilities.shape[0] != n:
        raise fail(func, "coreset", f"a coreset of this layer pair (n = {n} neurons, d = "
                   f"{d} inputs, k = {k} outputs)", f"n = {coreset.probabilities.shape[0]}, "
                   f"d = {W_in.shape[1]}, k = {W_out.shape[0]}")
    first, second = module_at(model, first_op.path), module_at(model, second_op.path)
    new = copy.deepcopy(model)
    r = W_in.shape[0]
    small_in = torch.nn.Linear(d, r, bias=first.bias is not None, dtype=first_op.dtype,
                               device=first_op.device)
    small_out = torch.nn.Linear(r, k, bias=second.bias is not None, dtype=second_op.dtype,
                                device=second_op.device)
    with torch.no_grad():
        small_in.weight.copy_(torch.as_tensor(W_in))
        if small_in.bias is not None:
            small_in.bias.copy_(torch.as_tensor(b_in))
        small_out.weight.copy_(torch.as_tensor(W_out))
        if small_out.bias is not None:
            small_out.bias.copy_(second.bias)
    replace_at(new, first_op.path, small_in)
    replace_at(new, second_op.path, small_out)
    return new


def _to_numpy(arrays):
    from .._validation import to_numpy

    return tuple(to_numpy(a) for a in arrays)


def _indices(func: str, name: str, idx: Any, n: int) -> np.ndarray:
    """Distinct integer indices in [0, n), non-empty, 1-D."""
    expected = f"a non-empty 1-D array of distinct integer indices in [0, {n})"
    arr = np.asarray(idx)
    if arr.dtype == object or arr.dtype == bool or not (
            np.issubdtype(arr.dtype, np.integer) or all(
                isinstance(v, numbers.Integral) and not isinstance(v, bool)
                for v in arr.ravel().tolist())):
        raise fail(func, name, expected, idx)
    arr = arr.astype(np.int64)
    if arr.ndim != 1 or arr.size == 0 or arr.min() < 0 or arr.max() >= n:
        raise fail(func, name, expected, idx)
    if np.unique(arr).size != arr.size:
        values, counts = np.unique(arr, return_counts=True)
        raise fail(func, name, expected, f"index {int(values[counts > 1][0])} repeated")
    return arr


def _factor(func: str, name: str, factor: Any, r: int) -> np.ndarray | float:
    """A finite scale: one number or one per kept neuron."""
    if factor is None:
        return 1.0
    try:
        arr = np.asarray(factor, dtype=np.float64)
    except (TypeError, ValueError):
        raise fail(func, name, f"a finite float or an array of shape ({r},)", factor) from None
    if arr.shape not in ((), (r,)) or not np.all(np.isfinite(arr)):
        raise fail(func, name, f"a finite float or a finite array of shape ({r},)", factor)
    return arr


def _scales(func: str, scale: Any, hidden: int) -> list:
    """``scale`` as one entry per hidden layer (None: no scaling)."""
    if scale is None:
        return [None] * hidden
    expected = f"None or a sequence of {hidden} arrays or floats (one per hidden layer)"
    if isinstance(scale, str | bytes):
        raise fail(func, "scale", expected, scale)
    try:
        scale = list(scale)
    except TypeError:
        raise fail(func, "scale", expected, scale) from None
    if len(scale) != hidden:
        raise fail(func, "scale", expected, f"length {len(scale)}")
    return scale


def _scaled(func: str, name: str, weight: np.ndarray, factor: Any, dtype: Any) -> np.ndarray:
    """``weight * factor``, refused when it exceeds the largest number of ``dtype``
    (the next layer's; the weights are finite, so only the scale can do that)."""
    with np.errstate(over="ignore"):
        out = weight * factor
    top = safe_range(dtype)[1]
    if not np.all(np.abs(out) <= top):
        raise MagnitudeError(
            f"{func}: {name} times the next layer's weights exceeds the largest "
            f"{dtype} number ({top:.3g}); use a smaller scale.")
    return out


def select_neurons(
    model: Any, kept: Sequence[Any], *, scale: Sequence[Any] | None = None
) -> Any:
    """A smaller copy of ``model`` keeping the given neurons of each hidden layer.

    For baselines (uniform sampling, top-k): hidden layer l keeps the rows
    ``kept[l]`` of its Linear; the next Linear keeps those columns, multiplied
    by ``scale[l]`` when given.

    Parameters
    ----------
    model : torch.nn.Sequential
        As for :func:`prune_network`.
    kept : sequence of int arrays, one per hidden layer, shapes (r_l,)
        Distinct neuron indices (original numbering), in the order the kept
        neurons should have; None keeps a layer whole.
    scale : sequence of float arrays of shapes (r_l,) or floats, optional

    Returns
    -------
    torch.nn.Sequential

    Raises
    ------
    InvalidArgumentError
        An index list that is empty, repeats an index, holds a non-integer
        (``1.5``, ``True``) or an index out of range; ``scale`` not a
        sequence of one entry per hidden layer, an entry of the wrong shape
        or not finite; a model :func:`prune_network` refuses (meta tensors,
        float16, NaN weights).
    MagnitudeError
        A scale that takes the next layer's weights beyond the largest
        number of the model's dtype (``scale=[1e308]``).
    """
    func = "select_neurons"
    mlp, weights = read(model, func)
    hidden = len(weights) - 1
    if isinstance(kept, str | bytes) or not isinstance(kept, Sequence) or len(kept) != hidden:
        raise fail(func, "kept", f"a sequence of {hidden} index arrays (one per hidden "
                   "layer)", kept if not isinstance(kept, Sequence) else f"length {len(kept)}")
    scale = _scales(func, scale, hidden)
    for layer, (idx, factor) in enumerate(zip(kept, scale, strict=True)):
        n = weights[layer].W.shape[0]
        idx = np.arange(n) if idx is None else _indices(func, f"kept[{layer}]", idx, n)
        factor = _factor(func, f"scale[{layer}]", factor, idx.size)
        w = weights[layer]
        weights[layer] = Weights(w.W[idx], w.b[idx], w.has_bias)
        nxt = weights[layer + 1]
        weights[layer + 1] = Weights(_scaled(func, f"scale[{layer}]", nxt.W[:, idx], factor,
                                             mlp.linears[layer + 1].dtype), nxt.b, nxt.has_bias)
    return rebuild(model, mlp, weights)
