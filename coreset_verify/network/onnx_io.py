"""Read an ONNX graph of the supported ops into a torch ``nn.Sequential``.

onnx2torch is not used: it imports torchvision, whose wheels pin their own
torch build (several GB) in place of the CPU torch this toolkit installs.
The graph is read here with the ``onnx`` package alone, op by op, and the
result is checked against ``onnxruntime`` on random inputs before it is
returned. Both are imported only when an ONNX file is read
(``pip install 'coreset-verify[onnx]'``).

What is read: one linear chain of nodes (each node's output feeds only the
next node) from the graph's one input to its one output, of the ops in
:data:`SUPPORTED_OPS`. Constant operands (initializers, ``Constant`` nodes and
``Identity`` nodes of constants) may be used anywhere. ``BatchNormalization``
becomes an ``nn.BatchNorm2d`` in eval mode (not folded into the convolution
before it, so that the model keeps the layers it was exported with).

What torch's exporters write: both fold a BatchNorm into the Conv before it
(``torch.onnx.export(..., dynamo=False, do_constant_folding=False)`` keeps
it). The TorchScript exporter (``dynamo=False``) writes ``nn.Unflatten`` as a
shape computed at run time (Shape, Slice, Concat, ...), which is refused
(``x.reshape(-1, C, H, W)`` is read); the dynamo exporter (the default, which
needs onnxscript) writes ``nn.Softplus`` as Softplus, Greater and Where (its
threshold), a branch, which is refused.
"""

from __future__ import annotations

import copy
import math
import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import check_float_dtype, import_torch
from ..errors import InvalidArgumentError, MissingDependencyError
from ..nets.model import check_model

__all__ = ["SUPPORTED_OPS", "TOLERANCES", "read_onnx"]

FUNC = "load_model"
SUPPORTED_OPS = ("Gemm, MatMul (with an Add of a constant after it: Linear), Conv, Relu, "
                 "LeakyRelu, Sigmoid, Tanh, Softplus, Elu, Flatten, Reshape, MaxPool, "
                 "AveragePool, BatchNormalization, Identity")
#: (rtol, atol) of the onnxruntime cross-check, per dtype: the converted model
#: passes if max |torch - onnxruntime| <= atol + rtol * max |onnxruntime|.
#: A float64 graph with ops that onnxruntime runs in float32 only (Conv,
#: AveragePool, Softplus, Elu, ...) is checked as a float32 copy, at float32's.
TOLERANCES = {"float32": (1e-4, 1e-5), "float64": (1e-7, 1e-8)}
_SYMBOLIC_BATCH = 4  # the batch size drawn for a symbolic (or unknown) batch dimension


def _error(text: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"{FUNC}: {text}")


def _import_onnx() -> tuple[Any, Any]:
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        raise MissingDependencyError(
            f"Reading ONNX files needs onnx and onnxruntime ({exc}): "
            "pip install 'coreset-verify[onnx]'"
        ) from None
    return onnx, onnxruntime


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines() or [""]
    return f"{type(exc).__name__}: {lines[0][:200]}"


def _load(onnx: Any, path: str) -> Any:
    """``onnx.load`` and ``onnx.checker.check_model``, every failure one clear error."""
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as exc:  # protobuf reports a hostile file in many ways
        raise _error(f"could not read {path!r} as an ONNX model: it is empty, truncated or "
                     f"not an ONNX file ({_first_line(exc)}).") from None
    if model.ByteSize() == 0:
        raise _error(f"{path!r} is empty: it holds no ONNX model.")
    _external_data(onnx, model, path)
    _refuse_half_precision(onnx, model)
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:  # ValidationError, InferenceError, ...
        raise _error(f"{path!r} is not a valid ONNX model ({_first_line(exc)}).") from None
    return model


def _external_data(onnx: Any, model: Any, path: str) -> None:
    """Load the weights kept in files beside the model (the dynamo exporter writes
    them), refusing any location outside the model's folder."""
    folder = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    tensors = [t for t in model.graph.initializer
               if t.data_location == onnx.TensorProto.EXTERNAL]
    for tensor in tensors:
        location = {e.key: e.value for e in tensor.external_data}.get("location", "")
        target = os.path.realpath(os.path.join(folder, location))
        if (os.path.isabs(location) or not target.startswith(folder + os.sep)
                or not os.path.isfile(target)):
            raise _error(f"initializer {tensor.name!r} of {path!r} refers to the external "
                         f"data file {location!r}, which is not a file in the model's folder.")
    try:
        if tensors:
            onnx.external_data_helper.load_external_data_for_model(model, folder)
    except Exception as exc:
        raise _error(f"the external data of {path!r} cannot be read ({_first_line(exc)})."
                     ) from None


def _dtype_name(onnx: Any, elem_type: int) -> str:
    """numpy's name of an ONNX element type (``FLOAT`` -> ``"float32"``)."""
    name = onnx.TensorProto.DataType.Name(elem_type).lower()
    return {"float": "float32", "double": "float64"}.get(name, name)


def _refuse_half_precision(onnx: Any, model: Any) -> None:
    """float16/bfloat16 inputs or initializers, refused before the checker
    reports them as a type mismatch."""
    graph = model.graph
    for name, elem in [*((v.name, v.type.tensor_type.elem_type) for v in graph.input),
                       *((t.name, t.data_type) for t in graph.initializer)]:
        if _dtype_name(onnx, elem) in ("float16", "bfloat16"):
            check_float_dtype(_dtype_name(onnx, elem), f"{name!r} of the ONNX graph", FUNC)


def _label(node: Any, index: int) -> str:
    return f"node {node.name or f'#{index}'!r} (op {node.op_type})"


def _constant_value(onnx: Any, node: Any, where: str) -> np.ndarray:
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    if "value" in attrs:
        return onnx.numpy_helper.to_array(attrs["value"])
    for name, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                        ("value_int", np.int64), ("value_ints", np.int64)):
        if name in attrs:
            return np.asarray(attrs[name], dtype=dtype)
    raise _error(f"{where} holds a constant of a kind that is not read ({sorted(attrs)}).")


def _constants(onnx: Any, graph: Any) -> dict[str, np.ndarray]:
    """Initializers, ``Constant`` outputs and ``Identity`` copies of constants."""
    consts: dict[str, np.ndarray] = {}
    for init in graph.initializer:
        try:
            consts[init.name] = onnx.numpy_helper.to_array(init)
        except Exception as exc:
            raise _error(f"initializer {init.name!r} cannot be read ({_first_line(exc)})."
                         ) from None
    for index, node in enumerate(graph.node):
        if node.op_type == "Constant":
            consts[node.output[0]] = _constant_value(onnx, node, _label(node, index))
        elif node.op_type == "Identity" and node.input[0] in consts:
            consts[node.output[0]] = consts[node.input[0]]
    return consts


@dataclass(frozen=True)
class _Step:
    """One node of the chain: ``where`` names it in messages."""

    node: Any
    where: str


def _data_steps(graph: Any, consts: dict[str, np.ndarray]) -> list[_Step]:
    """The nodes that compute on the network's tensor, each of a supported op."""
    steps = []
    for index, node in enumerate(graph.node):
        if node.op_type == "Constant" or all(t in consts for t in node.output):
            continue
        where = _label(node, index)
        if node.domain not in ("", "ai.onnx") or node.op_type not in _CONVERTERS:
            raise _error(f"{where} is not supported; supported ops: {SUPPORTED_OPS}.")
        steps.append(_Step(node, where))
    return steps


def _next_step(current: str, users: list[_Step], consts: dict, outputs: set[str]) -> _Step:
    """The one node that reads ``current``, refusing branches."""
    if len(users) > 1 or current in outputs:
        names = ", ".join(u.where for u in users)
        raise _error(f"the tensor {current!r} feeds more than one node or output ({names}); "
                     "only linear chains (each node feeding the next) are read.")
    step = users[0]
    variables = [t for t in step.node.input if t and t not in consts]
    if variables != [current]:
        raise _error(f"{step.where} combines several tensors of the network (a branch, e.g. "
                     "a residual connection); only linear chains are read.")
    return step


def _chain(graph: Any, consts: dict[str, np.ndarray]) -> tuple[Any, list[_Step]]:
    """The graph's input and its nodes in order, if they form one linear chain."""
    inputs = [v for v in graph.input if v.name not in consts]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise _error(f"the graph must have one input and one output; it has {len(inputs)} "
                     f"input(s) and {len(graph.output)} output(s).")
    steps = _data_steps(graph, consts)
    users: dict[str, list[_Step]] = defaultdict(list)
    for step in steps:
        for name in dict.fromkeys(t for t in step.node.input if t and t not in consts):
            users[name].append(step)
    outputs = {v.name for v in graph.output}
    chain, current = [], inputs[0].name
    while users.get(current):
        step = _next_step(current, users[current], consts, outputs)
        side = [t for t in step.node.output[1:] if t and (t in users or t in outputs)]
        if side:
            raise _error(f"{step.where}: its extra output {side[0]!r} is used; only the "
                         "first output of a node is read.")
        chain.append(step)
        current = step.node.output[0]
    if current not in outputs or len(chain) != len(steps):
        raise _error(f"the nodes do not form one chain from the input {inputs[0].name!r} "
                     f"to the output {graph.output[0].name!r} (the chain ends at "
                     f"{current!r} after {len(chain)} of {len(steps)} nodes).")
    return inputs[0], chain


def _input_spec(onnx: Any, value: Any) -> tuple[tuple[int, ...], np.dtype]:
    """The shape of the cross-check's inputs and the graph's dtype."""
    tensor = value.type.tensor_type
    name = _dtype_name(onnx, tensor.elem_type)
    check_float_dtype(name, f"input {value.name!r} of the ONNX graph", FUNC)
    dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
            for d in tensor.shape.dim]
    if not tensor.HasField("shape") or len(dims) < 2 or None in dims[1:]:
        raise _error(f"the graph input {value.name!r} must declare a shape (batch, ...) with "
                     f"fixed sizes after the batch dimension; it declares {dims or None}.")
    return (dims[0] or _SYMBOLIC_BATCH, *dims[1:]), np.dtype(name)


class _Builder:
    """Turns chain steps into torch layers, tracking the tensor's shape with a probe."""

    def __init__(self, onnx: Any, consts: dict, shape: tuple[int, ...], dtype: np.dtype):
        self.torch = import_torch()
        self.onnx, self.consts, self.dtype = onnx, consts, dtype
        self.probe = self.torch.zeros(shape, dtype=getattr(self.torch, dtype.name))
        self.layers: list[Any] = []

    def attrs(self, step: _Step, **defaults: Any) -> dict[str, Any]:
        """The node's attributes over ``defaults``; an unknown one is refused."""
        found = {a.name: self.onnx.helper.get_attribute_value(a) for a in step.node.attribute}
        unknown = sorted(set(found) - set(defaults))
        if unknown:
            raise _error(f"{step.where}: attribute(s) {', '.join(unknown)} not supported.")
        found = {k: v.decode() if isinstance(v, bytes) else v for k, v in found.items()}
        for name, value in found.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise _error(f"{step.where}: attribute {name}={value} is not finite.")
        return {**defaults, **found}

    def weight(self, step: _Step, index: int, ndim: int | None = None) -> np.ndarray | None:
        """The constant operand ``index`` (None if absent): float, finite, the graph's dtype."""
        inputs = step.node.input
        if index >= len(inputs) or not inputs[index]:
            return None
        name = inputs[index]
        if name not in self.consts:
            raise _error(f"{step.where}: operand {name!r} must be a constant (an initializer).")
        array = self.consts[name]
        where = f"initializer {name!r} of {step.where}"
        check_float_dtype(array.dtype, where, FUNC)
        if array.dtype != self.dtype or (ndim is not None and array.ndim != ndim):
            raise _error(f"{where} has dtype {array.dtype} and shape {array.shape}; expected "
                         f"{self.dtype}" + (f" and {ndim} dimensions." if ndim else "."))
        if not np.all(np.isfinite(array)):
            raise _error(f"{where} has NaN or infinite values.")
        return array

    def add(self, step: _Step, *layers: Any) -> None:
        """Append ``layers`` (eval mode) and run the probe through them."""
        try:
            with self.torch.no_grad():
                for layer in layers:
                    self.probe = layer.eval()(self.probe)
        except (RuntimeError, ValueError) as exc:
            raise _error(f"{step.where} does not fit the tensor it receives, of shape "
                         f"{tuple(self.probe.shape)} ({_first_line(exc)}).") from None
        self.layers.extend(layers)

    def need(self, step: _Step, condition: bool, what: str) -> None:
        if not condition:
            raise _error(f"{step.where}: {what} is not supported.")

    def rank(self, step: _Step, rank: int) -> None:
        self.need(step, self.probe.ndim == rank,
                  f"an input of rank {self.probe.ndim} (expected rank {rank})")

    def module(self, step: _Step, factory: Callable[..., Any], /, *args: Any,
               tensors: dict[str, np.ndarray | None], **kwargs: Any) -> Any:
        """``factory(*args, **kwargs)`` in the graph's dtype, its ``tensors`` set
        (a None tensor is left out: no bias)."""
        try:
            layer = factory(*args, **kwargs, dtype=self.probe.dtype)
            with self.torch.no_grad():
                for name, array in tensors.items():
                    if array is not None:
                        getattr(layer, name).copy_(self.torch.from_numpy(np.array(array)))
        except (RuntimeError, ValueError) as exc:
            raise _error(f"{step.where} cannot be read as a torch {factory.__name__} "
                         f"({_first_line(exc)}).") from None
        return layer


def _vector(step: _Step, array: np.ndarray | None, size: int, scale: float = 1.0):
    """A bias operand broadcast to (size,), times ``scale``; None stays None."""
    if array is None:
        return None
    try:
        vector = np.broadcast_to(array, (1, size))[0]
    except ValueError:
        raise _error(f"{step.where}: a bias of shape {array.shape} does not broadcast to "
                     f"({size},).") from None
    return vector * array.dtype.type(scale) if scale != 1 else vector.copy()


def _linear(b: _Builder, step: _Step, weight: np.ndarray, bias: np.ndarray | None) -> None:
    """``weight`` (out, in)."""
    nn = b.torch.nn
    b.need(step, b.probe.ndim >= 2 and b.probe.shape[-1] == weight.shape[1],
           f"an input of shape {tuple(b.probe.shape)} for a weight of {weight.shape[1]} inputs")
    b.add(step, b.module(step, nn.Linear, weight.shape[1], weight.shape[0], bias=bias is not None,
                         tensors={"weight": weight, "bias": bias}))


def _gemm(b: _Builder, step: _Step, chain: list[_Step]) -> int:
    a = b.attrs(step, alpha=1.0, beta=1.0, transA=0, transB=0)
    b.need(step, a["transA"] == 0, "transA=1")
    b.rank(step, 2)
    w = b.weight(step, 1, ndim=2)
    w = w if a["transB"] else w.T
    w = w * w.dtype.type(a["alpha"]) if a["alpha"] != 1 else w
    _linear(b, step, w, _vector(step, b.weight(step, 2), w.shape[0], a["beta"]))
    return 1


def _matmul(b: _Builder, step: _Step, chain: list[_Step]) -> int:
    """MatMul by a constant, with the Add of a constant after it (if any) as the bias."""
    b.attrs(step)
    b.need(step, step.node.input[0] not in b.consts, "a constant left operand")
    w = b.weight(step, 1, ndim=2).T
    after = chain[1] if len(chain) > 1 else None
    if after is None or after.node.op_type != "Add":
        _linear(b, step, w, None)
        return 1
    b.attrs(after)
    position = 0 if after.node.input[0] in b.consts else 1
    _linear(b, step, w, _vector(after, b.weight(after, position), w.shape[0]))
    return 2


def _add(b: _Builder, step: _Step, chain: list[_Step]) -> int:
    raise _error(f"{step.where} is supported only right after a MatMul by a constant "
                 "(the bias of a Linear).")


def _pads(b: _Builder, step: _Step, a: dict[str, Any]) -> tuple[int, int]:
    """Symmetric 2-d padding from ``pads``; auto_pad and ceil_mode refused."""
    b.need(step, a.get("auto_pad", "NOTSET") == "NOTSET", f"auto_pad={a.get('auto_pad')}")
    b.need(step, a.get("ceil_mode", 0) == 0, "ceil_mode=1")
    b.need(step, len(a["kernel_shape"] or (0, 0)) == 2, "a kernel of other than 2 dimensions")
    pads = list(a["pads"] or (0, 0, 0, 0))
    b.need(step, len(pads) == 4 and pads[:2] == pads[2:], f"asymmetric pads={pads}")
    return pads[0], pads[1]


def _window(a: dict[str, Any]) -> dict[str, Any]:
    """The ``stride`` and ``dilation`` arguments of a torch 2-d layer."""
    return {"stride": tuple(a["strides"] or (1, 1)), "dilation": tuple(a["dilations"] or (1, 1))}


_WINDOW = {"auto_pad": "NOTSET", "dilations": None, "kernel_shape": None, "pads": None,
           "strides": None}


def _conv(b: _Builder, step: _Step, chain: list[_Step]) -> int:
    a = b.attrs(step, group=1, **_WINDOW)
    b.rank(step, 4)
    w, bias = b.weight(step, 1, ndim=4), b.weight(step, 2)
    b.need(step, list(a["kernel_shape"] or w.shape[2:]) == list(w.shape[2:]),
           f"kernel_shape={a['kernel_shape']} differing from the weight's {w.shape[2:]}")
    padding = _pads(b, step, a)
    layer = b.module(step, b.torch.nn.Conv2d, w.shape[1] * a["group"], w.shape[0], w.shape[2:],
                     padding=padding, groups=a["group"], bias=bias is not None, **_window(a),
                     tensors={"weight": w, "bias": _vector(step, bias, w.shape[0])})
    b.add(step, layer)
    return 1


def _pool(b: _Builder, step: _Step, chain: list[_Step]) -> int:
    nn, is_max = b.torch.nn, step.node.op_type == "MaxPool"
    own = {"storage_order": 0} if is_max else {"count_include_pad": 0}
    a = b.attrs(step, ceil_mode=0, **own, **_WINDOW)
    b.rank(step, 4)
    b.need(step, a["kernel_shape"] is not None, "a missing kernel_shape")
    kernel, padding, window = tuple(a["kernel_shape"]), _pads(b, step, a), _window(a)
    if is_max:
        layer = nn.MaxPool2d(kernel, padding=padding, **window)
    else:
        b.need(step, window["dilation"] == (1, 1), f"dilations={a['dilations']}")
        layer = nn.AvgPool2d(kernel, window["stride"], padding,
                             count_include_pad=bool(a["count_include_pad"]))
    b.add(step, layer)
    return 1


def _batch_norm(b: _Builder, step: _Step, chain: list[_Step]) -> int:
    a = b.attrs(step, epsilon=1e-5, momentum=0.9, training_mode=0, spatial=1)
    b.need(step, a["training_mode"] == 0 and a["spatial"] == 1, "training mode")
    b.rank(step, 4)
    size = b.probe.shape[1]
    scale, shift, mean, var = (_vector(step, b.weight(step, i, ndim=1), size)
                               for i in range(1, 5))
    b.need(step, all(v is not None for v in (scale, shift, mean, var)), "a missing operand")
    b.add(step, b.module(step, b.torch.nn.BatchNorm2d, size, eps=float(a["epsilon"]), tensors={
        "weight": scale, "bias": shift, "running_mean": mean, "running_var": var}))
    return 1


def _activation(b: _Builder, step: _Step, chain: list[_Step]) -> int:
    nn, op = b.torch.nn, step.node.op_type
    if op in ("LeakyRelu", "Elu"):
        alpha = b.attrs(step, alpha=0.01 if op == "LeakyRelu" else 1.0)["alpha"]
        layer = nn.LeakyReLU(alpha) if op == "LeakyRelu" else nn.ELU(alpha)
    else:
        b.attrs(step)
        layer = {"Relu": nn.ReLU, "Sigmoid": nn.Sigmoid, "Tanh": nn.Tanh,
                 "Softplus": nn.Softplus, "Identity": nn.Identity}[op]()
    if op != "Identity":
        b.add(step, layer)
    return 1


def _flatten(b: _Builder, step: _Step, chain: list[_Step]) -> int:
    axis = b.attrs(step, axis=1)["axis"]
    b.need(step, axis == 1 and b.probe.ndim >= 2, f"axis={axis} (only 1: keep the batch)")
    b.add(step, b.torch.nn.Flatten())
    return 1


def _reshape_target(b: _Builder, step: _Step) -> tuple[int, ...]:
    """The per-sample shape a Reshape asks for, if it keeps the batch dimension."""
    allow_zero = b.attrs(step, allowzero=0)["allowzero"]
    name = step.node.input[1]
    b.need(step, name in b.consts, f"a shape computed at run time ({name!r}; export a "
           "constant shape, e.g. x.reshape(-1, C, H, W))")
    asked = [int(v) for v in np.ravel(b.consts[name])]
    source = tuple(b.probe.shape)
    b.need(step, not (allow_zero and 0 in asked), "allowzero=1 with a 0 in the shape")
    target = [source[i] if v == 0 and i < len(source) else v for i, v in enumerate(asked)]
    size, known = int(np.prod(source)), int(np.prod([v for v in target if v != -1]))
    if target.count(-1) == 1 and known > 0 and size % known == 0:
        target[target.index(-1)] = size // known
    b.need(step, min(target, default=0) > 0 and int(np.prod(target)) == size and
           len(target) >= 2 and target[0] == source[0],
           f"the shape {asked} for an input of shape {source} (the batch "
           "dimension must stay first)")
    return tuple(target[1:])


def _reshape(b: _Builder, step: _Step, chain: list[_Step]) -> int:
    """To a flat vector: Flatten; to an image: Flatten (unless flat) then Unflatten."""
    nn = b.torch.nn
    target = _reshape_target(b, step)
    layers = [nn.Flatten()] if b.probe.ndim != 2 or len(target) == 1 else []
    if len(target) > 1:
        layers.append(nn.Unflatten(1, target))
    b.add(step, *layers)
    return 1


_CONVERTERS: dict[str, Callable[[_Builder, _Step, list[_Step]], int]] = {
    "Gemm": _gemm, "MatMul": _matmul, "Add": _add, "Conv": _conv, "MaxPool": _pool,
    "AveragePool": _pool, "BatchNormalization": _batch_norm, "Flatten": _flatten,
    "Reshape": _reshape, **dict.fromkeys(
        ("Relu", "LeakyRelu", "Sigmoid", "Tanh", "Softplus", "Elu", "Identity"), _activation),
}


def _convert(b: _Builder, chain: list[_Step]) -> Any:
    """The chain as an ``nn.Sequential`` in eval mode."""
    i = 0
    while i < len(chain):
        i += _CONVERTERS[chain[i].node.op_type](b, chain[i], chain[i:])
    if not b.layers:
        raise _error("the graph computes nothing (no layer to read).")
    return b.torch.nn.Sequential(*b.layers).eval()


def _float32_copy(onnx: Any, model: Any) -> Any:
    """``model`` with its float64 tensors, inputs and outputs made float32."""
    single = onnx.ModelProto()
    single.CopyFrom(model)
    graph, double = single.graph, onnx.TensorProto.DOUBLE
    tensors = [*graph.initializer, *(a.t for n in graph.node for a in n.attribute
                                     if a.type == onnx.AttributeProto.TENSOR)]
    for tensor in tensors:
        if tensor.data_type == double:
            array = onnx.numpy_helper.to_array(tensor).astype(np.float32)
            tensor.CopyFrom(onnx.numpy_helper.from_array(array, tensor.name))
    for value in (*graph.input, *graph.output, *graph.value_info):
        if value.type.tensor_type.elem_type == double:
            value.type.tensor_type.elem_type = onnx.TensorProto.FLOAT
    return single


def _run(ort: Any, model: Any, name: str, x: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.log_severity_level = 1, 3
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {name: x})[0])


def _reference(onnx: Any, ort: Any, model: Any, name: str, x: np.ndarray) -> tuple[
        np.ndarray, np.ndarray]:
    """onnxruntime's outputs, and the inputs they are of.

    A float64 graph that onnxruntime cannot run (it has float32 kernels only
    for Conv, AveragePool, Softplus and Elu, among others) is run as a
    float32 copy, at float32 inputs.
    """
    try:
        return _run(ort, model, name, x), x
    except Exception as exc:  # onnxruntime's errors have no common base class
        first = exc
    if x.dtype == np.float64:
        try:
            x32 = x.astype(np.float32)
            return _run(ort, _float32_copy(onnx, model), name, x32), x32
        except Exception:
            pass
    raise _error(f"onnxruntime could not run the graph ({_first_line(first)}).")


def _cross_check(onnx: Any, ort: Any, model: Any, name: str, sequential: Any,
                 x: np.ndarray) -> None:
    """Refuse the conversion unless it agrees with onnxruntime at inputs ``x``."""
    torch = import_torch()
    shape, dtype = x.shape, x.dtype
    want, x = _reference(onnx, ort, model, name, x)
    if not np.all(np.isfinite(want)):
        raise _error(f"the graph computes NaN or infinite outputs on random inputs of shape "
                     f"{shape} (onnxruntime).")
    if x.dtype != dtype:
        sequential = copy.deepcopy(sequential).float()
    with torch.no_grad():
        got = sequential(torch.from_numpy(x)).numpy()
    rtol, atol = TOLERANCES[x.dtype.name]
    allowed = atol + rtol * float(np.abs(want).max(initial=0.0))
    diff = float(np.abs(got - want).max(initial=0.0)) if got.shape == want.shape else np.inf
    if not diff <= allowed:
        raise _error(f"the converted model disagrees with onnxruntime on {shape[0]} random "
                     f"inputs of shape {shape[1:]}: max |difference| = {diff:.3g} > {allowed:.3g}"
                     f" (atol {atol:g} + rtol {rtol:g} x max |output|, in {x.dtype}; output "
                     f"shapes {got.shape} and {want.shape}). The graph uses a semantics the "
                     "converter does not reproduce.")


def read_onnx(path: str | os.PathLike) -> Any:
    """Read an ONNX file into an ``nn.Sequential`` (what ``load_model("x.onnx")`` does).

    Parameters
    ----------
    path : str or os.PathLike
        An ONNX model whose nodes form one linear chain of :data:`SUPPORTED_OPS`,
        with a float32 or float64 input of declared shape ``(batch, ...)``.

    Returns
    -------
    torch.nn.Sequential
        Of Linear, Conv2d, ReLU, LeakyReLU, Sigmoid, Tanh, Softplus, ELU,
        Flatten, Unflatten, MaxPool2d, AvgPool2d and BatchNorm2d, in the
        graph's dtype, in eval mode, on the CPU, checked as torch files are
        (:func:`~coreset_verify.nets.model.check_model`).

    Raises
    ------
    InvalidArgumentError
        If the file cannot be read or is not a valid ONNX model, a node is of
        an unsupported op or has unsupported attributes (naming the node and
        its op), the nodes branch, the weights are not finite float32/float64,
        or the converted model disagrees with onnxruntime on random inputs
        (:data:`TOLERANCES`).
    MissingDependencyError
        If onnx or onnxruntime is not installed.

    Notes
    -----
    ONNX ``Softplus`` becomes ``nn.Softplus()``, whose threshold (x above 20
    returns x) differs from ``log(1 + exp(x))`` by less than 2.1e-9.
    """
    onnx, ort = _import_onnx()
    model = _load(onnx, os.fspath(path))
    consts = _constants(onnx, model.graph)
    value, chain = _chain(model.graph, consts)
    shape, dtype = _input_spec(onnx, value)
    sequential = _convert(_Builder(onnx, consts, shape, dtype), chain)
    check_model(sequential, func=FUNC, name="the loaded model")  # as for torch files
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)  # fixed seed
    _cross_check(onnx, ort, model, value.name, sequential, x)
    return sequential
