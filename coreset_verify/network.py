"""Pruned torch networks built from layer coresets.

torch is imported inside the functions that need it.
"""

from __future__ import annotations

from typing import Any

from ._validation import fail
from .coreset import LayerCoreset

__all__ = ["layer_pair_modules", "linear_layers", "replace_layer_pair"]


def linear_layers(model: Any) -> list[int]:
    """Positions of the ``nn.Linear`` modules of an ``nn.Sequential``."""
    import torch

    if not isinstance(model, torch.nn.Sequential):
        raise fail("linear_layers", "model", "a torch.nn.Sequential", type(model).__name__)
    return [i for i, m in enumerate(model) if isinstance(m, torch.nn.Linear)]


def replace_layer_pair(model: Any, position: int, coreset: LayerCoreset) -> Any:
    """A copy of ``model`` whose Linear at ``position`` keeps only the coreset's
    neurons and whose next Linear takes the re-weighted outgoing weights.

    The next layer keeps its bias. The returned model is physically smaller.
    """
    import copy

    import torch

    linears = linear_layers(model)
    if position not in linears or position == linears[-1]:
        raise fail("replace_layer_pair", "position",
                   f"the index of a Linear that has a next Linear (one of {linears[:-1]})",
                   position)
    after = linears[linears.index(position) + 1]
    first, second = model[position], model[after]
    W_in, b_in, W_out = coreset.pruned()
    new = copy.deepcopy(model)
    small_in = torch.nn.Linear(first.in_features, W_in.shape[0])
    small_out = torch.nn.Linear(W_in.shape[0], second.out_features)
    with torch.no_grad():
        small_in.weight.copy_(torch.as_tensor(W_in))
        small_in.bias.copy_(torch.as_tensor(b_in))
        small_out.weight.copy_(torch.as_tensor(W_out))
        small_out.bias.copy_(second.bias)
    new[position], new[after] = small_in, small_out
    return new


def layer_pair_modules(W_in: Any, b_in: Any, W_out: Any, *, activation: Any = "relu") -> Any:
    """``x -> W_out phi(W_in x + b_in)`` as a float64 ``nn.Sequential``.

    The next layer's pre-activation without its bias: the function ``F`` of
    the guarantees. The modules live on the device of torch inputs.

    Examples
    --------
    >>> import numpy as np
    >>> net = layer_pair_modules(np.eye(2), np.zeros(2), np.array([[1.0, -1.0]]))
    >>> net
    Sequential(
      (0): Linear(in_features=2, out_features=2, bias=True)
      (1): ReLU()
      (2): Linear(in_features=2, out_features=1, bias=False)
    )
    """
    import torch

    from ._validation import check_layer
    from .activations import get_activation

    act = get_activation(activation)
    if act.torch_module is None:
        raise fail("layer_pair_modules", "activation", "an activation with a torch_module",
                   act.name)
    _, W_in, b_in, W_out = check_layer("layer_pair_modules", W_in, b_in, W_out)
    tensors = [torch.as_tensor(a).detach().to(torch.float64) for a in (W_in, b_in, W_out)]
    n, d = tensors[0].shape
    first = torch.nn.Linear(d, n, dtype=torch.float64, device=tensors[0].device)
    second = torch.nn.Linear(n, tensors[2].shape[0], bias=False, dtype=torch.float64,
                             device=tensors[0].device)
    with torch.no_grad():
        first.weight.copy_(tensors[0])
        first.bias.copy_(tensors[1])
        second.weight.copy_(tensors[2])
    return torch.nn.Sequential(first, act.torch_module(), second).requires_grad_(False)
