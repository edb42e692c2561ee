"""Convolutional layers as the linear maps (and ReLU layers) they are.

The search, its bounds and the certificates read a model as affine maps and
activations on flat vectors (:mod:`coreset_verify.nets.model`). A convolution
is such a map; here it becomes the dense matrix that sends the flattened
input (``C x H x W``, row-major, as ``nn.Flatten`` orders it) to the
flattened output, obtained by applying the layer in float64 to the basis
vectors (each column is a copy of weights and zeros, no rounding). Average
pooling and a BatchNorm2d in eval mode are maps of the same kind. Max-pooling
is not linear; it is written exactly with ReLU layers (proofs_notes/conv_maps.md,
Lemma M3): ``max(a, b) = relu(a) - relu(-a) + relu(b - a)``,
applied pairwise in ``ceil(log2(window))`` rounds, so every stage of the
search (and the branch and bound) treats it as the piecewise-linear network
it is, with no relaxation beyond its own.

Only what these maps describe exactly is read: zero padding, no
``ceil_mode``, no ``divisor_override``; anything else is refused with the
layer's name.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._validation import import_torch
from ..errors import InvalidArgumentError

__all__ = ["MAX_DENSE_ENTRIES", "batchnorm_affine", "dense_map", "maxpool_layers"]

#: Largest dense matrix (entries) a layer may become: 5e7 float64, 400 MB.
MAX_DENSE_ENTRIES = 50_000_000


def _refuse(func: str, where: str, module: Any, why: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"{func}: {where} ({module!r}) cannot be read as a linear "
                                f"map: {why}.")


def _check(func: str, where: str, module: Any) -> None:
    nn = import_torch().nn
    if isinstance(module, nn.Conv2d) and module.padding_mode != "zeros":
        raise _refuse(func, where, module, f"padding_mode={module.padding_mode!r} (only "
                      "zero padding is a map of the input alone as written here)")
    if isinstance(module, nn.Conv2d) and isinstance(module.padding, str) and \
            module.padding not in ("valid", "same"):
        raise _refuse(func, where, module, f"padding={module.padding!r}")
    if isinstance(module, nn.AvgPool2d | nn.MaxPool2d) and module.ceil_mode:
        raise _refuse(func, where, module, "ceil_mode=True")
    if isinstance(module, nn.AvgPool2d) and module.divisor_override is not None:
        raise _refuse(func, where, module, "divisor_override")


def _entries(func: str, where: str, module: Any, rows: int, cols: int) -> None:
    if rows * cols > MAX_DENSE_ENTRIES:
        raise _refuse(func, where, module, f"its dense matrix would have {rows} x {cols} "
                      f"entries, more than MAX_DENSE_ENTRIES = {MAX_DENSE_ENTRIES:,}; use a "
                      "smaller input")


def dense_map(module: Any, shape: tuple[int, int, int], *, func: str,
              where: str) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int]]:
    """A Conv2d (its weights as float64) or AvgPool2d as ``(W, b, out_shape)``:
    ``module(x).flatten() == W @ x.flatten() + b`` for inputs of ``shape``
    (channels, height, width)."""
    torch = import_torch()
    _check(func, where, module)
    size = math.prod(shape)
    with torch.no_grad():
        try:
            out = _apply(module, torch.zeros((1, *shape), dtype=torch.float64))
        except RuntimeError as exc:  # a kernel larger than the input, wrong channels
            raise _refuse(func, where, module, f"on inputs of shape {shape}: "
                          f"{str(exc).strip().splitlines()[0]}") from None
        out_shape = tuple(out.shape[1:])
        _entries(func, where, module, math.prod(out_shape), size)
        basis = torch.eye(size, dtype=torch.float64).reshape(size, *shape)
        columns = _apply(module, basis, bias=False).reshape(size, -1)
    bias = out.reshape(-1).numpy().copy()
    return columns.T.numpy().copy(), bias, out_shape


def _apply(module: Any, x: Any, bias: bool = True) -> Any:
    """``module`` on float64 ``x`` without changing the module: a Conv2d with
    its weights cast to float64 (and its bias dropped when ``bias`` is false)."""
    torch = import_torch()
    F = torch.nn.functional
    if isinstance(module, torch.nn.Conv2d):
        b = module.bias.detach().double() if (bias and module.bias is not None) else None
        return F.conv2d(x, module.weight.detach().double(), b, module.stride, module.padding,
                        module.dilation, module.groups)
    return module(x)


def batchnorm_affine(module: Any, channels: int, *, func: str,
                     where: str) -> tuple[np.ndarray, np.ndarray]:
    """A BatchNorm2d in eval mode as per-channel ``(scale, shift)``, float64."""
    torch = import_torch()
    if module.training and module.track_running_stats:
        raise _refuse(func, where, module, "it is in training mode (call model.eval())")
    if not module.track_running_stats or module.running_var is None:
        raise _refuse(func, where, module, "it has no running statistics")
    if module.num_features != channels:
        raise _refuse(func, where, module, f"it expects {module.num_features} channels, "
                      f"the layer before gives {channels}")
    with torch.no_grad():
        var = module.running_var.detach().double()
        mean = module.running_mean.detach().double()
        gamma = (module.weight.detach().double() if module.weight is not None
                 else torch.ones_like(var))
        beta = module.bias.detach().double() if module.bias is not None else torch.zeros_like(var)
        scale = gamma / torch.sqrt(var + module.eps)
    return scale.numpy().copy(), (beta - mean * scale).numpy().copy()


def _windows(module: Any, shape: tuple[int, int, int], func: str, where: str) -> tuple:
    """Flat input indices of every pooling window, shape (outputs, window)."""
    torch = import_torch()
    _check(func, where, module)
    pair = torch.nn.modules.utils._pair
    if any(p != 0 for p in pair(module.padding)) or any(d != 1 for d in pair(module.dilation)):
        raise _refuse(func, where, module, "padding or dilation (max-pooling over padded or "
                      "dilated windows is not written as ReLU layers here)")
    (kh, kw), (sh, sw) = pair(module.kernel_size), pair(module.stride or module.kernel_size)
    c, h, w = shape
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    if ho < 1 or wo < 1:
        raise _refuse(func, where, module, f"its window is larger than the input {shape}")
    ch, i, j, di, dj = np.meshgrid(np.arange(c), np.arange(ho), np.arange(wo), np.arange(kh),
                                   np.arange(kw), indexing="ij")
    flat = (ch * h + i * sh + di) * w + j * sw + dj
    return flat.reshape(c * ho * wo, kh * kw), (c, ho, wo)


def maxpool_layers(module: Any, shape: tuple[int, int, int], *, func: str,
                   where: str) -> tuple[list[np.ndarray], tuple[int, int, int]]:
    """A MaxPool2d as ReLU layers: matrices ``[A_1, ..., A_r, B]`` with
    ``maxpool(x) = B relu(A_r ... relu(A_1 x))`` exactly (proofs_notes/conv_maps.md, M3),
    and the output shape."""
    windows, out_shape = _windows(module, shape, func, where)
    size = math.prod(shape)
    # each value: a row over the current basis (the input, then the last ReLU outputs)
    values = [[np.eye(1, size, int(k)).ravel() for k in window] for window in windows]
    mats: list[np.ndarray] = []
    while any(len(v) > 1 for v in values):
        rows, new_values = [], []
        for vals in values:
            out = []
            for a, b in zip(vals[0::2], vals[1::2], strict=False):
                base = len(rows)
                rows += [a, -a, b - a]  # relu(a), relu(-a), relu(b - a)
                out.append((base, (1.0, -1.0, 1.0)))
            if len(vals) % 2:
                base = len(rows)
                rows += [vals[-1], -vals[-1]]
                out.append((base, (1.0, -1.0)))
            new_values.append(out)
        A = np.stack(rows)
        _entries(func, where, module, *A.shape)
        mats.append(A)
        values = [[_combination(base, coef, len(rows)) for base, coef in out]
                  for out in new_values]
    B = np.stack([vals[0] for vals in values])
    return [*mats, B], out_shape


def _combination(base: int, coef: tuple, width: int) -> np.ndarray:
    row = np.zeros(width)
    row[base:base + len(coef)] = coef
    return row
