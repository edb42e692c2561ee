"""Pruned torch networks built from layer coresets.

:func:`prune_network` prunes every hidden layer of an ``nn.Sequential`` MLP with
:func:`~coreset_verify.layer_coreset` and returns a physically smaller model
with the guarantee of each layer (:class:`PrunedNetwork`);
:func:`composed_bound` turns those into a bound on the whole network's output
(proofs_notes/network.md). :func:`load_model` and :func:`save_model` move
models through files without unpickling code; :func:`to_masks` gives the
``torch.nn.utils.prune`` view of a pruned network.

torch is imported inside the functions that need it.
"""

from __future__ import annotations

import copy
import math
import numbers
import os
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._validation import check_int, check_open_unit, check_positive, check_rng, fail
from ._validation import import_torch as _torch
from .activations import Activation, get_activation
from .coreset import LayerCoreset, layer_coreset
from .errors import InvalidArgumentError
from .guarantees import KINDS, Bound, sample_size_for, theoretical_bound
from .nets.layer_pair import layer_pair_modules
from .sensitivity import layer_sensitivities

__all__ = [
    "ORDERS",
    "PrunedLayer",
    "PrunedNetwork",
    "composed_bound",
    "layer_pair_modules",
    "layer_pair_of",
    "linear_layers",
    "load_model",
    "prune_network",
    "replace_layer_pair",
    "save_model",
    "select_neurons",
    "to_masks",
]

ORDERS = ("bottom-up", "top-down")

# Relative outward margin on every propagated radius: covers float64 rounding
# in the interval arithmetic (a few ulps per operation; proofs_notes/network.md).
_RADIUS_MARGIN = 1e-9


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


# --------------------------------------------------------------------------
# Reading an nn.Sequential: which modules, which activations


_SUPPORTED = "Linear, ReLU, LeakyReLU, Sigmoid, Tanh, Softplus, ELU, Flatten and Dropout"


def _supported_classes() -> list[type]:
    """The torch.nn classes this toolkit reads (and allow-lists for loading)."""
    nn = _torch().nn
    return [nn.Sequential, nn.Linear, nn.ReLU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh,
            nn.Softplus, nn.ELU, nn.Flatten, nn.Dropout]


def _leaky_relu(slope: float) -> Activation:
    """LeakyReLU with a slope other than the registered 0.01 (not registered)."""
    def function(z, xp):
        return xp.where(z >= 0, z, slope * z)

    def build():
        return _torch().nn.LeakyReLU(negative_slope=slope)

    return Activation(f"leaky_relu(negative_slope={slope})", function, True, slope == 0,
                      False, max(1.0, slope), build)


def _activation_of(module: Any, where: str, func: str) -> Activation | None:
    """The :class:`Activation` of a torch module, or None if it is not one."""
    nn = _torch().nn
    kind = type(module)
    simple = {nn.ReLU: "relu", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh"}
    if kind in simple:
        return get_activation(simple[kind])
    if kind is nn.LeakyReLU:
        slope = float(module.negative_slope)
        if not (math.isfinite(slope) and slope >= 0):
            raise fail(func, where, "a LeakyReLU with negative_slope >= 0 (non-decreasing)",
                       module)
        return get_activation("leaky_relu") if slope == 0.01 else _leaky_relu(slope)
    if kind is nn.Softplus:
        if float(module.beta) != 1.0 or float(module.threshold) < 20:
            raise fail(func, where, "a Softplus with beta=1 and threshold >= 20 (the "
                       "registered 'softplus')", module)
        return get_activation("softplus")
    if kind is nn.ELU:
        if float(module.alpha) != 1.0:
            raise fail(func, where, "an ELU with alpha=1.0 (the registered 'elu')", module)
        return get_activation("elu")
    return None


def _parse(model: Any, func: str, name: str = "model") -> tuple[list[int], list[Activation]]:
    """``(positions of the Linears, activation after each hidden Linear)``.

    Layout: [Flatten] Linear (act [Dropout...]) ... Linear, with Dropout
    anywhere and exactly one supported activation between two Linears.
    """
    torch = _torch()
    nn = torch.nn
    if not isinstance(model, nn.Sequential):
        raise fail(func, name, f"a torch.nn.Sequential of {_SUPPORTED} layers",
                   type(model).__name__)
    linears: list[int] = []
    acts: list[Activation | None] = []
    for i, module in enumerate(model):
        where = f"{name}[{i}]"
        if type(module) is nn.Linear:
            if linears and acts[-1] is None:
                raise fail(func, where, "preceded by an activation (two Linears in a row "
                           "cannot be pruned as a layer pair)", module)
            if linears and model[linears[-1]].out_features != module.in_features:
                raise fail(func, where, f"a Linear with in_features="
                           f"{model[linears[-1]].out_features}", module)
            linears.append(i)
            acts.append(None)
        elif type(module) is nn.Dropout:
            continue
        elif type(module) is nn.Flatten:
            if linears:
                raise fail(func, where, "a Flatten before the first Linear only", module)
        else:
            act = _activation_of(module, where, func)
            if act is None:
                raise fail(func, where, f"one of the supported layers ({_SUPPORTED})",
                           module)
            if not linears or acts[-1] is not None:
                raise fail(func, where, "an activation directly after a Linear "
                           "(one per hidden layer)", module)
            acts[-1] = act
    if len(linears) < 2:
        raise fail(func, name, "a network with at least two Linear layers (one hidden "
                   "layer to prune)", f"{len(linears)} Linear layer(s)")
    if acts[-1] is not None:
        raise fail(func, name, "a network ending with a Linear (its outputs, e.g. logits)",
                   f"a final {type(model[len(model) - 1]).__name__}")
    return linears, [a for a in acts[:-1] if a is not None]


@dataclass
class _Weights:
    """One Linear as float64 numpy: ``W`` (out, in), ``b`` (out,)."""

    W: np.ndarray
    b: np.ndarray
    has_bias: bool


def _read(model: Any, linears: list[int]) -> list[_Weights]:
    out = []
    for p in linears:
        lin = model[p]
        W = lin.weight.detach().cpu().to(_torch().float64).numpy().copy()
        has_bias = lin.bias is not None
        b = (lin.bias.detach().cpu().to(_torch().float64).numpy().copy() if has_bias
             else np.zeros(W.shape[0]))
        out.append(_Weights(W, b, has_bias))
    return out


def _rebuild(model: Any, linears: list[int], weights: list[_Weights]) -> Any:
    """A deep copy of ``model`` with its Linears replaced by ``weights``."""
    torch = _torch()
    new = copy.deepcopy(model)
    for p, w in zip(linears, weights, strict=True):
        old = model[p].weight
        lin = torch.nn.Linear(w.W.shape[1], w.W.shape[0], bias=w.has_bias,
                              dtype=old.dtype, device=old.device)
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(w.W))
            if w.has_bias:
                lin.bias.copy_(torch.as_tensor(w.b))
        new[p] = lin
    return new.eval()


def layer_pair_of(model: Any, position: int) -> tuple[tuple[np.ndarray, ...], str]:
    """``((W_in, b_in, W_out), activation name)`` of the hidden layer after ``model[position]``.

    ``W_in``, ``b_in`` are the Linear at ``position``, ``W_out`` the next
    Linear's weight; float64 numpy copies.
    """
    linears, acts = _parse(model, "layer_pair_of")
    if position not in linears[:-1]:
        raise fail("layer_pair_of", "position",
                   f"the index of a hidden Linear (one of {linears[:-1]})", position)
    i = linears.index(position)
    first, second = _read(model, [position, linears[i + 1]])
    return (first.W, first.b, second.W), acts[i].name


def _count(model: Any) -> int:
    return int(sum(p.numel() for p in model.parameters()))


# --------------------------------------------------------------------------
# Interval propagation and the Lipschitz propagation of an error


def _boxes(
    weights: list[_Weights], acts: list[Activation], beta: float, upto: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Boxes ``[lo, hi]`` holding each hidden layer's output for ``||x|| <= beta``.

    Hidden layers ``0 .. upto-1``. The first pre-activation interval is exact
    (``b_j +- beta ||w_j||``); later ones by interval arithmetic
    (proofs_notes/network.md, Lemma R).
    """
    reach = beta * np.linalg.norm(weights[0].W, axis=1)
    lo, hi = weights[0].b - reach, weights[0].b + reach
    boxes = []
    for q in range(upto):
        if q > 0:
            mid, rad = (lo + hi) / 2, (hi - lo) / 2
            center = weights[q].W @ mid + weights[q].b
            spread = np.abs(weights[q].W) @ rad
            lo, hi = center - spread, center + spread
        lo, hi = acts[q](lo), acts[q](hi)
        boxes.append((lo, hi))
    return boxes


def _input_radius(weights, acts, beta: float, layer: int) -> float:
    """Sound bound on ``||input of Linear layer||`` over the ball (Lemma R)."""
    if layer == 0:
        return beta
    lo, hi = _boxes(weights, acts, beta, layer)[-1]
    radius = float(np.linalg.norm(np.maximum(np.abs(lo), np.abs(hi))))
    return radius * (1 + _RADIUS_MARGIN) + np.finfo(np.float64).tiny


def _propagation(weights, acts, layer: int) -> np.ndarray:
    """``P`` (k_out, n_{layer+1}), entrywise >= 0: an error ``|e| <= E`` at the
    output of Linear ``layer + 1`` gives ``|output error| <= P E`` (Lemma P)."""
    P = np.eye(weights[layer + 1].W.shape[0])
    for q in range(layer + 1, len(weights) - 1):
        P = np.abs(weights[q + 1].W) @ (acts[q].lipschitz * P)
    return P


# --------------------------------------------------------------------------
# prune_network


@dataclass(frozen=True)
class PrunedLayer:
    """How one hidden layer was pruned.

    Attributes
    ----------
    position : int
        Index in the ``nn.Sequential`` of the Linear whose output neurons these are.
    activation : Activation
    n_before, n_after : int
        Neurons before and after.
    kept : ndarray of int64, shape (n_after,)
        Kept neurons, numbered as in the original model.
    radius : float
        Radius of the ball the coreset was built on: a sound bound on the norm
        of this Linear's input for ``||x|| <= beta``, in the network as it was
        when this layer was pruned (the returned model for ``"bottom-up"``,
        the original one for ``"top-down"``).
    coreset : LayerCoreset or None
        None when every live neuron was kept with its weights unchanged (exact).
    bound : Bound or None
        ``theoretical_bound(coreset, delta=delta, kind=kind)``; None when exact.
    epsilon : float
        ``bound.epsilon``, 0.0 when exact.
    scale : ndarray, shape (k,)
        ``T_i`` of the layer pair (k = neurons of the next Linear at that time).
    propagation : ndarray, shape (k_out, k)
        Lemma P's matrix from this layer pair's output to the network output.
    delta : float
        This layer's share of the failure probability.
    step : int
        When this layer was pruned (0 first).
    """

    position: int
    activation: Activation
    n_before: int
    n_after: int
    kept: np.ndarray = field(repr=False)
    radius: float
    coreset: LayerCoreset | None = field(repr=False)
    bound: Bound | None = field(repr=False)
    epsilon: float
    scale: np.ndarray = field(repr=False)
    propagation: np.ndarray = field(repr=False)
    delta: float
    step: int

    @property
    def exact(self) -> bool:
        """True when the layer's function on the ball is unchanged."""
        return self.coreset is None


@dataclass(frozen=True)
class PrunedNetwork:
    """A physically smaller network and the guarantees of its layers.

    Attributes
    ----------
    model : torch.nn.Sequential
        The pruned model (eval mode, dtype and device of the original).
    layers : tuple of PrunedLayer
        One per hidden layer, in network order.
    params_before, params_after : int
        Parameter counts of the original and the pruned model.
    beta, delta : float
    order, kind : str
    target : str
        What was asked: ``"keep=0.5"``, ``"params=0.1"`` or ``"epsilon=0.3"``.

    Properties: ``coresets``, ``bounds``, ``radii`` (one per hidden layer,
    network order), ``param_fraction``, ``compression``, ``compression_ratio``.
    The bound on the whole output is :func:`composed_bound`.
    """

    model: Any
    layers: tuple[PrunedLayer, ...]
    params_before: int
    params_after: int
    beta: float
    delta: float
    order: str
    kind: str
    target: str

    @property
    def coresets(self) -> tuple[LayerCoreset | None, ...]:
        return tuple(layer.coreset for layer in self.layers)

    @property
    def bounds(self) -> tuple[Bound | None, ...]:
        return tuple(layer.bound for layer in self.layers)

    @property
    def radii(self) -> tuple[float, ...]:
        """Input radius of each pruned layer (``beta`` for the first)."""
        return tuple(layer.radius for layer in self.layers)

    @property
    def param_fraction(self) -> float:
        """``params_after / params_before``."""
        return self.params_after / self.params_before

    @property
    def compression(self) -> float:
        """``1 - params_after / params_before`` (the paper's "90% compression")."""
        return 1.0 - self.param_fraction

    @property
    def compression_ratio(self) -> float:
        """``params_before / params_after`` (10 for 90% compression)."""
        return self.params_before / self.params_after

    def __repr__(self) -> str:
        sizes = ", ".join(f"{la.n_before}->{la.n_after}" for la in self.layers)
        return (f"PrunedNetwork(hidden {sizes}, params {self.params_before}->"
                f"{self.params_after}, order={self.order!r}, kind={self.kind!r}, "
                f"{self.target})")


def _check_budget(func: str, keep: Any, epsilon: Any) -> tuple[str, float]:
    if (keep is None) == (epsilon is None):
        raise InvalidArgumentError(
            f"{func} needs exactly one of keep (fraction of neurons, or "
            f"{{'params': fraction}}) and epsilon (target error per layer); got "
            f"keep={keep!r}, epsilon={epsilon!r}."
        )
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


def _params_for(q: float, weights: list[_Weights]) -> int:
    sizes = [weights[0].W.shape[1]] + [_neurons(q, w.W.shape[0]) for w in weights[:-1]]
    sizes.append(weights[-1].W.shape[0])
    return sum(a * b + (b if w.has_bias else 0)
               for a, b, w in zip(sizes[:-1], sizes[1:], weights, strict=True))


def _targets(mode: str, value: float, weights: list[_Weights]) -> list[int | None]:
    """Neurons to keep per hidden layer (None: chosen by epsilon)."""
    hidden = [w.W.shape[0] for w in weights[:-1]]
    if mode == "epsilon":
        return [None] * len(hidden)
    if mode == "params":
        goal = value * _params_for(1.0, weights)
        low, high = 0.0, 1.0  # largest common fraction whose count is <= goal
        for _ in range(60):
            mid = (low + high) / 2
            low, high = (mid, high) if _params_for(mid, weights) <= goal else (low, mid)
        value = low
    return [_neurons(value, n) for n in hidden]


def _prune_layer(func, weights, acts, layer, *, beta, target, mode, value, share, kind,
                 rng, step, position) -> PrunedLayer:
    """Prune hidden layer ``layer`` of ``weights`` in place; return its record."""
    act = acts[layer]
    W_in, b_in, W_out = weights[layer].W, weights[layer].b, weights[layer + 1].W
    radius = _input_radius(weights, acts, beta, layer)
    n = W_in.shape[0]
    sens = layer_sensitivities(W_in, b_in, W_out, beta=radius, activation=act)
    live = np.flatnonzero(sens.sensitivity > 0)
    coreset = bound = None
    if mode != "epsilon" and target >= n:
        kept, weight_out = np.arange(n), W_out
    elif mode != "epsilon" and target >= live.size:
        kept, weight_out = live, W_out[:, live]
    else:
        if mode == "epsilon":
            m = sample_size_for(W_in, b_in, W_out, epsilon=value, delta=share,
                                activation=act, beta=radius, kind=kind)
            coreset = layer_coreset(W_in, b_in, W_out, sample_size=m, activation=act,
                                    beta=radius, rng=rng)
        else:
            coreset = layer_coreset(W_in, b_in, W_out, distinct=target, activation=act,
                                    beta=radius, rng=rng)
        bound = theoretical_bound(coreset, delta=share, kind=kind)
        kept, weight_out = np.asarray(coreset.indices), np.asarray(coreset.weight_out)
    weights[layer] = _Weights(W_in[kept], b_in[kept], weights[layer].has_bias)
    weights[layer + 1] = _Weights(np.array(weight_out), weights[layer + 1].b,
                                  weights[layer + 1].has_bias)
    return PrunedLayer(
        position=position, activation=act, n_before=n, n_after=int(kept.size),
        kept=kept.astype(np.int64), radius=radius, coreset=coreset, bound=bound,
        epsilon=0.0 if bound is None else float(bound.epsilon),
        scale=np.asarray(sens.scale, dtype=np.float64),
        propagation=_propagation(weights, acts, layer), delta=share, step=step,
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
        ``negative_slope >= 0``, Sigmoid, Tanh, Softplus, ELU), ending with a
        Linear; Flatten (before the first Linear) and Dropout pass through
        (Dropout as in eval mode: the identity). Not modified.
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
    >>> net = mlp([8, 40, 20, 3], seed=0)
    >>> p = prune_network(net, keep=0.5, beta=1.0, rng=0)
    >>> [(la.n_before, la.n_after) for la in p.layers]
    [(40, 20), (20, 10)]
    >>> composed_bound(p).shape
    (3,)
    """
    func = "prune_network"
    linears, acts = _parse(model, func)
    beta = check_positive(beta, "beta", func)
    delta = check_open_unit(delta, "delta", func)
    if order not in ORDERS:
        raise fail(func, "order", f"one of {list(ORDERS)}", order)
    if kind not in KINDS:
        raise fail(func, "kind", f"one of {list(KINDS)}", kind)
    mode, value = _check_budget(func, keep, epsilon)
    rng = check_rng(rng, func)
    weights = _read(model, linears)
    hidden = len(linears) - 1
    streams = rng.spawn(hidden)
    targets = _targets(mode, value, weights)
    steps = range(hidden) if order == "bottom-up" else range(hidden - 1, -1, -1)
    records: list[PrunedLayer | None] = [None] * hidden
    for step, layer in enumerate(steps):
        try:
            records[layer] = _prune_layer(
                func, weights, acts, layer, beta=beta, target=targets[layer], mode=mode,
                value=value, share=delta / hidden, kind=kind, rng=streams[layer],
                step=step, position=linears[layer])
        except InvalidArgumentError as exc:
            raise type(exc)(f"{func}, hidden layer {layer} (model[{linears[layer]}]): "
                            f"{exc}") from None
    pruned = _rebuild(model, linears, weights)
    return PrunedNetwork(
        model=pruned, layers=tuple(r for r in records if r is not None),
        params_before=_count(model), params_after=_count(pruned), beta=beta,
        delta=delta, order=order, kind=kind, target=f"{mode}={value:g}",
    )


def composed_bound(pruned: PrunedNetwork) -> np.ndarray:
    """Bound on ``|f_i(x) - g_i(x)|`` for every output i and every ``||x|| <= beta``.

    ``f`` is the original network, ``g = pruned.model``. The sum over pruned
    layers of ``P_l (epsilon_l T_l)`` (Theorem N of proofs_notes/network.md).
    With ``kind="uniform"`` it holds for every x of the ball at once with
    probability ``>= 1 - delta`` over the draws; with ``"pointwise"`` for any
    one x fixed before the draws; ``"paper"`` is not a proof.

    Parameters
    ----------
    pruned : PrunedNetwork

    Returns
    -------
    ndarray of float64, shape (k_out,)
    """
    if not isinstance(pruned, PrunedNetwork):
        raise fail("composed_bound", "pruned", "a PrunedNetwork", type(pruned).__name__)
    total = np.zeros(pruned.layers[0].propagation.shape[0])
    for layer in pruned.layers:
        if layer.epsilon > 0:
            total += layer.propagation @ (layer.epsilon * layer.scale)
    return total


# --------------------------------------------------------------------------
# Baselines and masks


def select_neurons(
    model: Any, kept: Sequence[Any], *, scale: Sequence[Any] | None = None
) -> Any:
    """A smaller copy of ``model`` keeping the given neurons of each hidden layer.

    For baselines (uniform sampling, top-k): hidden layer l keeps the rows
    ``kept[l]`` of its Linear; the next Linear keeps those columns, multiplied
    by ``scale[l]`` when given.

    Parameters
    ----------
    model : torch.nn.Sequential
        As for :func:`prune_network`.
    kept : sequence of int arrays, one per hidden layer, shapes (r_l,)
        Neuron indices (original numbering); None keeps a layer whole.
    scale : sequence of float arrays of shapes (r_l,) or floats, optional

    Returns
    -------
    torch.nn.Sequential
    """
    func = "select_neurons"
    linears, _ = _parse(model, func)
    weights = _read(model, linears)
    hidden = len(linears) - 1
    if len(kept) != hidden:
        raise fail(func, "kept", f"a sequence of {hidden} index arrays (one per hidden "
                   "layer)", f"length {len(kept)}")
    scale = [None] * hidden if scale is None else list(scale)
    if len(scale) != hidden:
        raise fail(func, "scale", f"a sequence of {hidden} arrays or None",
                   f"length {len(scale)}")
    for layer, (idx, factor) in enumerate(zip(kept, scale, strict=True)):
        n = weights[layer].W.shape[0]
        idx = np.arange(n) if idx is None else np.asarray(idx, dtype=np.int64)
        if idx.ndim != 1 or idx.size == 0 or idx.min() < 0 or idx.max() >= n:
            raise fail(func, f"kept[{layer}]", f"a non-empty 1-D array of indices in "
                       f"[0, {n})", idx)
        w = weights[layer]
        weights[layer] = _Weights(w.W[idx], w.b[idx], w.has_bias)
        nxt = weights[layer + 1]
        cols = nxt.W[:, idx] * (1.0 if factor is None else np.asarray(factor, np.float64))
        weights[layer + 1] = _Weights(cols, nxt.b, nxt.has_bias)
    return _rebuild(model, linears, weights)


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
    torch = _torch()
    from torch.nn.utils import prune as tprune

    func = "to_masks"
    if not isinstance(pruned, PrunedNetwork):
        raise fail(func, "pruned", "a PrunedNetwork", type(pruned).__name__)
    if isinstance(original, torch.nn.Module) and tprune.is_pruned(original):
        raise fail(func, "original", "a model without torch.nn.utils.prune masks",
                   "a model that is already pruned")
    linears, _ = _parse(original, func, "original")
    mine = [la.position for la in pruned.layers]
    shapes = [original[p].out_features for p in linears[:-1]]
    if mine != linears[:-1] or shapes != [la.n_before for la in pruned.layers]:
        raise fail(func, "original", "the model that was given to prune_network "
                   f"(hidden Linears at {mine} with {[la.n_before for la in pruned.layers]} "
                   "neurons)", f"hidden Linears at {linears[:-1]} with {shapes} neurons")
    target = original if inplace else copy.deepcopy(original)
    first, last = original[linears[0]], original[linears[-1]]
    kept = ([np.arange(first.in_features)] + [la.kept for la in pruned.layers]
            + [np.arange(last.out_features)])
    for t, p in enumerate(linears):
        lin, small = target[p], pruned.model[p]
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


# --------------------------------------------------------------------------
# Files: no unpickling of code


def save_model(model: Any, path: str | os.PathLike) -> None:
    """Save a supported ``nn.Sequential`` with ``torch.save`` (for :func:`load_model`).

    Parameters
    ----------
    model : torch.nn.Sequential
        Made only of the layers :func:`prune_network` reads, so that
        :func:`load_model` can read it back with ``weights_only=True``.
    path : str or os.PathLike
    """
    torch = _torch()
    from torch.nn.utils import prune as tprune

    _parse(model, "save_model")
    if tprune.is_pruned(model):
        raise fail("save_model", "model", "a model without torch.nn.utils.prune masks "
                   "(call prune.remove on each pruned module first)", "a pruned model")
    torch.save(model, path)


def _architecture(arch: Any) -> tuple[list[int], str]:
    func = "load_model"
    expected = ("a list of layer sizes such as [784, 300, 100, 10], or "
                "{'sizes': [...], 'activation': 'relu'}")
    if isinstance(arch, Mapping):
        if "sizes" not in arch or not set(arch) <= {"sizes", "activation"}:
            raise fail(func, "architecture", expected, arch)
        sizes, activation = arch["sizes"], arch.get("activation", "relu")
    else:
        sizes, activation = arch, "relu"
    if isinstance(sizes, str | bytes) or not isinstance(sizes, Sequence) or len(sizes) < 2:
        raise fail(func, "architecture", expected, arch)
    sizes = [check_int(s, "architecture", func) for s in sizes]
    get_activation(activation)
    return sizes, activation


def _from_state_dict(state: Mapping[str, Any], architecture: Any) -> Any:
    torch = _torch()
    from .models import mlp

    if architecture is None:
        raise fail("load_model", "architecture", "the layer sizes (and activation) of the "
                   "MLP, needed to rebuild a model from a state_dict", None)
    sizes, activation = _architecture(architecture)
    model = mlp(sizes, activation=activation)
    tensors = [v for v in state.values() if isinstance(v, torch.Tensor)]
    if tensors and tensors[0].is_floating_point():
        model = model.to(tensors[0].dtype)
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidArgumentError(
            f"load_model: the state_dict does not fit architecture={architecture!r}: "
            f"{str(exc).strip()}"
        ) from None
    return model.eval()


def load_model(
    path_or_state_dict: str | os.PathLike | Mapping[str, Any],
    *,
    architecture: Sequence[int] | Mapping[str, Any] | None = None,
) -> Any:
    """Load a model without running code from the file.

    Always ``torch.load(..., weights_only=True)``: tensors, containers and
    exactly the ``torch.nn`` classes this toolkit reads (Sequential, Linear,
    ReLU, LeakyReLU, Sigmoid, Tanh, Softplus, ELU, Flatten, Dropout) are
    allow-listed; a file whose unpickling needs anything else (a custom
    class, a function call such as ``os.system``) is refused.

    Parameters
    ----------
    path_or_state_dict : path or mapping
        A file written by :func:`save_model` (or ``torch.save`` of such an
        ``nn.Sequential``), a file holding a state_dict, or a state_dict.
    architecture : list of int or {"sizes": [...], "activation": str}, optional
        For a state_dict: the layer sizes of the MLP (:func:`~coreset_verify.models.mlp`
        layout, keys ``"0.weight"``, ``"0.bias"``, ``"2.weight"``, ...).

    Returns
    -------
    torch.nn.Sequential
        In eval mode, on the CPU.

    Raises
    ------
    InvalidArgumentError
        If the file needs unpickling of code, holds something else, or the
        state_dict does not fit ``architecture``.
    """
    torch = _torch()
    func = "load_model"
    if isinstance(path_or_state_dict, Mapping):
        return _from_state_dict(path_or_state_dict, architecture)
    if not isinstance(path_or_state_dict, str | os.PathLike):
        raise fail(func, "path_or_state_dict", "a path or a state_dict",
                   type(path_or_state_dict).__name__)
    try:
        with torch.serialization.safe_globals(_supported_classes()):
            obj = torch.load(path_or_state_dict, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[-1][:300]
        raise InvalidArgumentError(
            f"load_model refused {os.fspath(path_or_state_dict)!r}: it needs unpickling of "
            f"objects other than tensors and the supported torch.nn layers ({_SUPPORTED}), "
            f"which could run code. Save the model with save_model, or save its "
            f"state_dict and pass architecture=. ({first})"
        ) from None
    if isinstance(obj, Mapping):
        return _from_state_dict(obj, architecture)
    if isinstance(obj, torch.nn.Sequential):
        if architecture is not None:
            raise fail(func, "architecture", "None for a file holding a whole nn.Sequential",
                       architecture)
        _parse(obj, func, "the loaded model")
        return obj.eval()
    raise fail(func, "path_or_state_dict", "a file holding an nn.Sequential or a state_dict",
               f"a file holding {type(obj).__name__}")
