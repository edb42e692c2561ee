"""Reading a convolutional ``nn.Sequential`` for channel pruning, and rebuilding it.

The grammar (Dropout and Identity pass through, nested Sequentials flattened)::

    [Unflatten(1, (C, H, W))] (Conv2d [BatchNorm2d] phi [MaxPool2d | AvgPool2d])+
    Flatten (Linear phi)* Linear

Each affine layer and what follows it is a :class:`Unit` with float64 weights
that the pruner edits; :func:`rebuild` puts new, smaller modules in their
places. Anything else is refused with an error naming the layer: grouped
convolutions, padding other than zeros, a BatchNorm after the activation, a
pooling before it, a non-Sequential (residual or branching) model.
torch is imported inside the functions.
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import check_finite_entries, check_float_dtype, check_int, fail, import_torch
from ..conv import fold_batchnorm
from ..errors import InvalidArgumentError
from ..nets.model import ActivationOp, activation_of, check_model, replace_at

__all__ = ["MAX_INPUT_ENTRIES", "ConvModel", "Unit", "has_image_layers", "pair",
           "read_conv_model", "rebuild"]

#: Largest ``input_shape`` (C * H * W entries): the shapes are read by running
#: the layers on an input of zeros (2**24 float64 entries: 128 MB).
MAX_INPUT_ENTRIES = 2**24

IMAGE_LAYERS = ("Unflatten", "Conv2d", "BatchNorm2d", "MaxPool2d", "AvgPool2d")
GRAMMAR = ("[Unflatten(1, (C, H, W))] (Conv2d [BatchNorm2d] activation [MaxPool2d | "
           "AvgPool2d])+ Flatten (Linear activation)* Linear, in an nn.Sequential")


def pair(value: Any) -> tuple[int, int]:
    """A torch size argument (int or pair) as a pair."""
    return (int(value), int(value)) if isinstance(value, int) else tuple(int(v) for v in value)


@dataclass
class Unit:
    """One Conv2d or Linear and the modules after it, as the pruner edits them.

    ``W`` (C, C_in, kh, kw) or (out, in) and ``b`` (C,) float64 (a missing bias
    as zeros); ``bn`` the BatchNorm2d's float64 ``weight``, ``bias``,
    ``running_mean``, ``running_var`` (C,) and ``eps``; ``in_hw``, ``out_hw``,
    ``pooled_hw`` the spatial shapes of the input, the conv's output and the
    pooled output (``()`` for a Linear); ``per_input`` the columns of ``W``
    per input channel (``kh kw``, ``H W`` after Flatten, 1 after a Linear).
    """

    path: tuple[int, ...]
    name: str
    module: Any
    W: np.ndarray
    b: np.ndarray
    per_input: int = 1
    bn: dict | None = None
    bn_module: Any = None
    bn_path: tuple[int, ...] = ()
    act: ActivationOp | None = None
    pool: Any = None
    in_hw: tuple[int, ...] = ()
    out_hw: tuple[int, ...] = ()
    pooled_hw: tuple[int, ...] = ()

    @property
    def is_conv(self) -> bool:
        return self.W.ndim == 4

    @property
    def in_shape(self) -> tuple[int, ...]:
        return (self.W.shape[1], *self.in_hw)

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (self.W.shape[0], *self.out_hw)

    @property
    def pooled_shape(self) -> tuple[int, ...]:
        return (self.W.shape[0], *self.pooled_hw)

    def folded(self) -> tuple[np.ndarray, np.ndarray]:
        """``(W, b)`` with the BatchNorm folded in (:func:`~coreset_verify.fold_batchnorm`)."""
        return (self.W, self.b) if self.bn is None else fold_batchnorm(self.W, self.b, **self.bn)

    def keep_outputs(self, kept: np.ndarray) -> None:
        """Keep output channels (rows) ``kept`` of the layer and its BatchNorm."""
        self.W, self.b = self.W[kept], self.b[kept]
        if self.bn is not None:
            self.bn = {k: (v if k == "eps" else v[kept]) for k, v in self.bn.items()}

    def params(self, n_in: int, n_out: int) -> int:
        """Parameters with ``n_in`` input and ``n_out`` output channels (or neurons)."""
        size = n_in * n_out * self.per_input
        size += n_out if self.module.bias is not None else 0
        affine = self.bn_module is not None and self.bn_module.affine
        return size + (2 * n_out if affine else 0)


@dataclass
class ConvModel:
    """The units of a model and the shape of its input ``(C, H, W)``."""

    units: list[Unit]
    input_shape: tuple[int, int, int]

    @property
    def activation_ops(self) -> tuple[ActivationOp, ...]:
        return tuple(u.act for u in self.units if u.act is not None)


def _walk(module: Any, name: str, path: tuple[int, ...]):
    nn = import_torch().nn
    if type(module) is not nn.Sequential:
        yield path, name, module
        return
    for i, child in enumerate(module):
        yield from _walk(child, f"{name}[{i}]", (*path, i))


def has_image_layers(model: Any) -> bool:
    """True when an ``nn.Sequential`` holds a Conv2d, BatchNorm2d, pooling or Unflatten."""
    nn = import_torch().nn
    if not isinstance(model, nn.Sequential):
        return False
    return any(type(leaf).__name__ in IMAGE_LAYERS for _, _, leaf in _walk(model, "model", ()))


def _array(tensor: Any, func: str, where: str) -> np.ndarray:
    check_float_dtype(tensor.dtype, where, func)
    array = tensor.detach().to("cpu").double().numpy().copy()
    check_finite_entries(func, where, array)
    return array


def _input_shape(func: str, leaves: list, input_shape: Any) -> tuple[tuple[int, int, int], int]:
    """The input shape (from a leading Unflatten, else ``input_shape``) and where
    the layers start."""
    nn = import_torch().nn
    _, where, first = leaves[0]
    if type(first) is nn.Unflatten:
        shape = tuple(int(s) for s in first.unflattened_size)
        if first.dim != 1 or len(shape) != 3:
            raise fail(func, where, "nn.Unflatten(1, (C, H, W))", first)
        if input_shape is not None and tuple(input_shape) != shape:
            raise fail(func, "input_shape", f"None or {shape} (the model's leading "
                       "Unflatten)", input_shape)
        return shape, 1
    expected = ("(C, H, W), three integers >= 1: the model takes images (or start it "
                "with nn.Unflatten(1, (C, H, W)) to take flat vectors)")
    if not (isinstance(input_shape, tuple | list) and len(input_shape) == 3):
        raise fail(func, "input_shape", expected, input_shape)
    shape = tuple(check_int(s, "input_shape", func) for s in input_shape)
    if math.prod(shape) > MAX_INPUT_ENTRIES:
        raise fail(func, "input_shape", f"(C, H, W) with C * H * W <= MAX_INPUT_ENTRIES = "
                   f"{MAX_INPUT_ENTRIES:,} (the layers are run on an input of zeros)",
                   input_shape)
    return shape, 0


def _conv_unit(func: str, path, where: str, conv: Any) -> Unit:
    if conv.groups != 1:
        raise fail(func, where, "a Conv2d with groups=1 (dropping channels breaks equal "
                   "group sizes)", conv)
    if conv.padding_mode != "zeros":
        raise fail(func, where, "a Conv2d with padding_mode='zeros' (other modes repeat "
                   "input entries in a patch: proofs_notes/conv.md, Lemma C1)", conv)
    b = (np.zeros(conv.out_channels) if conv.bias is None
         else _array(conv.bias, func, f"{where}.bias"))
    kh, kw = conv.kernel_size
    return Unit(path, where, conv, _array(conv.weight, func, f"{where}.weight"), b,
                per_input=kh * kw)


def _batchnorm(func: str, unit: Unit, path, where: str, bn: Any) -> None:
    if not unit.is_conv or unit.pool is not None or unit.bn is not None:
        raise fail(func, where, "a BatchNorm2d directly after a Conv2d", bn)
    if unit.act is not None:
        raise fail(func, where, "a BatchNorm2d before the activation (a BatchNorm after "
                   "it is not covered: proofs_notes/conv.md, Folded BatchNorm)", bn)
    if bn.running_mean is None or bn.num_features != unit.W.shape[0]:
        raise fail(func, where, f"a BatchNorm2d({unit.W.shape[0]}) with running "
                   "statistics (track_running_stats=True)", bn)
    ones = np.ones(bn.num_features)
    unit.bn = {
        "weight": ones if bn.weight is None else _array(bn.weight, func, f"{where}.weight"),
        "bias": 0 * ones if bn.bias is None else _array(bn.bias, func, f"{where}.bias"),
        "running_mean": _array(bn.running_mean, func, f"{where}.running_mean"),
        "running_var": _array(bn.running_var, func, f"{where}.running_var"),
        "eps": float(bn.eps)}
    unit.bn_module, unit.bn_path = bn, path


def _pooling(func: str, unit: Unit | None, where: str, pool: Any) -> None:
    ok = unit is not None and unit.is_conv and unit.act is not None and unit.pool is None
    if not ok:
        raise fail(func, where, "a MaxPool2d or AvgPool2d after the activation of a Conv2d",
                   pool)
    if getattr(pool, "divisor_override", None) is not None:
        raise fail(func, where, "an AvgPool2d without divisor_override (its weights must "
                   "sum to at most 1)", pool)
    if getattr(pool, "return_indices", False):
        raise fail(func, where, "a MaxPool2d with return_indices=False", pool)
    unit.pool = pool


def _step(func: str, units: list[Unit], flat: bool, path, where: str, leaf: Any) -> bool:
    """Read one leaf into ``units``; return whether the values are now flat."""
    nn = import_torch().nn
    last = units[-1] if units else None
    complete = last is None or last.act is not None
    kind = type(leaf)
    if kind in (nn.Conv2d, nn.Linear):
        if not complete or flat != (kind is nn.Linear):
            raise fail(func, where, f"a layer that fits {GRAMMAR}", leaf)
        units.append(_conv_unit(func, path, where, leaf) if kind is nn.Conv2d
                     else Unit(path, where, leaf, _array(leaf.weight, func, f"{where}.weight"),
                               np.zeros(leaf.out_features) if leaf.bias is None
                               else _array(leaf.bias, func, f"{where}.bias")))
    elif kind is nn.BatchNorm2d and last is not None:
        _batchnorm(func, last, path, where, leaf)
    elif kind in (nn.MaxPool2d, nn.AvgPool2d):
        _pooling(func, last, where, leaf)
    elif kind is nn.Flatten and not flat and last is not None and complete:
        if leaf.start_dim != 1 or leaf.end_dim != -1:
            raise fail(func, where, "nn.Flatten() (start_dim=1, end_dim=-1)", leaf)
        return True
    elif (act := activation_of(leaf, func=func, where=where)) is not None and not complete:
        last.act = ActivationOp(path, where, act)
    else:
        raise fail(func, where, f"a layer that fits {GRAMMAR}", leaf)
    return flat


def read_conv_model(model: Any, func: str, input_shape: Any = None) -> ConvModel:
    """Read ``model`` into units; shapes from one forward pass of zeros per layer.

    Raises
    ------
    InvalidArgumentError
        A model outside the grammar (naming the layer), with tensors every reader
        refuses (:func:`~coreset_verify.nets.model.check_model`: meta, float16,
        non-finite), or an input shape that does not fit it or has more than
        :data:`MAX_INPUT_ENTRIES` entries.
    """
    nn = import_torch().nn
    if type(model) is not nn.Sequential:
        raise fail(func, "model", f"an nn.Sequential (residual and branching models are "
                   f"not handled): {GRAMMAR}", type(model).__name__)
    check_model(model, func=func)
    leaves = [leaf for leaf in _walk(model, "model", ())
              if type(leaf[2]) not in (nn.Dropout, nn.Identity)]
    if not leaves:
        raise fail(func, "model", GRAMMAR, "an empty nn.Sequential")
    shape, start = _input_shape(func, leaves, input_shape)
    units: list[Unit] = []
    flat = False
    for path, where, leaf in leaves[start:]:
        flat = _step(func, units, flat, path, where, leaf)
    if len(units) < 2 or not flat or units[-1].act is not None or units[-1].is_conv:
        raise fail(func, "model", f"a network that fits {GRAMMAR}, ending with a Linear",
                   model)
    try:
        _shapes(func, units, shape)
    except RuntimeError as exc:  # torch's forward pass of zeros
        raise InvalidArgumentError(f"{func}: the model's layers cannot run on its input "
                                   f"shape {shape}: {str(exc).splitlines()[0]}") from None
    return ConvModel(units, shape)


def _shapes(func: str, units: list[Unit], shape: tuple[int, ...]) -> None:
    """Fill in the spatial shapes by running the stateless modules on zeros."""
    torch = import_torch()
    weight = units[0].module.weight
    x = torch.zeros(1, *shape, dtype=weight.dtype, device=weight.device)
    with torch.no_grad():
        for unit, nxt in itertools.pairwise(units):
            if x.shape[1] != unit.W.shape[1] or (not unit.is_conv and x.ndim != 2):
                raise InvalidArgumentError(
                    f"{func}: {unit.name} expects {unit.W.shape[1]} input channels or "
                    f"features; it gets values of shape {tuple(x.shape[1:])}.")
            unit.in_hw = tuple(x.shape[2:])
            x = unit.module(x)
            unit.out_hw = tuple(x.shape[2:])
            x = x if unit.pool is None else unit.pool(x)
            unit.pooled_hw = tuple(x.shape[2:])
            if not nxt.is_conv:
                nxt.per_input = math.prod(unit.pooled_hw)
                x = x.reshape(1, -1)
        if x.shape[1] != units[-1].W.shape[1]:
            raise InvalidArgumentError(
                f"{func}: {units[-1].name} expects {units[-1].W.shape[1]} inputs; the "
                f"layers before it give {x.shape[1]}.")


def _new_affine(unit: Unit) -> Any:
    torch = import_torch()
    old = unit.module
    like = {"dtype": old.weight.dtype, "device": old.weight.device,
            "bias": old.bias is not None}
    if unit.is_conv:
        new = torch.nn.Conv2d(unit.W.shape[1], unit.W.shape[0], old.kernel_size,
                              stride=old.stride, padding=old.padding, dilation=old.dilation,
                              **like)
    else:
        new = torch.nn.Linear(unit.W.shape[1], unit.W.shape[0], **like)
    with torch.no_grad():
        new.weight.copy_(torch.as_tensor(unit.W))
        if new.bias is not None:
            new.bias.copy_(torch.as_tensor(unit.b))
    return new


def _new_batchnorm(unit: Unit) -> Any:
    torch = import_torch()
    old = unit.bn_module
    new = copy.deepcopy(old)
    new.num_features = unit.W.shape[0]
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            tensor = getattr(old, name)
            if tensor is not None:
                value = torch.as_tensor(unit.bn[name], dtype=tensor.dtype, device=tensor.device)
                setattr(new, name, (torch.nn.Parameter(value) if name in ("weight", "bias")
                                    else value))
    return new


def rebuild(model: Any, units: list[Unit]) -> Any:
    """A deep copy of ``model`` (eval mode) with each unit's layers replaced by
    modules of the unit's sizes (dtype and device of the originals)."""
    new = copy.deepcopy(model)
    for unit in units:
        replace_at(new, unit.path, _new_affine(unit))
        if unit.bn is not None:
            replace_at(new, unit.bn_path, _new_batchnorm(unit))
    return new.eval()
