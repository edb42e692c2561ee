"""A ball around any input: fold its centre into a network's first Linear.

The worst-case search and the certificates work on a ball around 0. A ball
``||x - c|| <= beta`` around a given input ``c`` (a real digit, say) is the
ball ``||u|| <= beta`` of the network ``u -> f(c + u)``, and that network is
``f`` with its first Linear's bias ``b`` replaced by ``W c + b``.

numpy only at import time; torch is imported by the functions.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from .._validation import check_float_dtype, fail, import_torch, to_numpy
from .model import LinearOp, module_at, read_model

__all__ = ["centered", "input_center"]


def _first_linear(model: Any, func: str) -> LinearOp:
    ops = read_model(model, func=func, name="model")
    if not ops or not isinstance(ops[0], LinearOp):
        raise fail(func, "model", "a network whose first layer (after Flatten, Dropout, "
                   "Identity or Unflatten) is an nn.Linear or a Conv2d or pooling layer",
                   ops[0].name if ops else "no layer")
    return ops[0]


def input_center(model: Any, center: Any, *, func: str = "input_center") -> np.ndarray:
    """``center`` as a flat float64 input of ``model``, checked.

    Parameters
    ----------
    model : torch.nn.Module
        A network :func:`~coreset_verify.nets.model.read_model` reads, starting
        with an ``nn.Linear`` of ``d`` inputs.
    center : array_like, shape (d,) or 2-D with d entries
        A float32 or float64 input, finite. A 2-D array (an image such as a
        28 x 28 digit for a first Linear of 784 inputs) is flattened row by
        row, as ``nn.Flatten`` does.
    func : str
        The public function, for messages.

    Returns
    -------
    numpy.ndarray, shape (d,)
        float64.

    Raises
    ------
    InvalidArgumentError
        Not a float32/float64 array, NaN or infinite entries, or a shape
        other than ``(d,)`` or 2-D with ``d`` entries.

    Examples
    --------
    >>> import torch
    >>> input_center(torch.nn.Linear(4, 1), np.ones((2, 2), dtype=np.float32))
    array([1., 1., 1., 1.])
    """
    d = _first_linear(model, func).weight.shape[1]
    try:
        c = to_numpy(center)
        c = c if isinstance(c, np.ndarray) else np.asarray(c)
    except (TypeError, ValueError):
        raise fail(func, "center", "a float array", type(center).__name__) from None
    check_float_dtype(c.dtype, "center", func)
    if c.ndim not in (1, 2) or c.size != d:
        raise fail(func, "center", f"an input of the model: shape ({d},), or 2-D with {d} "
                   "entries (an image, flattened row by row)", f"shape {c.shape}")
    c = c.astype(np.float64).reshape(-1)
    if not np.all(np.isfinite(c)):
        raise fail(func, "center", "finite", "an array with NaN or infinite entries")
    return c


def centered(model: Any, center: Any) -> Any:
    """``model`` seen from ``center``: ``centered(model, c)(u) == model(c + u)``.

    A copy of ``model`` in float64 whose first ``nn.Linear`` has the bias
    ``W c + b`` (a bias is added if it had none); a model that starts with
    ``nn.Unflatten`` and a Conv2d or pooling layer gets an ``nn.Linear`` in
    front instead, the identity with bias ``c``. ``model`` itself is not
    changed. The ball ``||x - c|| <= beta`` of ``model`` is then the ball
    ``||u|| <= beta`` of the copy, and the box ``lo <= x <= hi`` is the box
    ``lo - c <= u <= hi - c``. Everything proved about the copy (a worst case,
    a certificate) is about ``model`` at ``x = c + u``.

    Parameters
    ----------
    model : torch.nn.Module
        An ``nn.Linear`` or (nested) ``nn.Sequential`` of the supported
        layers, starting with an ``nn.Linear`` (after ``Flatten``,
        ``Dropout`` or ``Identity``).
    center : array_like, shape (d,) or 2-D with d entries
        See :func:`input_center`.

    Returns
    -------
    torch.nn.Module
        In float64: ``W c + b`` is rounded once in float64, where a float32
        copy would round it again and compute another function.

    Raises
    ------
    InvalidArgumentError
        A model :func:`~coreset_verify.nets.model.read_model` refuses, one
        that does not start with an ``nn.Linear``, or a bad ``center``
        (:func:`input_center`).

    Examples
    --------
    >>> import torch
    >>> f = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    >>> c, u = np.array([1.0, -2.0, 0.5]), torch.randn(5, 3, dtype=torch.float64)
    >>> g = centered(f, c)
    >>> bool(torch.allclose(g(u), f.double()(u + torch.as_tensor(c))))
    True
    """
    torch = import_torch()
    c = input_center(model, center, func="centered")
    first = _first_linear(model, "centered")
    copied = copy.deepcopy(model).double()
    if first.kind != "Linear":  # a Conv2d's bias is per channel: shift the input instead
        shift = torch.nn.Linear(len(c), len(c), dtype=torch.float64)
        with torch.no_grad():
            shift.weight.copy_(torch.eye(len(c), dtype=torch.float64))
            shift.bias.copy_(torch.as_tensor(c))
        return torch.nn.Sequential(shift, copied)
    linear = module_at(copied, first.path)
    with np.errstate(all="ignore"):
        bias = first.weight @ c + first.bias
    if not np.all(np.isfinite(bias)):
        raise fail("centered", "center", f"an input at which {first.name} is finite in "
                   "float64", "one where W c + b overflows")
    with torch.no_grad():
        linear.bias = torch.nn.Parameter(torch.as_tensor(bias, dtype=torch.float64,
                                                         device=linear.weight.device))
    return copied
