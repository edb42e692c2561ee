"""Shared pieces of the audit: layers, forward passes, inputs on the ball.

Everything here is float64 numpy. A *layer* is a triple ``(W_in, b_in,
W_out)`` of shapes (n, d), (n,), (k, n); the function audited is
``F(x) = W_out phi(W_in x + b_in)`` (the next layer's pre-activation without
its bias), the ``F`` of DESIGN.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validation import check_layer, check_positive, fail
from ..activations import Activation, get_activation

__all__ = [
    "Layer",
    "Pruner",
    "ball_inputs",
    "default_layers",
    "forward",
    "named_layers",
    "relative_error",
    "scale_of",
]

#: A pruner: ``pruner(W_in, b_in, W_out, *, size, rng) -> (W_in', b_in', W_out')``.
Pruner = Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Layer:
    """A named layer pair the battery or a campaign runs pruners on.

    Attributes
    ----------
    name : str
    W_in : ndarray, shape (n, d), float64
    b_in : ndarray, shape (n,), float64
    W_out : ndarray, shape (k, n), float64
    """

    name: str
    W_in: np.ndarray = field(repr=False)
    b_in: np.ndarray = field(repr=False)
    W_out: np.ndarray = field(repr=False)

    @property
    def n(self) -> int:
        """Number of neurons."""
        return int(self.W_in.shape[0])

    @property
    def d(self) -> int:
        """Input dimension."""
        return int(self.W_in.shape[1])

    @property
    def k(self) -> int:
        """Number of outputs."""
        return int(self.W_out.shape[0])

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fresh copies of ``(W_in, b_in, W_out)`` (a pruner may not mutate them)."""
        return self.W_in.copy(), self.b_in.copy(), self.W_out.copy()


def make_layer(name: str, W_in: Any, b_in: Any, W_out: Any, func: str) -> Layer:
    """Validate one layer and store it as float64 numpy."""
    _, W_in, b_in, W_out = check_layer(func, W_in, b_in, W_out)
    arrays = [np.array(np.asarray(a), dtype=np.float64) for a in (W_in, b_in, W_out)]
    for label, a in zip(("W_in", "b_in", "W_out"), arrays, strict=True):
        if not np.all(np.isfinite(a)):
            raise fail(func, label, "finite (no NaN or infinity)", "non-finite entries")
        a.setflags(write=False)
    return Layer(name, *arrays)


def named_layers(layers: Any, func: str) -> tuple[Layer, ...]:
    """Normalise ``layers``: None, one triple, a list of triples or a mapping.

    ``None`` gives :func:`default_layers`.
    """
    if layers is None:
        return default_layers()
    if isinstance(layers, Layer):
        return (layers,)
    if isinstance(layers, Mapping):
        items = list(layers.items())
    elif isinstance(layers, tuple) and len(layers) == 3 and hasattr(layers[0], "shape"):
        items = [("layer0", layers)]
    else:
        try:
            items = [(f"layer{i}", t) for i, t in enumerate(layers)]
        except TypeError:
            raise fail(func, "layers", "None, a (W_in, b_in, W_out) triple, a list of "
                       "triples or a mapping name -> triple", type(layers).__name__) from None
    out = []
    for name, triple in items:
        if isinstance(triple, Layer):
            keyed = isinstance(layers, Mapping)
            out.append(Layer(str(name), triple.W_in, triple.b_in, triple.W_out)
                       if keyed else triple)
            continue
        if not (isinstance(triple, (tuple, list)) and len(triple) == 3):
            raise fail(func, "layers", "triples (W_in, b_in, W_out)",
                       f"{type(triple).__name__} for {name!r}")
        out.append(make_layer(str(name), *triple, func))
    if not out:
        raise fail(func, "layers", "at least one layer", "an empty collection")
    names = [layer.name for layer in out]
    if len(set(names)) < len(names):
        raise fail(func, "layers", "layers with distinct names", names)
    return tuple(out)


def default_layers() -> tuple[Layer, ...]:
    """Two small fixed layers (seeded): ``gaussian`` and ``heavy``.

    ``gaussian``: n = 24 neurons, d = 5 inputs, k = 3 outputs, normal weights.
    ``heavy``: n = 32, d = 4, k = 2, a few neurons with 10x larger outgoing
    weights, so that importance sampling and uniform sampling differ.
    """
    gen = np.random.default_rng(20200401)
    W_in, b_in = gen.normal(size=(24, 5)), 0.3 * gen.normal(size=24)
    W_out = gen.normal(size=(3, 24))
    first = make_layer("gaussian", W_in, b_in, W_out, "default_layers")
    W_in, b_in = gen.normal(size=(32, 4)), 0.3 * gen.normal(size=32)
    W_out = gen.normal(size=(2, 32))
    W_out[:, :4] *= 10.0
    second = make_layer("heavy", W_in, b_in, W_out, "default_layers")
    return first, second


def degenerate_layer(seed: int = 7) -> tuple[Layer, np.ndarray]:
    """A layer with dead, duplicate and zero neurons; returns it and the dead mask.

    n = 20, d = 4, k = 2: neurons 0-3 are dead on the unit ball (bias -100),
    4-5 have an all-zero incoming row and bias 0, 6-7 repeat neuron 8, and
    neurons 9-10 have zero outgoing weights.
    """
    gen = np.random.default_rng(seed)
    W_in, b_in = gen.normal(size=(20, 4)), 0.3 * gen.normal(size=20)
    W_out = gen.normal(size=(2, 20))
    b_in[0:4] = -100.0
    W_in[4:6] = 0.0
    b_in[4:6] = 0.0
    W_in[6:8], b_in[6:8] = W_in[8], b_in[8]
    W_out[:, 9:11] = 0.0
    dead = np.zeros(20, dtype=bool)
    dead[0:6] = True
    dead[9:11] = True
    return make_layer("degenerate", W_in, b_in, W_out, "degenerate_layer"), dead


def forward(W_in: np.ndarray, b_in: np.ndarray, W_out: np.ndarray, x: np.ndarray,
            activation: Activation) -> np.ndarray:
    """``F(x) = W_out phi(W_in x + b_in)`` for a batch ``x`` (b, d); returns (b, k)."""
    z = np.asarray(x, dtype=np.float64) @ np.asarray(W_in, dtype=np.float64).T
    return activation(z + np.asarray(b_in, dtype=np.float64)) @ np.asarray(
        W_out, dtype=np.float64).T


def scale_of(layer: Layer, beta: float, activation: Activation) -> np.ndarray:
    """``T_i = sum_j |W_out[i, j]| env_j`` (k,): the unit of the additive bound.

    ``env_j = max(|phi_lo[j]|, |phi_hi[j]|)`` on the ball of radius ``beta``.
    Outputs with ``T_i = 0`` get 1 (their F is 0 on the whole ball).
    """
    reach = beta * np.linalg.norm(layer.W_in, axis=1)
    env = np.maximum(np.abs(activation(layer.b_in - reach)),
                     np.abs(activation(layer.b_in + reach)))
    scale = np.abs(layer.W_out) @ env
    return np.where(scale > 0, scale, 1.0)


def ball_inputs(layer: Layer, beta: float, count: int, rng: np.random.Generator,
                ) -> np.ndarray:
    """``count`` inputs of the ball: the rows' directions at radius beta, then random.

    Up to ``count // 2`` points ``+- beta w_j / ||w_j||`` (where neuron j is
    largest or smallest), the rest uniform on the sphere and inside it.
    """
    norms = np.linalg.norm(layer.W_in, axis=1)
    rows = layer.W_in[norms > 0] / norms[norms > 0, None]
    rows = np.vstack([rows, -rows])[: count // 2] * beta
    rest = count - rows.shape[0]
    u = rng.standard_normal((rest, layer.d))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    radius = np.ones(rest)
    radius[rest // 2:] = rng.random(rest - rest // 2) ** (1.0 / layer.d)
    return np.vstack([rows, u * (beta * radius)[:, None]])


def relative_error(layer: Layer, pruned: tuple, x: np.ndarray, beta: float,
                   activation: Activation) -> float:
    """``max over x and i of |F_i(x) - F~_i(x)| / T_i`` at the given inputs."""
    full = forward(layer.W_in, layer.b_in, layer.W_out, x, activation)
    small = forward(*pruned, x, activation)
    return float(np.max(np.abs(full - small) / scale_of(layer, beta, activation)))


def check_beta_activation(beta: Any, activation: Any, func: str) -> tuple[float, Activation]:
    """Validate the ball radius and the activation of an audit."""
    return check_positive(beta, "beta", func), get_activation(activation)
