"""The audit computes F, T_i and the torch modules through the one kernel, coreset_verify.nets."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import coreset_verify.audit as audit
from coreset_verify.activations import get_activation
from coreset_verify.audit._forward import forward, scale_of
from coreset_verify.audit._layers import default_layers
from coreset_verify.nets import layer_pair_forward, layer_pair_scale


def test_no_audit_module_imports_network_or_writes_its_own_F():
    for path in Path(audit.__file__).parent.glob("*.py"):
        text = path.read_text()
        assert "from ..network" not in text, path.name
        assert "activation(z + " not in text, path.name


def test_forward_and_scale_are_the_kernels():
    layer, act = default_layers()[1], get_activation("softplus")
    x = np.random.default_rng(0).normal(size=(5, layer.d))
    np.testing.assert_array_equal(forward(layer.W_in, layer.b_in, layer.W_out, x, act),
                                  layer_pair_forward(*layer.arrays(), x, act))
    np.testing.assert_array_equal(scale_of(layer, 2.0, act),
                                  layer_pair_scale(*layer.arrays(), beta=2.0, activation=act))
    empty = forward(layer.W_in[:0], layer.b_in[:0], layer.W_out[:, :0], x, act)
    np.testing.assert_array_equal(empty, np.zeros((5, layer.k)))


def test_the_search_takes_a_pruned_pair_with_no_neuron_left():
    from coreset_verify.audit._search import search_worst_case

    layer, act = default_layers()[0], get_activation("relu")
    found = search_worst_case(layer, (layer.W_in[:0], layer.b_in[:0], layer.W_out[:, :0]),
                              beta=1.0, activation=act, method="gradient", time_limit=0.3,
                              rng=np.random.default_rng(0))
    # F~ = 0: the error is max |F_i| / T_i, positive and at most 1.
    assert 0 < found.error <= 1 + 1e-12
