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

from ._validation import (
    check_float_dtype,
    check_layer,
    check_open_unit,
    check_option,
    check_positive,
    check_rng,
    fail,
    to_numpy,
)
from .coreset import LayerCoreset
from .counterexamples import NAME_PATTERN, LayerPair, layer_errors, save_counterexample
from .guarantees import KINDS, Bound, theoretical_bound
from .nets import layer_pair_modules
from .nets.intervals import ball_range

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
                   and result.scale is not None and np.shape(result.scale) == scale.shape
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


def _layer_of(func: str, W_in: Any, b_in: Any, W_out: Any, coreset: Any) -> tuple:
    """The validated layer pair and the coreset's pruned pair, float64 LayerPairs."""
    if not isinstance(coreset, LayerCoreset):
        raise fail(func, "coreset", "a LayerCoreset", type(coreset).__name__)
    _, W_in, b_in, W_out = check_layer(func, W_in, b_in, W_out)
    for name, a in (("W_in", W_in), ("b_in", b_in), ("W_out", W_out)):
        check_float_dtype(a.dtype, name, func)
    layer = LayerPair(*(np.asarray(to_numpy(a), dtype=np.float64) for a in (W_in, b_in, W_out)))
    stored = tuple(np.asarray(to_numpy(a), dtype=np.float64) for a in coreset.layer[:3])
    if any(a.shape != b.shape or not np.array_equal(a, b) for a, b in zip(layer, stored,
                                                                          strict=True)):
        raise fail(func, "coreset", "drawn from this (W_in, b_in, W_out)",
                   "a coreset of a different layer pair")
    pruned = LayerPair(*(np.asarray(to_numpy(a), dtype=np.float64) for a in coreset.pruned()))
    return layer, pruned


def _row_is_zero(layer: LayerPair, pruned: LayerPair, i: int, beta: float, act) -> bool:
    """Whether ``F_i - F~_i`` is 0 on the whole ball, proved from the weights.

    Its coefficients over the original and the kept neurons (kept neurons that
    are original rows are merged with them) must vanish, except on neurons
    that are 0 on the ball: ReLU neurons whose pre-activation range (sound,
    scaled norms) lies in ``z <= 0``.
    """
    rows = np.vstack([layer.W_in, pruned.W_in])
    bias = np.concatenate([layer.b_in, pruned.b_in])
    coef = np.concatenate([layer.W_out[i], -pruned.W_out[i]])
    n = len(layer.b_in)
    for r in range(len(pruned.b_in)):
        same = np.flatnonzero(np.all(layer.W_in == pruned.W_in[r], axis=1)
                              & (layer.b_in == pruned.b_in[r]))
        if same.size:
            coef[same[0]] += coef[n + r]
            coef[n + r] = 0.0
    live = coef != 0
    if not live.any():
        return True
    dead = ball_range(rows[live], bias[live], beta).hi <= 0
    return act.name == "relu" and bool(np.all(dead))


def _live_outputs(func: str, layer: LayerPair, pruned: LayerPair, scale: np.ndarray,
                  beta: float, act) -> np.ndarray:
    """Outputs with ``T_i > 0``; an output with ``T_i = 0`` carries no error (the
    convention of ``theoretical_bound``) and is checked to be 0 on the ball."""
    live = scale > 0
    for i in np.flatnonzero(~live):
        if not _row_is_zero(layer, pruned, int(i), beta, act):
            raise fail(func, "W_in", f"weights whose scale T_{i} is representable: T_{i} "
                       f"came out 0 while output {i} of the layer or of the coreset is not 0 "
                       "on the ball (float64 underflow); rescale the layer",
                       f"T_{i} = 0")
    if not live.any():
        raise fail(func, "W_out", "a layer with an output whose scale T_i > 0",
                   "every T_i = 0 (the layer is 0 on the ball)")
    return live


def _rows(pair: LayerPair, live: np.ndarray) -> LayerPair:
    return LayerPair(pair.W_in, pair.b_in, pair.W_out[live])


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
        The original layer pair (the one ``coreset`` was drawn from), float32
        or float64 (float16 and bfloat16 are refused).
    coreset : LayerCoreset
    delta : float
        Failure probability of the claimed bound.
    kind : {"pointwise", "uniform", "paper"}
        Which bound is claimed for every input of the ball. ``"pointwise"`` is
        not a uniform theorem: checking it here asks whether it *happens* to
        hold uniformly for this draw.
    time_limit : float or None
        Seconds for the search (``worst_case``): a finite number > 0, or None.
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

    Raises
    ------
    InvalidArgumentError
        Bad layer, a coreset of another layer, a ``search_result`` of another
        search, bad ``time_limit``/``method``/``rng``/``data``, or an output
        whose scale ``T_i`` underflows to 0 while it is not 0 on the ball.

    Notes
    -----
    An output with ``T_i = 0`` is 0 on the whole ball in the layer and in the
    coreset (this is checked from the weights), so it carries no error, as in
    :func:`coreset_verify.theoretical_bound`; the search runs on the other
    outputs, with the objective ``max_i |F_i - F~_i| / T_i``.
    """
    from .search import worst_case

    func = "check_guarantee"
    layer, pruned = _layer_of(func, W_in, b_in, W_out, coreset)
    time_limit, rng = _check_options(func, delta, kind, time_limit, method, rng,
                                     paper_constant, name, progress, metadata)
    bound = theoretical_bound(coreset, delta=delta, kind=kind, paper_constant=paper_constant)
    act = coreset.activation.name
    live = _live_outputs(func, layer, pruned, bound.scale, coreset.beta, coreset.activation)
    modules = (layer_pair_modules(*_rows(layer, live), activation=act),
               layer_pair_modules(*_rows(pruned, live), activation=act))
    data64 = None if data is None else _data(func, data, layer.W_in.shape[1])
    if search_result is None:
        result = worst_case(*modules, beta=coreset.beta, scale=bound.scale[live],
                            method=method, time_limit=time_limit, rng=rng,
                            progress=progress, starts=data64)
    else:
        result = _reusable(search_result, modules, coreset.beta, bound.scale[live])
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
            metadata={"kind": kind, "delta": delta, "paper_constant": paper_constant,
                      "method": method, **_record(result, bound, coreset),
                      **(metadata or {})})
    return GuaranteeCheck(
        verdict=verdict, epsilon=bound.epsilon, found=found, certified=certified,
        tightness=found / bound.epsilon if bound.epsilon > 0 else math.inf,
        data_error=data_error, bound=bound, worst_case=result, counterexample=saved,
    )


def _record(result: Any, bound: Bound, coreset: LayerCoreset) -> dict[str, Any]:
    """What a saved counterexample records of the search, the claim and the coreset."""
    certified = float(result.upper_bound)
    return {"error": float(result.error), "epsilon": bound.epsilon,
            "activation": coreset.activation.name, "beta": coreset.beta,
            "sample_size": coreset.sample_size, "status": result.status,
            "certified": certified if math.isfinite(certified) else None}


def _check_options(func: str, delta: Any, kind: Any, time_limit: Any, method: Any, rng: Any,
                   paper_constant: Any, name: Any, progress: Any, metadata: Any) -> tuple:
    """Check the options up front, naming check_guarantee; returns the validated
    ``(time_limit, rng)`` (``rng`` a Generator)."""
    from .search import METHODS

    check_open_unit(delta, "delta", func)
    check_option(kind, "kind", func, KINDS)
    check_option(method, "method", func, METHODS)
    check_positive(paper_constant, "paper_constant", func)
    if time_limit is not None:
        time_limit = check_positive(time_limit, "time_limit", func)
    if name is not None and not (isinstance(name, str) and NAME_PATTERN.match(name)):
        raise fail(func, "name", "None or a string of letters, digits, '.', '_' or '-'", name)
    if progress is not None and not callable(progress):
        raise fail(func, "progress", "None or a callable progress(stage, done, total)",
                   type(progress).__name__)
    if metadata is not None and not isinstance(metadata, dict):
        raise fail(func, "metadata", "None or a dict", type(metadata).__name__)
    return time_limit, check_rng(rng, func)


def _data(func: str, data: Any, d: int) -> np.ndarray:
    """``data`` as a finite float64 (N, d) array."""
    expected = f"a finite array of shape (N, {d}) with N >= 1"
    try:
        arr = np.asarray(to_numpy(data), dtype=np.float64)
    except (TypeError, ValueError):
        raise fail(func, "data", expected, type(data).__name__) from None
    if arr.ndim != 2 or arr.shape[1] != d or arr.shape[0] < 1:
        raise fail(func, "data", expected, f"shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise fail(func, "data", expected, "an array with NaN or infinite entries")
    return arr
