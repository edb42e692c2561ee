"""Conv pruners: channel pruning code as pruners of the conv protocol.

A conv pruner is any callable

    pruner(conv_weight, conv_bias, next_weight, *, size, rng, geometry)
        -> (kept, next_weight')

(:mod:`._conv`): float64 numpy arrays of shapes (C, C_in, kh, kw), (C,) and
(k, C, kh', kw') or (k, C * H * W) in; the distinct kept channels (``r <=
size``) and the next weight restricted to them, possibly re-weighted, out.
``geometry`` is the pair's :class:`~._conv.ConvGeometry`. Every pruner here
has ``kind = "conv"``, which tells the battery to audit it on conv pairs.

* :func:`channel_coreset_pruner`: :func:`~coreset_verify.conv.channel_coreset`
  (sensitivity sampling of channels, re-weighted ``cnt / (m pr)``), with the
  claimed bound :func:`~coreset_verify.conv.channel_bound`;
* :func:`uniform_channel_pruner`: ``size`` channels uniformly without
  replacement, re-weighted by ``C / size`` (unbiased) or not;
* :func:`ln_structured_pruner`: ``torch.nn.utils.prune.ln_structured`` on the
  conv's filters (``dim=0``), the next weight unchanged;
* :func:`torch_pruning_conv_pruner`: Torch-Pruning's ``MagnitudeImportance``
  over the group of the conv's output channels, the next weight unchanged.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from .._validation import check_bool, check_open_unit, check_option, check_positive, fail
from ..activations import get_activation
from ..errors import MissingDependencyError
from ._arguments import check_activation
from ._conv import ConvGeometry, conv_pair_modules, next_channels
from .adapters import _TORCH_RNG_LOCK, TorchPruningPruner, _float64, _rng, _size
from .baselines import Audited, builtin_options

__all__ = [
    "ChannelCoresetPruner",
    "LnStructuredPruner",
    "TorchPruningConvPruner",
    "UniformChannelPruner",
    "builtin_conv_pruners",
    "channel_coreset_pruner",
    "ln_structured_pruner",
    "torch_pruning_conv_pruner",
    "uniform_channel_pruner",
]


def _kept(next_weight: np.ndarray, n_channels: int, kept: Any,
          factor: Any = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The protocol's ``(kept, next_weight')`` for sorted kept channels."""
    kept = np.asarray(kept, dtype=np.int64)
    return kept, next_channels(next_weight, n_channels, kept, factor)


def _geometry(geometry: Any, func: str) -> ConvGeometry:
    if not isinstance(geometry, ConvGeometry):
        raise fail(func, "geometry", "a ConvGeometry", type(geometry).__name__)
    return geometry


class ChannelCoresetPruner:
    """The toolkit's channel coreset (:func:`~coreset_verify.conv.channel_coreset`).

    Parameters
    ----------
    beta : float, default 1.0
        Radius of the input ball (the whole input tensor).
    activation : str, default "relu"
    mode : {"draws", "distinct"}, default "draws"
        ``"draws"``: ``sample_size=size`` i.i.d. draws (at most ``size``
        channels, unbiased). ``"distinct"``: ``distinct=size`` (biased, as
        the dense ``distinct`` coreset).

    Notes
    -----
    When ``size`` is at least the number of live channels (positive
    envelope and a nonzero outgoing weight), every live channel is kept with
    its weights unchanged: exact on the ball. Its claimed bound is
    :func:`~coreset_verify.conv.channel_bound` with ``output_positions`` and
    ``input_size`` read from the geometry (proofs_notes/conv.md, Theorems CP
    and CU).
    """

    kind = "conv"

    def __init__(self, *, beta: float = 1.0, activation: str = "relu",
                 mode: str = "draws") -> None:
        func = "channel_coreset_pruner"
        self.beta = check_positive(beta, "beta", func)
        self.activation = check_activation(activation, func).name
        self.mode = check_option(mode, "mode", func, ("draws", "distinct"))

    def __repr__(self) -> str:
        return (f"channel_coreset_pruner(beta={self.beta}, activation={self.activation!r}, "
                f"mode={self.mode!r})")

    def _live(self, w: np.ndarray, b: np.ndarray, V: np.ndarray) -> np.ndarray:
        from ..sensitivity import envelope

        env = np.asarray(envelope(w.reshape(w.shape[0], -1), b, beta=self.beta,
                                  activation=self.activation))
        outgoing = np.abs(V.reshape(V.shape[0], w.shape[0], -1)).sum(axis=(0, 2))
        return (env > 0) & (outgoing > 0)

    def coreset(self, conv_weight, conv_bias, next_weight, *, size: int,
                rng: np.random.Generator, geometry: ConvGeometry):
        """The :class:`~coreset_verify.conv.ChannelCoreset` behind one call, or None.

        None when ``size`` covers every live channel (no sampling is done).
        """
        from ..conv import channel_coreset

        w, b, V = _float64(conv_weight, conv_bias, next_weight)
        if size >= int(self._live(w, b, V).sum()):
            return None
        count = {"sample_size": size} if self.mode == "draws" else {"distinct": size}
        shape = geometry.channel_shape(w.shape[2:]) if V.ndim == 2 else None
        return channel_coreset(w, b, V, beta=self.beta, activation=self.activation, rng=rng,
                               channel_shape=shape, **count)

    def __call__(self, conv_weight, conv_bias, next_weight, *, size, rng, geometry):
        """Prune; see the class docstring."""
        func = "channel_coreset_pruner"
        size, rng = _size(size, func), _rng(rng, func)
        geometry = _geometry(geometry, func)
        w, b, V = _float64(conv_weight, conv_bias, next_weight)
        core = self.coreset(w, b, V, size=size, rng=rng, geometry=geometry)
        if core is None:
            return _kept(V, w.shape[0], np.flatnonzero(self._live(w, b, V)))
        return np.asarray(core.indices, dtype=np.int64), _float64(core.weight_next)[0]

    def epsilon(self, conv_weight, conv_bias, next_weight, *, size: int,
                rng: np.random.Generator, geometry: ConvGeometry, delta: float,
                kind: str = "uniform") -> float:
        """The epsilon of :func:`~coreset_verify.conv.channel_bound` for one call.

        ``rng`` must be in the state the pruner was called with: the coreset
        is rebuilt and its realised bound returned (0 where every live
        channel was kept).
        """
        w, b, V = _float64(conv_weight, conv_bias, next_weight)
        core = self.coreset(w, b, V, size=size, rng=rng, geometry=geometry)
        if core is None:
            return 0.0
        Q = geometry.output_positions(w.shape[2:], V.shape)
        return float(core.bound(delta=delta, kind=kind, output_positions=Q,
                                input_size=geometry.input_size).epsilon)

    def claims(self, *, kind: str | None = "uniform", delta: float = 0.1) -> dict[str, Any]:
        """What this pruner promises, in the battery's vocabulary.

        ``kind=None`` leaves out the guarantee; ``"uniform"`` or
        ``"pointwise"`` claims that bound of :meth:`epsilon`.
        """
        func = "ChannelCoresetPruner.claims"
        if kind is not None:
            kind = check_option(kind, "kind", func, ("uniform", "pointwise"))
        delta = check_open_unit(delta, "delta", func)
        claims: dict[str, Any] = {"unbiased": self.mode == "draws", "drops_dead": True,
                                  "deterministic": False}
        if kind is not None:
            claims["guarantee"] = {"kind": kind, "delta": delta, "beta": self.beta,
                                   "epsilon": functools.partial(self.epsilon, delta=delta,
                                                                kind=kind)}
        return claims


def channel_coreset_pruner(*, beta: float = 1.0, activation: str = "relu",
                           mode: str = "draws") -> ChannelCoresetPruner:
    """The channel coreset as a conv pruner (see :class:`ChannelCoresetPruner`).

    Examples
    --------
    >>> import numpy as np
    >>> from coreset_verify.audit import ConvGeometry
    >>> gen = np.random.default_rng(0)
    >>> w, b = gen.normal(size=(16, 1, 3, 3)), gen.normal(size=16)
    >>> V = gen.normal(size=(4, 16, 2, 2))
    >>> kept, V_kept = channel_coreset_pruner()(w, b, V, size=6, rng=np.random.default_rng(1),
    ...                                         geometry=ConvGeometry((1, 8, 8)))
    >>> V_kept.shape == (4, kept.size, 2, 2) and kept.size <= 6
    True
    """
    return ChannelCoresetPruner(beta=beta, activation=activation, mode=mode)


class UniformChannelPruner:
    """``size`` distinct channels uniformly at random, re-weighted by ``C / size`` or not."""

    kind = "conv"

    def __init__(self, *, reweight: bool = True) -> None:
        self.reweight = check_bool(reweight, "reweight", "uniform_channel_pruner")

    def __repr__(self) -> str:
        return f"uniform_channel_pruner(reweight={self.reweight})"

    def __call__(self, conv_weight, conv_bias, next_weight, *, size, rng, geometry):
        """Prune; see the class docstring."""
        func = "uniform_channel_pruner"
        size, rng = _size(size, func), _rng(rng, func)
        _geometry(geometry, func)
        V = _float64(next_weight)[0]
        C = np.shape(conv_weight)[0]
        if size >= C:
            return _kept(V, C, np.arange(C))
        kept = np.sort(rng.choice(C, size=size, replace=False))
        return _kept(V, C, kept, C / size if self.reweight else 1.0)


def uniform_channel_pruner(*, reweight: bool = True) -> UniformChannelPruner:
    """Uniform channel sampling as a conv pruner (see :class:`UniformChannelPruner`)."""
    return UniformChannelPruner(reweight=reweight)


def _torch_model(conv_weight, conv_bias, next_weight, geometry: ConvGeometry) -> Any:
    """The conv pair as trainable float64 torch modules (:func:`~._conv.conv_pair_modules`;
    the activation, ReLU, does not enter the magnitude criteria)."""
    w, b, V = _float64(conv_weight, conv_bias, next_weight)
    model = conv_pair_modules((w, b, V), geometry, get_activation("relu"))
    return model.requires_grad_(True)


class LnStructuredPruner:
    """``torch.nn.utils.prune.ln_structured`` on the conv's filters (``dim=0``).

    ``ln_structured(conv, "weight", amount=C - size, n=order, dim=0)`` masks
    the ``C - size`` filters of smallest ``L_order`` norm; the kept channels
    are those whose mask is nonzero, and the next weight is restricted to
    them, not re-weighted. Deterministic (ties as torch's ``topk`` breaks them).
    """

    kind = "conv"

    def __init__(self, *, order: int = 1) -> None:
        self.order = check_option(order, "order", "ln_structured_pruner", (1, 2))

    def __repr__(self) -> str:
        return f"ln_structured_pruner(order={self.order})"

    def __call__(self, conv_weight, conv_bias, next_weight, *, size, rng, geometry):
        """Prune; see the class docstring."""
        from torch.nn.utils import prune

        func = "ln_structured_pruner"
        size = _size(size, func)
        _rng(rng, func)
        geometry = _geometry(geometry, func)
        conv = _torch_model(conv_weight, conv_bias, next_weight, geometry)[1]
        C = conv.weight.shape[0]
        prune.ln_structured(conv, "weight", amount=max(C - size, 0), n=self.order, dim=0)
        mask = conv.weight_mask.detach().numpy().reshape(C, -1)
        return _kept(_float64(next_weight)[0], C, np.flatnonzero(mask.any(axis=1)))


def ln_structured_pruner(*, order: int = 1) -> LnStructuredPruner:
    """``torch.nn.utils.prune.ln_structured`` filter pruning as a conv pruner."""
    return LnStructuredPruner(order=order)


class TorchPruningConvPruner(TorchPruningPruner):
    """Torch-Pruning (``torch_pruning``): magnitude importance of a conv's output channels.

    The pair becomes ``Unflatten, Conv2d, phi, [pool], next`` (the audit's own
    modules); Torch-Pruning's dependency graph gives the group of the conv's
    output channels (its filters and biases, and the next layer's input
    channels, through Flatten for a Linear) and ``MagnitudeImportance(p)``
    scores each channel over the group. The ``C - size`` lowest-scored
    channels are removed with ``group.prune()`` (ties to the lower index, as
    :class:`~.adapters.TorchPruningPruner` does); the next weight is not
    re-weighted.
    """

    kind = "conv"

    def __repr__(self) -> str:
        return (f"torch_pruning_conv_pruner(p={self.p}, "
                f"group_reduction={self.group_reduction!r})")

    def __call__(self, conv_weight, conv_bias, next_weight, *, size, rng, geometry):
        """Prune; see the class docstring."""
        try:
            import torch
            import torch_pruning as tp
        except ImportError:
            raise MissingDependencyError(
                "torch_pruning_conv_pruner needs Torch-Pruning: pip install "
                "'coreset-verify[audit]'") from None
        func = "torch_pruning_conv_pruner"
        size = _size(size, func)
        _rng(rng, func)
        geometry = _geometry(geometry, func)
        model = _torch_model(conv_weight, conv_bias, next_weight, geometry)
        C = model[1].weight.shape[0]
        example = torch.zeros(1, geometry.input_size, dtype=torch.float64)
        with _TORCH_RNG_LOCK:
            graph = tp.DependencyGraph().build_dependency(model, example_inputs=example)
        drop = self.prune_lowest(graph, model[1], tp.prune_conv_out_channels, C, size)
        return (np.setdiff1d(np.arange(C), drop).astype(np.int64),
                _float64(model[-1].weight.detach() if next_weight.ndim == 2
                         else model[-2].weight.detach())[0])


def torch_pruning_conv_pruner(p: int = 2,
                              group_reduction: str = "mean") -> TorchPruningConvPruner:
    """Torch-Pruning's magnitude importance on a conv pair (see :class:`TorchPruningConvPruner`)."""
    return TorchPruningConvPruner(p, group_reduction)


def builtin_conv_pruners(*, beta: float = 1.0, delta: float = 0.1,
                         torch: bool = True) -> dict[str, Audited]:
    """Every built-in conv pruner with the claims it makes: ``name -> Audited(pruner, claims)``.

    ``beta``, ``delta`` and ``torch`` (include the ``ln_structured`` and
    Torch-Pruning adapters) as in :func:`~.baselines.builtin_pruners`: the
    channel coreset claims the uniform bound on the ball of radius ``beta``
    with failure probability ``delta``.
    """
    beta, delta, torch = builtin_options(beta, delta, torch, "builtin_conv_pruners")
    coreset = channel_coreset_pruner(beta=beta)
    fixed = {"unbiased": False, "deterministic": True}
    table: dict[str, Audited] = {
        "channel-coreset": Audited(coreset, coreset.claims(kind="uniform", delta=delta)),
        "uniform-channels": Audited(uniform_channel_pruner(),
                                    {"unbiased": True, "deterministic": False}),
    }
    if torch:
        table["ln-structured-l1"] = Audited(ln_structured_pruner(order=1), dict(fixed))
        table["torch-pruning-conv"] = Audited(torch_pruning_conv_pruner(), dict(fixed))
    return table
