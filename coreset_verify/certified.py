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

__all__ = ["LAYER_OPTIONS", "MAX_CERTIFIED_DRAWS", "CertifiedCoreset", "certified_coreset"]

_FUNC = "certified_coreset"
#: Most coresets :func:`certified_coreset` draws and certifies.
MAX_CERTIFIED_DRAWS = 1000
#: The options of :func:`~coreset_verify.layer_coreset` passed through ``**options``.
LAYER_OPTIONS = ("split_signs", "reduction", "max_draws")


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


def _check_certificate_path(path) -> Path | None:
    if path is None:
        return None
    if not isinstance(path, (str, os.PathLike)):
        raise fail(_FUNC, "certificate", "None or a file path", type(path).__name__)
    path = Path(path).expanduser()
    if not path.resolve().parent.is_dir() or path.is_dir():
        raise fail(_FUNC, "certificate", "a file path in an existing folder", str(path))
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

    draws = check_int(draws, "draws", _FUNC, minimum=1)
    if draws > MAX_CERTIFIED_DRAWS:
        raise fail(_FUNC, "draws", f"an integer in [1, {MAX_CERTIFIED_DRAWS}]", draws)
    time_limit = check_positive(time_limit, "time_limit", _FUNC)
    check_unknown_options(options, LAYER_OPTIONS, _FUNC)
    if progress is not None and not callable(progress):
        raise fail(_FUNC, "progress", "None or a callable progress(stage, done, total)",
                   type(progress).__name__)
    target = _check_certificate_path(certificate)
    children = check_rng(rng, _FUNC).spawn(draws)
    original = layer_pair_modules(W_in, b_in, W_out, activation=activation)
    best, brackets = None, []
    folder = None if target is None else target.resolve().parent
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        for r, child in enumerate(children):
            coreset = layer_coreset(W_in, b_in, W_out, sample_size=sample_size,
                                    distinct=distinct, activation=activation, beta=beta,
                                    rng=child, **options)
            pruned = layer_pair_modules(*coreset.pruned(), activation=activation)
            scale = np.where(coreset.scale > 0, coreset.scale, 1.0)
            path = Path(scratch) / f"draw{r}.npz" if target is not None else None
            result = worst_case(original, pruned, beta=beta, scale=scale,
                                time_limit=time_limit, rng=r, certificate=path)
            brackets.append((result.error, result.upper_bound))
            if best is None or result.upper_bound < best[1].upper_bound:
                best = (coreset, result, r, path)
            if progress is not None:
                progress("certify", r + 1, draws)
        if target is not None:
            os.replace(best[3], target)
    return CertifiedCoreset(best[0], best[1], target, tuple(brackets), best[2])
