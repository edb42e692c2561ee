"""Convolutional layers read as the maps they are (coreset_verify/nets/conv.py):
the dense reading must compute what torch computes, max-pooling included, on
every geometry drawn; what it cannot describe is refused with the layer's name.

The oracle is the torch module itself, run in float64 on random inputs.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coreset_verify.errors import InvalidArgumentError
from coreset_verify.nets import conv
from coreset_verify.nets.model import check_model, read_layers, read_mlp, read_model

torch = pytest.importorskip("torch")
nn = torch.nn


def run_layers(layers, x: np.ndarray) -> np.ndarray:
    for layer in layers:
        x = layer.numpy(x)
    return x


def assert_reads_as_torch(model, d: int, seed: int = 0) -> None:
    model = model.double().eval()
    x = np.random.default_rng(seed).standard_normal((64, d))
    with torch.no_grad():
        want = model(torch.as_tensor(x)).numpy()
    got = run_layers(read_layers(model, func="t", name="m"), x)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(c_in=st.integers(1, 3), c=st.integers(1, 4), h=st.integers(4, 8), w=st.integers(4, 8),
       k=st.integers(1, 3), stride=st.integers(1, 2), pad=st.integers(0, 1),
       dil=st.integers(1, 2), pool=st.sampled_from(["max", "avg", "none"]),
       pk=st.integers(1, 3), ps=st.integers(1, 2), bn=st.booleans(), seed=st.integers(0, 99))
def test_conv_pool_batchnorm_read_as_torch_computes(c_in, c, h, w, k, stride, pad, dil, pool,
                                                     pk, ps, bn, seed):
    if min(h, w) + 2 * pad < dil * (k - 1) + 1:
        return  # the kernel does not fit (refused: test_what_a_map_cannot_describe...)
    torch.manual_seed(seed)
    conv2d = nn.Conv2d(c_in, c, k, stride=stride, padding=pad, dilation=dil)
    layers = [nn.Unflatten(1, (c_in, h, w)), conv2d]
    if bn:
        norm = nn.BatchNorm2d(c).eval()  # the shape probe below runs it (1 x 1 outputs)
        with torch.no_grad():
            norm.running_mean.normal_()
            norm.running_var.uniform_(0.2, 3.0)
            norm.weight.normal_()
            norm.bias.normal_()
        layers.append(norm)
    layers.append(nn.ReLU())
    out = torch.zeros(1, c_in, h, w)
    with torch.no_grad():
        size = nn.Sequential(*layers[1:])(out).shape
    if min(size[2:]) < 1:
        return
    if pool != "none" and min(size[2:]) >= pk:
        layers.append(nn.MaxPool2d(pk, ps) if pool == "max" else nn.AvgPool2d(pk, ps))
    layers += [nn.Flatten()]
    with torch.no_grad():
        n_out = nn.Sequential(*layers[1:])(out).numel()
    layers.append(nn.Linear(n_out, 3))
    assert_reads_as_torch(nn.Sequential(*layers), c_in * h * w, seed)


def test_maxpool_of_odd_windows_and_negative_inputs_is_exact():
    """A 3 x 3 window (9 values, an odd count at every round) on inputs of
    both signs: the ReLU form is the maximum, not a relaxation of it."""
    model = nn.Sequential(nn.Unflatten(1, (2, 6, 6)), nn.MaxPool2d(3, 2), nn.Flatten(),
                          nn.Linear(8, 2))
    assert_reads_as_torch(model, 72)
    mats, shape = conv.maxpool_layers(nn.MaxPool2d(3, 2), (2, 6, 6), func="t", where="m")
    assert shape == (2, 2, 2)
    assert len(mats) == 5  # ceil(log2 9) = 4 ReLU rounds, then the output map


def test_two_convolutions_and_the_relu_layers_of_max_pooling():
    model = nn.Sequential(nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 3, 3), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Conv2d(3, 2, 2), nn.ReLU(), nn.Flatten(),
                          nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2))
    assert_reads_as_torch(model, 64)
    kinds = [op.kind for op in read_model(model.double(), func="t")]
    assert kinds.count("MaxPool2d") == 3 + 2  # two ReLU rounds, three maps
    assert kinds[:2] == ["Conv2d", "activation"]


def test_batchnorm_after_an_activation_is_a_diagonal_map():
    torch.manual_seed(3)
    norm = nn.BatchNorm2d(2)
    with torch.no_grad():
        norm.running_var.uniform_(0.5, 2.0)
        norm.running_mean.normal_()
    model = nn.Sequential(nn.Unflatten(1, (2, 3, 3)), nn.Conv2d(2, 2, 1), nn.ReLU(), norm,
                          nn.Flatten(), nn.Linear(18, 2))
    assert_reads_as_torch(model, 18)


def _refused(model, match: str) -> None:
    with pytest.raises(InvalidArgumentError, match=match):
        read_layers(model.double().eval(), func="t", name="m")


@pytest.mark.parametrize(("layers", "match"), [
    pytest.param([nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect")], "padding_mode",
                 id="reflect-padding"),
    pytest.param([nn.MaxPool2d(2, ceil_mode=True)], "ceil_mode", id="ceil-mode"),
    pytest.param([nn.MaxPool2d(3, 1, padding=1)], "padding or dilation", id="maxpool-padding"),
    pytest.param([nn.AvgPool2d(2, divisor_override=3)], "divisor_override", id="divisor"),
    pytest.param([nn.MaxPool2d(9)], "larger than the input", id="window-too-large"),
    pytest.param([nn.BatchNorm2d(3)], "channels", id="batchnorm-channels"),
    pytest.param([nn.Conv2d(1, 2, 7)], "Kernel size can't be greater", id="kernel-too-large"),
    pytest.param([nn.Conv2d(3, 2, 2)], "channels", id="conv-channels"),
])
def test_what_a_map_cannot_describe_is_refused_by_name(layers, match):
    _refused(nn.Sequential(nn.Unflatten(1, (1, 6, 6)), *layers, nn.Flatten(),
                           nn.Linear(4, 2)), match)


def test_a_conv_without_the_input_shape_is_refused():
    _refused(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 2)), "Unflatten")


def test_a_linear_on_images_is_refused():
    _refused(nn.Sequential(nn.Unflatten(1, (1, 4, 4)), nn.Conv2d(1, 2, 3), nn.Linear(2, 2)),
             "Flatten")


def test_batchnorm_in_training_mode_is_refused():
    model = nn.Sequential(nn.Unflatten(1, (1, 4, 4)), nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2),
                          nn.Flatten(), nn.Linear(8, 2)).double().train()
    with pytest.raises(InvalidArgumentError, match="training mode"):
        read_layers(model, func="t", name="m")


def test_a_map_too_large_to_be_dense_is_refused(monkeypatch):
    monkeypatch.setattr(conv, "MAX_DENSE_ENTRIES", 100)
    _refused(nn.Sequential(nn.Unflatten(1, (1, 6, 6)), nn.Conv2d(1, 2, 3), nn.Flatten(),
                           nn.Linear(32, 2)), "MAX_DENSE_ENTRIES")


def test_nan_conv_weights_are_refused_by_name():
    model = nn.Sequential(nn.Unflatten(1, (1, 4, 4)), nn.Conv2d(1, 2, 3), nn.Flatten(),
                          nn.Linear(8, 2)).double()
    with torch.no_grad():
        model[1].weight[0, 0, 0, 0] = float("nan")
    _refused(model, r"m\[1\]\.weight")


def test_the_mlp_reader_refuses_conv_models_and_check_model_accepts_them():
    model = nn.Sequential(nn.Unflatten(1, (1, 4, 4)), nn.Conv2d(1, 2, 3), nn.ReLU(),
                          nn.Flatten(), nn.Linear(8, 2)).double()
    with pytest.raises(InvalidArgumentError, match="channel by channel"):
        read_mlp(model, func="t")
    check_model(model, func="t")
    image_input = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2))
    check_model(image_input.double(), func="t")  # loading needs no input shape
    with pytest.raises(InvalidArgumentError, match="float16"):
        check_model(image_input.half(), func="t")
