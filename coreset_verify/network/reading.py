"""Reading a model for pruning: its Linears as float64 weights, and rebuilding it.

The reading itself is :func:`coreset_verify.nets.model.read_mlp` (the one
reader of torch models); this module holds the mutable per-Linear weights the
pruner edits and the rebuild of a model from them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from .._validation import fail, import_torch
from ..nets.model import Mlp, read_mlp, replace_at

__all__ = ["LayerPair", "LayerWeights", "Weights", "count", "layer_pair_of", "linear_layers",
           "position_of", "read", "rebuild"]


@dataclass
class Weights:
    """One Linear as float64 numpy: ``W`` (out, in), ``b`` (out,)."""

    W: np.ndarray
    b: np.ndarray
    has_bias: bool


def read(model: Any, func: str, name: str = "model") -> tuple[Mlp, list[Weights]]:
    """The MLP reading of ``model`` and editable copies of its Linears' weights."""
    mlp = read_mlp(model, func=func, name=name)
    return mlp, [Weights(op.weight.copy(), op.bias.copy(), op.has_bias) for op in mlp.linears]


def position_of(path: tuple[int, ...]) -> int | tuple[int, ...]:
    """How a Linear is named to users: its index in a flat Sequential, else its path."""
    return path[0] if len(path) == 1 else path


def rebuild(model: Any, mlp: Mlp, weights: list[Weights]) -> Any:
    """A deep copy of ``model`` with its Linears replaced by ``weights``.

    Each new Linear has the dtype and device of the one it replaces.
    """
    torch = import_torch()
    new = copy.deepcopy(model)
    for op, w in zip(mlp.linears, weights, strict=True):
        lin = torch.nn.Linear(w.W.shape[1], w.W.shape[0], bias=w.has_bias,
                              dtype=op.dtype, device=op.device)
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(w.W))
            if w.has_bias:
                lin.bias.copy_(torch.as_tensor(w.b))
        replace_at(new, op.path, lin)
    return new.eval()


def count(model: Any) -> int:
    """Number of parameters."""
    return int(sum(p.numel() for p in model.parameters()))


def linear_layers(model: Any) -> list[int | tuple[int, ...]]:
    """Positions of the ``nn.Linear`` modules of an ``nn.Sequential`` MLP.

    An int per Linear of a flat Sequential; a tuple of indices for one inside
    a nested Sequential.
    """
    mlp = read_mlp(model, func="linear_layers")
    return [position_of(p) for p in mlp.paths]


class LayerWeights(NamedTuple):
    """A layer pair's weights, float64 numpy copies."""

    W_in: np.ndarray
    b_in: np.ndarray
    W_out: np.ndarray


class LayerPair(NamedTuple):
    """What :func:`layer_pair_of` returns: the weights and the activation's name."""

    weights: LayerWeights
    activation: str


def layer_pair_of(model: Any, position: int | tuple[int, ...]) -> LayerPair:
    """The hidden layer after ``model[position]`` as a layer pair.

    ``W_in``, ``b_in`` are the Linear at ``position``, ``W_out`` the next
    Linear's weight; float64 numpy copies. Unpacks as
    ``(W_in, b_in, W_out), activation_name = layer_pair_of(model, p)``.
    """
    func = "layer_pair_of"
    mlp, weights = read(model, func)
    hidden = [position_of(p) for p in mlp.paths[:-1]]
    if position not in hidden:
        raise fail(func, "position", f"the index of a hidden Linear (one of {hidden})",
                   position)
    i = hidden.index(position)
    return LayerPair(LayerWeights(weights[i].W, weights[i].b, weights[i + 1].W),
                     mlp.activations[i].name)
