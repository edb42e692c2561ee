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
