"""Adapters and baselines: what each one keeps, and how it uses rng."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from coreset_verify import InvalidArgumentError, layer_coreset, theoretical_bound
from coreset_verify.audit import (
    builtin_pruners,
    coreset_pruner,
    from_function,
    raw_max_pruner,
    top_norm_pruner,
    torch_prune_pruner,
    torch_pruning_pruner,
    uniform_pruner,
)
from coreset_verify.audit._layers import default_layers, degenerate_layer


@pytest.fixture(scope="module")
def layer():
    return default_layers()[1].arrays()


def _rng(seed=0):
    return np.random.default_rng(seed)


@pytest.mark.parametrize("name", list(builtin_pruners()))
def test_every_builtin_keeps_at_most_size_float64(layer, name):
    pruner, _ = builtin_pruners()[name]
    W_in, b_in, W_out = pruner(*layer, size=7, rng=_rng())
    r = W_in.shape[0]
    assert 1 <= r <= 7
    assert (W_in.shape, b_in.shape, W_out.shape) == ((r, 4), (r,), (2, r))
    assert all(a.dtype == np.float64 for a in (W_in, b_in, W_out))


@pytest.mark.parametrize(("method", "order"), [("l1", 1), ("l2", 2)])
def test_torch_prune_ln_keeps_the_top_rows_by_norm(layer, method, order):
    got = torch_prune_pruner(method)(*layer, size=9, rng=_rng())
    want = top_norm_pruner(order=order)(*layer, size=9, rng=_rng())
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


def test_torch_prune_random_is_seeded_and_leaves_torch_global_rng(layer):
    prune = torch_prune_pruner("random")
    state = torch.get_rng_state()
    first = prune(*layer, size=9, rng=_rng(1))
    assert torch.equal(state, torch.get_rng_state())
    again = prune(*layer, size=9, rng=_rng(1))
    other = prune(*layer, size=9, rng=_rng(2))
    np.testing.assert_array_equal(first[0], again[0])
    assert first[0].shape[0] == 9
    assert not np.array_equal(first[0], other[0])


def test_torch_pruning_keeps_exactly_size_by_group_magnitude(layer):
    W_in, _, W_out = layer
    got = torch_pruning_pruner()(*layer, size=10, rng=_rng())
    # MagnitudeImportance(p=2, group_reduction="mean", normalizer=None): the mean
    # over the group (rows of the first Linear, columns of the second) of the
    # squared L2 norms.
    score = (np.sum(W_in**2, axis=1) + np.sum(W_out**2, axis=0)) / 2
    kept = np.sort(np.argsort(-score, kind="stable")[:10])
    np.testing.assert_allclose(got[0], W_in[kept], rtol=0, atol=0)
    np.testing.assert_allclose(got[2], W_out[:, kept], rtol=0, atol=0)


def test_uniform_reweights_by_n_over_size(layer):
    W_in, _, W_out = layer
    small = uniform_pruner()(*layer, size=8, rng=_rng())
    rows = [int(np.flatnonzero(np.all(W_in == w, axis=1))[0]) for w in small[0]]
    np.testing.assert_allclose(small[2], W_out[:, rows] * 32 / 8, rtol=1e-15)
    plain = uniform_pruner(reweight=False)(*layer, size=8, rng=_rng())
    np.testing.assert_array_equal(plain[2], W_out[:, rows])


@pytest.mark.parametrize("mode", ["distinct", "draws"])
def test_coreset_pruner_matches_layer_coreset_and_its_bound(layer, mode):
    prune = coreset_pruner(mode=mode)
    got = prune(*layer, size=6, rng=_rng(4))
    count = {"distinct": 6} if mode == "distinct" else {"sample_size": 6}
    core = layer_coreset(*layer, beta=1.0, rng=4, **count)
    for a, b in zip(got, core.pruned(), strict=True):
        np.testing.assert_array_equal(a, b)
    eps = prune.epsilons(*layer, size=6, rng=_rng(4), delta=0.1)
    for kind, value in eps.items():
        assert value == theoretical_bound(core, delta=0.1, kind=kind).epsilon


def test_coreset_pruner_keeps_live_neurons_exactly_when_size_covers_them():
    layer, dead = degenerate_layer()
    W_in, b_in, W_out = layer.arrays()
    got = coreset_pruner()(W_in, b_in, W_out, size=int((~dead).sum()), rng=_rng())
    np.testing.assert_array_equal(got[0], W_in[~dead])
    np.testing.assert_array_equal(got[2], W_out[:, ~dead])
    assert coreset_pruner().epsilons(W_in, b_in, W_out, size=20, rng=_rng(), delta=0.1) == {
        "pointwise": 0.0, "uniform": 0.0, "paper": 0.0}


def test_raw_max_uses_the_raw_max_reduction(layer):
    got = raw_max_pruner()(*layer, size=5, rng=_rng(3))
    core = layer_coreset(*layer, beta=1.0, rng=3, distinct=5, reduction="raw-max")
    np.testing.assert_array_equal(got[2], core.pruned()[2])


def test_coreset_claims_are_honest_about_bias():
    assert coreset_pruner().claims()["unbiased"] is False
    assert coreset_pruner(mode="draws").claims()["unbiased"] is True
    assert "guarantee" not in coreset_pruner().claims(kind=None)


def test_from_function_accepts_three_return_forms(layer):
    W_out = layer[2]
    by_index = from_function(lambda W_in, b_in, W_out, size, rng: np.arange(size))
    np.testing.assert_array_equal(by_index(*layer, size=3, rng=_rng())[2], W_out[:, :3])
    weighted = from_function(lambda W_in, b_in, W_out, size, rng:
                             (np.arange(size), 2 * W_out[:, :size]))
    np.testing.assert_array_equal(weighted(*layer, size=3, rng=_rng())[2], 2 * W_out[:, :3])

    def tensors(W_in, b_in, W_out, *, size, rng):
        return (torch.as_tensor(W_in[:size]), torch.as_tensor(b_in[:size]),
                torch.as_tensor(W_out[:, :size]))

    out = from_function(tensors)(*layer, size=2, rng=_rng())
    assert all(isinstance(a, np.ndarray) and a.dtype == np.float64 for a in out)
    bad = from_function(lambda *a: "nope")
    with pytest.raises(InvalidArgumentError, match="must return kept indices"):
        bad(*layer, size=2, rng=_rng())


@pytest.mark.parametrize(
    ("factory", "kwargs", "match"),
    [
        pytest.param(coreset_pruner, {"mode": "both"}, "mode", id="coreset_pruner(mode=both)"),
        pytest.param(coreset_pruner, {"beta": 0}, "beta", id="coreset_pruner(beta=0)"),
        pytest.param(coreset_pruner, {"split_signs": True}, "split_signs",
                     id="coreset_pruner(split_signs, distinct)"),
        pytest.param(torch_prune_pruner, {"method": "l3"}, "method",
                     id="torch_prune_pruner(method=l3)"),
        pytest.param(from_function, {"fn": 3}, "fn", id="from_function(fn=3)"),
    ],
)
def test_adapter_arguments_are_validated(factory, kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        factory(**kwargs)


@pytest.mark.parametrize("name", ["coreset", "uniform", "torch-prune-l1", "torch-pruning"])
@pytest.mark.parametrize(("size", "rng", "match"), [(0, 0, "size"), (2.5, 0, "size"),
                                                   (2, 7, "rng")])
def test_pruner_call_arguments_are_validated(layer, name, size, rng, match):
    pruner, _ = builtin_pruners()[name]
    rng = _rng() if rng == 0 else rng
    with pytest.raises(InvalidArgumentError, match=match):
        pruner(*layer, size=size, rng=rng)
