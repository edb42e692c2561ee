"""Models pruned with torch.nn.utils.prune load as the function they compute.

``fold_masks`` turns ``X_orig``, ``X_mask`` into ``X = X_orig * X_mask``;
``load_model`` applies it to a whole model saved with ``torch.save`` (its
pruning hooks allow-listed for ``weights_only=True``) and to a state_dict.
"""

from __future__ import annotations

import numpy as np
import pytest

from coreset_verify.errors import InvalidArgumentError
from coreset_verify.models import mlp
from coreset_verify.network import load_model, prune_network, to_masks
from coreset_verify.network.masks import fold_masks

torch = pytest.importorskip("torch")
from torch.nn.utils import prune as tprune  # noqa: E402

SIZES = [5, 12, 8, 3]


def _l1(model):
    tprune.l1_unstructured(model[0], "weight", amount=0.5)
    tprune.l1_unstructured(model[0], "bias", amount=0.25)


def _ln(model):
    tprune.ln_structured(model[2], "weight", amount=0.5, n=2, dim=0)
    tprune.ln_structured(model[4], "weight", amount=0.5, n=1, dim=1)


def _both(model):  # a second pruning of one tensor: a PruningContainer
    _l1(model)
    tprune.ln_structured(model[0], "weight", amount=0.25, n=2, dim=0)


def _coreset(model):
    return to_masks(prune_network(model, keep=0.5, beta=1.0, rng=0), model)


@pytest.mark.parametrize("how", [_l1, _ln, _both, _coreset],
                         ids=["l1_unstructured", "ln_structured", "container", "to_masks"])
@pytest.mark.parametrize("saved", ["whole", "state_dict"])
def test_a_torch_pruned_model_round_trips(tmp_path, how, saved):
    model = mlp(SIZES, seed=3).double().eval()
    pruned = how(model) or model
    assert tprune.is_pruned(pruned)
    path = tmp_path / "pruned.pt"
    torch.save(pruned if saved == "whole" else pruned.state_dict(), path)
    back = load_model(path, architecture=None if saved == "whole" else SIZES)
    assert not tprune.is_pruned(back)
    assert {n for n, _ in back.named_parameters()} == {n for n, _ in mlp(SIZES).named_parameters()}
    x = torch.randn(50, SIZES[0], dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(back(x), pruned(x), rtol=0, atol=0)
    zeros = sum(int((m.weight == 0).sum()) for m in back if isinstance(m, torch.nn.Linear))
    assert zeros >= SIZES[0] * SIZES[1] // 2 or how is not _l1  # the masks are in


def test_fold_masks_copies_and_leaves_the_input_alone():
    model = mlp(SIZES, seed=1)
    _l1(model)
    folded = fold_masks(model)
    assert tprune.is_pruned(model)  # not changed
    assert not tprune.is_pruned(folded)
    torch.testing.assert_close(folded[0].weight, model[0].weight, rtol=0, atol=0)
    state = model.state_dict()
    keys = set(state)
    plain = fold_masks(state)
    assert set(state) == keys
    assert "0.weight" in plain
    assert "0.weight_orig" not in plain
    np.testing.assert_array_equal(plain["0.weight"].numpy(), model[0].weight.detach().numpy())
    unpruned = mlp(SIZES, seed=1).state_dict()
    assert fold_masks(unpruned).keys() == unpruned.keys()


def _state(**change):
    state = {"0.weight_orig": torch.ones(2, 2), "0.weight_mask": torch.ones(2, 2)}
    state.update(change)
    return {k: v for k, v in state.items() if v is not None}


@pytest.mark.parametrize(("value", "match"), [
    pytest.param(_state(**{"0.weight_mask": None}), "has no '0.weight_mask'", id="no mask"),
    pytest.param(_state(**{"0.weight_orig": None}), "has no '0.weight_orig'", id="no orig"),
    pytest.param(_state(**{"0.weight_mask": torch.ones(2)}), "differ in shape",
                 id="shapes differ"),
    pytest.param(_state(**{"0.weight": torch.ones(2, 2)}), "beside", id="both X and X_orig"),
    pytest.param([1, 2], "'model_or_state_dict' parameter of fold_masks", id="a list"),
])
def test_fold_masks_refuses_half_a_mask(value, match):
    with pytest.raises(InvalidArgumentError, match=match):
        fold_masks(value)
