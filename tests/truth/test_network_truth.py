"""Theorem N (proofs_notes/network.md): the composed bound against the exact
error of a network built so that the propagation factor matters.

``Linear(2, 2) ReLU Linear(2, 1) ReLU Linear(1, 1)``: hidden layer 0 is two
identical neurons ``relu(x_0)`` with outgoing weights +1 and -1 (the pair
of test_pointwise_truth), hidden layer 1 one neuron with bias 10 (active on
the whole ball, so its ReLU passes every error through with slope 1), and
the output weight is 10. With ``keep=0.6`` layer 1 keeps its one
live neuron (an exact step) and layer 0 keeps one neuron (``distinct=1``, one
draw); layer 0 contributes ``P_0 (eps_0 T_0)`` with ``P_0 = |W_2| Lip_1 = 10``,
``T_0 = 2`` and ``eps_0`` the cap ``1 + t = 2`` (one draw: the statistical
bound is larger). At ``x* = e_0`` the one draw gives layer 1's pre-activation
an error of ``+-2 = T_0``, and the output an error of exactly 20: half the
bound of 40, on every seed; without the factor 10 the bound (4) fails on every
seed. The cap holds with probability one, so no failure is accepted.
"""

from __future__ import annotations

import numpy as np
import pytest

from coreset_verify import composed_bound, prune_network

torch = pytest.importorskip("torch")


def _model():
    model = torch.nn.Sequential(
        torch.nn.Linear(2, 2), torch.nn.ReLU(),
        torch.nn.Linear(2, 1), torch.nn.ReLU(),
        torch.nn.Linear(1, 1),
    ).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0.0], [1.0, 0.0]]))
        model[0].bias.zero_()
        model[2].weight.copy_(torch.tensor([[1.0, -1.0]]))
        model[2].bias.fill_(10.0)
        model[4].weight.fill_(10.0)
        model[4].bias.zero_()
    return model


@pytest.mark.parametrize("kind", ["pointwise", "uniform"])
def test_composed_bound_holds_and_needs_the_propagation_factor(kind):
    model = _model()
    x = torch.tensor([[1.0, 0.0], [0.6, 0.8], [-1.0, 0.0]], dtype=torch.float64)
    with torch.no_grad():
        f = model(x)[:, 0].numpy()
    worst = 0.0
    for seed in range(40):
        pruned = prune_network(model, keep=0.6, delta=0.1, beta=1.0, rng=seed, kind=kind)
        assert pruned.layers[1].epsilon == 0  # one live neuron: an exact step
        assert pruned.layers[0].coreset.sample_size == 1
        bound = float(composed_bound(pruned)[0])
        with torch.no_grad():
            err = np.abs(f - pruned.model.double()(x)[:, 0].numpy())
        assert err.max() <= bound * (1 + 1e-12), f"seed {seed}: {err.max()} > {bound}"
        worst = max(worst, err.max() / bound)
    np.testing.assert_allclose(worst, 0.5, rtol=1e-9)


def test_composed_bound_is_the_derivation():
    pruned = prune_network(_model(), keep=0.6, delta=0.1, beta=1.0, rng=0, kind="pointwise")
    np.testing.assert_allclose(composed_bound(pruned), [10 * 2.0 * 2.0], rtol=1e-9)


def test_composed_bound_sums_the_layers_through_their_factors():
    # Output weight -3: P_0 = |W_2| Lip_1 = 3 (the absolute value), so the
    # bound is 3 * eps_0 T_0 = 3 * 2 * 2.
    model = _model()
    with torch.no_grad():
        model[4].weight.fill_(-3.0)
    pruned = prune_network(model, keep=0.6, delta=0.1, beta=1.0, rng=0, kind="pointwise")
    np.testing.assert_allclose(composed_bound(pruned), [3 * 2.0 * 2.0], rtol=1e-9)


def _deep_model(seed):
    gen = np.random.default_rng(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(3, 5), torch.nn.ReLU(),
        torch.nn.Linear(5, 4), torch.nn.Sigmoid(),
        torch.nn.Linear(4, 2),
    ).double()
    with torch.no_grad():
        for layer in (model[0], model[2], model[4]):
            layer.weight.copy_(torch.as_tensor(gen.normal(size=layer.weight.shape)))
            layer.bias.copy_(torch.as_tensor(gen.normal(size=layer.bias.shape)))
    return model


@pytest.mark.parametrize("order", ["bottom-up", "top-down"])
def test_radii_and_composition_are_the_derivation(order):
    # Lemma R: R_1 = || max(|lo|, |hi|) || of relu(b_0 +- beta ||W_0[j]||), in the
    # network the layer is pruned in (the original one below layer 1 here:
    # top-down prunes layer 1 first; bottom-up has only layer 0 below it,
    # whose kept rows are original rows). Lemma P: P_0 = |W_2| Lip_sigmoid
    # |...| = |W_2| / 4 (Linear 1 feeds the sigmoid), P_1 = I. Theorem N: the
    # sum of P_s eps_s T_s over the steps.
    model, beta = _deep_model(1), 1.5
    pruned = prune_network(model, keep=0.6, delta=0.1, beta=beta, rng=2, order=order)
    W0, b0 = model[0].weight.detach().numpy(), model[0].bias.detach().numpy()
    reach = beta * np.linalg.norm(W0, axis=1)
    lo, hi = np.maximum(b0 - reach, 0), np.maximum(b0 + reach, 0)
    layers = {layer.position: layer for layer in pruned.layers}
    first, second = sorted(layers.values(), key=lambda layer: layer.position)
    np.testing.assert_allclose(first.radius, beta, rtol=1e-12)
    if order == "top-down":
        np.testing.assert_allclose(second.radius, np.linalg.norm(np.maximum(lo, hi)),
                                   rtol=1e-8)
    W2 = model[4].weight.detach().numpy()
    if order == "bottom-up":  # the layers above step 0 are the original ones
        np.testing.assert_allclose(first.propagation, np.abs(W2) / 4, rtol=1e-9)
    np.testing.assert_allclose(second.propagation, np.eye(2), rtol=1e-12)
    want = sum(layer.propagation @ (layer.epsilon * layer.scale) for layer in pruned.layers)
    np.testing.assert_allclose(composed_bound(pruned), want, rtol=1e-9)
    x = torch.as_tensor(np.random.default_rng(0).normal(size=(400, 3)))
    x = beta * x / torch.linalg.vector_norm(x, dim=1, keepdim=True)  # on the sphere
    with torch.no_grad():
        err = (model(x) - pruned.model.double()(x)).abs().numpy()
    assert np.all(err <= composed_bound(pruned))
