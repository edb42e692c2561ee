"""The one reading of a torch ``nn.Sequential`` into float64 layers.

:func:`read_model` flattens a (nested) ``nn.Sequential`` into its leaves: each
``nn.Linear`` becomes a :class:`LinearOp` (float64 numpy copies of its weights,
checked finite, its parameter dtype checked), each activation an
:class:`ActivationOp` (an :class:`~coreset_verify.activations.Activation`, with
its torch parameters validated), and ``nn.Flatten``, ``nn.Dropout`` and
``nn.Identity`` pass through (Dropout as in eval mode). Convolutional
models (after ``nn.Unflatten(1, (C, H, W))``) are read as the maps they are
(:mod:`coreset_verify.nets.conv`): Conv2d and AvgPool2d as dense LinearOps,
BatchNorm2d (eval) folded into the op before it, MaxPool2d as exact ReLU
layers; ``kind`` names the module each op came from. Anything else is
refused with one message naming the layer.

Two readings are built on it: :func:`read_layers` (the search: consecutive
Linears composed, each affine map followed by an optional activation) and
:func:`read_mlp` (the network pruner: strictly Linear, activation, ...,
Linear).

numpy only at import time; torch is imported by the functions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .._validation import check_float_dtype, fail, import_torch
from ..activations import Activation, elu, get_activation, leaky_relu, softplus
from ..errors import InvalidArgumentError
from ..sensitivity import check_magnitudes

__all__ = [
    "IMAGE_LAYERS",
    "SUPPORTED",
    "ActivationOp",
    "Layer",
    "LinearOp",
    "Mlp",
    "activation_of",
    "check_model",
    "module_at",
    "read_layers",
    "read_mlp",
    "read_model",
    "replace_at",
    "supported_classes",
]

SUPPORTED = ("Linear, ReLU, LeakyReLU, Sigmoid, Tanh, Softplus, ELU, Flatten, Dropout and "
             "Identity, inside (nested) nn.Sequential; after nn.Unflatten(1, (C, H, W)) also "
             "Conv2d, BatchNorm2d, MaxPool2d and AvgPool2d")
#: The modules that are not Linear or an activation, read as maps on images.
IMAGE_LAYERS = ("Unflatten", "Conv2d", "BatchNorm2d", "MaxPool2d", "AvgPool2d")


def supported_classes() -> list[type]:
    """The torch.nn classes read here (and allow-listed when loading files).

    The pruning hooks of ``torch.nn.utils.prune`` are listed too, so that a
    model pruned with it and saved whole loads with ``weights_only=True``
    (they hold only a tensor name, an amount and masks); the loader folds
    their masks in (:func:`coreset_verify.network.masks.fold_masks`).
    """
    nn = import_torch().nn
    from torch.nn.utils import prune

    return [nn.Sequential, nn.Linear, nn.ReLU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh,
            nn.Softplus, nn.ELU, nn.Flatten, nn.Dropout, nn.Identity, nn.Unflatten,
            nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.AvgPool2d,
            prune.PruningContainer, prune.Identity, prune.RandomUnstructured,
            prune.L1Unstructured, prune.RandomStructured, prune.LnStructured,
            prune.CustomFromMask]


@dataclass(frozen=True)
class LinearOp:
    """One ``nn.Linear``: ``weight`` (out, in) and ``bias`` (out,), float64 copies.

    ``path`` locates the module (indices through nested Sequentials; ``()``
    for a bare Linear), ``name`` spells it for messages (``"model[2]"``).
    ``dtype``/``device`` are the torch ones of its parameters.
    """

    path: tuple[int, ...]
    name: str
    weight: np.ndarray
    bias: np.ndarray
    has_bias: bool
    dtype: Any
    device: Any
    kind: str = "Linear"


@dataclass(frozen=True)
class ActivationOp:
    """One activation module, read into an :class:`Activation` (``kind``
    ``"MaxPool2d"`` for the ReLU layers a max-pooling is written with)."""

    path: tuple[int, ...]
    name: str
    activation: Activation
    kind: str = "activation"


def _layer_error(func: str, where: str, module: Any, exc: Exception) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"{func}: the layer {where} ({module!r}) cannot be read: {exc}"
    )


def activation_of(module: Any, *, func: str, where: str) -> Activation | None:
    """The :class:`Activation` of a torch activation module, or None if not one.

    Parameters are validated (``Softplus(beta=0)``, NaN or infinite values
    are refused with an error naming ``where``).
    """
    nn = import_torch().nn
    kind = type(module)
    simple = {nn.ReLU: "relu", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh"}
    try:
        if kind in simple:
            return get_activation(simple[kind])
        if kind is nn.LeakyReLU:
            return leaky_relu(float(module.negative_slope))
        if kind is nn.Softplus:
            return softplus(float(module.beta), float(module.threshold))
        if kind is nn.ELU:
            return elu(float(module.alpha))
    except InvalidArgumentError as exc:
        raise _layer_error(func, where, module, exc) from None
    return None


def _leaves(module: Any, name: str, path: tuple[int, ...]):
    nn = import_torch().nn
    if type(module) is nn.Sequential:
        for i, child in enumerate(module):
            yield from _leaves(child, f"{name}[{i}]", (*path, i))
        return
    yield path, name, module


def _float64(tensor: Any, func: str, where: str) -> np.ndarray:
    torch = import_torch()
    check_float_dtype(tensor.dtype, where, func)
    if tensor.is_meta:
        raise fail(func, where, "a tensor with data (a model on the meta device has no "
                   "weights; load or materialise it first)", "a meta tensor")
    if tensor.layout != torch.strided:
        raise fail(func, where, "a dense (strided) tensor; convert it with .to_dense()",
                   f"a tensor with layout {tensor.layout}")
    array = tensor.detach().to("cpu").double().numpy().copy()
    if not np.all(np.isfinite(array)):
        bad = tuple(int(v) for v in np.argwhere(~np.isfinite(array))[0])
        raise InvalidArgumentError(
            f"{func}: {where} has NaN or infinite weights ({where}{list(bad)} = "
            f"{array[bad]}). Replace them before pruning or searching."
        )
    # float64 subnormals carry a few significant bits: no bound or error computed
    # from them would be true to the precision it claims (a float32 subnormal is
    # a normal float64 number, and is kept).
    check_magnitudes(func, f"{where} (flattened)", array.ravel(), np.float64,
                     "Set weights below 2.2e-308 to zero, or rescale the layer.")
    return array


def _linear(module: Any, path: tuple[int, ...], func: str, where: str) -> LinearOp:
    W = _float64(module.weight, func, f"{where}.weight")
    has_bias = module.bias is not None
    if has_bias:
        b = _float64(module.bias, func, f"{where}.bias")
    else:
        b = np.zeros(W.shape[0])
    return LinearOp(path, where, W, b, has_bias, module.weight.dtype, module.weight.device)


def read_model(model: Any, *, func: str, name: str = "model") -> tuple[
        LinearOp | ActivationOp, ...]:
    """The Linear and activation leaves of ``model``, in order.

    Parameters
    ----------
    model : torch.nn.Module
        An ``nn.Linear`` or a (nested) ``nn.Sequential`` of the supported layers.
    func, name : str
        The public function and its argument, for messages.

    Raises
    ------
    InvalidArgumentError
        Not a torch module, an unsupported layer, a parameter dtype other
        than float32/float64 (float16, bfloat16: the float64 bounds do not
        describe what such a model computes), non-finite weights, or an
        activation with invalid parameters.
    """
    torch = import_torch()
    nn = torch.nn
    if not isinstance(model, nn.Module):
        raise fail(func, name, f"a torch.nn.Sequential of {SUPPORTED}", type(model).__name__)
    ops: list[LinearOp | ActivationOp] = []
    shape: tuple[int, int, int] | None = None  # (C, H, W) after nn.Unflatten, else flat
    for path, where, leaf in _leaves(model, name, ()):
        kind = type(leaf).__name__
        if type(leaf) is nn.Linear:
            if shape is not None:
                raise fail(func, where, "an nn.Linear on flat vectors (put nn.Flatten() "
                           "between a Conv2d or pooling layer and a Linear)", leaf)
            ops.append(_linear(leaf, path, func, where))
        elif type(leaf) in (nn.Flatten, nn.Dropout, nn.Identity):
            if type(leaf) is nn.Flatten:
                shape = None
        elif kind in IMAGE_LAYERS and type(leaf) is getattr(nn, kind):
            shape = _image_layer(ops, leaf, shape, path, func, where)
        elif (act := activation_of(leaf, func=func, where=where)) is not None:
            ops.append(ActivationOp(path, where, act))
        else:
            raise InvalidArgumentError(
                f"{func}: {where} is an unsupported layer of type {type(leaf).__name__}; "
                f"expected one of {SUPPORTED}."
            )
    return tuple(ops)


def _image_layer(ops: list, leaf: Any, shape, path: tuple[int, ...], func: str,
                 where: str) -> tuple[int, int, int]:
    """Append the ops of an image layer (nets/conv.py); return the new shape."""
    from . import conv

    nn = import_torch().nn
    if type(leaf) is nn.Unflatten:
        size = tuple(int(v) for v in leaf.unflattened_size)
        if shape is not None or leaf.dim not in (1, -1) or len(size) != 3:
            raise fail(func, where, "nn.Unflatten(1, (C, H, W)) on flat vectors", leaf)
        return size
    if shape is None:
        raise fail(func, where, f"a {type(leaf).__name__} after nn.Unflatten(1, (C, H, W)) "
                   "(the input's shape is needed to read it as a map)", leaf)
    if type(leaf) is nn.BatchNorm2d:
        scale, shift = conv.batchnorm_affine(leaf, shape[0], func=func, where=where)
        per = np.repeat(scale, shape[1] * shape[2]), np.repeat(shift, shape[1] * shape[2])
        if ops and isinstance(ops[-1], LinearOp):  # fold into the map before it
            last = ops.pop()
            ops.append(replace(last, weight=per[0][:, None] * last.weight,
                               bias=per[0] * last.bias + per[1], has_bias=True))
        else:
            ops.append(_map_op(path, where, np.diag(per[0]), per[1], leaf))
        return shape
    if type(leaf) is nn.MaxPool2d:
        mats, out = conv.maxpool_layers(leaf, shape, func=func, where=where)
        relu = get_activation("relu")
        for i, mat in enumerate(mats):
            if i:
                ops.append(ActivationOp(path, f"{where} (as ReLU)", relu, "MaxPool2d"))
            ops.append(_map_op(path, where, mat, np.zeros(len(mat)), leaf))
        return out
    if type(leaf) is nn.Conv2d:
        _float64(leaf.weight, func, f"{where}.weight")  # dtype, finite, magnitudes
        if leaf.bias is not None:
            _float64(leaf.bias, func, f"{where}.bias")
    W, b, out = conv.dense_map(leaf, shape, func=func, where=where)
    ops.append(_map_op(path, where, W, b, leaf))
    return out


def _map_op(path, where: str, W: np.ndarray, b: np.ndarray, leaf: Any) -> LinearOp:
    """A LinearOp for an image layer (its dtype/device those of its parameters)."""
    import torch

    param = next(iter(leaf.parameters()), None)
    dtype = param.dtype if param is not None else torch.float64
    device = param.device if param is not None else torch.device("cpu")
    return LinearOp(path, where, W, b, bool(np.any(b != 0)), dtype, device,
                    type(leaf).__name__)


@dataclass(frozen=True)
class Layer:
    """``activation(weight @ h + bias)``; float64 numpy arrays."""

    weight: np.ndarray
    bias: np.ndarray
    activation: Activation | None

    def numpy(self, h: np.ndarray) -> np.ndarray:
        """Apply to a batch ``h`` of shape (B, in), as the torch modules do."""
        z = h @ self.weight.T + self.bias
        return z if self.activation is None else self.activation.numpy(z)


def read_layers(model: Any, *, func: str, name: str) -> tuple[Layer, ...]:
    """``model`` as affine maps each followed by an optional activation.

    Consecutive Linears are composed into one (in float64); an activation
    directly after another gets an identity map in between.

    Raises
    ------
    InvalidArgumentError
        As :func:`read_model`, and no Linear, or an activation first.
    """
    layers: list[Layer] = []
    pending: tuple[np.ndarray, np.ndarray] | None = None
    width: int | None = None  # output width of everything read so far
    for op in read_model(model, func=func, name=name):
        if isinstance(op, LinearOp):
            if width is not None and op.weight.shape[1] != width:
                raise fail(func, op.name, f"a Linear with in_features={width} (the width "
                           "of the layer before it)", f"in_features={op.weight.shape[1]}")
            width = op.weight.shape[0]
            w, b = op.weight, op.bias
            if pending is not None:
                w, b = w @ pending[0], w @ pending[1] + b
            pending = (w, b)
            continue
        if pending is None:
            if not layers:
                raise InvalidArgumentError(
                    f"{func}: {name} must start with nn.Linear; got an activation "
                    f"({op.activation.name}) first, at {op.name}."
                )
            width = layers[-1].weight.shape[0]
            pending = (np.eye(width), np.zeros(width))
        layers.append(Layer(pending[0], pending[1], op.activation))
        pending = None
    if pending is not None:
        layers.append(Layer(pending[0], pending[1], None))
    if not layers:
        raise InvalidArgumentError(f"{func}: {name} must contain an nn.Linear; got none.")
    for layer in layers:
        if not (np.all(np.isfinite(layer.weight)) and np.all(np.isfinite(layer.bias))):
            raise InvalidArgumentError(
                f"{func}: composing the consecutive Linears of {name} overflows float64; "
                "rescale the weights."
            )
    return tuple(layers)


@dataclass(frozen=True)
class Mlp:
    """An MLP as the network pruner reads it: Linear, activation, ..., Linear.

    ``linears[l]`` is the l-th Linear; ``activation_ops[l]`` the activation
    module after hidden layer l (one fewer than the Linears).
    """

    linears: tuple[LinearOp, ...]
    activation_ops: tuple[ActivationOp, ...]

    @property
    def activations(self) -> tuple[Activation, ...]:
        return tuple(op.activation for op in self.activation_ops)

    @property
    def paths(self) -> list[tuple[int, ...]]:
        return [op.path for op in self.linears]


def read_mlp(model: Any, *, func: str, name: str = "model") -> Mlp:
    """Read an ``nn.Sequential`` MLP with exactly one activation between two Linears.

    Raises
    ------
    InvalidArgumentError
        As :func:`read_model`; not an ``nn.Sequential``; two Linears or two
        activations in a row; an activation first or last; Linear sizes that
        do not chain; fewer than two Linears.
    """
    nn = import_torch().nn
    if not isinstance(model, nn.Sequential):
        raise fail(func, name, f"a torch.nn.Sequential of {SUPPORTED}", type(model).__name__)
    linears: list[LinearOp] = []
    acts: list[ActivationOp | None] = []
    for op in read_model(model, func=func, name=name):
        if op.kind in IMAGE_LAYERS:
            raise fail(func, op.name, "a Linear or an activation (an MLP; convolutional "
                       "models are pruned channel by channel)", module_at(model, op.path))
        if isinstance(op, LinearOp):
            if linears and acts[-1] is None:
                raise fail(func, op.name, "preceded by an activation (two Linears in a row "
                           "cannot be pruned as a layer pair)", module_at(model, op.path))
            if linears and linears[-1].weight.shape[0] != op.weight.shape[1]:
                raise fail(func, op.name, f"a Linear with in_features="
                           f"{linears[-1].weight.shape[0]}", module_at(model, op.path))
            linears.append(op)
            acts.append(None)
        else:
            if not linears or acts[-1] is not None:
                raise fail(func, op.name, "an activation directly after a Linear "
                           "(one per hidden layer)", module_at(model, op.path))
            acts[-1] = op
    if len(linears) < 2:
        raise fail(func, name, "a network with at least two Linear layers (one hidden "
                   "layer to prune)", f"{len(linears)} Linear layer(s)")
    if acts[-1] is not None:
        raise fail(func, name, "a network ending with a Linear (its outputs, e.g. logits)",
                   f"a final {acts[-1].activation.name} at {acts[-1].name}")
    return Mlp(tuple(linears), tuple(a for a in acts[:-1] if a is not None))


def check_model(model: Any, *, func: str, name: str = "model") -> None:
    """What loading and saving check: an MLP as :func:`read_mlp` reads it; a
    model with image layers (Conv2d, BatchNorm2d, pooling, Unflatten), which
    may take images, only its parameters and buffers (float32/float64,
    finite, no float64 subnormals) and its layer types."""
    nn = import_torch().nn
    leaves = [leaf for _, _, leaf in _leaves(model, name, ())]
    if not any(type(leaf).__name__ in IMAGE_LAYERS for leaf in leaves):
        read_mlp(model, func=func, name=name)
        return
    allowed = tuple(supported_classes())
    for where, leaf in ((w, leaf) for _, w, leaf in _leaves(model, name, ())):
        if not isinstance(leaf, allowed) or isinstance(leaf, nn.Sequential):
            raise InvalidArgumentError(f"{func}: {where} is an unsupported layer of type "
                                       f"{type(leaf).__name__}; expected one of {SUPPORTED}.")
        activation_of(leaf, func=func, where=where)  # parameters of activations
        for key, tensor in [*leaf.named_parameters(), *leaf.named_buffers()]:
            if tensor.is_floating_point():
                _float64(tensor, func, f"{where}.{key}")


def module_at(model: Any, path: tuple[int, ...]) -> Any:
    """The submodule at ``path`` (indices through nested Sequentials)."""
    for i in path:
        model = model[i]
    return model


def replace_at(model: Any, path: tuple[int, ...], module: Any) -> None:
    """Put ``module`` at ``path`` in ``model`` (in place; ``path`` non-empty)."""
    module_at(model, path[:-1])[path[-1]] = module
