"""Built-in baseline pruners, and the table of every built-in with its claims.

* :func:`uniform_pruner`: ``size`` neurons uniformly without replacement;
  with ``reweight=True`` the kept columns of ``W_out`` are multiplied by
  ``n / size`` (each neuron is kept with probability ``size / n``, so the
  estimate is unbiased), without it they are kept as they are (biased).
* :func:`top_norm_pruner`: the ``size`` neurons with the largest incoming
  weight norm ``||W_in[j]||`` (the paper's "percentile" baseline), no
  re-weighting; deterministic.
* :func:`raw_max_pruner`: the coreset with the ``raw-max`` reduction of the
  authors' released code (sensitivities not normalised by ``T_i``).
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import numpy as np

from .._validation import (
    check_bool,
    check_open_unit,
    check_positive,
    check_unknown_options,
    fail,
)
from .adapters import (
    CORESET_OPTIONS,
    CoresetPruner,
    _float64,
    _keep,
    _rng,
    _size,
    coreset_pruner,
    torch_prune_pruner,
    torch_pruning_pruner,
)

__all__ = [
    "Audited",
    "TopNormPruner",
    "UniformPruner",
    "builtin_options",
    "builtin_pruners",
    "raw_max_pruner",
    "top_norm_pruner",
    "uniform_pruner",
]


class Audited(NamedTuple):
    """A pruner with the claims it is audited against (an entry of :func:`builtin_pruners`)."""

    pruner: Any
    claims: dict[str, Any]


class UniformPruner:
    """Uniform sampling of ``size`` distinct neurons (see the module docstring)."""

    def __init__(self, *, reweight: bool = True) -> None:
        self.reweight = check_bool(reweight, "reweight", "uniform_pruner")

    def __repr__(self) -> str:
        return f"uniform_pruner(reweight={self.reweight})"

    def __call__(self, W_in, b_in, W_out, *, size, rng):
        """Prune; see the module docstring."""
        size, rng = _size(size, "uniform_pruner"), _rng(rng, "uniform_pruner")
        W_in, b_in, W_out = _float64(W_in, b_in, W_out)
        n = W_in.shape[0]
        if size >= n:
            return _keep(W_in, b_in, W_out, np.arange(n))
        kept = np.sort(rng.choice(n, size=size, replace=False))
        return _keep(W_in, b_in, W_out, kept, n / size if self.reweight else 1.0)


def uniform_pruner(*, reweight: bool = True) -> UniformPruner:
    """Uniform sampling, re-weighted by ``n / size`` or not.

    Examples
    --------
    >>> import numpy as np
    >>> out = uniform_pruner()(np.eye(4), np.zeros(4), np.ones((1, 4)), size=2,
    ...                        rng=np.random.default_rng(0))
    >>> out[2]
    array([[2., 2.]])
    """
    return UniformPruner(reweight=reweight)


class TopNormPruner:
    """Keep the ``size`` neurons of largest ``||W_in[j]||_p`` (ties: lower index)."""

    def __init__(self, *, order: float = 2) -> None:
        if not (isinstance(order, numbers.Real) and not isinstance(order, bool) and order >= 1):
            raise fail("top_norm_pruner", "order", "a number >= 1 (numpy.inf for the max "
                       "norm)", order)
        self.order = order

    def __repr__(self) -> str:
        return f"top_norm_pruner(order={self.order})"

    def __call__(self, W_in, b_in, W_out, *, size, rng):
        """Prune; see the class docstring."""
        size = _size(size, "top_norm_pruner")
        _rng(rng, "top_norm_pruner")
        W_in, b_in, W_out = _float64(W_in, b_in, W_out)
        norms = np.linalg.norm(W_in, ord=self.order, axis=1)
        kept = np.sort(np.argsort(-norms, kind="stable")[:size])
        return _keep(W_in, b_in, W_out, kept)


def top_norm_pruner(*, order: float = 2) -> TopNormPruner:
    """The paper's "percentile" baseline: top-``size`` rows by incoming norm."""
    return TopNormPruner(order=order)


def raw_max_pruner(**options: Any) -> CoresetPruner:
    """The coreset with ``reduction="raw-max"``; other options of :class:`CoresetPruner`."""
    check_unknown_options(options, tuple(o for o in CORESET_OPTIONS if o != "reduction"),
                          "raw_max_pruner")
    return coreset_pruner(reduction="raw-max", **options)


def builtin_options(beta: Any, delta: Any, torch: Any, func: str) -> tuple[float, float, bool]:
    """The validated ``(beta, delta, torch)`` of a table of built-ins."""
    return (check_positive(beta, "beta", func), check_open_unit(delta, "delta", func),
            check_bool(torch, "torch", func))


def builtin_pruners(*, beta: float = 1.0, delta: float = 0.1,
                    torch: bool = True) -> dict[str, Audited]:
    """Every built-in pruner with the claims it makes: ``name -> Audited(pruner, claims)``.

    Parameters
    ----------
    beta : float
        Ball radius of the coreset pruners (and of their guarantee).
    delta : float
        Failure probability of the coresets' claimed uniform guarantee.
    torch : bool
        Include the ``torch.nn.utils.prune`` and Torch-Pruning adapters.

    Raises
    ------
    InvalidArgumentError
        ``beta`` not a finite number > 0, ``delta`` outside (0, 1), ``torch``
        not a bool.
    """
    beta, delta, torch = builtin_options(beta, delta, torch, "builtin_pruners")
    coreset = coreset_pruner(beta=beta)
    draws = coreset_pruner(beta=beta, mode="draws")
    raw = raw_max_pruner(beta=beta, mode="draws")
    random = {"unbiased": False, "deterministic": False}
    fixed = {"unbiased": False, "deterministic": True}
    table: dict[str, Audited] = {
        "coreset": Audited(coreset, coreset.claims(kind="uniform", delta=delta)),
        "coreset-draws": Audited(draws, draws.claims(kind="uniform", delta=delta)),
        "raw-max": Audited(raw, raw.claims(kind="uniform", delta=delta)),
        "uniform-reweighted": Audited(uniform_pruner(reweight=True),
                                      {"unbiased": True, "deterministic": False}),
        "uniform": Audited(uniform_pruner(reweight=False), dict(random)),
        "top-norm": Audited(top_norm_pruner(), dict(fixed)),
    }
    if torch:
        table["torch-prune-l1"] = Audited(torch_prune_pruner("l1"), dict(fixed))
        table["torch-prune-random"] = Audited(torch_prune_pruner("random"), dict(random))
        table["torch-pruning"] = Audited(torch_pruning_pruner(), dict(fixed))
    return table
