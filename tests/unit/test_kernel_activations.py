"""One Activation: parameterised families (LeakyReLU, Softplus, ELU) as torch has them."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from coreset_verify.activations import elu, get_activation, leaky_relu, softplus
from coreset_verify.errors import InvalidArgumentError

GRID = np.linspace(-40.0, 40.0, 160_001)
VARIANTS = [
    pytest.param(lambda: leaky_relu(0.2), "LeakyReLU", {"negative_slope": 0.2}, id="leaky0.2"),
    pytest.param(lambda: leaky_relu(1.5), "LeakyReLU", {"negative_slope": 1.5}, id="leaky1.5"),
    pytest.param(lambda: softplus(2.0), "Softplus", {"beta": 2.0}, id="softplus2"),
    pytest.param(lambda: softplus(0.5, 3.0), "Softplus", {"beta": 0.5, "threshold": 3.0},
                 id="softplus(0.5,3)"),
    pytest.param(lambda: elu(0.5), "ELU", {"alpha": 0.5}, id="elu0.5"),
    pytest.param(lambda: elu(2.0), "ELU", {"alpha": 2.0}, id="elu2"),
]


@pytest.mark.parametrize(("make", "module", "kwargs"), VARIANTS)
def test_numpy_and_torch_evaluate_as_the_module(make, module, kwargs):
    torch = pytest.importorskip("torch")
    act = make()
    ref = getattr(torch.nn, module)(**kwargs)(torch.as_tensor(GRID)).numpy()
    np.testing.assert_array_equal(act.torch(torch.as_tensor(GRID)).numpy(), ref)
    np.testing.assert_allclose(act.numpy(GRID), ref, rtol=1e-14, atol=1e-300)
    np.testing.assert_array_equal(act.torch_module()(torch.as_tensor(GRID)).numpy(), ref)
    # phi itself is within module_slack of the module everywhere
    assert np.max(np.abs(act(GRID) - ref)) <= act.module_slack * (1 + 1e-9) + 1e-15


@pytest.mark.parametrize(("make", "module", "kwargs"), VARIANTS)
def test_claimed_facts_hold_on_a_grid(make, module, kwargs):
    act = make()
    y = act(GRID)
    dy = np.diff(y)
    assert act.is_nondecreasing == bool(np.all(dy >= 0))
    assert np.max(np.abs(dy) / np.diff(GRID)) <= act.lipschitz * (1 + 1e-9)
    if act.is_nonnegative:
        assert np.all(y >= 0)


@pytest.mark.parametrize(("make", "module", "kwargs"), VARIANTS)
def test_names_round_trip_and_compare_by_parameters(make, module, kwargs):
    act = make()
    assert get_activation(act.name) == act
    assert hash(get_activation(act.name)) == hash(act)
    assert pickle.loads(pickle.dumps(act)) == act
    assert act != get_activation("relu")


def test_defaults_are_the_registered_activations():
    assert leaky_relu(0.01) is get_activation("leaky_relu")
    assert softplus() is get_activation("softplus")
    assert elu(1.0) is get_activation("elu")
    assert get_activation("elu(alpha=1.0)") is get_activation("elu")
    assert leaky_relu(0.2) != leaky_relu(0.3)
    assert softplus(2.0).lipschitz == 1.0
    assert elu(2.0).lipschitz == 2.0
    assert elu(0.5).lipschitz == 1.0
    assert leaky_relu(0.2).is_piecewise_linear
    assert leaky_relu(0.2).slope == 0.2
    assert get_activation("relu").is_piecewise_linear
    assert get_activation("relu").slope == 0.0
    assert not leaky_relu(1.5).is_piecewise_linear
    assert not elu(-1.0).is_nondecreasing
    assert not leaky_relu(-0.1).is_nondecreasing
    assert softplus(1.0, math.inf).module_slack == 0.0
    assert softplus(1.0, 20.0).module_slack == pytest.approx(math.log1p(math.exp(-20)))


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: softplus(0.0), "beta"),
        (lambda: softplus(-1.0), "beta"),
        (lambda: softplus(math.nan), "beta"),
        (lambda: softplus(math.inf), "beta"),
        (lambda: softplus(1.0, math.nan), "threshold"),
        (lambda: softplus(1.0, -1.0), "threshold"),
        (lambda: elu(math.nan), "alpha"),
        (lambda: elu(math.inf), "alpha"),
        (lambda: leaky_relu(math.nan), "negative_slope"),
        (lambda: leaky_relu("0.2"), "negative_slope"),
        (lambda: leaky_relu(True), "negative_slope"),
        (lambda: get_activation("elu(alpha=nan)"), "alpha"),
        (lambda: get_activation("softplus(beta=0)"), "beta"),
        (lambda: get_activation("elu(gamma=1)"), "activation"),
        (lambda: get_activation("gelu(a=1)"), "activation"),
    ],
)
def test_bad_parameters_are_refused(call, name):
    with pytest.raises(InvalidArgumentError, match=name):
        call()


def test_torch_activation_modules_are_accepted_and_validated():
    torch = pytest.importorskip("torch")
    assert get_activation(torch.nn.Softplus(beta=2.0)) == softplus(2.0)
    assert get_activation(torch.nn.ReLU()) is get_activation("relu")
    with pytest.raises(InvalidArgumentError, match="'beta' parameter of softplus"):
        get_activation(torch.nn.Softplus(beta=0.0))
    with pytest.raises(InvalidArgumentError, match="activation"):
        get_activation(torch.nn.GELU())


def test_neuron_coreset_with_softplus_beta_zero_is_a_clean_error():
    torch = pytest.importorskip("torch")
    from coreset_verify import neuron_coreset

    rng = np.random.default_rng(0)
    with pytest.raises(InvalidArgumentError, match="'beta' parameter of softplus"):
        neuron_coreset(rng.standard_normal((5, 3)), rng.standard_normal(5), sample_size=3,
                       beta=1.0, activation=torch.nn.Softplus(beta=0.0))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"name": ""}, "name"), ({"name": 5}, "name"), ({"function": None}, "function"),
     ({"is_nondecreasing": "yes"}, "is_nondecreasing"), ({"lipschitz": float("nan")}, "lipschitz"),
     ({"lipschitz": True}, "lipschitz"), ({"torch_module": 3}, "torch_module"),
     ({"params": ((1, 2.0),)}, "params")],
)
def test_activation_fields_are_validated(kwargs, name):
    from coreset_verify.activations import Activation

    fields = {"name": "mine", "function": lambda z, xp: z, "is_nondecreasing": True,
              "is_nonnegative": False, "is_positive": False, "lipschitz": 1.0}
    with pytest.raises(InvalidArgumentError, match=f"'{name}' parameter of Activation"):
        Activation(**{**fields, **kwargs})


def test_register_activation_overwrite_must_be_a_bool():
    from coreset_verify.activations import register_activation

    with pytest.raises(InvalidArgumentError, match="'overwrite' parameter"):
        register_activation(get_activation("relu"), overwrite="yes")
