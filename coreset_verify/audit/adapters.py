"""Adapters: other pruning code as a pruner of the audit protocol.

A pruner is any callable

    pruner(W_in, b_in, W_out, *, size, rng) -> (W_in', b_in', W_out')

with float64 numpy arrays in and out (shapes (n, d), (n,), (k, n) in and
(r, d), (r,), (k, r) out, ``r <= size``), ``size`` an int and ``rng`` a numpy
Generator. ``W_out'`` may be re-weighted; the next layer's bias is not part of
the protocol (the audited function is the next layer's pre-activation without
bias).
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .._validation import (
    check_bool,
    check_int,
    check_open_unit,
    check_option,
    check_positive,
    check_unknown_options,
    fail,
    to_numpy,
)
from ..errors import InvalidArgumentError, MissingDependencyError
from ._arguments import check_activation

__all__ = [
    "CoresetPruner",
    "FunctionPruner",
    "TorchPrunePruner",
    "TorchPruningPruner",
    "coreset_pruner",
    "from_function",
    "torch_prune_pruner",
    "torch_pruning_pruner",
]

TORCH_PRUNE_METHODS = ("l1", "l2", "random")
#: The options of :func:`coreset_pruner` (those of :class:`CoresetPruner`).
CORESET_OPTIONS = ("beta", "activation", "mode", "reduction", "split_signs")
#: Held while torch's global generator is forked and re-seeded (thread pools).
_TORCH_RNG_LOCK = threading.Lock()


def _size(size: Any, func: str) -> int:
    return check_int(size, "size", func)


def _rng(rng: Any, func: str) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise fail(func, "rng", "a numpy.random.Generator", type(rng).__name__)
    return rng


def _float64(*arrays: Any) -> tuple[np.ndarray, ...]:
    return tuple(np.array(to_numpy(a), dtype=np.float64) for a in arrays)


def _keep(W_in, b_in, W_out, kept: np.ndarray, factor: Any = 1.0):
    """``(W_in[kept], b_in[kept], W_out[:, kept] * factor)`` as fresh float64 arrays."""
    kept = np.asarray(kept, dtype=np.int64)
    return (np.array(W_in[kept], dtype=np.float64), np.array(b_in[kept], dtype=np.float64),
            np.array(W_out[:, kept] * factor, dtype=np.float64))


class CoresetPruner:
    """The toolkit's coreset (:func:`~coreset_verify.layer_coreset`) as a pruner.

    Parameters
    ----------
    beta : float, default 1.0
        Radius of the input ball the sensitivities (and the bound) refer to.
    activation : str, default "relu"
    mode : {"distinct", "draws"}, default "distinct"
        ``"distinct"``: ``layer_coreset(distinct=size)``, exactly ``size``
        neurons kept. ``"draws"``: ``layer_coreset(sample_size=size)``, ``size``
        i.i.d. draws, at most ``size`` neurons kept.
    reduction : {"per-output", "raw-max"}, default "per-output"
    split_signs : bool, default False
        Only with ``mode="draws"``.

    Notes
    -----
    When ``size`` is at least the number of live neurons (positive
    sensitivity), the pruner keeps every live neuron with its weights
    unchanged: that is exact on the ball, whereas ``layer_coreset(distinct=n)``
    keeps every neuron but re-weights them by ``cnt_j / (m pr_j) != 1``.

    Only ``mode="draws"`` is unbiased. With ``distinct`` the number of draws
    ``m`` is a stopping time and ``cnt_j / (m pr_j)`` is a ratio estimator:
    biased (relative bias of W_out about 10% at r = 3 of n = 24 on the
    ``heavy`` test layer, measured over 20,000 seeds). :meth:`claims` says so.
    """

    def __init__(self, *, beta: float = 1.0, activation: str = "relu",
                 mode: str = "distinct", reduction: str = "per-output",
                 split_signs: bool = False) -> None:
        func = "coreset_pruner"
        self.beta = check_positive(beta, "beta", func)
        self.activation = check_activation(activation, func).name
        mode = check_option(mode, "mode", func, ("distinct", "draws"))
        reduction = check_option(reduction, "reduction", func, ("per-output", "raw-max"))
        split_signs = check_bool(split_signs, "split_signs", func)
        if split_signs and mode == "distinct":
            raise fail(func, "mode", "'draws' with split_signs=True (layer_coreset cannot "
                       "combine distinct and split_signs)", mode)
        self.mode, self.reduction, self.split_signs = mode, reduction, split_signs

    def __repr__(self) -> str:
        return (f"coreset_pruner(beta={self.beta}, activation={self.activation!r}, "
                f"mode={self.mode!r}, reduction={self.reduction!r}, "
                f"split_signs={self.split_signs})")

    def _live(self, W_in, b_in, W_out) -> np.ndarray:
        from ..sensitivity import envelope

        env = np.asarray(envelope(W_in, b_in, beta=self.beta, activation=self.activation))
        return (env > 0) & np.any(W_out != 0, axis=0)

    def coreset(self, W_in, b_in, W_out, *, size: int, rng: np.random.Generator):
        """The :class:`~coreset_verify.LayerCoreset` behind one call, or None.

        None when ``size`` covers every live neuron (no sampling is done).
        """
        from ..coreset import layer_coreset

        live = self._live(W_in, b_in, W_out)
        if size >= int(live.sum()):
            return None
        count = {"distinct": size} if self.mode == "distinct" else {"sample_size": size}
        return layer_coreset(W_in, b_in, W_out, beta=self.beta, activation=self.activation,
                             rng=rng, reduction=self.reduction,
                             split_signs=self.split_signs, **count)

    def __call__(self, W_in, b_in, W_out, *, size, rng):
        """Prune; see the class docstring."""
        size, rng = _size(size, "coreset_pruner"), _rng(rng, "coreset_pruner")
        W_in, b_in, W_out = _float64(W_in, b_in, W_out)
        core = self.coreset(W_in, b_in, W_out, size=size, rng=rng)
        if core is None:
            return _keep(W_in, b_in, W_out, np.flatnonzero(self._live(W_in, b_in, W_out)))
        return _float64(*core.pruned())

    def epsilons(self, W_in, b_in, W_out, *, size: int, rng: np.random.Generator,
                 delta: float, kinds: Iterable[str] = ("pointwise", "uniform", "paper"),
                 ) -> dict[str, float]:
        """The epsilon of :func:`~coreset_verify.theoretical_bound`, per kind.

        ``rng`` must be in the state the pruner was called with (a generator
        from the same seed): the coreset is rebuilt and its realised bound
        returned. 0 where the pruner kept every live neuron (exact).
        """
        from ..guarantees import theoretical_bound

        W_in, b_in, W_out = _float64(W_in, b_in, W_out)
        core = self.coreset(W_in, b_in, W_out, size=_size(size, "epsilons"), rng=rng)
        if core is None:
            return dict.fromkeys(kinds, 0.0)
        return {kind: float(theoretical_bound(core, delta=delta, kind=kind).epsilon)
                for kind in kinds}

    def epsilon(self, W_in, b_in, W_out, *, size: int, rng: np.random.Generator,
                delta: float, kind: str = "uniform") -> float:
        """One kind of :meth:`epsilons`."""
        return self.epsilons(W_in, b_in, W_out, size=size, rng=rng, delta=delta,
                             kinds=(kind,))[kind]

    def claims(self, *, kind: str | None = "uniform", delta: float = 0.1) -> dict[str, Any]:
        """What this pruner promises, in the battery's vocabulary.

        ``kind=None`` leaves out the guarantee; ``"uniform"`` claims the
        uniform bound, ``"pointwise"`` and ``"paper"`` a pointwise one. The
        epsilon callable is this pruner's :meth:`epsilon` (units of ``T_i``,
        on the ball of radius beta).
        """
        func = "CoresetPruner.claims"
        if kind is not None:
            kind = check_option(kind, "kind", func, ("uniform", "pointwise", "paper"))
        delta = check_open_unit(delta, "delta", func)
        claims: dict[str, Any] = {"unbiased": self.mode == "draws", "drops_dead": True,
                                  "deterministic": False}
        if kind is not None:
            claims["guarantee"] = {
                "kind": "uniform" if kind == "uniform" else "pointwise",
                "delta": delta, "beta": self.beta,
                "epsilon": functools.partial(self.epsilon, delta=delta, kind=kind),
            }
        return claims


def coreset_pruner(**options: Any) -> CoresetPruner:
    """The toolkit's coreset as a pruner; options of :class:`CoresetPruner`.

    Examples
    --------
    >>> import numpy as np
    >>> gen = np.random.default_rng(0)
    >>> W_in, b_in, W_out = gen.normal(size=(30, 4)), gen.normal(size=30), gen.normal(size=(2, 30))
    >>> prune = coreset_pruner(beta=1.0)
    >>> small = prune(W_in, b_in, W_out, size=10, rng=np.random.default_rng(1))
    >>> [a.shape for a in small]
    [(10, 4), (10,), (2, 10)]
    """
    check_unknown_options(options, CORESET_OPTIONS, "coreset_pruner")
    return CoresetPruner(**options)


class TorchPrunePruner:
    """``torch.nn.utils.prune`` structured pruning of the rows of the first Linear.

    ``ln_structured`` (L1 or L2 norm of each row of ``W_in``) or
    ``random_structured`` removes ``n - size`` rows; the kept rows are then
    extracted and the next layer's columns kept unchanged (no re-weighting).
    ``random_structured`` draws from torch's global generator: it is run
    inside ``torch.random.fork_rng`` seeded from ``rng``, so the global state
    is left untouched and the same ``rng`` gives the same result.
    """

    def __init__(self, method: str = "l1") -> None:
        self.method = check_option(method, "method", "torch_prune_pruner", TORCH_PRUNE_METHODS)

    def __repr__(self) -> str:
        return f"torch_prune_pruner(method={self.method!r})"

    def __call__(self, W_in, b_in, W_out, *, size, rng):
        """Prune; see the class docstring."""
        import torch
        from torch.nn.utils import prune

        size, rng = _size(size, "torch_prune_pruner"), _rng(rng, "torch_prune_pruner")
        W_in, b_in, W_out = _float64(W_in, b_in, W_out)
        n, d = W_in.shape
        amount, seed = max(n - size, 0), int(rng.integers(2**62))
        # Building a Linear draws its initial weights from torch's global
        # generator: everything runs on a forked, seeded one.
        with _TORCH_RNG_LOCK, torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            linear = torch.nn.Linear(d, n, dtype=torch.float64)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(W_in))
                linear.bias.copy_(torch.from_numpy(b_in))
            if self.method == "random":
                prune.random_structured(linear, "weight", amount=amount, dim=0)
            else:
                order = 1 if self.method == "l1" else 2
                prune.ln_structured(linear, "weight", amount=amount, n=order, dim=0)
        mask = linear.weight_mask.detach().numpy()
        kept = np.flatnonzero(mask.any(axis=1))
        return _keep(W_in, b_in, W_out, kept)


def torch_prune_pruner(method: str = "l1") -> TorchPrunePruner:
    """``torch.nn.utils.prune`` as a pruner: ``method`` in {"l1", "l2", "random"}."""
    return TorchPrunePruner(method)


class TorchPruningPruner:
    """Torch-Pruning (``torch_pruning``): magnitude importance on a 2-layer MLP.

    The pair becomes ``Linear(d, n) -> ReLU -> Linear(n, k)``; Torch-Pruning's
    dependency graph gives the group of the hidden channels (rows of the first
    Linear and columns of the second) and ``MagnitudeImportance(p)`` scores
    each channel over the whole group. The ``n - size`` lowest-scored channels
    are removed with ``group.prune()``; the next layer's columns are not
    re-weighted.

    Notes
    -----
    Torch-Pruning's ``MetaPruner`` takes a ``pruning_ratio`` and removes
    ``int(n * ratio)`` channels, which cannot express "keep exactly ``size``"
    for every ``n`` (rounding). This adapter therefore uses the library's
    dependency graph, importance and pruning functions, but picks the
    ``n - size`` channels itself (lowest importance, ties to the lower index).
    """

    def __init__(self, p: int = 2, group_reduction: str = "mean") -> None:
        self.p, self.group_reduction = p, group_reduction

    def __repr__(self) -> str:
        return f"torch_pruning_pruner(p={self.p}, group_reduction={self.group_reduction!r})"

    def prune_lowest(self, graph: Any, module: Any, prune_fn: Any, n: int,
                     size: int) -> np.ndarray:
        """Remove the ``n - size`` channels of ``module`` of lowest group importance.

        ``MagnitudeImportance(p, group_reduction)`` scores each of the ``n``
        channels over its dependency group; ties go to the lower index. Returns
        the removed channels, sorted.
        """
        import torch_pruning as tp

        importance = tp.importance.MagnitudeImportance(
            p=self.p, group_reduction=self.group_reduction, normalizer=None)
        group = graph.get_pruning_group(module, prune_fn, idxs=list(range(n)))
        scores = importance(group).detach().double().numpy()
        drop = np.sort(np.argsort(-scores, kind="stable")[min(size, n):])
        if drop.size:
            graph.get_pruning_group(module, prune_fn, idxs=drop.tolist()).prune()
        return drop

    def __call__(self, W_in, b_in, W_out, *, size, rng):
        """Prune; see the class docstring."""
        try:
            import torch
            import torch_pruning as tp
        except ImportError:
            raise MissingDependencyError(
                "torch_pruning_pruner needs Torch-Pruning: pip install 'coreset-verify[audit]'"
            ) from None
        size = _size(size, "torch_pruning_pruner")
        _rng(rng, "torch_pruning_pruner")
        W_in, b_in, W_out = _float64(W_in, b_in, W_out)
        (n, d), k = W_in.shape, W_out.shape[0]
        with _TORCH_RNG_LOCK, torch.random.fork_rng(devices=[]):  # Linear() draws from it
            model = torch.nn.Sequential(torch.nn.Linear(d, n), torch.nn.ReLU(),
                                        torch.nn.Linear(n, k, bias=False)).double()
        with torch.no_grad():
            model[0].weight.copy_(torch.from_numpy(W_in))
            model[0].bias.copy_(torch.from_numpy(b_in))
            model[2].weight.copy_(torch.from_numpy(W_out))
        graph = tp.DependencyGraph().build_dependency(
            model, example_inputs=torch.zeros(1, d, dtype=torch.float64))
        self.prune_lowest(graph, model[0], tp.prune_linear_out_channels, n, size)
        return _float64(model[0].weight.detach(), model[0].bias.detach(),
                        model[2].weight.detach())


def torch_pruning_pruner(p: int = 2, group_reduction: str = "mean") -> TorchPruningPruner:
    """Torch-Pruning's magnitude importance as a pruner (see :class:`TorchPruningPruner`)."""
    return TorchPruningPruner(p, group_reduction)


class FunctionPruner:
    """A pruner made by :func:`from_function`."""

    def __init__(self, fn: Callable[..., Any], name: str | None = None) -> None:
        if not callable(fn):
            raise fail("from_function", "fn", "a callable", type(fn).__name__)
        self.fn = fn
        self.name = name or getattr(fn, "__name__", type(fn).__name__)
        try:
            params = inspect.signature(fn).parameters
        except (TypeError, ValueError):
            params = {}
        self._keywords = "size" in params and "rng" in params

    def __repr__(self) -> str:
        return f"from_function({self.name})"

    def __call__(self, W_in, b_in, W_out, *, size, rng):
        """Call ``fn`` and turn what it returns into the protocol's triple."""
        W_in, b_in, W_out = (np.asarray(a) for a in (W_in, b_in, W_out))
        if self._keywords:
            out = self.fn(W_in, b_in, W_out, size=size, rng=rng)
        else:
            out = self.fn(W_in, b_in, W_out, size, rng)
        if isinstance(out, (tuple, list)) and len(out) == 3:
            return _float64(*out)
        if isinstance(out, (tuple, list)) and len(out) == 2:
            kept = np.asarray(to_numpy(out[0]), dtype=np.int64)
            return (*_keep(W_in, b_in, W_out, kept)[:2], _float64(out[1])[0])
        kept = np.asarray(to_numpy(out))
        if kept.ndim == 1 and np.issubdtype(kept.dtype, np.integer):
            return _keep(W_in, b_in, W_out, kept)
        raise InvalidArgumentError(
            f"from_function: {self.name} must return kept indices (1-D int array), "
            "(indices, W_out_kept) or (W_in', b_in', W_out'); got "
            f"{type(out).__name__}."
        )


def from_function(fn: Callable[..., Any], *, name: str | None = None) -> FunctionPruner:
    """Wrap ``fn(W_in, b_in, W_out, size, rng)`` (positional or keyword) as a pruner.

    ``fn`` may return the kept indices (W_out's columns then unchanged),
    ``(indices, W_out_kept)`` or the triple ``(W_in', b_in', W_out')``; torch
    tensors are accepted, and everything comes back as float64 numpy.

    Examples
    --------
    >>> import numpy as np
    >>> first = from_function(lambda W_in, b_in, W_out, size, rng: np.arange(size))
    >>> out = first(np.eye(3), np.zeros(3), np.ones((1, 3)), size=2, rng=np.random.default_rng())
    >>> out[2]
    array([[1., 1.]])
    """
    return FunctionPruner(fn, name)
