"""The checks of the audit battery, one small ``check_*`` function each.

Every check has the signature ``check(pruner, context) -> Outcome`` and never
raises for a fault of the pruner: an exception the pruner throws, or a call
that does not return within the time limit, is a failed check.
:func:`yield_checks` yields ``(name, check)`` pairs in a fixed order, as
scikit-learn's ``_yield_all_checks`` does; :mod:`.battery` runs them. A check
that does not apply to the claims is *skipped*, a status of its own.

The same checks run on dense pairs and on conv pairs (:mod:`._conv`, where a
channel is a neuron): they read a layer through its kind-neutral surface
(``n``, ``arrays()``, ``permuted``, ``rescaled``, ``incoming``) and evaluate
``F`` through :func:`~._forward.evaluate`, the one evaluator of the audit.

Statistical checks fix their seeds and margins before looking at the data and
never retry; each says in a comment what false-alarm rate it accepts.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Mapping
from statistics import NormalDist
from typing import Any, NamedTuple

import numpy as np

from ._arguments import CLAIM_KEYS, check_claims
from ._context import (
    AuditContext,
    Outcome,
    Stream,
    call,
    call_many,
    claimed_epsilons,
    prune_many,
    pruned_outputs,
    seed_stream,
    stream_evidence,
)
from ._forward import evaluate, relative_error, scale_of
from ._inputs import ball_inputs
from ._layers import Layer, Pruner, degenerate_layer
from ._search import search_available, search_worst_case
from ._worker import CallSpec, PrunerError

__all__ = [
    "CHECKS",
    "CLAIM_KEYS",
    "AuditContext",
    "Outcome",
    "PrunerError",
    "check_claims",
    "check_degenerate_neurons",
    "check_error_shrinks",
    "check_full_size_exact",
    "check_guarantee",
    "check_inputs_not_mutated",
    "check_kept_rows",
    "check_permutation",
    "check_returns_arrays",
    "check_rng",
    "check_size_budget",
    "check_unbiased",
    "yield_checks",
]

#: Family-wise false-alarm rate of each statistical check (Bonferroni inside).
ALPHA = 1e-3
#: Pilot standard deviations are multiplied by this before the margin is fixed:
#: it covers the pilot's own estimation error (a 50-seed pilot underestimates a
#: standard deviation by more than 1.5x with probability far below 1e-6).
SD_INFLATION = 1.5
#: Absolute slack, in units of T_i, for float64 rounding.
ROUNDING = 1e-9
#: Relative tolerance of :func:`check_kept_rows` (a float32 round trip is 6e-8).
ROW_RTOL = 1e-6


# ----------------------------------------------------------------- helpers


def _same(a: tuple, b: tuple) -> bool:
    return all(np.array_equal(np.asarray(p), np.asarray(q), equal_nan=True)
               for p, q in zip(a, b, strict=True))


def _z(alpha: float, tests: int) -> float:
    """Two-sided normal quantile with a Bonferroni correction over ``tests``."""
    return NormalDist().inv_cdf(1 - alpha / (2 * tests))


def _sizes(layer: Layer) -> list[int]:
    return sorted({1, 2, max(1, layer.n // 3), max(1, layer.n // 2), max(1, layer.n - 1)})


# ------------------------------------------------------------------ checks


def _array_fault(out: Any, layer: Layer, where: str) -> Outcome | None:
    """Why ``out`` is not three finite float64 arrays of consistent shapes, or None.

    For a conv pair: why it is not ``(kept, next_weight')`` as the conv
    protocol asks (:func:`~._conv.conv_fault`).
    """
    if layer.kind == "conv":
        from ._conv import conv_fault

        fault = conv_fault(out, layer, where)
        return None if fault is None else Outcome.fail(fault, {"layer": layer.name})
    if not (isinstance(out, (tuple, list)) and len(out) == 3):
        return Outcome.fail(f"expected a 3-tuple (W_in', b_in', W_out'); got "
                            f"{type(out).__name__} ({where})", {"layer": layer.name})
    for label, a in zip(("W_in'", "b_in'", "W_out'"), out, strict=True):
        if not isinstance(a, np.ndarray):
            return Outcome.fail(f"{label} must be a numpy.ndarray; got {type(a).__name__} "
                                f"({where})", {"layer": layer.name})
        if a.dtype != np.float64:
            return Outcome.fail(f"{label} must be float64; got {a.dtype} ({where})",
                                {"layer": layer.name, "dtype": str(a.dtype)})
        if not np.all(np.isfinite(a)):
            return Outcome.fail(f"{label} has NaN or infinite entries ({where})",
                                {"layer": layer.name})
    r = out[0].shape[0] if out[0].ndim == 2 else -1
    shapes = [tuple(a.shape) for a in out]
    if shapes != [(r, layer.d), (r,), (layer.k, r)]:
        return Outcome.fail(f"shapes must be (r, {layer.d}), (r,), ({layer.k}, r); got "
                            f"{shapes} ({where})", {"layer": layer.name, "shapes": shapes})
    return None


def check_returns_arrays(pruner: Pruner, ctx: AuditContext) -> Outcome:
    """Three float64 numpy arrays of shapes (r, d), (r,), (k, r), all finite.

    Conv pairs: ``(kept, next_weight')``, distinct integer channels in range
    and a finite float64 next weight of the restricted shape.
    """
    for index, layer in enumerate(ctx.layers):
        size, seed = max(1, layer.n // 3), seed_stream(ctx, Stream.RETURNS, index, 1)[0]
        fault = _array_fault(call(pruner, ctx, layer, size, seed), layer,
                             f"layer {layer.name!r}, size={size}")
        if fault is not None:
            return fault
    return Outcome.ok("arrays of the protocol's types and consistent shapes on every layer")


def check_size_budget(pruner: Pruner, ctx: AuditContext) -> Outcome:
    """At most ``size`` neurons (channels) kept, for sizes 1, 2, n/3, n/2 and n - 1."""
    tried = []
    for index, layer in enumerate(ctx.layers):
        specs = [CallSpec(layer, size, seed) for size in _sizes(layer)
                 for seed in seed_stream(ctx, Stream.SIZE, index, 2)]
        for spec, out in zip(specs, prune_many(pruner, ctx, specs), strict=True):
            kept = out.W_in.shape[0]
            tried.append((layer.name, spec.size, kept))
            if kept > spec.size:
                return Outcome.fail(f"kept {kept} neurons with size={spec.size} (layer "
                                    f"{layer.name!r}, seed={spec.seed})",
                                    {"layer": layer.name, "size": spec.size, "kept": kept,
                                     "seed": spec.seed})
    return Outcome.ok(f"kept <= size in all {len(tried)} calls",
                      {"calls": [list(t) for t in tried]})


class RowFault(NamedTuple):
    """A kept row that is not an original neuron: which row, which field, nearest neuron."""

    row: int
    field: str
    neuron: int
    message: str


def _row_fault(layer: Layer, W_kept: np.ndarray, b_kept: np.ndarray) -> RowFault | None:
    """The first kept row that is not an original ``(W_in[j], b_in[j])``, described."""
    W, b = layer.W_in, layer.b_in
    tol_w = ROW_RTOL * np.max(np.abs(W), axis=1)
    tol_b = ROW_RTOL * np.maximum(np.abs(b), np.max(np.abs(W), axis=1))
    for r in range(W_kept.shape[0]):
        gap = np.max(np.abs(W - W_kept[r]), axis=1)
        rows = np.flatnonzero(gap <= tol_w)
        if rows.size == 0:
            j = int(np.argmin(gap))
            return RowFault(r, "W_in'", j, f"kept row {r}: W_in'[{r}] is not a row of W_in "
                            f"(nearest is row {j}, largest difference {gap[j]:.3g})")
        bias_gap = np.abs(b[rows] - b_kept[r])
        if not np.any(bias_gap <= tol_b[rows]):
            j = int(rows[np.argmin(bias_gap)])
            return RowFault(r, "b_in'", j, f"kept row {r}: W_in'[{r}] is row {j} of W_in, but "
                            f"b_in'[{r}] = {b_kept[r]:.6g} is not b_in[{j}] = {b[j]:.6g}")
    return None


def check_kept_rows(pruner: Pruner, ctx: AuditContext) -> Outcome:
    """Every kept neuron is an original one: ``(W_in'[r], b_in'[r]) = (W_in[j], b_in[j])``.

    Weights and bias both, up to a relative ``1e-6`` (float32 round trips
    pass, a bias taken from another neuron does not), at sizes n/3 and n/2,
    two seeds, on every layer and the degenerate layer (duplicate and zero
    rows). The message names the kept row and the field that differs. A
    pruner that changes incoming weights on purpose declares this check in
    ``expected_failed_checks``. Skipped for conv pairs: a conv pruner returns
    channel indices, so its kept filters are the original ones by
    construction (``check_returns_arrays`` checks the indices).
    """
    if ctx.kind == "conv":
        return Outcome.skip("a conv pruner returns channel indices: its kept filters are "
                            "the original ones by construction")
    layers = [*ctx.layers, degenerate_layer().layer]
    for index, layer in enumerate(layers):
        specs = [CallSpec(layer, size, seed)
                 for size in sorted({max(1, layer.n // 3), max(1, layer.n // 2)})
                 for seed in seed_stream(ctx, Stream.KEPT_ROWS, index, 2)]
        for spec, (W_kept, b_kept, _) in zip(specs, prune_many(pruner, ctx, specs),
                                             strict=True):
            fault = _row_fault(layer, W_kept, b_kept)
            if fault is not None:
                return Outcome.fail(f"{fault.message} (layer {layer.name!r}, size={spec.size}, "
                                    f"seed={spec.seed})", fault._asdict() | {
                                        "layer": layer.name, "size": spec.size,
                                        "seed": spec.seed})
    return Outcome.ok("every kept row is an original (W_in[j], b_in[j])")


def check_full_size_exact(pruner: Pruner, ctx: AuditContext) -> Outcome:
    """``size = n`` reproduces ``F`` at fixed inputs (relative error <= 1e-9)."""
    if not ctx.claims.get("exact_at_full_size", True):
        return Outcome.skip("the pruner does not claim exact_at_full_size")
    worst = 0.0
    for index, layer in enumerate(ctx.layers):
        x, seeds = ctx.inputs(layer), seed_stream(ctx, Stream.FULL, index, 2)
        outs = prune_many(pruner, ctx, [CallSpec(layer, layer.n, s) for s in seeds])
        for seed, out in zip(seeds, outs, strict=True):
            err = relative_error(layer, out, x, ctx.beta, ctx.act())
            worst = max(worst, err)
            if not err <= 1e-9:
                return Outcome.fail(f"size=n={layer.n} changed the function: max |F - F~| "
                                    f"/ T = {err:.3g} > 1e-9 (layer {layer.name!r}, "
                                    f"seed={seed})", {"layer": layer.name, "seed": seed,
                                                      "error": err})
    return Outcome.ok(f"size=n reproduces F (max relative error {worst:.2g})", {"error": worst})


def check_inputs_not_mutated(pruner: Pruner, ctx: AuditContext) -> Outcome:
    """``W_in``, ``b_in`` and ``W_out`` (conv: ``conv_weight``, ``conv_bias``,
    ``next_weight``) are bitwise unchanged after the call."""
    for index, layer in enumerate(ctx.layers):
        spec = CallSpec(layer, max(1, layer.n // 3),
                        seed_stream(ctx, Stream.MUTATION, index, 1)[0])
        after = call_many(pruner, ctx, [spec], keep=True)[0].arguments
        for label, before, given in zip(layer.argument_names, layer.arrays(), after,
                                        strict=True):
            if not np.array_equal(before, given):
                changed = int(np.sum(before != given))
                return Outcome.fail(f"{label} was modified in place ({changed} entries "
                                    f"changed, layer {layer.name!r})",
                                    {"layer": layer.name, "argument": label,
                                     "changed": changed})
    return Outcome.ok("inputs unchanged")


def check_rng(pruner: Pruner, ctx: AuditContext) -> Outcome:
    """The same seed gives the same result; a random pruner depends on the seed.

    With ``claims["deterministic"] = True`` five seeds must give one result;
    with ``False`` they must give at least two different results (a pruner
    that ignores ``rng`` for a fixed seed of its own fails here).
    """
    layer = ctx.layers[0]
    size, seeds = max(1, layer.n // 3), seed_stream(ctx, Stream.RNG, 0, 5)
    specs = [CallSpec(layer, size, s) for s in seeds]
    first, again = call_many(pruner, ctx, specs), call_many(pruner, ctx, specs)
    for s, a, b in zip(seeds, first, again, strict=True):
        if not _same(a, b):
            return Outcome.fail(f"two calls with rng=default_rng({s}) gave different results"
                                " (does the pruner use a global random state?)",
                                {"seed": s, "layer": layer.name, "size": size})
    distinct = sum(not _same(first[0], out) for out in first[1:]) + 1
    evidence = {"seeds": seeds, "distinct_results": distinct}
    claim = ctx.claims.get("deterministic")
    if claim is True and distinct > 1:
        return Outcome.fail(f"claims deterministic but {len(seeds)} seeds gave {distinct} "
                            "different results", evidence)
    if claim is False and distinct == 1:
        return Outcome.fail(f"claims to be random but {len(seeds)} seeds gave one result "
                            "(is rng ignored?)", evidence)
    return Outcome.ok(f"reproducible; {distinct} distinct results over {len(seeds)} seeds",
                      evidence)


def _mean_test(samples: Callable[[list[int]], np.ndarray], target: Callable,
               ctx: AuditContext, streams: tuple[Stream, Stream], layer: int,
               spread: float = 1.0) -> tuple[bool, dict[str, Any]]:
    """Compare the mean over ``ctx.test_seeds`` seeds of ``samples`` with ``target``.

    The margin is fixed from a pilot run on the pilot stream before the test
    stream is drawn: ``z * SD_INFLATION * sd_pilot * spread / sqrt(S) +
    ROUNDING``, with ``z`` the two-sided normal quantile at ``ALPHA``
    Bonferroni-corrected over every (input, output) pair. ``spread =
    sqrt(2)`` for a difference of two independent means.
    """
    pilot_stream, test_stream = streams
    pilot = samples(seed_stream(ctx, pilot_stream, layer, ctx.pilot_seeds))
    tests = int(np.prod(pilot.shape[1:]))
    margin = (_z(ALPHA, tests) * SD_INFLATION * spread * pilot.std(axis=0, ddof=1)
              / math.sqrt(ctx.test_seeds) + ROUNDING)
    main_seeds = seed_stream(ctx, test_stream, layer, ctx.test_seeds)
    gap = np.abs(samples(main_seeds).mean(axis=0) - target(main_seeds))
    ratio = gap / margin
    worst = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
    return bool(np.all(gap <= margin)), {
        "pilot_seeds": stream_evidence(ctx, pilot_stream, layer, ctx.pilot_seeds),
        "test_seeds": stream_evidence(ctx, test_stream, layer, ctx.test_seeds),
        "tests": tests, "alpha": ALPHA, "worst_gap": float(gap[worst]),
        "margin_at_worst": float(margin[worst]), "worst_ratio": float(ratio[worst]),
        "worst_input": int(worst[0]), "worst_output": int(worst[1]),
    }


def check_unbiased(pruner: Pruner, ctx: AuditContext) -> Outcome:
    """For ``claims["unbiased"]``: the mean of ``F~(x)`` over seeds is ``F(x)``.

    At size ``max(2, n // 4)``, at 8 fixed inputs, over ``ctx.test_seeds``
    seeds, with the margin of :func:`_mean_test` (units of ``F``, reported
    relative to ``T``).
    """
    # False alarms: at most ALPHA = 1e-3 per layer under the normal
    # approximation of the mean (Bonferroni over inputs x outputs); the pilot's
    # sd is inflated 1.5x so that its own error does not raise that rate.
    if not ctx.claims["unbiased"]:
        return Outcome.skip("the pruner does not claim to be unbiased")
    evidence = {}
    for index, layer in enumerate(ctx.layers):
        size, x = max(2, layer.n // 4), ctx.inputs(layer, 8)
        exact = evaluate(layer, layer.arrays(), x, ctx.act())
        ok, ev = _mean_test(lambda seeds, layer=layer, size=size, x=x:
                            pruned_outputs(pruner, ctx, layer, size, seeds, x),
                            lambda seeds, exact=exact: exact, ctx,
                            (Stream.UNBIASED_PILOT, Stream.UNBIASED_TEST), index)
        scale = scale_of(layer, ctx.beta, ctx.act())
        ev |= {"size": size, "bias_over_T": ev["worst_gap"] / float(scale[ev["worst_output"]])}
        evidence[layer.name] = ev
        if not ok:
            return Outcome.fail(f"mean of F~ over {ctx.test_seeds} seeds misses F by "
                                f"{ev['worst_gap']:.3g} (= {ev['bias_over_T']:.3g} T) > "
                                f"margin {ev['margin_at_worst']:.3g} (layer {layer.name!r}, "
                                f"size={size})", evidence)
    return Outcome.ok("mean over seeds matches F within the fixed margin", evidence)


def check_permutation(pruner: Pruner, ctx: AuditContext) -> Outcome:
    """Permuting the neurons (channels) does not change the pruned function.

    Deterministic pruners (declared, or giving one result for two seeds):
    ``F~`` of the permuted layer equals ``F~`` of the original at fixed inputs
    (relative 1e-9). Random pruners: the means over seeds agree, by the test of
    :func:`_mean_test` (false alarms at most 1e-3).
    """
    layer = ctx.layers[0]
    perm = np.random.default_rng([ctx.seed, 31]).permutation(layer.n)
    other, size, x = layer.permuted(perm), max(1, layer.n // 3), ctx.inputs(layer, 8)
    seed_a, seed_b = seed_stream(ctx, Stream.PERMUTATION, 0, 2)
    deterministic = ctx.claims.get("deterministic")
    if deterministic is None:
        deterministic = _same(*call_many(pruner, ctx, [CallSpec(layer, size, seed_a),
                                                       CallSpec(layer, size, seed_b)]))
    evidence: dict[str, Any] = {"permutation": perm.tolist(), "size": size,
                                "deterministic": bool(deterministic)}
    if deterministic:
        outs = prune_many(pruner, ctx, [CallSpec(layer, size, seed_a),
                                        CallSpec(other, size, seed_a)])
        a, b = (evaluate(lay, out, x, ctx.act())
                for lay, out in zip((layer, other), outs, strict=True))
        gap = float(np.max(np.abs(a - b) / scale_of(layer, ctx.beta, ctx.act())))
        evidence["difference_over_T"] = gap
        if gap > 1e-9:
            return Outcome.fail(f"permuting the neurons changed the pruned function by "
                                f"{gap:.3g} T (deterministic pruner, seed={seed_a})", evidence)
        return Outcome.ok("same pruned function after permuting the neurons", evidence)
    ok, ev = _mean_test(lambda seeds: pruned_outputs(pruner, ctx, layer, size, seeds, x),
                        lambda seeds: pruned_outputs(pruner, ctx, other, size, seeds, x)
                        .mean(axis=0), ctx, (Stream.PERMUTATION_PILOT, Stream.PERMUTATION_TEST),
                        0, spread=math.sqrt(2))
    evidence |= ev
    if not ok:
        return Outcome.fail(f"mean pruned output differs after permuting the neurons by "
                            f"{ev['worst_gap']:.3g} > margin {ev['margin_at_worst']:.3g}",
                            evidence)
    return Outcome.ok("same mean pruned function after permuting the neurons", evidence)


def _degenerate_limit(ctx: AuditContext, layer: Layer, size: int) -> float:
    if size == layer.n:
        return 1e-9 if ctx.claims.get("exact_at_full_size", True) else math.inf
    return 1.0 if size == layer.n - 2 else math.inf


def check_degenerate_neurons(pruner: Pruner, ctx: AuditContext) -> Outcome:
    """Dead, zero and duplicate neurons: finite output, F still approximated.

    On :func:`~._layers.degenerate_layer` (conv pairs:
    :func:`~._conv.degenerate_conv_layer`; 8 of 20 neurons dead on the unit
    ball, scaled to ``ctx.beta``): sizes 12 (the live count), 18 and 20 give
    finite arrays; at size 18 the relative error is at most 1 (no worse than
    pruning everything); at size 20 it is <= 1e-9 (unless
    ``exact_at_full_size`` is False); with ``claims["drops_dead"]`` no dead
    neuron is kept.
    """
    base, dead = ctx.degenerate()
    layer = base.rescaled(1 / ctx.beta)
    x, errors = ctx.inputs(layer), {}
    specs = [CallSpec(layer, size, seed) for size in (int((~dead).sum()), layer.n - 2, layer.n)
             for seed in seed_stream(ctx, Stream.DEGENERATE, 0, 2)]
    for spec, out in zip(specs, prune_many(pruner, ctx, specs), strict=True):
        size, seed = spec.size, spec.seed
        if not all(np.all(np.isfinite(a)) for a in out):
            return Outcome.fail(f"NaN or infinity in the output (size={size}, seed={seed})",
                                {"size": size, "seed": seed})
        err = relative_error(layer, out, x, ctx.beta, ctx.act())
        errors[f"size={size},seed={seed}"] = err
        limit = _degenerate_limit(ctx, layer, size)
        if not err <= limit:
            return Outcome.fail(f"relative error {err:.3g} > {limit:g} at size={size} "
                                f"(seed={seed})", {"errors": errors})
        kept_dead = _kept_rows(layer, out, dead) if ctx.claims.get("drops_dead") else []
        if kept_dead:
            return Outcome.fail(f"kept dead neurons {kept_dead} at size={size} although the "
                                "pruner claims drops_dead", {"errors": errors})
    return Outcome.ok("finite, and F approximated, with dead/zero/duplicate neurons",
                      {"errors": errors})


def _kept_rows(layer: Layer, out: tuple, dead: np.ndarray) -> list[int]:
    """Dead neurons whose (incoming weights, bias) appear among the kept ones."""
    W, b = layer.incoming
    W_kept, b_kept = out[0].reshape(out[0].shape[0], -1), out[1]
    found = []
    for j in np.flatnonzero(dead):
        same = np.all(W_kept == W[j], axis=1) & (b_kept == b[j])
        if np.any(same):
            found.append(int(j))
    return found


def check_error_shrinks(pruner: Pruner, ctx: AuditContext) -> Outcome:
    """The error at fixed inputs shrinks as ``size`` grows from n/8 to n/2.

    Mean over 8 seeds of ``max_x max_i |F_i - F~_i| / T_i``; passes when the
    largest size has at most 0.9 times the smallest size's error and no step
    grows it by more than 25% (the margin for seed noise).
    """
    evidence = {}
    for index, layer in enumerate(ctx.layers):
        x, seeds = ctx.inputs(layer), seed_stream(ctx, Stream.SHRINKS, index, 8)
        sizes = sorted({max(1, layer.n // 8), max(1, layer.n // 4), max(1, layer.n // 2)})
        errs = []
        for s in sizes:
            outs = prune_many(pruner, ctx, [CallSpec(layer, s, seed) for seed in seeds])
            errs.append(float(np.mean([relative_error(layer, o, x, ctx.beta, ctx.act())
                                       for o in outs])))
        evidence[layer.name] = {"sizes": sizes, "errors": errs,
                                "seeds": stream_evidence(ctx, Stream.SHRINKS, index, 8)}
        grows = any(b > 1.25 * a + ROUNDING for a, b in itertools.pairwise(errs))
        if errs[-1] > 0.9 * errs[0] + ROUNDING or grows:
            return Outcome.fail(f"error does not shrink with size on layer {layer.name!r}: "
                                + ", ".join(f"size {s}: {e:.3g}" for s, e in
                                            zip(sizes, errs, strict=True)), evidence)
    return Outcome.ok("error shrinks as size grows", evidence)


def check_guarantee(pruner: Pruner, ctx: AuditContext) -> Outcome:
    """A declared guarantee holds: ``|F_i - F~_i| <= epsilon T_i``.

    ``uniform``: the worst-case search (``ctx.method``, ``ctx.time_limit``) on
    the claimed ball finds no input beyond epsilon, at size n/2, one fixed seed
    per layer. ``pointwise``: at 8 inputs fixed before sampling, over 20 seeds,
    the number of violations at each input is not above the binomial critical
    value for ``delta``. A callable epsilon that returns NaN, infinity or a
    negative number fails the check.

    For ``uniform`` an error found above epsilon refutes the claim; an
    upper bound of the search at most epsilon proves it on every input of the
    ball (``"proved"`` in the evidence); otherwise the claim stands unrefuted.
    On conv pairs ``method="auto"`` falls back to ``"gradient"`` where the
    search does not read the modules (``"method"`` in the evidence says
    which ran).
    """
    claim = ctx.claims.get("guarantee")
    if claim is None:
        return Outcome.skip("no guarantee claimed")
    beta = claim.get("beta", ctx.beta)
    if claim["kind"] == "pointwise":
        return _pointwise(pruner, ctx, claim, beta)
    if not search_available():
        return Outcome.skip("the worst-case search needs torch (pip install torch==2.13.0)")
    # False alarms: a correct uniform bound fails on one draw with probability
    # <= delta, so this check (one draw per layer) falsely fails with
    # probability <= len(layers) * delta; the search never overstates (its
    # error is attained at a point it reports).
    evidence = {}
    for index, layer in enumerate(ctx.layers):
        size, seed = max(1, layer.n // 2), seed_stream(ctx, Stream.GUARANTEE, index, 1)[0]
        eps = claimed_epsilons(pruner, ctx, layer, size, [seed])[0]
        pruned = prune_many(pruner, ctx, [CallSpec(layer, size, seed)])[0]
        found = search_worst_case(layer, pruned, beta=beta, activation=ctx.act(),
                                  method=ctx.method, time_limit=ctx.time_limit,
                                  rng=np.random.default_rng(seed))
        evidence[layer.name] = {"size": size, "seed": seed, "epsilon": eps,
                                "found": found.error, "upper_bound": found.upper_bound,
                                "certified": found.certified, "status": found.status,
                                "method": found.method,
                                "proved": bool(found.upper_bound <= eps), "x": found.x.tolist()}
        if not found.error <= eps * (1 + 1e-9) + ROUNDING:
            return Outcome.fail(f"found an input with error {found.error:.4g} T > claimed "
                                f"epsilon {eps:.4g} T (layer {layer.name!r}, size={size}, "
                                f"seed={seed}, ||x|| = {np.linalg.norm(found.x):.4g} <= "
                                f"{beta})", evidence)
    proved = all(ev["proved"] for ev in evidence.values())
    return Outcome.ok("no input beyond the claimed epsilon" + (
        "; proved for every input of the ball" if proved else " (not proved)"), evidence)


def _binomial_critical(trials: int, p: float, alpha: float) -> int:
    """Smallest c with ``P(Binomial(trials, p) >= c) <= alpha``."""
    tail = 1.0
    for c in range(trials + 1):
        if tail <= alpha:
            return c
        tail -= math.comb(trials, c) * p**c * (1 - p) ** (trials - c)
    return trials + 1


def _pointwise(pruner: Pruner, ctx: AuditContext, claim: Mapping[str, Any],
               beta: float) -> Outcome:
    # False alarms: at most ALPHA per layer (binomial tail, Bonferroni over the
    # 8 inputs); a pointwise bound says nothing about inputs chosen after the
    # draws, so no adversarial search is run for it.
    act, evidence, trials = ctx.act(), {}, 20
    for index, layer in enumerate(ctx.layers):
        size = max(1, layer.n // 2)
        x = ball_inputs(layer, beta, 8, np.random.default_rng([ctx.seed, 41, index]))
        full, scale = evaluate(layer, layer.arrays(), x, act), scale_of(layer, beta, act)
        seeds = seed_stream(ctx, Stream.POINTWISE, index, trials)
        epsilons = claimed_epsilons(pruner, ctx, layer, size, seeds)
        outs = prune_many(pruner, ctx, [CallSpec(layer, size, s) for s in seeds])
        violations = np.zeros(len(x), dtype=int)
        for eps, out in zip(epsilons, outs, strict=True):
            err = np.max(np.abs(full - evaluate(layer, out, x, act)) / scale, axis=1)
            violations += ~(err <= eps * (1 + 1e-9) + ROUNDING)
        critical = _binomial_critical(trials, claim["delta"], ALPHA / len(x))
        evidence[layer.name] = {"size": size,
                                "seeds": stream_evidence(ctx, Stream.POINTWISE, index, trials),
                                "violations": violations.tolist(), "critical": critical}
        if violations.max() >= critical:
            return Outcome.fail(f"{int(violations.max())} of {trials} draws exceed epsilon "
                                f"at one fixed input (critical value {critical} for delta="
                                f"{claim['delta']}, layer {layer.name!r})", evidence)
    return Outcome.ok("pointwise violations within the binomial allowance", evidence)


#: The battery, in order: name -> check.
CHECKS: dict[str, Callable[[Pruner, AuditContext], Outcome]] = {
    "check_returns_arrays": check_returns_arrays,
    "check_size_budget": check_size_budget,
    "check_kept_rows": check_kept_rows,
    "check_full_size_exact": check_full_size_exact,
    "check_inputs_not_mutated": check_inputs_not_mutated,
    "check_rng": check_rng,
    "check_permutation": check_permutation,
    "check_degenerate_neurons": check_degenerate_neurons,
    "check_unbiased": check_unbiased,
    "check_error_shrinks": check_error_shrinks,
    "check_guarantee": check_guarantee,
}


def yield_checks(claims: Mapping[str, Any]) -> Iterator[tuple[str, Callable]]:
    """Yield ``(name, check)`` for every check of the battery, in order.

    ``check_unbiased`` and ``check_guarantee`` are yielded whatever the claims
    (they report themselves skipped), so that test ids do not depend on them.
    """
    del claims  # every check reads the claims from the context
    yield from CHECKS.items()
