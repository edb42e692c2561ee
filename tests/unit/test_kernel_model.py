"""The one model reader (coreset_verify.nets.model), through every function that reads models."""

from __future__ import annotations

import numpy as np
import pytest

from coreset_verify.activations import elu, leaky_relu, softplus
from coreset_verify.errors import InvalidArgumentError
from coreset_verify.nets.model import ActivationOp, LinearOp, read_layers, read_mlp, read_model

torch = pytest.importorskip("torch")
nn = torch.nn


def _mlp(act=None, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 6), act or nn.ReLU(), nn.Linear(6, 3)).to(dtype)


def _nested():
    torch.manual_seed(1)
    return nn.Sequential(nn.Flatten(), nn.Sequential(nn.Linear(4, 6), nn.LeakyReLU(0.2)),
                         nn.Dropout(0.1), nn.Identity(),
                         nn.Sequential(nn.Linear(6, 5), nn.Sequential(nn.ELU(0.5))),
                         nn.Linear(5, 3)).double().eval()


def test_nested_sequential_is_flattened_with_paths_and_names():
    ops = read_model(_nested(), func="f")
    assert [type(op) for op in ops] == [LinearOp, ActivationOp, LinearOp, ActivationOp,
                                        LinearOp]
    assert [op.path for op in ops] == [(1, 0), (1, 1), (4, 0), (4, 1, 0), (5,)]
    assert ops[3].name == "model[4][1][0]"
    assert ops[1].activation == leaky_relu(0.2)
    assert ops[3].activation == elu(0.5)
    assert ops[0].weight.dtype == np.float64


def test_read_layers_and_read_mlp_agree_on_the_nested_model():
    net = _nested()
    layers = read_layers(net, func="f", name="model")
    mlp = read_mlp(net, func="f")
    assert len(layers) == 3
    assert len(mlp.linears) == 3
    for layer, op in zip(layers, mlp.linears, strict=True):
        np.testing.assert_array_equal(layer.weight, op.weight)
    x = np.random.default_rng(0).standard_normal((7, 4))
    h = x
    for layer in layers:
        h = layer.numpy(h)
    with torch.no_grad():
        np.testing.assert_allclose(h, net(torch.as_tensor(x)).numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.filterwarnings("ignore:Complex modules")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.complex64])
def test_unsupported_parameter_dtypes_are_refused_everywhere(dtype):
    from coreset_verify.network import (
        layer_pair_of,
        linear_layers,
        prune_network,
        save_model,
        select_neurons,
    )

    net = _mlp(dtype=dtype)
    calls = {
        "prune_network": lambda: prune_network(net, keep=0.5, beta=1.0, rng=0),
        "select_neurons": lambda: select_neurons(net, [None]),
        "layer_pair_of": lambda: layer_pair_of(net, 0),
        "linear_layers": lambda: linear_layers(net),
        "save_model": lambda: save_model(net, "unused.pt"),
    }
    for func, call in calls.items():
        with pytest.raises(InvalidArgumentError, match=rf"model\[0\]\.weight.*{func}") as info:
            call()
        assert str(dtype).split(".")[-1] in str(info.value)


def test_a_half_model_is_refused_not_pruned_to_inf():
    # issue 8: a .half() model from prune_network used to output inf where the
    # original gives a finite value.
    from coreset_verify.network import prune_network

    with pytest.raises(InvalidArgumentError, match="float16"):
        prune_network(_mlp().half(), keep=0.5, beta=1.0, rng=0)


def test_unsupported_layer_is_named_once():
    net = nn.Sequential(nn.Linear(4, 6), nn.Sequential(nn.GELU()), nn.Linear(6, 3))
    with pytest.raises(InvalidArgumentError,
                       match=r"^g: model\[1\]\[0\] is an unsupported layer of type GELU"):
        read_model(net, func="g")


def test_non_finite_weights_are_named():
    net = _mlp()
    with torch.no_grad():
        net[2].weight[1, 3] = float("nan")
    with pytest.raises(InvalidArgumentError, match=r"model\[2\]\.weight\[1, 3\] = nan"):
        read_model(net, func="f")


@pytest.mark.parametrize(
    ("module", "name"),
    [(nn.Softplus(beta=0.0), "beta"), (nn.Softplus(beta=float("nan")), "beta"),
     (nn.Softplus(threshold=float("nan")), "threshold"), (nn.ELU(alpha=float("inf")), "alpha"),
     (nn.LeakyReLU(float("nan")), "negative_slope")],
)
def test_bad_activation_parameters_name_the_layer(module, name):
    with pytest.raises(InvalidArgumentError, match=rf"model\[1\].*{name}"):
        read_model(_mlp(module), func="f")


def test_parameterised_activations_are_read_without_registration():
    acts = [op.activation for op in read_model(
        nn.Sequential(nn.Linear(2, 2), nn.Softplus(beta=2.0), nn.Linear(2, 2), nn.ELU(0.5),
                      nn.Linear(2, 1)), func="f") if isinstance(op, ActivationOp)]
    assert acts == [softplus(2.0), elu(0.5)]


def test_prune_network_and_to_masks_on_a_nested_model():
    from coreset_verify.network import composed_bound, prune_network, to_masks

    net = _nested()
    p = prune_network(net, keep=0.5, beta=1.0, rng=0)
    assert [la.position for la in p.layers] == [(1, 0), (4, 0)]
    assert p.model[4][0].weight.shape == (3, 3)
    masked = to_masks(p, net)
    x = torch.as_tensor(np.random.default_rng(3).standard_normal((20, 4)) * 0.2)
    with torch.no_grad():
        np.testing.assert_allclose(masked(x).numpy(), p.model(x).numpy(), rtol=1e-10,
                                   atol=1e-12)
        err = np.abs(net(x).numpy() - p.model(x).numpy())
    assert np.all(err <= composed_bound(p))


def test_module_slack_bounds_the_softplus_threshold_effect():
    from coreset_verify.network.bounds import module_slack
    from coreset_verify.network.reading import read

    net = _mlp(nn.Softplus(beta=1.0, threshold=0.0), seed=2)
    mlp, weights = read(net, "test")
    slack = module_slack(weights, list(mlp.activations))
    x = torch.as_tensor(np.random.default_rng(0).standard_normal((500, 4)))
    exact = nn.Sequential(net[0], nn.Softplus(beta=1.0, threshold=1e9), net[2])
    with torch.no_grad():
        gap = np.abs(net(x).numpy() - exact(x).numpy())
    assert gap.max() > 0.1 * slack.max()  # not vacuous
    assert np.all(gap <= slack)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_worst_case_refuses_half_models(dtype):
    from coreset_verify.search._problem import make_problem

    with pytest.raises(InvalidArgumentError, match=r"'original\[0\]\.weight'.*worst_case"):
        make_problem(_mlp(dtype=dtype), _mlp(), beta=1.0, lower=None, upper=None, scale=None)
    with pytest.raises(InvalidArgumentError, match=r"'pruned\[0\]\.weight'.*worst_case"):
        make_problem(_mlp(), _mlp(dtype=dtype), beta=1.0, lower=None, upper=None, scale=None)


def test_worst_case_reads_parameterised_activations_and_merges_twins():
    from coreset_verify.search._problem import make_problem

    f = _mlp(nn.LeakyReLU(0.2))
    g = _mlp(nn.LeakyReLU(0.2))  # same seed: identical first layer, read twice
    problem = make_problem(f, g, beta=1.0, lower=None, upper=None, scale=None)
    assert problem.shared.n_shared == 6
    assert problem.piecewise_linear


def test_worst_case_refuses_softplus_beta_zero_cleanly():
    from coreset_verify.search._problem import make_problem

    with pytest.raises(InvalidArgumentError, match=r"worst_case.*pruned\[1\].*beta"):
        make_problem(_mlp(), _mlp(nn.Softplus(beta=0.0)), beta=1.0, lower=None, upper=None,
                     scale=None)


def test_mlp_builds_parameterised_activations_and_refuses_bad_arguments():
    from coreset_verify.models import mlp

    net = mlp([3, 4, 2], activation="elu(alpha=0.5)")
    assert isinstance(net[1], nn.ELU)
    assert net[1].alpha == 0.5
    for kwargs, name in [({"sizes": [3]}, "sizes"), ({"sizes": "34"}, "sizes"),
                         ({"sizes": [3, 0, 2]}, "sizes"),
                         ({"sizes": [3, 2], "seed": -1}, "seed")]:
        with pytest.raises(InvalidArgumentError, match=f"'{name}' parameter of mlp"):
            mlp(**kwargs)


def test_meta_and_sparse_weights_are_refused_cleanly():
    from coreset_verify.network import select_neurons

    meta = _mlp().to("meta")
    with pytest.raises(InvalidArgumentError, match=r"model\[0\]\.weight.*meta"):
        select_neurons(meta, [None])
    net = _mlp()
    net[2].weight = nn.Parameter(net[2].weight.detach().to_sparse())
    with pytest.raises(InvalidArgumentError, match=r"model\[2\]\.weight.*layout"):
        read_model(net, func="f")


def test_widths_that_do_not_chain_are_refused_by_the_search_reader():
    # FUZZ F9: worst_case raised a raw torch RuntimeError on this model.
    bad = nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(3, 1))
    with pytest.raises(InvalidArgumentError, match=r"model\[2\].*in_features=2"):
        read_layers(bad, func="worst_case", name="model")


def test_float64_subnormal_weights_are_refused_float32_ones_kept():
    # FUZZ F16: a 1e-320 weight carries ~11 significant bits, and worst_case
    # reported an error 8.8e-4 above the exact objective at its own x.
    from coreset_verify.errors import MagnitudeError

    net = _mlp().double()
    with torch.no_grad():
        net[0].weight[1, 0] = 1e-320
    with pytest.raises(MagnitudeError, match=r"model\[0\]\.weight.*1e-320"):
        read_model(net, func="f")
    small = _mlp()
    with torch.no_grad():
        small[0].weight[1, 0] = 1e-40  # subnormal in float32, normal in float64
    read_model(small, func="f")
