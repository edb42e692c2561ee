"""prune_network: every hidden layer of an MLP pruned by the coreset, re-weighted."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

from .._validation import check_exactly_one, check_open_unit, check_positive, check_rng, fail
from ..coreset import layer_coreset
from ..errors import InvalidArgumentError
from ..guarantees import KINDS, sample_size_for, theoretical_bound
from ..sensitivity import layer_sensitivities
from .bounds import input_radius, module_slack, propagation
from .conv_model import has_image_layers
from .reading import Weights, count, position_of, read, rebuild
from .records import PrunedLayer, PrunedNetwork

__all__ = ["ORDERS", "prune_network"]

ORDERS = ("bottom-up", "top-down")


def _check_budget(func: str, keep: Any, epsilon: Any) -> tuple[str, float]:
    check_exactly_one(func, keep=(keep, "fraction of neurons, or {'params': fraction}"),
                      epsilon=(epsilon, "target error per layer"))
    if epsilon is not None:
        return "epsilon", check_open_unit(epsilon, "epsilon", func)
    if isinstance(keep, Mapping):
        if set(keep) != {"params"}:
            raise fail(func, "keep", "a float in (0, 1] or a dict {'params': fraction}",
                       keep)
        keep, mode = keep["params"], "params"
    else:
        mode = "keep"
    ok = (isinstance(keep, numbers.Real) and not isinstance(keep, bool)
          and 0 < keep <= 1)
    if not ok:
        raise fail(func, "keep", "a float in (0, 1] or a dict {'params': f} with f in (0, 1]",
                   keep)
    return mode, float(keep)


def _neurons(q: float, n: int) -> int:
    return min(n, max(1, math.floor(q * n + 0.5)))


def _params_for(q: float, weights: list[Weights]) -> int:
    sizes = [weights[0].W.shape[1]] + [_neurons(q, w.W.shape[0]) for w in weights[:-1]]
    sizes.append(weights[-1].W.shape[0])
    return sum(a * b + (b if w.has_bias else 0)
               for a, b, w in zip(sizes[:-1], sizes[1:], weights, strict=True))


def _targets(mode: str, value: float, weights: list[Weights]) -> list[int | None]:
    """Neurons to keep per hidden layer (None: chosen by epsilon)."""
    hidden = [w.W.shape[0] for w in weights[:-1]]
    if mode == "epsilon":
        return [None] * len(hidden)
    if mode == "params":
        value = largest_fraction(value, lambda q: _params_for(q, weights))
    return [_neurons(value, n) for n in hidden]


def largest_fraction(value: float, params_for: Any) -> float:
    """The largest common fraction q (by bisection) with ``params_for(q) <=
    value * params_for(1)``."""
    goal = value * params_for(1.0)
    low, high = 0.0, 1.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if params_for(mid) <= goal else (low, mid)
    return low


def dense_choice(W_in, b_in, W_out, act, *, radius, target, mode, value, share, kind, rng):
    """The kept neurons of one dense layer pair and its re-weighted ``W_out``.

    Returns ``(kept, weight_out, coreset, bound, sensitivities)``; ``coreset``
    and ``bound`` are None on the exact paths (every neuron, or every live one).
    """
    n = W_in.shape[0]
    sens = layer_sensitivities(W_in, b_in, W_out, beta=radius, activation=act)
    live = np.flatnonzero(sens.sensitivity > 0)
    if mode != "epsilon" and target >= n:
        return np.arange(n), W_out, None, None, sens
    if mode != "epsilon" and target >= live.size:
        return live, W_out[:, live], None, None, sens
    if mode == "epsilon":
        m = sample_size_for(W_in, b_in, W_out, epsilon=value, delta=share,
                            activation=act, beta=radius, kind=kind)
        coreset = layer_coreset(W_in, b_in, W_out, sample_size=m, activation=act,
                                beta=radius, rng=rng)
    else:
        coreset = layer_coreset(W_in, b_in, W_out, distinct=target, activation=act,
                                beta=radius, rng=rng)
    bound = theoretical_bound(coreset, delta=share, kind=kind)
    return (np.asarray(coreset.indices), np.asarray(coreset.weight_out), coreset, bound,
            sens)


def _prune_layer(func, weights, acts, layer, *, beta, target, mode, value, share, kind,
                 rng, step, position) -> PrunedLayer:
    """Prune hidden layer ``layer`` of ``weights`` in place; return its record."""
    act = acts[layer]
    W_in, b_in, W_out = weights[layer].W, weights[layer].b, weights[layer + 1].W
    radius = input_radius(weights, acts, beta, layer)
    n = W_in.shape[0]
    kept, weight_out, coreset, bound, sens = dense_choice(
        W_in, b_in, W_out, act, radius=radius, target=target, mode=mode, value=value,
        share=share, kind=kind, rng=rng)
    weights[layer] = Weights(W_in[kept], b_in[kept], weights[layer].has_bias)
    weights[layer + 1] = Weights(np.array(weight_out), weights[layer + 1].b,
                                  weights[layer + 1].has_bias)
    return PrunedLayer(
        position=position, activation=act, n_before=n, n_after=int(kept.size),
        kept=kept.astype(np.int64), radius=radius, coreset=coreset, bound=bound,
        epsilon=0.0 if bound is None else float(bound.epsilon),
        scale=np.asarray(sens.scale, dtype=np.float64),
        propagation=propagation(weights, acts, layer), delta=share, step=step,
    )


def prune_network(
    model: Any,
    *,
    keep: float | Mapping[str, float] | None = None,
    epsilon: float | None = None,
    delta: float = 0.1,
    beta: float,
    rng: int | np.random.Generator | None = None,
    order: str = "bottom-up",
    kind: str = "uniform",
    input_shape: tuple[int, int, int] | None = None,
) -> PrunedNetwork:
    """Prune every hidden layer of an MLP with the coreset and re-weight the next.

    Hidden layer l (the outputs of the l-th Linear) is the layer pair
    ``W_in`` = rows of that Linear, ``W_out`` = the next Linear's weight; its
    kept neurons and re-weighted ``W_out`` come from
    :func:`~coreset_verify.layer_coreset` on the ball of radius ``radius_l``,
    a sound bound on the norm of that Linear's input for ``||x|| <= beta``.

    Parameters
    ----------
    model : torch.nn.Sequential
        Linear layers with one activation between two (ReLU, LeakyReLU with
        ``negative_slope >= 0``, Sigmoid, Tanh, Softplus with any ``beta > 0``,
        ELU with ``alpha >= 0``), ending with a Linear; nested Sequentials are
        flattened, Flatten, Identity and Dropout pass through (Dropout as in
        eval mode: the identity). Parameters float32 or float64 (float16 and
        bfloat16 are refused). Not modified.
    keep : float in (0, 1] or {"params": f}, optional
        A float: the fraction of neurons kept in each hidden layer, drawn with
        ``distinct=round(keep * n)``. ``{"params": f}``: one common fraction of
        neurons, the largest (by bisection) whose parameter count is at most
        ``f`` times the model's; the achieved fraction is
        :attr:`PrunedNetwork.param_fraction`. When the count asked for is at
        least the number of live neurons (positive sensitivity on the ball),
        no sampling is done: the live neurons are kept with their weights
        unchanged, which is exact on the ball (and ``keep=1.0`` returns the
        same function everywhere).
    epsilon : float in (0, 1), optional
        Per-layer target: each layer gets ``sample_size_for(..., epsilon,
        delta / (L - 1), kind=kind)`` i.i.d. draws. Exactly one of ``keep``
        and ``epsilon``.
    delta : float in (0, 1), default 0.1
        Failure probability of the whole network, split equally over the
        ``L - 1`` hidden layers (a union bound; proofs_notes/network.md).
    beta : float
        Radius of the input ball ``||x||_2 <= beta`` (flattened inputs).
    rng : int, numpy.random.Generator or None
        Normalised once; hidden layer l draws from the l-th of ``rng.spawn``,
        whatever the order.
    order : {"bottom-up", "top-down"}
        Bottom-up prunes the first hidden layer first, and later layers see
        the re-weighted weights and the pruned layers below; top-down starts
        with the last hidden layer.
    kind : {"uniform", "pointwise", "paper"}
        The theorem of each layer's :class:`~coreset_verify.Bound`. Only
        ``"uniform"`` makes :func:`composed_bound` hold for every input at once.
    input_shape : (C, H, W), optional
        For a convolutional model that takes images (B, C, H, W); a model that
        starts with ``nn.Unflatten(1, (C, H, W))`` takes flat vectors and needs
        none. A model with a Conv2d, BatchNorm2d, pooling or Unflatten (or
        given ``input_shape``) is pruned channel by channel
        (:func:`~coreset_verify.network.conv_prune.prune_conv_network`): the
        grammar ``[Unflatten] (Conv2d [BatchNorm2d] phi [MaxPool2d |
        AvgPool2d])+ Flatten (Linear phi)* Linear``, ``keep=`` only, kind
        ``"uniform"`` or ``"pointwise"``; beta bounds the norm of the whole
        input image.

    Returns
    -------
    PrunedNetwork

    Notes
    -----
    proofs_notes/network.md: Lemma R (radii), Lemma P (propagation),
    Theorem N (the composed bound, :func:`composed_bound`).

    Examples
    --------
    >>> from coreset_verify.models import mlp
    >>> from coreset_verify.network import composed_bound
    >>> net = mlp([8, 40, 20, 3], seed=0)
    >>> p = prune_network(net, keep=0.5, beta=1.0, rng=0)
    >>> [(la.n_before, la.n_after) for la in p.layers]
    [(40, 20), (20, 10)]
    >>> composed_bound(p).shape
    (3,)
    """
    func = "prune_network"
    if input_shape is not None or has_image_layers(model):
        from .conv_prune import prune_conv_network

        return prune_conv_network(model, _check_budget(func, keep, epsilon), delta=delta,
                                  beta=beta, rng=rng, order=order, kind=kind,
                                  input_shape=input_shape)
    mlp, weights = read(model, func)
    acts = list(mlp.activations)
    _check_activations(func, mlp)
    beta = check_positive(beta, "beta", func)
    delta = check_open_unit(delta, "delta", func)
    if order not in ORDERS:
        raise fail(func, "order", f"one of {list(ORDERS)}", order)
    if kind not in KINDS:
        raise fail(func, "kind", f"one of {list(KINDS)}", kind)
    mode, value = _check_budget(func, keep, epsilon)
    rng = check_rng(rng, func)
    slack = module_slack(weights, acts)
    hidden = len(weights) - 1
    streams = rng.spawn(hidden)
    targets = _targets(mode, value, weights)
    records = run_steps(func, order, [op.name for op in mlp.linears[:-1]], lambda layer, step:
                        _prune_layer(func, weights, acts, layer, beta=beta,
                                     target=targets[layer], mode=mode, value=value,
                                     share=delta / hidden, kind=kind, rng=streams[layer],
                                     step=step, position=position_of(mlp.linears[layer].path)))
    pruned = rebuild(model, mlp, weights)
    return PrunedNetwork(
        model=pruned, layers=records,
        params_before=count(model), params_after=count(pruned), beta=beta,
        delta=delta, order=order, kind=kind, target=f"{mode}={value:g}",
        module_slack=slack + module_slack(weights, acts),
    )


def run_steps(func: str, order: str, names: list[str], prune_one: Any) -> tuple[Any, ...]:
    """``prune_one(layer, step)`` for each hidden layer in ``order``; the records in
    network order. An InvalidArgumentError is re-raised naming the layer."""
    hidden = len(names)
    steps = range(hidden) if order == "bottom-up" else range(hidden - 1, -1, -1)
    records: list[Any] = [None] * hidden
    for step, layer in enumerate(steps):
        try:
            records[layer] = prune_one(layer, step)
        except InvalidArgumentError as exc:
            raise type(exc)(f"{func}, hidden layer {layer} ({names[layer]}): {exc}") from None
    return tuple(records)


def _check_activations(func: str, mlp) -> None:
    """The theorems need non-decreasing activations (LeakyReLU slope >= 0, ELU alpha >= 0)."""
    for op in mlp.activation_ops:
        if not op.activation.is_nondecreasing:
            raise fail(func, op.name, "a non-decreasing activation (ReLU, LeakyReLU with "
                       "negative_slope >= 0, Sigmoid, Tanh, Softplus, ELU with alpha >= 0)",
                       op.activation.name)
