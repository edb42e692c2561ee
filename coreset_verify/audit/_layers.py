"""The layers an audit runs on: :class:`Layer`, the default and degenerate layers.

Everything here is float64 numpy. A *layer* is a triple ``(W_in, b_in,
W_out)`` of shapes (n, d), (n,), (k, n); the function audited is
``F(x) = W_out phi(W_in x + b_in)``, the ``F`` of DESIGN.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, NamedTuple

import numpy as np

from .._validation import check_layer, fail

__all__ = [
    "DegenerateLayer",
    "Layer",
    "LayerArrays",
    "Pruner",
    "default_layers",
    "degenerate_layer",
    "make_layer",
    "named_layers",
]


class LayerArrays(NamedTuple):
    """``(W_in, b_in, W_out)`` of a layer pair, original or pruned.

    Shapes (n, d), (n,), (k, n); a pruned triple has r rows instead of n.
    """

    W_in: np.ndarray
    b_in: np.ndarray
    W_out: np.ndarray


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

    kind: ClassVar[str] = "dense"
    #: The pruner's positional arguments, as the mutation check names them.
    argument_names: ClassVar[tuple[str, ...]] = ("W_in", "b_in", "W_out")

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

    @property
    def incoming(self) -> tuple[np.ndarray, np.ndarray]:
        """The incoming weights (n, d) and biases (n,) of the neurons."""
        return self.W_in, self.b_in

    @property
    def directions(self) -> np.ndarray:
        """(n, d): the inputs where each neuron peaks, up to scale (the rows of W_in)."""
        return self.W_in

    def arrays(self) -> LayerArrays:
        """Fresh copies of ``(W_in, b_in, W_out)`` (a pruner may not mutate them)."""
        return LayerArrays(self.W_in.copy(), self.b_in.copy(), self.W_out.copy())

    def keywords(self) -> dict[str, Any]:
        """Keyword arguments of a pruner call besides ``size`` and ``rng`` (none)."""
        return {}

    def rescaled(self, factor: float) -> Layer:
        """The pair with ``W_in`` multiplied by ``factor``."""
        return Layer(self.name, self.W_in * factor, self.b_in, self.W_out)

    def permuted(self, perm: np.ndarray) -> Layer:
        """The same function with its neurons in the order ``perm``."""
        return Layer(f"{self.name}-permuted", self.W_in[perm], self.b_in[perm],
                     self.W_out[:, perm])


class DegenerateLayer(NamedTuple):
    """:func:`degenerate_layer`: the layer and which of its neurons are dead."""

    layer: Layer
    dead: np.ndarray


def make_layer(name: str, W_in: Any, b_in: Any, W_out: Any, func: str) -> Layer:
    """Validate one layer and store it as read-only float64 numpy."""
    _, W_in, b_in, W_out = check_layer(func, W_in, b_in, W_out)
    arrays = [np.array(np.asarray(a), dtype=np.float64) for a in (W_in, b_in, W_out)]
    for label, a in zip(LayerArrays._fields, arrays, strict=True):
        if not np.all(np.isfinite(a)):
            raise fail(func, label, "finite (no NaN or infinity)", "non-finite entries")
        a.setflags(write=False)
    return Layer(name, *arrays)


def _items(layers: Any, func: str) -> list[tuple[str, Any]]:
    """``layers`` as ``(name, triple or Layer)`` pairs."""
    if isinstance(layers, Mapping):
        return [(str(k), v) for k, v in layers.items()]
    if isinstance(layers, tuple) and len(layers) == 3 and hasattr(layers[0], "shape"):
        return [("layer0", layers)]
    try:
        return [(f"layer{i}", t) for i, t in enumerate(layers)]
    except TypeError:
        raise fail(func, "layers", "None, a (W_in, b_in, W_out) triple, a list of "
                   "triples or a mapping name -> triple", type(layers).__name__) from None


def _as_layer(name: str, item: Any, keyed: bool, func: str) -> Any:
    """One entry of ``layers``: a Layer or ConvLayer (renamed by a mapping's key) or a triple."""
    from ._conv import ConvLayer

    if isinstance(item, Layer | ConvLayer):
        return replace(item, name=name) if keyed else item
    if not (isinstance(item, (tuple, list)) and len(item) == 3):
        raise fail(func, "layers", "triples (W_in, b_in, W_out)",
                   f"{type(item).__name__} for {name!r}")
    return make_layer(name, *item, func)


def named_layers(layers: Any, func: str, kind: str | None = None) -> tuple[Any, ...]:
    """Normalise ``layers``: None, one triple, a list of triples or a mapping.

    ``None`` gives :func:`default_layers` (or, for ``kind="conv"``,
    :func:`~._conv.default_conv_layers`). A :class:`Layer` or
    :class:`~._conv.ConvLayer` in a mapping takes the mapping's key as its
    name. Every layer must be of one kind, ``kind`` when given.
    """
    from ._conv import ConvLayer, default_conv_layers

    if layers is None:
        return default_conv_layers() if kind == "conv" else default_layers()
    if isinstance(layers, Layer | ConvLayer):
        layers = [layers]
    keyed = isinstance(layers, Mapping)
    out = [_as_layer(name, item, keyed, func) for name, item in _items(layers, func)]
    if not out:
        raise fail(func, "layers", "at least one layer", "an empty collection")
    names = [layer.name for layer in out]
    if len(set(names)) < len(names):
        raise fail(func, "layers", "layers with distinct names", names)
    kinds = sorted({layer.kind for layer in out})
    if len(kinds) > 1 or (kind is not None and kinds != [kind]):
        raise fail(func, "layers", f"layers of one kind{'' if kind is None else f' ({kind!r})'}"
                   " (ConvLayer for a conv pruner, dense triples otherwise)", kinds)
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


def degenerate_layer(seed: int = 7) -> DegenerateLayer:
    """A layer with dead, duplicate and zero neurons, and its mask of dead neurons.

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
    return DegenerateLayer(make_layer("degenerate", W_in, b_in, W_out, "degenerate_layer"),
                           dead)
