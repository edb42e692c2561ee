"""load_model / save_model (no code from files), to_masks, and bad arguments."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from coreset_verify.errors import InvalidArgumentError, MagnitudeError
from coreset_verify.models import mlp
from coreset_verify.network import (
    load_model,
    prune_network,
    save_model,
    select_neurons,
    to_masks,
)

torch = pytest.importorskip("torch")
from torch.nn.utils import prune as tprune  # noqa: E402


class _RunsCode:
    """Unpickling this calls os.system: what a malicious checkpoint does."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_load_refuses_a_file_that_would_run_code(tmp_path, writer):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pt"
    payload = {"0.weight": torch.zeros(2, 2), "evil": _RunsCode(marker)}
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        with open(path, "wb") as fh:
            pickle.dump(payload, fh, protocol=2)
    with pytest.raises(InvalidArgumentError, match="refused"):
        load_model(path, architecture=[2, 2])
    assert not marker.exists()


def test_load_refuses_unsupported_torch_classes(tmp_path):
    path = tmp_path / "conv.pt"
    torch.save(torch.nn.Sequential(torch.nn.Conv1d(1, 1, 1)), path)
    with pytest.raises(InvalidArgumentError, match="refused"):
        load_model(path)


def test_save_load_round_trip_of_every_supported_layer(tmp_path, make_net):
    net = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Dropout(0.1),
        torch.nn.Linear(5, 5), torch.nn.LeakyReLU(0.3), torch.nn.Linear(5, 5),
        torch.nn.Sigmoid(), torch.nn.Linear(5, 5), torch.nn.Tanh(), torch.nn.Linear(5, 5),
        torch.nn.Softplus(), torch.nn.Linear(5, 5), torch.nn.ELU(), torch.nn.Linear(5, 2),
    ).eval()
    path = tmp_path / "net.pt"
    save_model(net, path)
    back = load_model(path)
    assert [type(m) for m in back] == [type(m) for m in net]
    assert back[5].negative_slope == 0.3
    x = torch.randn(7, 2, 3)
    torch.testing.assert_close(back(x), net(x), rtol=0, atol=0)


def test_state_dict_round_trip(tmp_path):
    net = mlp([4, 6, 3], activation="tanh", seed=1).eval()
    x = torch.randn(5, 4)
    arch = {"sizes": [4, 6, 3], "activation": "tanh"}
    torch.testing.assert_close(load_model(net.state_dict(), architecture=arch)(x), net(x),
                               rtol=0, atol=0)
    path = tmp_path / "state.pt"
    torch.save(net.state_dict(), path)
    torch.testing.assert_close(load_model(path, architecture=arch)(x), net(x), rtol=0, atol=0)


@pytest.mark.parametrize("order", ["bottom-up", "top-down"])
def test_masks_compute_the_same_function(make_net, ball_inputs, order):
    net = make_net([5, 20, 12, 3])
    before = [q.clone() for q in net.parameters()]
    p = prune_network(net, keep=0.4, beta=1.0, rng=2, order=order)
    masked = to_masks(p, net)
    assert tprune.is_pruned(masked)
    assert not tprune.is_pruned(net)
    for q, q0 in zip(net.parameters(), before, strict=True):
        torch.testing.assert_close(q, q0, rtol=0, atol=0)  # the original is untouched
    x = ball_inputs(net, 1.0, 100, 0)
    with torch.no_grad():
        np.testing.assert_allclose(masked(x).numpy(), p.model(x).numpy(), rtol=1e-6,
                                   atol=1e-12)
    nonzero = sum(int(torch.count_nonzero(getattr(m, name)))
                  for m in masked if isinstance(m, torch.nn.Linear)
                  for name in ("weight", "bias"))
    assert nonzero == p.params_after


def _net():
    return mlp([4, 6, 3], seed=0)


def _bad_layer(module):
    return torch.nn.Sequential(torch.nn.Linear(4, 6), module, torch.nn.Linear(6, 3))


BAD = [
    pytest.param(prune_network, {"model": _net(), "beta": 1.0}, "exactly one of keep",
                 id="prune_network(neither keep nor epsilon)"),
    pytest.param(prune_network, {"model": _net(), "beta": 1.0, "keep": 0.5, "epsilon": 0.1},
                 "exactly one of keep", id="prune_network(keep and epsilon)"),
    pytest.param(prune_network, {"model": _net(), "beta": 1.0, "keep": 0.0}, "'keep'",
                 id="prune_network(keep=0)"),
    pytest.param(prune_network, {"model": _net(), "beta": 1.0, "keep": 1.5}, "'keep'",
                 id="prune_network(keep=1.5)"),
    pytest.param(prune_network, {"model": _net(), "beta": 1.0, "keep": True}, "'keep'",
                 id="prune_network(keep=True)"),
    pytest.param(prune_network, {"model": _net(), "beta": 1.0, "keep": {"neurons": 0.1}},
                 "'keep'", id="prune_network(keep={'neurons'})"),
    pytest.param(prune_network, {"model": _net(), "beta": 1.0, "keep": {"params": 2}},
                 "'keep'", id="prune_network(keep={'params': 2})"),
    pytest.param(prune_network, {"model": _net(), "beta": 1.0, "epsilon": 1.0}, "'epsilon'",
                 id="prune_network(epsilon=1)"),
    pytest.param(prune_network, {"model": _net(), "beta": 0.0, "keep": 0.5}, "'beta'",
                 id="prune_network(beta=0)"),
    pytest.param(prune_network, {"model": _net(), "beta": -1.0, "keep": 0.5}, "'beta'",
                 id="prune_network(beta=-1)"),
    pytest.param(prune_network, {"model": _net(), "beta": 1.0, "keep": 0.5, "delta": 1.0},
                 "'delta'", id="prune_network(delta=1)"),
    pytest.param(prune_network, {"model": _net(), "beta": 1.0, "keep": 0.5, "order": "up"},
                 "'order'", id="prune_network(order='up')"),
    pytest.param(prune_network, {"model": _net(), "beta": 1.0, "keep": 0.5, "kind": "x"},
                 "'kind'", id="prune_network(kind='x')"),
    pytest.param(prune_network, {"model": _net(), "beta": 1.0, "keep": 0.5, "rng": -1},
                 "'rng'", id="prune_network(rng=-1)"),
    pytest.param(prune_network, {"model": torch.nn.Linear(4, 3), "beta": 1.0, "keep": 0.5},
                 "torch.nn.Sequential", id="prune_network(model=Linear)"),
    pytest.param(prune_network, {"model": _bad_layer(torch.nn.GELU()), "beta": 1.0,
                                 "keep": 0.5}, r"model\[1\].*GELU",
                 id="prune_network(GELU)"),
    pytest.param(prune_network, {"model": _bad_layer(torch.nn.SiLU()), "beta": 1.0,
                                 "keep": 0.5}, r"model\[1\].*SiLU",
                 id="prune_network(SiLU)"),
    pytest.param(prune_network, {"model": _bad_layer(torch.nn.LeakyReLU(-0.1)), "beta": 1.0,
                                 "keep": 0.5}, "negative_slope >= 0",
                 id="prune_network(LeakyReLU(-0.1))"),
    pytest.param(prune_network, {"model": _bad_layer(torch.nn.ELU(alpha=-1.0)), "beta": 1.0,
                                 "keep": 0.5}, r"model\[1\].*non-decreasing",
                 id="prune_network(ELU(-1))"),
    pytest.param(prune_network, {"model": _bad_layer(torch.nn.Softplus(beta=0.0)),
                                 "beta": 1.0, "keep": 0.5}, r"model\[1\].*beta.*> 0",
                 id="prune_network(Softplus(beta=0))"),
    pytest.param(prune_network, {"model": _bad_layer(torch.nn.ELU(alpha=float("nan"))),
                                 "beta": 1.0, "keep": 0.5}, r"model\[1\].*alpha",
                 id="prune_network(ELU(nan))"),
    pytest.param(prune_network, {"model": _bad_layer(torch.nn.Softplus(threshold=float("nan"))),
                                 "beta": 1.0, "keep": 0.5}, r"model\[1\].*threshold",
                 id="prune_network(Softplus(threshold=nan))"),
    pytest.param(prune_network, {"model": _net().half(), "beta": 1.0, "keep": 0.5},
                 r"model\[0\].weight.*float16", id="prune_network(half)"),
    pytest.param(prune_network, {"model": _net().to(torch.bfloat16), "beta": 1.0,
                                 "keep": 0.5}, "bfloat16", id="prune_network(bfloat16)"),
    pytest.param(select_neurons, {"model": _net().half(), "kept": [None]}, "float16",
                 id="select_neurons(half)"),
    pytest.param(save_model, {"model": _net().half(), "path": "unused.pt"}, "float16",
                 id="save_model(half)"),
    pytest.param(prune_network, {"model": torch.nn.Sequential(torch.nn.Linear(4, 6),
                                                              torch.nn.Linear(6, 3)),
                                 "beta": 1.0, "keep": 0.5}, "preceded by an activation",
                 id="prune_network(two Linears in a row)"),
    pytest.param(prune_network, {"model": torch.nn.Sequential(*_net(), torch.nn.ReLU()),
                                 "beta": 1.0, "keep": 0.5}, "ending with a Linear",
                 id="prune_network(final activation)"),
    pytest.param(prune_network, {"model": torch.nn.Sequential(torch.nn.Linear(4, 3)),
                                 "beta": 1.0, "keep": 0.5}, "at least two Linear",
                 id="prune_network(one Linear)"),
    pytest.param(load_model, {"path_or_state_dict": _net().state_dict()}, "'architecture'",
                 id="load_model(state_dict, no architecture)"),
    pytest.param(load_model, {"path_or_state_dict": _net().state_dict(),
                              "architecture": [4, 5, 3]}, "does not fit",
                 id="load_model(wrong architecture)"),
    pytest.param(load_model, {"path_or_state_dict": _net().state_dict(),
                              "architecture": "784-300"}, "'architecture'",
                 id="load_model(architecture=str)"),
    pytest.param(load_model, {"path_or_state_dict": 3}, "'path_or_state_dict'",
                 id="load_model(3)"),
    pytest.param(select_neurons, {"model": _net(), "kept": []}, "'kept'",
                 id="select_neurons(kept=[])"),
    pytest.param(select_neurons, {"model": _net(), "kept": [np.array([6])]}, r"'kept\[0\]'",
                 id="select_neurons(index out of range)"),
    pytest.param(select_neurons, {"model": _net(), "kept": [np.array([-1])]}, r"'kept\[0\]'",
                 id="select_neurons(negative index)"),
    pytest.param(select_neurons, {"model": _net(), "kept": [[1, 1, 2]]},
                 r"'kept\[0\]'.*index 1 repeated", id="select_neurons(repeated index)"),
    pytest.param(select_neurons, {"model": _net(), "kept": [[0.0, 1.5]]}, r"'kept\[0\]'",
                 id="select_neurons(float indices)"),
    pytest.param(select_neurons, {"model": _net(), "kept": [np.array([0.0, 2.0])]},
                 r"'kept\[0\]'", id="select_neurons(integral floats)"),
    pytest.param(select_neurons, {"model": _net(), "kept": [[True, False]]}, r"'kept\[0\]'",
                 id="select_neurons(bools)"),
    pytest.param(select_neurons, {"model": _net(), "kept": [np.array([], dtype=int)]},
                 r"'kept\[0\]'", id="select_neurons(empty)"),
    pytest.param(select_neurons, {"model": _net(), "kept": [[0, 1]], "scale": [[1.0]]},
                 r"'scale\[0\]'", id="select_neurons(scale wrong shape)"),
    pytest.param(select_neurons, {"model": _net(), "kept": [[0, 1]],
                                  "scale": [[1.0, np.nan]]}, r"'scale\[0\]'",
                 id="select_neurons(scale nan)"),
    pytest.param(select_neurons, {"model": _net(), "kept": [[0, 1]], "scale": 2.0},
                 "'scale'.*sequence", id="select_neurons(scale=2.0)"),
    pytest.param(to_masks, {"pruned": None, "original": _net()}, "'pruned'",
                 id="to_masks(pruned=None)"),
    pytest.param(save_model, {"model": torch.nn.Linear(2, 2), "path": "unused.pt"},
                 "torch.nn.Sequential", id="save_model(Linear)"),
]


@pytest.mark.parametrize(("function", "kwargs", "match"), BAD)
def test_bad_arguments_raise_invalid_argument_error(function, kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        function(**kwargs)


def test_select_neurons_refuses_a_scale_past_the_dtype():
    """Next weights of 4 times 1e308 are 4e308 > 1.8e308 (float64), times 1e38 4e38 >
    3.4e38 (float32 only): refused, not turned into inf."""
    net = _net().double()
    with torch.no_grad():
        net[2].weight.fill_(4.0)
    with pytest.raises(MagnitudeError, match=r"scale\[0\].*float64"):
        select_neurons(net, [[0, 1]], scale=[1e308])
    assert float(select_neurons(net, [[0, 1]], scale=[1e38])[2].weight.detach().max()) == 4e38
    with pytest.raises(MagnitudeError, match=r"scale\[0\].*float32"):
        select_neurons(net.float(), [[0, 1]], scale=[1e38])


def test_to_masks_rejects_another_model():
    p = prune_network(_net(), keep=0.5, beta=1.0, rng=0)
    with pytest.raises(InvalidArgumentError, match="'original'"):
        to_masks(p, mlp([4, 7, 3]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_replace_layer_pair_keeps_dtype_device_and_function(dtype):
    from coreset_verify import layer_coreset
    from coreset_verify.nets import layer_pair_forward
    from coreset_verify.network import layer_pair_of, replace_layer_pair

    net = mlp([4, 8, 6, 3], seed=1).to(dtype)
    (W_in, b_in, W_out), activation = layer_pair_of(net, 2)
    c = layer_coreset(W_in, b_in, W_out, distinct=3, beta=1.0, activation=activation, rng=0)
    new = replace_layer_pair(net, 2, c)
    assert new[2].weight.dtype == new[4].weight.dtype == dtype  # was always float32
    assert new[2].weight.device == net[2].weight.device
    assert new[2].weight.shape == (c.indices.size, 8)
    assert new[4].weight.shape == (3, 3)
    assert net[2].weight.shape == (6, 8)  # the original is not modified
    h = torch.relu(net[0](torch.randn(5, 4, dtype=dtype))).detach()
    with torch.no_grad():
        got = new[4](new[3](new[2](h))) - new[4].bias
    want = layer_pair_forward(*c.pruned(), h.double().numpy(), activation)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    np.testing.assert_allclose(got.double().numpy(), want, rtol=tol, atol=tol)


def test_replace_layer_pair_refuses_a_coreset_of_another_layer():
    from coreset_verify import layer_coreset
    from coreset_verify.network import layer_pair_of, replace_layer_pair

    net = mlp([4, 8, 6, 3], seed=1)
    (W_in, b_in, W_out), _ = layer_pair_of(net, 0)
    c = layer_coreset(W_in, b_in, W_out, distinct=3, beta=1.0, rng=0)
    with pytest.raises(InvalidArgumentError, match="'coreset'"):
        replace_layer_pair(net, 2, c)
    with pytest.raises(InvalidArgumentError, match="'coreset'"):
        replace_layer_pair(net, 0, "not a coreset")
    with pytest.raises(InvalidArgumentError, match="'position'"):
        replace_layer_pair(net, 4, c)


def test_layer_pair_of_is_named():
    from coreset_verify.network import layer_pair_of

    pair = layer_pair_of(mlp([4, 8, 3], seed=0), 0)
    assert pair.activation == "relu"
    assert pair.weights.W_in.shape == (8, 4)
    assert pair.weights.W_out.shape == (3, 8)


@pytest.mark.parametrize("kind", ["missing", "directory", "empty", "text", "sentence",
                                  "garbage", "truncated", "device"])
def test_load_model_refuses_unreadable_files_cleanly(tmp_path, kind):
    path = tmp_path / "model.pt"
    if kind == "directory":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("not a model\n")
    elif kind == "sentence":  # reaches torch's unpickler and raised IndexError there
        path.write_text("this is not a model\n")
    elif kind == "garbage":
        path.write_bytes(bytes(range(256)) * 4)
    elif kind == "device":
        path = Path(os.devnull)
    elif kind == "truncated":
        save_model(mlp([4, 5, 3]), path)
        path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(InvalidArgumentError, match="load_model") as info:
        load_model(path)
    assert str(path) in str(info.value)


def test_load_model_refuses_a_half_state_dict():
    state = mlp([4, 5, 3]).half().state_dict()
    with pytest.raises(InvalidArgumentError, match="float16"):
        load_model(state, architecture=[4, 5, 3])


def test_save_model_to_an_unwritable_path_is_a_clean_error(tmp_path):
    with pytest.raises(InvalidArgumentError, match="'path' parameter of save_model"):
        save_model(mlp([4, 5, 3]), tmp_path / "no such directory" / "model.pt")
    with pytest.raises(InvalidArgumentError, match="'path' parameter of save_model"):
        save_model(mlp([4, 5, 3]), tmp_path)


def test_save_load_round_trip_of_nested_identity_and_parameterised_layers(tmp_path):
    net = torch.nn.Sequential(
        torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Softplus(beta=2.0, threshold=5.0)),
        torch.nn.Identity(), torch.nn.Linear(5, 5), torch.nn.ELU(alpha=0.5),
        torch.nn.Linear(5, 2)).double().eval()
    path = tmp_path / "nested.pt"
    save_model(net, path)
    back = load_model(path)
    assert back[0][1].beta == 2.0
    assert back[3].alpha == 0.5
    x = torch.randn(3, 4, dtype=torch.float64)
    torch.testing.assert_close(back(x), net(x), rtol=0, atol=0)
    p = prune_network(back, keep=0.6, beta=1.0, rng=0)
    assert [la.position for la in p.layers] == [(0, 0), 2]


def test_records_are_validated_so_composed_bound_cannot_be_fooled():
    import dataclasses
    import math

    from coreset_verify.network import composed_bound

    net = mlp([2, 4, 3, 1], seed=0).double()
    p = prune_network(net, keep=0.5, beta=1.0, rng=0)
    with pytest.raises(InvalidArgumentError, match="'epsilon' parameter of PrunedLayer"):
        dataclasses.replace(p.layers[0], epsilon=math.nan)
    with pytest.raises(InvalidArgumentError, match="'scale' parameter of PrunedLayer"):
        dataclasses.replace(p.layers[0], scale=np.full_like(p.layers[0].scale, np.nan))
    with pytest.raises(InvalidArgumentError, match="'beta' parameter of PrunedNetwork"):
        dataclasses.replace(p, beta=-1.0)
    with pytest.raises(InvalidArgumentError, match="'layers' parameter of PrunedNetwork"):
        dataclasses.replace(p, layers=())
    big = dataclasses.replace(p, layers=(dataclasses.replace(p.layers[0], epsilon=math.inf),
                                         *p.layers[1:]))
    assert np.all(composed_bound(big) == np.inf)
    with pytest.raises(InvalidArgumentError, match="'inplace' parameter of to_masks"):
        to_masks(p, net, inplace="yes")


def test_save_model_path_must_be_a_path():
    with pytest.raises(InvalidArgumentError, match="'path' parameter of save_model"):
        save_model(mlp([4, 5, 3]), None)


def test_meta_models_are_refused_by_prune_network_and_save_model(tmp_path):
    meta = mlp([2, 3, 2]).to("meta")
    with pytest.raises(InvalidArgumentError, match="meta"):
        prune_network(meta, keep=0.5, beta=1.0)
    with pytest.raises(InvalidArgumentError, match="meta"):
        save_model(meta, tmp_path / "m.pt")
