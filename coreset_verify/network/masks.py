"""The mask view of a pruned network (``torch.nn.utils.prune``)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np

from .._validation import check_bool, fail, import_torch
from ..errors import InvalidArgumentError
from ..nets.model import module_at, read_mlp
from .reading import position_of
from .records import PrunedNetwork

__all__ = ["fold_masks", "to_masks"]


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


def fold_masks(model_or_state_dict: Any) -> Any:
    """Fold ``torch.nn.utils.prune`` masks in: ``X = X_orig * X_mask``.

    The effective tensor of a torch-pruned module is ``X_orig * X_mask``
    (:func:`torch.nn.utils.prune.remove` makes it plain). This does the same
    for a whole model or a state_dict, on a copy, so that a pruned model is
    read as the function it computes.

    Parameters
    ----------
    model_or_state_dict : torch.nn.Module or mapping
        A model whose modules may carry pruning hooks (``weight_orig``,
        ``weight_mask``, ...), or a state_dict whose keys may hold
        ``"<prefix>.<name>_orig"`` and ``"<prefix>.<name>_mask"`` pairs.

    Returns
    -------
    torch.nn.Module or dict
        A deep copy of the model with every pruning removed (plain
        parameters, no pruning hooks), or a new dict with each pair replaced
        by ``"<prefix>.<name>"``. Anything without masks comes back as an
        equal copy.

    Raises
    ------
    InvalidArgumentError
        Neither a module nor a mapping; an ``_orig`` without its ``_mask`` (or
        the reverse), shapes that differ, or ``X`` given beside ``X_orig``.

    Examples
    --------
    >>> import torch
    >>> from torch.nn.utils import prune
    >>> layer = torch.nn.Linear(3, 2)
    >>> _ = prune.l1_unstructured(layer, "weight", amount=0.5)
    >>> state = fold_masks(layer.state_dict())
    >>> sorted(state), bool(torch.equal(state["weight"], layer.weight))
    (['bias', 'weight'], True)
    """
    torch = import_torch()
    if isinstance(model_or_state_dict, Mapping):
        return _fold_state_dict(model_or_state_dict)
    if isinstance(model_or_state_dict, torch.nn.Module):
        return _fold_model(model_or_state_dict)
    raise fail("fold_masks", "model_or_state_dict", "a torch.nn.Module or a state_dict",
               type(model_or_state_dict).__name__)


def _mask_error(what: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"fold_masks: {what}; a torch.nn.utils.prune mask is a pair "
                                "X_orig, X_mask of one shape")


def _fold_state_dict(state: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(state)
    for key in [k for k in state if isinstance(k, str) and k.endswith("_orig")]:
        name = key.removesuffix("_orig")
        mask = out.pop(f"{name}_mask", None)
        orig = out.pop(key)
        if mask is None:
            raise _mask_error(f"{key!r} has no {name + '_mask'!r}")
        if name in out:
            raise _mask_error(f"{name!r} is given beside {key!r}")
        if getattr(orig, "shape", None) != getattr(mask, "shape", None):
            raise _mask_error(f"{key!r} and {name + '_mask'!r} differ in shape")
        out[name] = orig * mask
    orphans = [k for k in out if isinstance(k, str) and k.endswith("_mask")]
    if orphans:
        raise _mask_error(f"{orphans[0]!r} has no {orphans[0].removesuffix('_mask') + '_orig'!r}")
    return out


def _fold_model(model: Any) -> Any:
    torch = import_torch()
    from torch.nn.utils import prune as tprune

    def hooks_of(module: Any) -> list:
        return [h for h in module._forward_pre_hooks.values()
                if isinstance(h, tprune.BasePruningMethod)]

    # a pruned module's `weight` is orig * mask, a non-leaf tensor deepcopy refuses;
    # remove() recomputes it, so the copy may start from a detached one
    memo = {id(t): t.detach() for module in model.modules() for h in hooks_of(module)
            if isinstance(t := getattr(module, h._tensor_name, None), torch.Tensor)
            and not t.is_leaf}
    target = copy.deepcopy(model, memo)
    for module in target.modules():
        hooks = hooks_of(module)
        for name in dict.fromkeys(h._tensor_name for h in hooks):
            orig, mask = (getattr(module, f"{name}_{s}", None) for s in ("orig", "mask"))
            if orig is None or mask is None or orig.shape != mask.shape:
                raise _mask_error(f"{type(module).__name__}.{name} is pruned without a "
                                  f"matching {name}_orig and {name}_mask")
            tprune.remove(module, name)
    left = [n for n, _ in target.named_parameters() if n.endswith("_orig")]
    if left:
        raise _mask_error(f"{left[0]!r} has no pruning hook that applies its mask")
    return target
