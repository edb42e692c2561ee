"""One layer pair ``F(x) = W_out phi(W_in x + b_in)``: its value, its scale, its modules.

The one place where ``F`` (the next layer's pre-activation without its bias,
the function every guarantee bounds), ``T_i`` (the unit of the additive
bound) and the torch modules of a layer pair are computed. Search, audit,
verdict and network call these instead of writing their own.

numpy only at import time; torch is imported by :func:`layer_pair_modules`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_layer, fail, import_torch, to_numpy
from ..activations import Activation, get_activation
from ..sensitivity import envelope

__all__ = ["layer_pair_forward", "layer_pair_modules", "layer_pair_scale"]


def _float64_pair(func: str, W_in: Any, b_in: Any, W_out: Any) -> tuple[np.ndarray, ...]:
    """Validated shapes and dtypes; float64 numpy copies of the three arrays."""
    _, W_in, b_in, W_out = check_layer(func, W_in, b_in, W_out)
    return tuple(np.array(to_numpy(a), dtype=np.float64) for a in (W_in, b_in, W_out))


def _batch(func: str, x: Any, d: int) -> np.ndarray:
    """``x`` as a float64 (b, d) array; a single input (d,) becomes (1, d)."""
    try:
        arr = np.asarray(to_numpy(x), dtype=np.float64)
    except (TypeError, ValueError):
        raise fail(func, "x", f"an array of shape (d,) or (b, d) with d = {d}",
                   type(x).__name__) from None
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != d:
        raise fail(func, "x", f"an array of shape (d,) or (b, d) with d = {d} "
                   "(columns of W_in)", f"shape {tuple(np.shape(x))}")
    return arr


def layer_pair_forward(
    W_in: Any, b_in: Any, W_out: Any, x: Any, activation: str | Activation = "relu"
) -> np.ndarray:
    """``F(x) = W_out phi(W_in x + b_in)`` in float64 numpy, for one input or a batch.

    Parameters
    ----------
    W_in : array, shape (n, d)
    b_in : array, shape (n,)
    W_out : array, shape (k, n)
        numpy or torch (not mixed), float32 or float64; computed in float64.
    x : array, shape (d,) or (b, d)
    activation : str or Activation

    Returns
    -------
    ndarray of float64, shape (b, k)
        ``b = 1`` for a single input. Non-finite weights give non-finite
        values (not refused: the audit uses this to expose a broken pruner).

    Notes
    -----
    ``phi`` is the activation the theorems use (``Activation.__call__``);
    :func:`layer_pair_modules` computes with torch's module, which differs
    from it only for Softplus, by at most ``Activation.module_slack``.

    Examples
    --------
    >>> import numpy as np
    >>> layer_pair_forward(np.eye(2), np.zeros(2), np.array([[1.0, -1.0]]),
    ...                    np.array([2.0, -3.0]))
    array([[2.]])
    """
    func = "layer_pair_forward"
    act = get_activation(activation)
    W_in, b_in, W_out = _float64_pair(func, W_in, b_in, W_out)
    xb = _batch(func, x, W_in.shape[1])
    with np.errstate(all="ignore"):
        return np.asarray(act(xb @ W_in.T + b_in) @ W_out.T, dtype=np.float64)


def layer_pair_scale(
    W_in: Any, b_in: Any, W_out: Any, *, beta: float, activation: str | Activation = "relu"
) -> np.ndarray:
    """``T_i = sum_j |W_out[i, j]| max(|phi_lo[j]|, |phi_hi[j]|)`` on the ball, (k,).

    The largest ``|F_i(x)|`` the triangle inequality allows for
    ``||x|| <= beta``: the unit of the additive bound ``|F_i - F~_i| <=
    epsilon T_i``. The envelope is :func:`coreset_verify.sensitivity.envelope`
    (one place), evaluated in float64.

    Returns
    -------
    ndarray of float64, shape (k,)
        ``T_i = 0`` for an output that is 0 on the whole ball; callers that
        divide by it decide what to do with those.

    Raises
    ------
    AssumptionError
        If the activation is not non-decreasing.
    InvalidArgumentError
        Bad shapes or dtypes, non-finite weights, ``beta`` not a finite
        number > 0, or a scale too large for float64.

    Examples
    --------
    >>> import numpy as np
    >>> layer_pair_scale(np.array([[3.0, 4.0]]), np.array([-1.0]),
    ...                  np.array([[2.0], [-1.0]]), beta=1.0)
    array([8., 4.])
    """
    func = "layer_pair_scale"
    W_in, b_in, W_out = _float64_pair(func, W_in, b_in, W_out)
    env = envelope(W_in, b_in, beta=beta, activation=activation)
    if not np.all(np.isfinite(W_out)):
        bad = tuple(int(v) for v in np.argwhere(~np.isfinite(W_out))[0])
        raise fail(func, "W_out", "finite", f"W_out[{bad[0]}, {bad[1]}] = {W_out[bad]}")
    with np.errstate(over="ignore", invalid="ignore"):
        scale = np.abs(W_out) @ env
    if not np.all(np.isfinite(scale)):
        raise fail(func, "W_out", "weights whose scale T_i = sum_j |W_out[i, j]| env_j "
                   "is finite in float64 (rescale the weights)",
                   f"T = {scale[~np.isfinite(scale)][0]}")
    return scale


def layer_pair_modules(W_in: Any, b_in: Any, W_out: Any, *,
                       activation: str | Activation = "relu") -> Any:
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
    torch = import_torch()
    func = "layer_pair_modules"
    act = get_activation(activation)
    if act.torch_module is None:
        raise fail(func, "activation", "an activation with a torch_module", act.name)
    _, W_in, b_in, W_out = check_layer(func, W_in, b_in, W_out)
    tensors = [torch.as_tensor(a).detach().to(torch.float64) for a in (W_in, b_in, W_out)]
    n, d = tensors[0].shape
    device = tensors[0].device
    first = torch.nn.Linear(d, n, dtype=torch.float64, device=device)
    second = torch.nn.Linear(n, tensors[2].shape[0], bias=False, dtype=torch.float64,
                             device=device)
    with torch.no_grad():
        first.weight.copy_(tensors[0])
        first.bias.copy_(tensors[1])
        second.weight.copy_(tensors[2])
    return torch.nn.Sequential(first, act.torch_module(), second).requires_grad_(False)
