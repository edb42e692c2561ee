"""prune_network: shapes, the exact path, the composed bound, radii, orders."""

from __future__ import annotations

import numpy as np
import pytest

from coreset_verify.network import (
    ORDERS,
    PrunedNetwork,
    composed_bound,
    prune_network,
    select_neurons,
)

torch = pytest.importorskip("torch")

ACTIVATIONS = [
    pytest.param(torch.nn.ReLU, id="relu"),
    pytest.param(torch.nn.Tanh, id="tanh"),
    pytest.param(torch.nn.Sigmoid, id="sigmoid"),
    pytest.param(lambda: torch.nn.LeakyReLU(0.2), id="leaky_relu(0.2)"),
    pytest.param(torch.nn.Softplus, id="softplus"),
    pytest.param(torch.nn.ELU, id="elu"),
    # Parameterised variants: the theorems need only monotonicity and Lipschitz.
    pytest.param(lambda: torch.nn.ELU(alpha=0.5), id="elu(0.5)"),
    pytest.param(lambda: torch.nn.ELU(alpha=2.0), id="elu(2)"),
    pytest.param(lambda: torch.nn.Softplus(beta=2.0), id="softplus(beta=2)"),
    # threshold 1: the module is z above z = 0.5, up to 0.157 below the exact
    # softplus; composed_bound must carry that slack.
    pytest.param(lambda: torch.nn.Softplus(beta=2.0, threshold=1.0), id="softplus(2, t=1)"),
]


def _outputs(model, x):
    with torch.no_grad():
        return model(x).numpy()


@pytest.mark.parametrize("order", ORDERS)
def test_shapes_and_parameter_counts(make_net, order):
    net = make_net([6, 30, 20, 4], flatten=True, dropout=True)
    p = prune_network(net, keep=0.5, beta=2.0, rng=0, order=order)
    assert isinstance(p, PrunedNetwork)
    linears = [m for m in p.model if isinstance(m, torch.nn.Linear)]
    shapes = [tuple(m.weight.shape) for m in linears]
    assert shapes == [(15, 6), (10, 15), (4, 10)]
    assert [(la.n_before, la.n_after) for la in p.layers] == [(30, 15), (20, 10)]
    assert p.params_before == sum(q.numel() for q in net.parameters()) == 30 * 7 + 20 * 31 + 84
    assert p.params_after == 15 * 7 + 10 * 16 + 4 * 11
    assert p.compression == pytest.approx(1 - p.params_after / p.params_before, rel=1e-12)
    assert p.compression_ratio == pytest.approx(p.params_before / p.params_after, rel=1e-12)
    assert p.radii[0] == 2.0
    assert [type(m) for m in p.model] == [type(m) for m in net]
    assert composed_bound(p).shape == (4,)
    for la in p.layers:
        assert la.kept.shape == (la.n_after,)
        assert np.all(np.diff(la.kept) > 0)


@pytest.mark.parametrize("order", ORDERS)
def test_keep_everything_is_the_same_network(make_net, ball_inputs, order):
    # keep=1.0 keeps every neuron with its weights: no sampling, no re-weighting.
    net = make_net([5, 12, 9, 3], activation=torch.nn.Tanh)
    p = prune_network(net, keep=1.0, beta=1.5, rng=3, order=order)
    assert all(la.exact and la.epsilon == 0.0 for la in p.layers)
    assert p.params_after == p.params_before
    x = torch.cat([ball_inputs(net, 1.5, 50, 0), 10 * torch.ones(1, 5, dtype=torch.float64)])
    np.testing.assert_allclose(_outputs(p.model, x), _outputs(net, x), rtol=1e-6, atol=0)
    np.testing.assert_array_equal(composed_bound(p), np.zeros(3))


def test_keeping_all_live_neurons_is_exact_on_the_ball(make_net, ball_inputs):
    net = make_net([4, 10, 3])
    with torch.no_grad():
        net[0].bias[:4] = -100.0  # dead on the ball ||x|| <= 1: ReLU is 0 there
    p = prune_network(net, keep=0.8, beta=1.0, rng=0)
    assert p.layers[0].exact
    assert set(p.layers[0].kept.tolist()) == set(range(4, 10))
    x = ball_inputs(net, 1.0, 100, 1)
    np.testing.assert_allclose(_outputs(p.model, x), _outputs(net, x), rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("order", ORDERS)
def test_outputs_stay_within_the_composed_bound(make_net, ball_inputs, activation, order,
                                                seed):
    beta = 2.0
    net = make_net([6, 40, 25, 3], activation=activation, seed=seed)
    for budget in ({"keep": 0.3}, {"epsilon": 0.5}):
        p = prune_network(net, beta=beta, rng=seed, order=order, **budget)
        bound = composed_bound(p)
        assert np.all(np.isfinite(bound))
        x = ball_inputs(net, beta, 300, seed)
        err = np.abs(_outputs(net, x) - _outputs(p.model, x))
        assert np.all(err <= bound * (1 + 1e-9) + 1e-12), (budget, err.max(0), bound)


def test_composed_bound_of_one_hidden_layer_is_epsilon_times_scale(make_net):
    net = make_net([4, 30, 2])
    p = prune_network(net, keep=0.3, beta=1.0, rng=0)
    la = p.layers[0]
    np.testing.assert_array_equal(la.propagation, np.eye(2))
    # composed_bound rounds outward by a relative 1e-12 (proofs_notes/network.md).
    np.testing.assert_allclose(composed_bound(p), la.bound.epsilon * la.bound.scale,
                               rtol=3e-12)
    assert la.delta == p.delta


def test_delta_is_split_over_the_hidden_layers(make_net):
    p = prune_network(make_net([4, 10, 10, 10, 2]), keep=0.5, beta=1.0, delta=0.3, rng=0)
    assert [la.delta for la in p.layers] == pytest.approx([0.1, 0.1, 0.1], rel=1e-12)
    assert all(la.bound.delta <= 0.1 for la in p.layers)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("order", ORDERS)
def test_radii_are_sound(make_net, ball_inputs, inputs_to, activation, order):
    beta = 3.0
    net = make_net([5, 30, 20, 10, 3], activation=activation, seed=4)
    p = prune_network(net, keep=0.4, beta=beta, rng=1, order=order)
    # the network each radius was computed in (PrunedLayer.radius)
    seen_by = p.model if order == "bottom-up" else net
    x = ball_inputs(net, beta, 400, 2)
    assert p.layers[0].radius == beta  # the ball itself (x has rounding of order 1e-16)
    for la in p.layers[1:]:
        norms = np.linalg.norm(inputs_to(seen_by, x, la.position).numpy(), axis=1)
        assert norms.max() <= la.radius, (la.position, norms.max(), la.radius)
        assert norms.max() > 0.1 * la.radius  # not vacuous: the bound is within 10x


@pytest.mark.parametrize("order", ORDERS)
def test_orders_prune_in_their_direction(make_net, order):
    p = prune_network(make_net([4, 10, 10, 10, 2]), keep=0.5, beta=1.0, rng=0, order=order)
    steps = [la.step for la in p.layers]
    assert steps == ([0, 1, 2] if order == "bottom-up" else [2, 1, 0])


def test_same_seed_same_network_and_generators_accepted(make_net):
    net = make_net([4, 30, 20, 2])
    a = prune_network(net, keep=0.4, beta=1.0, rng=7)
    b = prune_network(net, keep=0.4, beta=1.0, rng=np.random.default_rng(7))
    for la, lb in zip(a.layers, b.layers, strict=True):
        np.testing.assert_array_equal(la.kept, lb.kept)
    for ma, mb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        torch.testing.assert_close(ma, mb, rtol=0, atol=0)


def test_params_target_is_met(make_net):
    net = make_net([20, 60, 30, 5])
    p = prune_network(net, keep={"params": 0.2}, beta=1.0, rng=0)
    assert p.param_fraction <= 0.2
    assert p.param_fraction > 0.1
    assert p.target == "params=0.2"


def test_select_neurons_keeps_and_scales(make_net):
    net = make_net([3, 6, 2])
    small = select_neurons(net, [np.array([1, 4])], scale=[np.array([2.0, 3.0])])
    np.testing.assert_array_equal(small[0].weight.detach().numpy(),
                                  net[0].weight.detach().numpy()[[1, 4]])
    np.testing.assert_allclose(small[2].weight.detach().numpy(),
                               net[2].weight.detach().numpy()[:, [1, 4]] * [2.0, 3.0],
                               rtol=1e-15)


def test_lenet_sized_network_within_the_composed_bound(make_net, ball_inputs):
    # LeNet-300-100's shape with random weights, pruned to 10% of its parameters.
    beta = 15.0
    net = make_net([784, 300, 100, 10], seed=5)
    p = prune_network(net, keep={"params": 0.1}, beta=beta, rng=5)
    assert 0.09 < p.param_fraction <= 0.1
    x = ball_inputs(net, beta, 500, 5)
    err = np.abs(_outputs(net, x) - _outputs(p.model, x))
    assert np.all(err <= composed_bound(p) * (1 + 1e-9))


@pytest.mark.parametrize(("first", "second"), [(1e-300, 1e300), (1e200, 1e-200)])
def test_composed_bound_holds_at_extreme_magnitudes(make_net, ball_inputs, first, second):
    # issue 8: squared norms of 1e-300 weights underflowed to 0 (a zero radius).
    net = make_net([4, 30, 3], seed=2)
    with torch.no_grad():
        net[0].weight.mul_(first)
        net[0].bias.mul_(first)
        net[2].weight.mul_(second)
        net[2].bias.zero_()
    p = prune_network(net, keep=0.3, beta=1.0, rng=0)
    bound = composed_bound(p)
    x = ball_inputs(net, 1.0, 500, 0)
    err = np.abs(_outputs(net, x) - _outputs(p.model, x))
    assert np.all(np.isfinite(bound))
    assert np.all(err <= bound)
    assert err.max() > 0.01 * bound.max()  # the error is seen, not lost to rounding
