"""Certified pruning: draw several coresets, prove each one's worst case, keep the best.

A coreset's guarantee is a statement about the draw: with probability
``1 - delta`` the layer it produced errs by at most ``epsilon T_i``. The layer
a user deploys is one draw. :func:`certified_coreset` draws ``draws`` of them,
brackets each one's worst-case error over the ball with
:func:`~coreset_verify.search.worst_case` (branch and bound for (leaky) ReLU
layers, proofs_notes/bab.md), and returns the draw with the smallest proved
upper bound: a deterministic statement about the layer actually kept,
re-checkable from its certificate.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._validation import check_int, check_positive, check_rng, check_unknown_options, fail
from .coreset import LayerCoreset, layer_coreset

__all__ = ["LAYER_OPTIONS", "MAX_CERTIFIED_DRAWS", "NETWORK_OPTIONS", "CertifiedCoreset",
           "CertifiedNetwork", "certified_coreset", "certified_network"]

_FUNC = "certified_coreset"
#: Most coresets :func:`certified_coreset` draws and certifies.
MAX_CERTIFIED_DRAWS = 1000
#: The options of :func:`~coreset_verify.layer_coreset` passed through ``**options``.
LAYER_OPTIONS = ("split_signs", "reduction", "max_draws")
#: The options of :func:`~coreset_verify.network.prune_network` passed through.
NETWORK_OPTIONS = ("keep", "epsilon", "delta", "order", "kind")


@dataclass(frozen=True)
class CertifiedCoreset:
    """The kept draw, what was proved about it, and every draw's bracket.

    Attributes
    ----------
    coreset : LayerCoreset
        The draw with the smallest proved worst-case error.
    worst_case : WorstCase
        Its search: ``upper_bound`` is a sound bound on
        ``max_{||x|| <= beta} max_i |F_i(x) - F~_i(x)| / T_i`` (``T_i`` is
        ``coreset.scale``, 1 where it is 0), ``error`` an input's actual error.
    certificate : pathlib.Path or None
        The proof of ``worst_case``'s branch-and-bound bound, when one was
        asked for (check it with :func:`coreset_verify.certificate.check`).
    brackets : tuple of (float, float)
        ``(found, upper_bound)`` of every draw, in drawing order.
    chosen : int
        Index of the kept draw in ``brackets``.
    """

    coreset: LayerCoreset
    worst_case: Any
    certificate: Path | None
    brackets: tuple
    chosen: int


@dataclass(frozen=True)
class CertifiedNetwork:
    """The kept pruning of a whole network, what was proved about it, and
    every draw's bracket.

    Attributes
    ----------
    pruned : PrunedNetwork
        The draw with the smallest proved worst-case error.
    worst_case : WorstCase
        Its search: ``upper_bound`` is a sound bound on
        ``max_{||x|| <= beta} max_i |model_i(x) - pruned_i(x)|`` (logit units),
        ``error`` an input's actual difference.
    certificate : pathlib.Path or None
        The proof of ``worst_case``'s bound, when one was asked for (check it
        with :func:`coreset_verify.certificate.check` on ``model`` and
        ``pruned.model``).
    brackets : tuple of (float, float)
        ``(found, upper_bound)`` of every draw, in drawing order.
    chosen : int
        Index of the kept draw in ``brackets``.
    """

    pruned: Any
    worst_case: Any
    certificate: Path | None
    brackets: tuple
    chosen: int


def _check_common(func: str, draws, time_limit, progress) -> tuple:
    """Validated ``(draws, time_limit)`` of the certified pruners."""
    draws = check_int(draws, "draws", func, minimum=1)
    if draws > MAX_CERTIFIED_DRAWS:
        raise fail(func, "draws", f"an integer in [1, {MAX_CERTIFIED_DRAWS}]", draws)
    time_limit = check_positive(time_limit, "time_limit", func)
    if progress is not None and not callable(progress):
        raise fail(func, "progress", "None or a callable progress(stage, done, total)",
                   type(progress).__name__)
    return draws, time_limit


def certified_network(model: Any, *, draws: int, time_limit: float, beta: float,
                      rng: Any = None, certificate: Any = None, progress: Any = None,
                      **options: Any) -> CertifiedNetwork:
    """Prune a whole network ``draws`` times, certify each, keep the one proved best.

    Every draw is :func:`~coreset_verify.network.prune_network` with a child
    of ``rng``; its worst case over the ball is bracketed by
    :func:`~coreset_verify.search.worst_case` (``method="auto"``: for (leaky)
    ReLU networks the joint branch and bound of proofs_notes/bab.md, Lemma
    B3) within ``time_limit`` seconds, and the draw with the smallest sound
    upper bound is returned.

    Parameters
    ----------
    model : torch.nn.Sequential
        As for :func:`~coreset_verify.network.prune_network`.
    draws : int
        How many prunings to draw, ``1 <= draws <= MAX_CERTIFIED_DRAWS``.
    time_limit : float
        Seconds of search per draw (finite, > 0).
    beta : float
        Radius of the input ball (of the pruning and of the search).
    rng : int, numpy.random.Generator or None
        Draw ``r`` uses the ``r``-th child of ``rng`` (``Generator.spawn``).
    certificate : str or os.PathLike, optional
        Write the kept draw's certificate here ((leaky) ReLU networks;
        ``coreset-verify/deep/1`` for two or more hidden layers).
    progress : callable, optional
        ``progress("certify", r + 1, draws)`` after each draw.
    **options
        Passed to :func:`~coreset_verify.network.prune_network` (``keep``,
        ``epsilon``, ``delta``, ``order``, ``kind``).

    Returns
    -------
    CertifiedNetwork

    Raises
    ------
    InvalidArgumentError
        Bad ``draws``, ``time_limit``, ``progress``, an unknown option, or
        anything :func:`~coreset_verify.network.prune_network` or
        :func:`~coreset_verify.search.worst_case` refuses.

    Examples
    --------
    >>> import torch
    >>> from coreset_verify.models import mlp
    >>> model = mlp([4, 8, 6, 2], seed=0).double()
    >>> best = certified_network(model, draws=2, time_limit=4, beta=1.0,
    ...                          keep=0.5, rng=0)
    >>> len(best.brackets), best.worst_case.upper_bound >= best.worst_case.error
    (2, True)
    """
    from .network import prune_network
    from .search import worst_case

    func = "certified_network"
    draws, time_limit = _check_common(func, draws, time_limit, progress)
    check_unknown_options(options, NETWORK_OPTIONS, func)
    target = _check_certificate_path(certificate, func)

    def draw(r: int, child, path):
        pruned = prune_network(model, beta=beta, rng=child, **options)
        return pruned, worst_case(model, pruned.model, beta=beta, time_limit=time_limit,
                                  rng=r, certificate=path)

    best, brackets = _best_of(check_rng(rng, func).spawn(draws), draw, target, progress)
    return CertifiedNetwork(best[0], best[1], target, brackets, best[2])


def _best_of(children: list, draw, target: Path | None, progress) -> tuple:
    """``draw(r, child, path)`` for each child: ``(item, WorstCase)``; the
    ``(item, result, r)`` of the smallest proved bound, every ``(found,
    upper)``, and the kept draw's certificate moved to ``target``."""
    best, brackets = None, []
    folder = None if target is None else target.resolve().parent
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        for r, child in enumerate(children):
            path = Path(scratch) / f"draw{r}.npz" if target is not None else None
            item, result = draw(r, child, path)
            brackets.append((result.error, result.upper_bound))
            if best is None or result.upper_bound < best[1].upper_bound:
                best = (item, result, r, path)
            if progress is not None:
                progress("certify", r + 1, len(children))
        if target is not None:
            os.replace(best[3], target)
    return best[:3], tuple(brackets)


def _check_certificate_path(path, func: str = _FUNC) -> Path | None:
    if path is None:
        return None
    if not isinstance(path, (str, os.PathLike)):
        raise fail(func, "certificate", "None or a file path", type(path).__name__)
    path = Path(path).expanduser()
    if not path.resolve().parent.is_dir() or path.is_dir():
        raise fail(func, "certificate", "a file path in an existing folder", str(path))
    return path


def certified_coreset(W_in: Any, b_in: Any, W_out: Any, *, draws: int,
                      time_limit: float, beta: float, sample_size: int | None = None,
                      distinct: int | None = None, activation: Any = "relu",
                      rng: Any = None, certificate: Any = None, progress: Any = None,
                      **options: Any) -> CertifiedCoreset:
    """Draw ``draws`` coresets, certify each, keep the one proved best.

    Parameters
    ----------
    W_in, b_in, W_out : arrays, shapes (n, d), (n,), (k, n)
        The layer pair, as for :func:`~coreset_verify.layer_coreset`.
    draws : int
        How many coresets to draw, ``1 <= draws <= MAX_CERTIFIED_DRAWS``.
    time_limit : float
        Seconds of search per draw (finite, > 0).
    beta : float
        Radius of the input ball.
    sample_size, distinct, activation, **options
        Passed to :func:`~coreset_verify.layer_coreset` for every draw
        (``options``: ``split_signs``, ``reduction``, ``max_draws``).
    rng : int, numpy.random.Generator or None
        Draw ``r`` uses the ``r``-th child of ``rng`` (``Generator.spawn``).
    certificate : str or os.PathLike, optional
        Write the kept draw's certificate here ((leaky) ReLU layers).
    progress : callable, optional
        ``progress("certify", r + 1, draws)`` after each draw.

    Returns
    -------
    CertifiedCoreset

    Raises
    ------
    InvalidArgumentError
        Bad ``draws``, ``time_limit``, ``certificate``, or anything
        :func:`~coreset_verify.layer_coreset` or
        :func:`~coreset_verify.search.worst_case` refuses.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> W_in, b_in, W_out = rng.normal(size=(6, 3)), rng.normal(size=6), rng.normal(size=(2, 6))
    >>> best = certified_coreset(W_in, b_in, W_out, draws=3, time_limit=5, beta=1.0,
    ...                          distinct=3, rng=0)
    >>> best.worst_case.certified, len(best.brackets)
    (True, 3)
    """
    from .nets.layer_pair import layer_pair_modules
    from .search import worst_case

    draws, time_limit = _check_common(_FUNC, draws, time_limit, progress)
    check_unknown_options(options, LAYER_OPTIONS, _FUNC)
    target = _check_certificate_path(certificate)
    original = layer_pair_modules(W_in, b_in, W_out, activation=activation)

    def draw(r: int, child, path):
        coreset = layer_coreset(W_in, b_in, W_out, sample_size=sample_size,
                                distinct=distinct, activation=activation, beta=beta,
                                rng=child, **options)
        pruned = layer_pair_modules(*coreset.pruned(), activation=activation)
        scale = np.where(coreset.scale > 0, coreset.scale, 1.0)
        return coreset, worst_case(original, pruned, beta=beta, scale=scale,
                                   time_limit=time_limit, rng=r, certificate=path)

    best, brackets = _best_of(check_rng(rng, _FUNC).spawn(draws), draw, target, progress)
    return CertifiedCoreset(best[0], best[1], target, brackets, best[2])
