"""load_model of ONNX files: round trips through torch.onnx.export, hand-built
graphs with known answers, the onnxruntime cross-check, and the refusals.

The round trips use torch's TorchScript exporter (``dynamo=False``): it needs
no onnxscript and writes ``nn.Softplus`` and ``nn.Flatten`` as single nodes.
One test also reads the dynamo exporter's output (torch 2.13's default), where
onnxscript is installed.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from coreset_verify.errors import InvalidArgumentError, MissingDependencyError
from coreset_verify.network import load_model, onnx_io

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

nn = torch.nn
# Both sides of a round trip are torch computations; the loaded model differs
# only by float32-rounded attributes (LeakyReLU 0.1 -> 0.10000000149).
TOL = {torch.float32: {"rtol": 1e-5, "atol": 1e-6}, torch.float64: {"rtol": 1e-7, "atol": 1e-8}}
DTYPES = [torch.float32, torch.float64]


class Reshape(nn.Module):
    """``x.reshape(-1, *shape)``: a Reshape node with a constant shape."""

    def __init__(self, *shape: int):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.reshape(-1, *self.shape)


def export(model, x, path, **kwargs):
    """torch.onnx.export (TorchScript exporter) with a symbolic batch dimension."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its deprecation notice (torch >= 2.9)
        torch.onnx.export(model.eval(), (x,), path, dynamo=False, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "batch"}}, **kwargs)
    return path


def assert_round_trip(loaded, model, x):
    """Same layers, dtype, eval mode and outputs as the torch model."""
    assert isinstance(loaded, nn.Sequential)
    assert not any(m.training for m in loaded.modules())
    assert {p.dtype for p in loaded.parameters()} == {x.dtype}
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), **TOL[x.dtype])


def seeded(build):
    """``build(...)`` under torch's global generator seeded (``seed=0``), then restored."""
    def wrapped(*args, seed=0):
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return build(*args).eval()
    return wrapped


@seeded
def mlp(activation, dtype):
    return nn.Sequential(nn.Flatten(), nn.Linear(6, 5), activation, nn.Linear(5, 4),
                         activation, nn.Linear(4, 3)).to(dtype)


ACTIVATIONS = [nn.ReLU(), nn.LeakyReLU(0.1), nn.Sigmoid(), nn.Tanh(), nn.Softplus(),
               nn.ELU(0.5)]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("activation", ACTIVATIONS, ids=repr)
def test_mlp_round_trip_for_each_activation(tmp_path, activation, dtype):
    model = mlp(activation, dtype)
    x = 3 * torch.randn(7, 2, 3, dtype=dtype, generator=torch.Generator().manual_seed(1))
    loaded = load_model(export(model, x[:2], tmp_path / "mlp.onnx"))
    assert [type(m) for m in loaded] == [type(m) for m in model]
    for name in ("negative_slope", "alpha"):
        if hasattr(activation, name):
            assert getattr(loaded[2], name) == pytest.approx(getattr(activation, name), 1e-7)
    assert_round_trip(loaded, model, x)  # batch 7: the symbolic batch dimension is kept


@seeded
def conv_net(dtype):
    """Every conv-side op: Conv (padding, stride, no bias), BatchNorm with running
    statistics, MaxPool, AvgPool with padding, Flatten, Reshape to an image."""
    bn = nn.BatchNorm2d(3)
    with torch.no_grad():
        for tensor in (bn.weight, bn.bias, bn.running_mean):
            tensor.normal_()
        bn.running_var.uniform_(0.5, 2.0)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), bn, nn.ReLU(), nn.MaxPool2d(2),
        nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
        nn.Conv2d(3, 4, 3, stride=2, bias=False), nn.LeakyReLU(0.2), nn.Flatten(),
        nn.Linear(4, 8), Reshape(2, 2, 2), nn.Conv2d(2, 1, 1), Reshape(4), nn.Tanh(),
        nn.Linear(4, 3),
    ).to(dtype)


@seeded
def grouped_net(dtype):
    """Conv groups and dilation, a dilated MaxPool, a (3, 1) kernel, and the
    activations whose float64 kernels onnxruntime lacks (Elu, Softplus)."""
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, groups=2, dilation=2, padding=2), nn.ELU(),
        nn.MaxPool2d(2, stride=1, dilation=2, padding=1), nn.Softplus(),
        nn.Conv2d(4, 2, (3, 1), stride=(2, 1), padding=(1, 0)), nn.Sigmoid(), nn.Flatten(),
        nn.Linear(64, 3),
    ).to(dtype)


CONV_NETS = {
    "conv net": (conv_net, 1, ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "AvgPool2d",
                               "Conv2d", "LeakyReLU", "Flatten", "Linear", "Unflatten",
                               "Conv2d", "Flatten", "Tanh", "Linear"]),
    "groups and dilation": (grouped_net, 2, ["Conv2d", "ELU", "MaxPool2d", "Softplus",
                                             "Conv2d", "Sigmoid", "Flatten", "Linear"]),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(("make", "channels", "layers"), CONV_NETS.values(),
                         ids=CONV_NETS.keys())
def test_conv_net_round_trip(tmp_path, make, channels, layers, dtype):
    model = make(dtype)
    x = torch.randn(5, channels, 8, 8, dtype=dtype, generator=torch.Generator().manual_seed(2))
    # without constant folding the exporter keeps BatchNormalization a node of its own
    loaded = load_model(export(model, x[:2], tmp_path / "conv.onnx", do_constant_folding=False))
    assert [type(m).__name__ for m in loaded] == layers
    assert_round_trip(loaded, model, x)


def test_dynamo_exporter(tmp_path):
    """torch 2.13's default exporter: BatchNorm folded into the Conv, nn.Flatten and
    nn.Unflatten constant Reshapes, larger weights in an external data file. (It
    writes nn.Softplus as Softplus, Greater and Where: a branch, refused.)"""
    pytest.importorskip("onnxscript")
    conv = seeded(lambda: nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(18, 8), nn.Unflatten(1, (2, 2, 2)), nn.AvgPool2d(2), nn.Flatten(),
        nn.Linear(2, 3)))()
    mlp_ = seeded(lambda: nn.Sequential(
        nn.Linear(6, 5), nn.LeakyReLU(0.3), nn.Linear(5, 5), nn.ELU(), nn.Linear(5, 4),
        nn.Tanh(), nn.Linear(4, 4), nn.Sigmoid(), nn.Linear(4, 2)).double())()
    gen = torch.Generator().manual_seed(3)
    for i, (model, x) in enumerate([(conv, torch.randn(4, 1, 8, 8, generator=gen)),
                                    (mlp_, torch.randn(4, 6, dtype=torch.float64,
                                                       generator=gen))]):
        path = tmp_path / f"dynamo{i}.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (x,), path, dynamo=True, verbose=False)
        assert_round_trip(load_model(path), model, x)
    assert (tmp_path / "dynamo0.onnx.data").stat().st_size > 0  # the 18 x 8 weight, apart


# -- hand-built graphs with known answers ------------------------------------------------

def graph_model(nodes, inits, in_shape, *, elem=TensorProto.FLOAT, opset=17, inputs=1,
                out_shape=None):
    """A ModelProto of ``helper`` nodes: inputs x (x2, ...), output y (its shape inferred
    unless given)."""
    names = ["x", *(f"x{i}" for i in range(2, inputs + 1))]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(n, elem, in_shape) for n in names],
        [helper.make_tensor_value_info("y", elem, out_shape)],
        [numpy_helper.from_array(a, name) for name, a in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model if out_shape else onnx.shape_inference.infer_shapes(model)


def graph_file(path, nodes, inits, in_shape, **kwargs):
    onnx.save(graph_model(nodes, inits, in_shape, **kwargs), path)
    return path


def run(loaded, x):
    with torch.no_grad():
        return loaded(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("trans_b", [0, 1])
def test_gemm_known_answer(tmp_path, trans_b):
    """Y = alpha A B' + beta C, B' = B or B^T; C of shape (out,) and (1, out)."""
    gen = np.random.default_rng(trans_b)
    w1, w2 = gen.normal(size=(3, 5)).astype(np.float32), gen.normal(size=(5, 2)).astype(
        np.float32)
    c1, c2 = gen.normal(size=5).astype(np.float32), gen.normal(size=(1, 2)).astype(np.float32)
    b1, b2 = (w1.T, w2.T) if trans_b else (w1, w2)
    nodes = [helper.make_node("Gemm", ["x", "B1", "C1"], ["h"], "g1", alpha=0.5, beta=2.0,
                              transB=trans_b),
             helper.make_node("Relu", ["h"], ["r"], "relu"),
             helper.make_node("Gemm", ["r", "B2", "C2"], ["y"], "g2", transB=trans_b)]
    path = graph_file(tmp_path / "gemm.onnx", nodes, {"B1": b1, "C1": c1, "B2": b2,
                                                      "C2": c2}, ["n", 3])
    x = gen.normal(size=(6, 3)).astype(np.float32)
    want = np.maximum(0.5 * x @ w1 + 2.0 * c1, 0) @ w2 + c2
    np.testing.assert_allclose(run(load_model(path), x), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bias_first", [False, True])
def test_matmul_add_known_answer(tmp_path, bias_first):
    """MatMul then Add of a constant is one Linear; a MatMul alone has no bias."""
    gen = np.random.default_rng(0)
    w1, b1, w2 = gen.normal(size=(4, 3)), gen.normal(size=3), gen.normal(size=(3, 2))
    add_inputs = ["b1", "m"] if bias_first else ["m", "b1"]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["m"], "mm1"),
             helper.make_node("Add", add_inputs, ["h"], "add"),
             helper.make_node("Tanh", ["h"], ["t"], "tanh"),
             helper.make_node("MatMul", ["t", "w2"], ["y"], "mm2")]
    path = graph_file(tmp_path / "mm.onnx", nodes, {"w1": w1, "b1": b1, "w2": w2}, [2, 4],
                      elem=TensorProto.DOUBLE)
    loaded = load_model(path)
    assert [type(m) for m in loaded] == [nn.Linear, nn.Tanh, nn.Linear]
    assert loaded[2].bias is None
    assert loaded[0].weight.dtype == torch.float64
    x = gen.normal(size=(2, 4))
    np.testing.assert_allclose(run(loaded, x), np.tanh(x @ w1 + b1) @ w2, rtol=1e-12)


def test_reshape_known_answer(tmp_path):
    """Reshape to an image ([-1, 2, 2, 2]: Unflatten) and back ([0, -1]: Flatten)."""
    gen = np.random.default_rng(0)
    w1, k, w2 = (gen.normal(size=s).astype(np.float32) for s in [(6, 8), (1, 2, 1, 1), (4, 2)])
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], "mm1"),
             helper.make_node("Reshape", ["h", "image"], ["i"], "to_image"),
             helper.make_node("Conv", ["i", "k"], ["c"], "conv"),
             helper.make_node("Reshape", ["c", "flat"], ["f"], "to_flat"),
             helper.make_node("MatMul", ["f", "w2"], ["y"], "mm2")]
    inits = {"w1": w1, "k": k, "w2": w2, "image": np.array([-1, 2, 2, 2]),
             "flat": np.array([0, -1])}
    loaded = load_model(graph_file(tmp_path / "r.onnx", nodes, inits, ["n", 6]))
    assert [type(m) for m in loaded] == [nn.Linear, nn.Unflatten, nn.Conv2d, nn.Flatten,
                                         nn.Linear]
    x = gen.normal(size=(3, 6)).astype(np.float32)
    image = (x @ w1).reshape(3, 2, 2, 2)
    want = np.einsum("c,nchw->nhw", k[0, :, 0, 0], image).reshape(3, 4) @ w2
    np.testing.assert_allclose(run(loaded, x), want, rtol=1e-5, atol=1e-5)


# -- the onnxruntime cross-check catches a converter that errs ---------------------------

def _planted_weight(b, step, chain):
    """One weight off by 1e-5 (float64) or 1e-3 (float32), just above the tolerances."""
    used = onnx_io._gemm(b, step, chain)
    with torch.no_grad():
        weight = b.layers[-1].weight
        weight[0, 0] += 1e-5 if weight.dtype == torch.float64 else 1e-3
    return used


def _planted_slope(b, step, chain):
    b.add(step, nn.LeakyReLU(0.01))  # the ONNX default, not the node's alpha
    return 1


# onnxruntime runs the ReLU MLP in float64 and the LeakyReLU one (no float64
# LeakyRelu kernel) as a float32 copy: both paths of the cross-check are tested.
@pytest.mark.parametrize(("op", "plant", "activation"), [
    ("Gemm", _planted_weight, nn.ReLU()), ("LeakyRelu", _planted_slope, nn.LeakyReLU(0.2))])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_cross_check_catches_a_wrong_conversion(tmp_path, monkeypatch, op, plant, activation,
                                                dtype):
    path = export(mlp(activation, dtype), torch.zeros(2, 2, 3, dtype=dtype), tmp_path / "m.onnx")
    load_model(path)  # the true converter passes
    monkeypatch.setitem(onnx_io._CONVERTERS, op, plant)
    in_dtype = "float32" if op == "LeakyRelu" else str(dtype)[6:]
    with pytest.raises(InvalidArgumentError, match=r"disagrees with onnxruntime .* max "
                       rf"\|difference\| = [0-9.e-]+ > .* in {in_dtype};"):
        load_model(path)


# -- refusals ----------------------------------------------------------------------------

def _node(op, inputs, output="y", name=None, **attrs):
    return helper.make_node(op, inputs, [output], name or op.lower(), **attrs)


_W = {"W": np.ones((2, 3), np.float32)}
_K = {"K": np.ones((1, 1, 3, 3), np.float32)}
_IMAGE = [1, 1, 6, 6]
REFUSED = [
    pytest.param([_node("Gemm", ["x", "W"], "h", transB=1), _node("Softmax", ["h"])], _W,
                 [1, 3], r"node 'softmax' \(op Softmax\) is not supported; supported ops: Gemm",
                 id="Softmax"),
    pytest.param([_node("Relu", ["x"], "r"), _node("Add", ["r", "x"], name="residual")], {},
                 [1, 3], r"'x' feeds more than one node.*'residual' \(op Add\)",
                 id="residual Add"),
    pytest.param([_node("Relu", ["x"], "r"), _node("Add", ["r", "r"], name="twice")], {},
                 [1, 3], r"node 'twice' \(op Add\) combines several tensors", id="Add(r, r)"),
    pytest.param([_node("Relu", ["x"], "r"), _node("Add", ["r", "W"], name="bias")], _W,
                 [1, 3], r"node 'bias' \(op Add\) is supported only right after a MatMul",
                 id="Add after Relu"),
    pytest.param([_node("Gemm", ["W", "x"], transA=1, name="ta")], _W, [2, 1],
                 r"node 'ta' \(op Gemm\): transA=1 is not supported", id="Gemm transA"),
    pytest.param([_node("Conv", ["x", "K"], pads=[1, 1, 0, 0])], _K, _IMAGE,
                 r"node 'conv' \(op Conv\): asymmetric pads=\[1, 1, 0, 0\]", id="Conv pads"),
    pytest.param([_node("Conv", ["x", "K"], auto_pad="SAME_UPPER")], _K, _IMAGE,
                 r"node 'conv' \(op Conv\): auto_pad=SAME_UPPER", id="Conv auto_pad"),
    pytest.param([_node("MaxPool", ["x"], kernel_shape=[2, 2], ceil_mode=1)], {}, _IMAGE,
                 r"node 'maxpool' \(op MaxPool\): ceil_mode=1", id="MaxPool ceil_mode"),
    pytest.param([_node("AveragePool", ["x"], kernel_shape=[2, 2], dilations=[2, 2])], {},
                 _IMAGE, r"\(op AveragePool\): dilations=\[2, 2\]", id="AveragePool dilations"),
    pytest.param([_node("Flatten", ["x"], axis=2)], {}, _IMAGE,
                 r"\(op Flatten\): axis=2 \(only 1", id="Flatten axis"),
    pytest.param([_node("Reshape", ["x", "S"])], {"S": np.array([-1])}, [2, 3],
                 r"\(op Reshape\): the shape \[-1\] for an input of shape \(2, 3\)",
                 id="Reshape merging the batch"),
    pytest.param([_node("Shape", ["x"], "s"), _node("Reshape", ["x", "s"])], {}, [2, 3],
                 r"node 'shape' \(op Shape\) is not supported", id="computed shape"),
    pytest.param([_node("Relu", ["x"])], {}, [3], r"must declare a shape \(batch, \.\.\.\)",
                 id="no batch dimension"),
    pytest.param([_node("Relu", ["x"])], {}, ["n", "m"], r"fixed sizes after the batch",
                 id="symbolic features"),
    pytest.param([_node("Add", ["x", "x2"])], {}, [1, 3], r"one input and one output",
                 id="two inputs"),
    pytest.param([_node("Gemm", ["x", "W"], transB=1, alpha=float("nan"))], _W, [1, 3],
                 r"\(op Gemm\): attribute alpha=nan is not finite", id="NaN alpha"),
]


@pytest.mark.parametrize(("nodes", "inits", "shape", "match"), REFUSED)
def test_refused_graph_names_the_node_and_op(tmp_path, nodes, inits, shape, match):
    inputs = 2 if any("x2" in n.input for n in nodes) else 1
    path = graph_file(tmp_path / "g.onnx", nodes, inits, shape, opset=19, inputs=inputs)
    with pytest.raises(InvalidArgumentError, match=match):
        load_model(path)


def _valid_file(tmp_path):
    return export(mlp(nn.ReLU(), torch.float32), torch.zeros(1, 2, 3), tmp_path / "ok.onnx")


_NOT_ONNX = "could not read .* as an ONNX model: it is empty, truncated or not an ONNX file"
_NO_FILE = "'path_or_state_dict' parameter of load_model must be an existing model file"
BROKEN = {
    "empty": (lambda p: p.write_bytes(b""), "is empty: it holds no ONNX model"),
    "truncated": (lambda p: p.write_bytes(_valid_file(p.parent).read_bytes()[:300]), _NOT_ONNX),
    "random bytes": (lambda p: p.write_bytes(np.random.default_rng(0).bytes(2000)), _NOT_ONNX),
    "text": (lambda p: p.write_text("not a model\n"), _NOT_ONNX),
    "a directory": (lambda p: p.mkdir(), _NO_FILE),
    "missing": (lambda p: None, _NO_FILE),
    # caught by onnx.checker's shape inference
    "Gemm weight of the wrong size": (lambda p: graph_file(
        p, [_node("Gemm", ["x", "W"], transB=1)], {"W": np.ones((2, 4), np.float32)}, [1, 3],
        out_shape=[1, 2]), r"is not a valid ONNX model \(InferenceError"),
    # not caught by it: by the converter's probe
    "Conv weight of the wrong size": (lambda p: graph_file(
        p, [_node("Conv", ["x", "K"])], {"K": np.ones((1, 2, 3, 3), np.float32)}, _IMAGE,
        out_shape=[1, 1, 4, 4]), r"node 'conv' \(op Conv\) does not fit the tensor it "
        r"receives, of shape \(1, 1, 6, 6\)"),
}


@pytest.mark.parametrize(("make", "match"), BROKEN.values(), ids=BROKEN.keys())
def test_broken_file_gives_one_clear_error(tmp_path, make, match):
    path = tmp_path / "broken.onnx"
    make(path)
    with pytest.raises(InvalidArgumentError, match=match) as info:
        load_model(path)
    assert info.value.__cause__ is None  # no traceback from onnx internals
    assert info.value.__context__ is None or info.value.__suppress_context__


@pytest.mark.parametrize("location", ["../outside.bin", "/etc/hostname", "absent.bin"])
def test_external_data_outside_the_model_folder_refused(tmp_path, location):
    """A weight "kept in a file beside the model" may name no file elsewhere."""
    (tmp_path / "outside.bin").write_bytes(b"\0" * 24)
    model = graph_model([_node("Gemm", ["x", "W"], transB=1)], _W, [1, 3])
    weight = model.graph.initializer[0]
    onnx.external_data_helper.set_external_data(weight, location=location)
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    (tmp_path / "model").mkdir()
    onnx.save(model, tmp_path / "model" / "m.onnx")
    with pytest.raises(InvalidArgumentError, match="not a file in the model's folder"):
        load_model(tmp_path / "model" / "m.onnx")


@pytest.mark.parametrize("elem", [TensorProto.FLOAT16, TensorProto.FLOAT],
                         ids=["float16 graph", "float16 weight in a float32 graph"])
def test_float16_refused(tmp_path, elem):
    nodes = [_node("Gemm", ["x", "W"], "h", transB=1), _node("Relu", ["h"], "r"),
             _node("Gemm", ["r", "W2"], transB=1)]
    inits = {"W": np.ones((2, 3), np.float16), "W2": np.ones((2, 2), np.float16)}
    if elem == TensorProto.FLOAT:
        inits["W2"] = inits["W2"].astype(np.float32)
    path = graph_file(tmp_path / "half.onnx", nodes, inits, [1, 3], elem=elem,
                      out_shape=[1, 2])
    with pytest.raises(InvalidArgumentError, match=r"float32 or float64.*dtype float16"):
        load_model(path)


@pytest.mark.parametrize("model", [mlp(nn.ReLU(), torch.float32), conv_net(torch.float32)],
                         ids=["MLP", "conv net"])
def test_nan_weight_refused(tmp_path, model):
    first = next(m for m in model if isinstance(m, nn.Linear | nn.Conv2d))
    with torch.no_grad():
        first.weight.view(-1)[0] = float("nan")
    x = torch.zeros(1, 2, 3) if isinstance(first, nn.Linear) else torch.zeros(1, 1, 8, 8)
    with pytest.raises(InvalidArgumentError, match="NaN or infinite"):
        load_model(export(model, x, tmp_path / "nan.onnx"))


def test_mlp_gets_the_checks_of_torch_files(tmp_path):
    """An MLP is read by read_mlp, as a torch file is: one Linear is no prunable MLP."""
    nodes = [_node("Gemm", ["x", "W"], transB=1)]
    path = graph_file(tmp_path / "one.onnx", nodes, _W, [1, 3])
    with pytest.raises(InvalidArgumentError, match="at least two Linear layers"):
        load_model(path)


def test_suffix_any_case_and_no_architecture(tmp_path):
    model = mlp(nn.ReLU(), torch.float32)
    path = export(model, torch.zeros(1, 2, 3), tmp_path / "NET.ONNX")
    x = torch.randn(3, 2, 3, generator=torch.Generator().manual_seed(0))
    assert_round_trip(load_model(str(path)), model, x)
    with pytest.raises(InvalidArgumentError, match=r"'architecture' .* None for an ONNX file"):
        load_model(path, architecture=[6, 5, 4, 3])


def test_missing_onnx_says_how_to_install(tmp_path, monkeypatch):
    path = _valid_file(tmp_path)
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(MissingDependencyError, match=r"coreset-verify\[onnx\]"):
        load_model(Path(path))
