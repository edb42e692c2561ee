"""The verdict: does a coreset meet its theoretical epsilon on the whole ball?

:func:`check_guarantee` runs the worst-case search on a layer pair and its
coreset and compares the bracket ``[found, certified]`` with the claimed
``epsilon``. It never says ``holds`` without a sound upper bound below the
claim, and it says ``violated`` only with an input whose re-evaluated error is
above it (saved as a counterexample when a folder is given).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._validation import check_layer, check_positive, fail, to_numpy
from .coreset import LayerCoreset
from .counterexamples import layer_errors, save_counterexample
from .guarantees import Bound, theoretical_bound

__all__ = ["HOLDS", "NOT_REFUTED", "VIOLATED", "GuaranteeCheck", "check_guarantee"]

#: A sound upper bound on the worst case is at most epsilon.
HOLDS = "holds"
#: An input was found whose error exceeds epsilon.
VIOLATED = "violated"
#: Found below epsilon, certified above it (or not certified at all).
NOT_REFUTED = "not refuted"

# Slack for "exceeds": relative to epsilon, far above float64 rounding of the
# re-evaluated error.
_VIOLATION_RTOL = 1e-9


@dataclass(frozen=True)
class GuaranteeCheck:
    """The verdict on one coreset and one claimed bound.

    Attributes
    ----------
    verdict : {"holds", "violated", "not refuted"}
    epsilon : float
        The claim, in units of ``bound.scale``.
    found : float
        Largest error found (a lower bound on the true worst case).
    certified : float
        Sound upper bound on the worst case (``inf`` when none).
    tightness : float
        ``found / epsilon``.
    data_error : float or None
        Largest error over the data, when data were given.
    bound : Bound
    worst_case : WorstCase
    counterexample : Path or None
        The JSON file written for a violation, when a folder was given.
    """

    verdict: str
    epsilon: float
    found: float
    certified: float
    tightness: float
    data_error: float | None
    bound: Bound = field(repr=False)
    worst_case: Any = field(repr=False)
    counterexample: Path | None = None

    def bracket(self) -> str:
        """``[found, certified]`` beside epsilon, for reports."""
        return (f"[{self.found:.4g}, {self.certified:.4g}] vs epsilon {self.epsilon:.4g}: "
                f"{self.verdict}")


def _reusable(result, modules, beta, scale):
    """``result`` if it is a verified search of these modules over this ball."""
    from .search import WorstCase, verify

    same_domain = (isinstance(result, WorstCase) and result.beta == beta
                   and result.lower is None and result.upper is None
                   and np.array_equal(np.asarray(result.scale, dtype=np.float64), scale))
    if not (same_domain and verify(result, *modules)):
        raise fail("check_guarantee", "search_result",
                   "a verified WorstCase of this layer pair, ball and scale",
                   "a result of another search")
    return result


def _verdict(found: float, certified: float, epsilon: float) -> str:
    if found > epsilon * (1 + _VIOLATION_RTOL):
        return VIOLATED
    if certified <= epsilon:
        return HOLDS
    return NOT_REFUTED


def check_guarantee(
    W_in: Any,
    b_in: Any,
    W_out: Any,
    coreset: LayerCoreset,
    *,
    delta: float,
    kind: str = "uniform",
    time_limit: float | None = 60.0,
    method: str = "auto",
    data: Any = None,
    rng: Any = None,
    paper_constant: float = 1.0,
    counterexample_dir: Any = None,
    name: str | None = None,
    progress: Any = None,
    search_result: Any = None,
    metadata: dict[str, Any] | None = None,
) -> GuaranteeCheck:
    """Search the ball for an input beyond the coreset's epsilon, and certify.

    Parameters
    ----------
    W_in, b_in, W_out : arrays, shapes (n, d), (n,), (k, n)
        The original layer pair (the one ``coreset`` was drawn from).
    coreset : LayerCoreset
    delta : float
        Failure probability of the claimed bound.
    kind : {"pointwise", "uniform", "paper"}
        Which bound is claimed for every input of the ball. ``"pointwise"`` is
        not a uniform theorem: checking it here asks whether it *happens* to
        hold uniformly for this draw.
    time_limit : float or None
        Seconds for the search (``worst_case``).
    method : str
        ``worst_case`` method.
    data : array, shape (N, d), optional
        Inputs whose largest error is reported beside the worst case; the
        search also starts from them, so ``found`` is at least their error
        when they lie in the ball.
    counterexample_dir : path, optional
        Where a violation is saved (``NAME.npz`` + ``NAME.json``).
    search_result : WorstCase, optional
        A search already run on this coreset (``check_guarantee(...).worst_case``):
        every kind shares the scale ``T``, so several claims can be checked
        against one search. Re-verified before use.
    metadata : dict, optional
        Added to a saved counterexample's JSON; give ``{"seed": s}`` when the
        coreset was drawn with ``rng=s`` so the replay can re-draw it.

    Returns
    -------
    GuaranteeCheck
    """
    from .network import layer_pair_modules
    from .search import worst_case

    func = "check_guarantee"
    if not isinstance(coreset, LayerCoreset):
        raise fail(func, "coreset", "a LayerCoreset", type(coreset).__name__)
    _, W_in, b_in, W_out = check_layer(func, W_in, b_in, W_out)
    layer = tuple(np.asarray(to_numpy(a), dtype=np.float64) for a in (W_in, b_in, W_out))
    stored = tuple(np.asarray(to_numpy(a), dtype=np.float64) for a in coreset.layer)
    if any(a.shape != b.shape or not np.array_equal(a, b) for a, b in zip(layer, stored,
                                                                          strict=True)):
        raise fail(func, "coreset", "drawn from this (W_in, b_in, W_out)",
                   "a coreset of a different layer pair")
    if time_limit is not None:
        time_limit = check_positive(time_limit, "time_limit", func)
    bound = theoretical_bound(coreset, delta=delta, kind=kind, paper_constant=paper_constant)
    pruned = tuple(np.asarray(to_numpy(a), dtype=np.float64) for a in coreset.pruned())
    act = coreset.activation.name
    modules = (layer_pair_modules(*layer, activation=act),
               layer_pair_modules(*pruned, activation=act))
    data64 = None if data is None else np.asarray(to_numpy(data), dtype=np.float64)
    if search_result is None:
        result = worst_case(*modules, beta=coreset.beta, scale=bound.scale, method=method,
                            time_limit=time_limit, rng=rng, progress=progress, starts=data64)
    else:
        result = _reusable(search_result, modules, coreset.beta, bound.scale)
    found, certified = float(result.error), float(result.upper_bound)
    verdict = _verdict(found, certified, bound.epsilon)
    data_error = None
    if data64 is not None:
        data_error = float(np.max(layer_errors(layer, pruned, bound.scale, data64, act)))
    saved = None
    if verdict == VIOLATED and counterexample_dir is not None:
        saved = save_counterexample(
            counterexample_dir, name or f"{kind}-m{coreset.sample_size}", x=result.x,
            layer=layer, pruned=pruned, scale=bound.scale,
            metadata={"error": found, "epsilon": bound.epsilon, "kind": kind, "delta": delta,
                      "activation": act, "beta": coreset.beta,
                      "sample_size": coreset.sample_size, "paper_constant": paper_constant,
                      "certified": certified if math.isfinite(certified) else None,
                      "method": method, "status": result.status, **(metadata or {})})
    return GuaranteeCheck(
        verdict=verdict, epsilon=bound.epsilon, found=found, certified=certified,
        tightness=found / bound.epsilon if bound.epsilon > 0 else math.inf,
        data_error=data_error, bound=bound, worst_case=result, counterexample=saved,
    )
