"""The records of a pruned network: one per hidden layer, and the whole."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validation import check_open_unit, check_positive, fail
from ..activations import Activation
from ..coreset import LayerCoreset
from ..guarantees import Bound

__all__ = ["PrunedLayer", "PrunedNetwork"]


@dataclass(frozen=True)
class PrunedLayer:
    """How one hidden layer was pruned.

    Attributes
    ----------
    position : int or tuple of int
        Index in the ``nn.Sequential`` of the Linear whose output neurons these
        are (a tuple of indices for a Linear inside a nested Sequential).
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

    position: int | tuple[int, ...]
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

    def __post_init__(self) -> None:
        func = "PrunedLayer"
        if not isinstance(self.activation, Activation):
            raise fail(func, "activation", "an Activation", type(self.activation).__name__)
        eps = self.epsilon
        if not (isinstance(eps, int | float | np.floating) and eps >= 0):  # NaN fails too
            raise fail(func, "epsilon", "a number >= 0 (inf allowed)", eps)
        check_positive(self.radius, "radius", func)
        check_open_unit(self.delta, "delta", func)
        _check_nonnegative(func, "scale", self.scale, 1)
        _check_nonnegative(func, "propagation", self.propagation, 2)
        if self.propagation.shape[1] != self.scale.shape[0]:
            raise fail(func, "propagation", f"of shape (k_out, {self.scale.shape[0]}) "
                       "(one column per entry of scale)", f"shape {self.propagation.shape}")

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
    module_slack : ndarray of float64, shape (k_out,), or None
        Bound on how far the two networks' torch modules can move the outputs
        away from the exact activations the theorems use (Softplus's
        threshold; zero for every other activation). Part of
        :func:`composed_bound`.

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
    module_slack: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        func = "PrunedNetwork"
        check_positive(self.beta, "beta", func)
        check_open_unit(self.delta, "delta", func)
        if not self.layers or not all(isinstance(la, PrunedLayer) for la in self.layers):
            raise fail(func, "layers", "a non-empty tuple of PrunedLayer", self.layers)
        k_out = {la.propagation.shape[0] for la in self.layers}
        if len(k_out) != 1:
            raise fail(func, "layers", "layers whose propagation matrices share k_out",
                       sorted(k_out))
        if self.module_slack is not None:
            _check_nonnegative(func, "module_slack", self.module_slack, 1)

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


def _check_nonnegative(func: str, name: str, value: object, ndim: int) -> None:
    """A float array of ``ndim`` dimensions whose entries are finite and >= 0."""
    arr = np.asarray(value)
    ok = (arr.ndim == ndim and np.issubdtype(arr.dtype, np.floating)
          and bool(np.all(np.isfinite(arr) & (arr >= 0))))
    if not ok:
        raise fail(func, name, f"a {ndim}-D float array of finite numbers >= 0",
                   f"shape {arr.shape}, dtype {arr.dtype}")
