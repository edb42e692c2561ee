"""The mask view of a pruned network (``torch.nn.utils.prune``)."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from .._validation import check_bool, fail, import_torch
from ..nets.model import module_at, read_mlp
from .reading import position_of
from .records import PrunedNetwork

__all__ = ["to_masks"]


def to_masks(pruned: PrunedNetwork, original: Any, *, inplace: bool = False) -> Any:
    """The mask view of a pruned network, with ``torch.nn.utils.prune``.

    Each Linear of ``original`` gets the pruned model's weights scattered back
    to full size (re-weighted columns included) and a mask from
    ``prune.custom_from_mask``: zero on the rows (weights and bias) of dropped
    neurons and on the columns of dropped inputs. ``prune.is_pruned`` is then
    true and the model computes the same function as ``pruned.model``.

    Parameters
    ----------
    pruned : PrunedNetwork
    original : torch.nn.Sequential
        The model given to :func:`prune_network` (not already torch-pruned).
    inplace : bool, default False
        Modify ``original`` itself instead of a deep copy.

    Returns
    -------
    torch.nn.Sequential
        With ``weight_orig``/``weight_mask`` (and ``bias_orig``/``bias_mask``)
        on every Linear; ``prune.remove`` makes them plain again.
    """
    torch = import_torch()
    from torch.nn.utils import prune as tprune

    func = "to_masks"
    if not isinstance(pruned, PrunedNetwork):
        raise fail(func, "pruned", "a PrunedNetwork", type(pruned).__name__)
    inplace = check_bool(inplace, "inplace", func)
    if isinstance(original, torch.nn.Module) and tprune.is_pruned(original):
        raise fail(func, "original", "a model without torch.nn.utils.prune masks",
                   "a model that is already pruned")
    mlp = read_mlp(original, func=func, name="original")
    paths = mlp.paths
    mine = [la.position for la in pruned.layers]
    theirs = [position_of(p) for p in paths[:-1]]
    shapes = [op.weight.shape[0] for op in mlp.linears[:-1]]
    if mine != theirs or shapes != [la.n_before for la in pruned.layers]:
        raise fail(func, "original", "the model that was given to prune_network "
                   f"(hidden Linears at {mine} with {[la.n_before for la in pruned.layers]} "
                   "neurons)", f"hidden Linears at {theirs} with {shapes} neurons")
    target = original if inplace else copy.deepcopy(original)
    first, last = mlp.linears[0].weight, mlp.linears[-1].weight
    kept = ([np.arange(first.shape[1])] + [la.kept for la in pruned.layers]
            + [np.arange(last.shape[0])])
    for t, p in enumerate(paths):
        lin, small = module_at(target, p), module_at(pruned.model, p)
        rows, cols = (torch.as_tensor(kept[t + 1]), torch.as_tensor(kept[t]))
        row_mask = torch.zeros(lin.out_features, dtype=lin.weight.dtype,
                               device=lin.weight.device)
        row_mask[rows] = 1
        col_mask = torch.zeros_like(lin.weight[0])
        col_mask[cols] = 1
        with torch.no_grad():
            lin.weight.zero_()
            lin.weight[rows[:, None], cols[None, :]] = small.weight.to(lin.weight)
            if lin.bias is not None:
                lin.bias.zero_()
                lin.bias[rows] = small.bias.to(lin.bias)
        tprune.custom_from_mask(lin, "weight", torch.outer(row_mask, col_mask))
        if lin.bias is not None:
            tprune.custom_from_mask(lin, "bias", row_mask)
    return target
