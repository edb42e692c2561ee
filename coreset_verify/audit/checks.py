"""The checks of the audit battery, one small ``check_*`` function each.

Every check has the signature ``check(pruner, context) -> Outcome`` and never
raises for a fault of the pruner: an exception the pruner throws is a failed
check. :func:`yield_checks` yields ``(name, check)`` pairs in a fixed order, as
scikit-learn's ``_yield_all_checks`` does; :mod:`.battery` runs them.

Statistical checks fix their seeds and margins before looking at the data and
never retry; each says in a comment what false-alarm rate it accepts.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np

from .._validation import check_open_unit, check_positive, fail
from ..activations import Activation
from ._common import (
    Layer,
    Pruner,
    ball_inputs,
    degenerate_layer,
    forward,
    relative_error,
    scale_of,
)
from ._search import search_available, search_worst_case

__all__ = [
    "CHECKS",
    "AuditContext",
    "Outcome",
    "check_claims",
    "check_degenerate_neurons",
    "check_error_shrinks",
    "check_full_size_exact",
    "check_guarantee",
    "check_inputs_not_mutated",
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
#: Known claim keys, with what each promises.
CLAIM_KEYS = {
    "unbiased": "E[F~(x)] = F(x) at every input x (required, bool)",
    "deterministic": "True: the result does not depend on rng; False: it does",
    "drops_dead": "neurons that are zero on the whole ball are never kept",
    "exact_at_full_size": "size = n reproduces F (default True)",
    "guarantee": "{'kind', 'delta', 'epsilon', 'beta'}: |F_i - F~_i| <= epsilon T_i",
}


@dataclass(frozen=True)
class Outcome:
    """What one check concluded: ``passed``, a one-line ``message``, ``evidence``."""

    passed: bool
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    skipped: bool = False


@dataclass(frozen=True)
class AuditContext:
    """Everything the checks share: claims, layers, ball, seeds, budgets.

    Attributes
    ----------
    claims : mapping
        Validated by :func:`check_claims`.
    layers : tuple of Layer
    beta : float
        Radius of the input ball the checks evaluate on.
    activation : Activation
    seed : int
        Base seed; every check derives its seeds from it (recorded in evidence).
    time_limit : float
        Seconds for each worst-case search of :func:`check_guarantee`.
    method : str
        Search method of :func:`check_guarantee` (``"gradient"`` or ``"auto"``).
    pilot_seeds, test_seeds : int
        Seeds of the pilot (variance estimate) and of the test of
        :func:`check_unbiased` and the random branch of :func:`check_permutation`.
    n_inputs : int
        Inputs of the ball at which functions are compared.
    """

    claims: Mapping[str, Any]
    layers: tuple[Layer, ...]
    beta: float = 1.0
    activation: Activation | None = None
    seed: int = 0
    time_limit: float = 2.0
    method: str = "gradient"
    pilot_seeds: int = 50
    test_seeds: int = 200
    n_inputs: int = 24

    def inputs(self, layer: Layer, count: int | None = None) -> np.ndarray:
        """Fixed inputs of the ball for ``layer`` (seeded by ``seed``)."""
        rng = np.random.default_rng([self.seed, 7919, layer.n])
        return ball_inputs(layer, self.beta, count or self.n_inputs, rng)


class PrunerError(Exception):
    """The pruner raised; carries what it was called with."""


def check_claims(claims: Any, func: str = "check_pruner") -> dict[str, Any]:
    """Validate a claims mapping; return a copy.

    Raises
    ------
    InvalidArgumentError
        Not a mapping, ``unbiased`` missing or not a bool, unknown keys, or a
        malformed guarantee.
    """
    if not isinstance(claims, Mapping):
        raise fail(func, "claims", "a mapping such as {'unbiased': True}", type(claims).__name__)
    unknown = sorted(set(claims) - set(CLAIM_KEYS))
    if unknown:
        raise fail(func, "claims", f"a mapping with keys among {sorted(CLAIM_KEYS)}",
                   f"unknown keys {unknown}")
    if not isinstance(claims.get("unbiased"), bool):
        raise fail(func, "claims['unbiased']", "True or False", claims.get("unbiased"))
    for key in ("deterministic", "drops_dead", "exact_at_full_size"):
        if key in claims and not isinstance(claims[key], bool):
            raise fail(func, f"claims[{key!r}]", "True or False", claims[key])
    out = dict(claims)
    if "guarantee" in claims:
        out["guarantee"] = _check_guarantee_claim(claims["guarantee"], func)
    return out


def _check_guarantee_claim(g: Any, func: str) -> dict[str, Any]:
    if not isinstance(g, Mapping):
        raise fail(func, "claims['guarantee']", "a mapping with kind, delta, epsilon",
                   type(g).__name__)
    if g.get("kind") not in ("pointwise", "uniform"):
        raise fail(func, "claims['guarantee']['kind']", "'pointwise' or 'uniform'",
                   g.get("kind"))
    eps = g.get("epsilon")
    if not (callable(eps) or isinstance(eps, (int, float))):
        raise fail(func, "claims['guarantee']['epsilon']",
                   "a number or a callable epsilon(W_in, b_in, W_out, *, size, rng) "
                   "in units of T_i", type(eps).__name__)
    out = dict(g)
    out["delta"] = check_open_unit(g.get("delta"), "claims['guarantee']['delta']", func)
    if "beta" in g:
        out["beta"] = check_positive(g["beta"], "claims['guarantee']['beta']", func)
    return out


# ----------------------------------------------------------------- helpers


def _call(pruner: Pruner, layer: Layer, size: int, seed: int) -> tuple:
    """Call the pruner on fresh copies with ``default_rng(seed)``."""
    try:
        return pruner(*layer.arrays(), size=size, rng=np.random.default_rng(seed))
    except Exception as exc:
        raise PrunerError(
            f"the pruner raised {type(exc).__name__}: {exc} (layer {layer.name!r}, "
            f"size={size}, seed={seed})"
        ) from exc


def _triple(out: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The output as float64 arrays, for computing (types are checked elsewhere)."""
    W_in, b_in, W_out = out
    return tuple(np.asarray(a, dtype=np.float64) for a in (W_in, b_in, W_out))


def _pruned_outputs(pruner, layer, size, seeds, x, act) -> np.ndarray:
    """``F~(x)`` for each seed: shape (len(seeds), b, k)."""
    return np.stack([forward(*_triple(_call(pruner, layer, size, s)), x, act) for s in seeds])


def _seeds(ctx: AuditContext, tag: int, count: int) -> list[int]:
    """``count`` seeds for one purpose; disjoint across tags, fixed by ``ctx.seed``."""
    start = (ctx.seed * 1000 + tag) * 100_000
    return list(range(start, start + count))


def _same(a: tuple, b: tuple) -> bool:
    return all(np.array_equal(np.asarray(p), np.asarray(q), equal_nan=True)
               for p, q in zip(a, b, strict=True))


def _z(alpha: float, tests: int) -> float:
    """Two-sided normal quantile with a Bonferroni correction over ``tests``."""
    return NormalDist().inv_cdf(1 - alpha / (2 * tests))


def _act(ctx: AuditContext) -> Activation:
    if ctx.activation is None:
        from ..activations import get_activation

        return get_activation("relu")
    return ctx.activation


def _sizes(layer: Layer) -> list[int]:
    return sorted({1, 2, max(1, layer.n // 3), max(1, layer.n // 2), max(1, layer.n - 1)})


# ------------------------------------------------------------------ checks


def check_returns_arrays(pruner: Pruner, ctx: AuditContext) -> Outcome:
    """Three float64 numpy arrays of shapes (r, d), (r,), (k, r), all finite."""
    for layer in ctx.layers:
        size = max(1, layer.n // 3)
        out = _call(pruner, layer, size, _seeds(ctx, 1, 1)[0])
        where = f"layer {layer.name!r}, size={size}"
        if not (isinstance(out, (tuple, list)) and len(out) == 3):
            return Outcome(False, f"expected a 3-tuple (W_in', b_in', W_out'); got "
                           f"{type(out).__name__} ({where})", {"layer": layer.name})
        for label, a in zip(("W_in'", "b_in'", "W_out'"), out, strict=True):
            if not isinstance(a, np.ndarray):
                return Outcome(False, f"{label} must be a numpy.ndarray; got "
                               f"{type(a).__name__} ({where})", {"layer": layer.name})
            if a.dtype != np.float64:
                return Outcome(False, f"{label} must be float64; got {a.dtype} ({where})",
                               {"layer": layer.name, "dtype": str(a.dtype)})
            if not np.all(np.isfinite(a)):
                return Outcome(False, f"{label} has NaN or infinite entries ({where})",
                               {"layer": layer.name})
        r = out[0].shape[0] if out[0].ndim == 2 else -1
        shapes = [tuple(a.shape) for a in out]
        if shapes != [(r, layer.d), (r,), (layer.k, r)]:
            return Outcome(False, f"shapes must be (r, {layer.d}), (r,), ({layer.k}, r); got "
                           f"{shapes} ({where})", {"layer": layer.name, "shapes": shapes})
    return Outcome(True, "three float64 arrays of consistent shapes on every layer")


def check_size_budget(pruner: Pruner, ctx: AuditContext) -> Outcome:
    """At most ``size`` neurons kept, for sizes 1, 2, n/3, n/2 and n - 1."""
    tried = []
    for layer in ctx.layers:
        for size in _sizes(layer):
            for seed in _seeds(ctx, 2, 2):
                kept = int(np.shape(_call(pruner, layer, size, seed)[0])[0])
                tried.append((layer.name, size, kept))
                if kept > size:
                    return Outcome(False, f"kept {kept} neurons with size={size} (layer "
                                   f"{layer.name!r}, seed={seed})",
                                   {"layer": layer.name, "size": size, "kept": kept,
                                    "seed": seed})
    return Outcome(True, f"kept <= size in all {len(tried)} calls",
                   {"calls": [list(t) for t in tried]})


def check_full_size_exact(pruner: Pruner, ctx: AuditContext) -> Outcome:
    """``size = n`` reproduces ``F`` at fixed inputs (relative error <= 1e-9)."""
    if not ctx.claims.get("exact_at_full_size", True):
        return Outcome(True, "skipped: the pruner does not claim exact_at_full_size",
                       skipped=True)
    act, worst = _act(ctx), 0.0
    for layer in ctx.layers:
        x = ctx.inputs(layer)
        for seed in _seeds(ctx, 3, 2):
            err = relative_error(layer, _triple(_call(pruner, layer, layer.n, seed)), x,
                                 ctx.beta, act)
            worst = max(worst, err)
            if not err <= 1e-9:
                return Outcome(False, f"size=n={layer.n} changed the function: max |F - F~| "
                               f"/ T = {err:.3g} > 1e-9 (layer {layer.name!r}, seed={seed})",
                               {"layer": layer.name, "seed": seed, "error": err})
    return Outcome(True, f"size=n reproduces F (max relative error {worst:.2g})",
                   {"error": worst})


def check_inputs_not_mutated(pruner: Pruner, ctx: AuditContext) -> Outcome:
    """``W_in``, ``b_in`` and ``W_out`` are bitwise unchanged after the call."""
    for layer in ctx.layers:
        given = layer.arrays()
        pruner(*given, size=max(1, layer.n // 3), rng=np.random.default_rng(_seeds(ctx, 4, 1)[0]))
        for label, before, after in zip(("W_in", "b_in", "W_out"), layer.arrays(), given,
                                        strict=True):
            if not np.array_equal(before, after):
                changed = int(np.sum(before != after))
                return Outcome(False, f"{label} was modified in place ({changed} entries "
                               f"changed, layer {layer.name!r})",
                               {"layer": layer.name, "argument": label, "changed": changed})
    return Outcome(True, "inputs unchanged")


def check_rng(pruner: Pruner, ctx: AuditContext) -> Outcome:
    """The same seed gives the same result; a random pruner depends on the seed.

    With ``claims["deterministic"] = True`` five seeds must give one result;
    with ``False`` they must give at least two different results (a pruner
    that ignores ``rng`` for a fixed seed of its own fails here).
    """
    layer = ctx.layers[0]
    size = max(1, layer.n // 3)
    seeds = _seeds(ctx, 5, 5)
    first = [_call(pruner, layer, size, s) for s in seeds]
    for s, out in zip(seeds, first, strict=True):
        if not _same(out, _call(pruner, layer, size, s)):
            return Outcome(False, f"two calls with rng=default_rng({s}) gave different results"
                           " (does the pruner use a global random state?)",
                           {"seed": s, "layer": layer.name, "size": size})
    distinct = sum(not _same(first[0], out) for out in first[1:]) + 1
    evidence = {"seeds": seeds, "distinct_results": distinct}
    claim = ctx.claims.get("deterministic")
    if claim is True and distinct > 1:
        return Outcome(False, f"claims deterministic but {len(seeds)} seeds gave {distinct} "
                       "different results", evidence)
    if claim is False and distinct == 1:
        return Outcome(False, f"claims to be random but {len(seeds)} seeds gave one result "
                       "(is rng ignored?)", evidence)
    return Outcome(True, f"reproducible; {distinct} distinct results over {len(seeds)} seeds",
                   evidence)


def _mean_test(samples: Callable[[list[int]], np.ndarray], target: Callable, ctx, tag,
               spread: float = 1.0) -> tuple[bool, dict[str, Any]]:
    """Compare the mean over ``ctx.test_seeds`` seeds of ``samples`` with ``target``.

    The margin is fixed from a pilot run on other seeds before the test seeds
    are drawn: ``z * SD_INFLATION * sd_pilot * spread / sqrt(S) + ROUNDING``,
    with ``z`` the two-sided normal quantile at ``ALPHA`` Bonferroni-corrected
    over every (input, output) pair. ``spread = sqrt(2)`` for a difference of
    two independent means.
    """
    pilot = samples(_seeds(ctx, tag, ctx.pilot_seeds))
    tests = int(np.prod(pilot.shape[1:]))
    margin = (_z(ALPHA, tests) * SD_INFLATION * spread * pilot.std(axis=0, ddof=1)
              / math.sqrt(ctx.test_seeds) + ROUNDING)
    main_seeds = _seeds(ctx, tag + 50, ctx.test_seeds)
    gap = np.abs(samples(main_seeds).mean(axis=0) - target(main_seeds))
    ratio = gap / margin
    worst = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
    return bool(np.all(gap <= margin)), {
        "pilot_seeds": [_seeds(ctx, tag, 1)[0], ctx.pilot_seeds],
        "test_seeds": [main_seeds[0], ctx.test_seeds],
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
        return Outcome(True, "skipped: the pruner does not claim to be unbiased", skipped=True)
    act, evidence = _act(ctx), {}
    for tag, layer in enumerate(ctx.layers):
        size, x = max(2, layer.n // 4), ctx.inputs(layer, 8)
        exact = forward(layer.W_in, layer.b_in, layer.W_out, x, act)
        ok, ev = _mean_test(lambda seeds, layer=layer, size=size, x=x:
                            _pruned_outputs(pruner, layer, size, seeds, x, act),
                            lambda seeds, exact=exact: exact, ctx, 10 + tag)
        scale = scale_of(layer, ctx.beta, act)
        ev |= {"size": size, "bias_over_T": ev["worst_gap"] / float(scale[ev["worst_output"]])}
        evidence[layer.name] = ev
        if not ok:
            return Outcome(False, f"mean of F~ over {ctx.test_seeds} seeds misses F by "
                           f"{ev['worst_gap']:.3g} (= {ev['bias_over_T']:.3g} T) > margin "
                           f"{ev['margin_at_worst']:.3g} (layer {layer.name!r}, size={size})",
                           evidence)
    return Outcome(True, "mean over seeds matches F within the fixed margin", evidence)


def _permuted(layer: Layer, perm: np.ndarray) -> Layer:
    return Layer(f"{layer.name}-permuted", layer.W_in[perm], layer.b_in[perm],
                 layer.W_out[:, perm])


def check_permutation(pruner: Pruner, ctx: AuditContext) -> Outcome:
    """Permuting the neurons does not change the pruned function.

    Deterministic pruners (declared, or giving one result for two seeds):
    ``F~`` of the permuted layer equals ``F~`` of the original at fixed inputs
    (relative 1e-9). Random pruners: the means over seeds agree, by the test of
    :func:`_mean_test` (false alarms at most 1e-3).
    """
    act, layer = _act(ctx), ctx.layers[0]
    perm = np.random.default_rng([ctx.seed, 31]).permutation(layer.n)
    other, size, x = _permuted(layer, perm), max(1, layer.n // 3), ctx.inputs(layer, 8)
    seed_a, seed_b = _seeds(ctx, 6, 2)
    deterministic = ctx.claims.get("deterministic")
    if deterministic is None:
        deterministic = _same(_call(pruner, layer, size, seed_a),
                              _call(pruner, layer, size, seed_b))
    evidence: dict[str, Any] = {"permutation": perm.tolist(), "size": size,
                                "deterministic": bool(deterministic)}
    if deterministic:
        a = forward(*_triple(_call(pruner, layer, size, seed_a)), x, act)
        b = forward(*_triple(_call(pruner, other, size, seed_a)), x, act)
        gap = float(np.max(np.abs(a - b) / scale_of(layer, ctx.beta, act)))
        evidence["difference_over_T"] = gap
        if gap > 1e-9:
            return Outcome(False, f"permuting the neurons changed the pruned function by "
                           f"{gap:.3g} T (deterministic pruner, seed={seed_a})", evidence)
        return Outcome(True, "same pruned function after permuting the neurons", evidence)
    ok, ev = _mean_test(lambda seeds: _pruned_outputs(pruner, layer, size, seeds, x, act),
                        lambda seeds: _pruned_outputs(pruner, other, size, seeds, x, act)
                        .mean(axis=0), ctx, 20, spread=math.sqrt(2))
    evidence |= ev
    if not ok:
        return Outcome(False, f"mean pruned output differs after permuting the neurons by "
                       f"{ev['worst_gap']:.3g} > margin {ev['margin_at_worst']:.3g}", evidence)
    return Outcome(True, "same mean pruned function after permuting the neurons", evidence)


def check_degenerate_neurons(pruner: Pruner, ctx: AuditContext) -> Outcome:
    """Dead, zero and duplicate neurons: finite output, F still approximated.

    On :func:`~._common.degenerate_layer` (8 of 20 neurons dead on the unit
    ball, scaled to ``ctx.beta``): sizes 12 (the live count), 18 and 20 give
    finite arrays; at size 18 the relative error is at most 1 (no worse than
    pruning everything); at size 20 it is <= 1e-9 (unless
    ``exact_at_full_size`` is False); with ``claims["drops_dead"]`` no dead
    neuron is kept.
    """
    act = _act(ctx)
    base, dead = degenerate_layer()
    layer = Layer(base.name, base.W_in / ctx.beta, base.b_in, base.W_out)
    x = ctx.inputs(layer)
    errors = {}
    for size in (int((~dead).sum()), layer.n - 2, layer.n):
        for seed in _seeds(ctx, 7, 2):
            out = _triple(_call(pruner, layer, size, seed))
            if not all(np.all(np.isfinite(a)) for a in out):
                return Outcome(False, f"NaN or infinity in the output (size={size}, "
                               f"seed={seed})", {"size": size, "seed": seed})
            err = relative_error(layer, out, x, ctx.beta, act)
            errors[f"size={size},seed={seed}"] = err
            limit = 1e-9 if size == layer.n and ctx.claims.get("exact_at_full_size", True) \
                else 1.0 if size == layer.n - 2 else math.inf
            if not err <= limit:
                return Outcome(False, f"relative error {err:.3g} > {limit:g} at size={size} "
                               f"(seed={seed})", {"errors": errors})
            if ctx.claims.get("drops_dead"):
                kept_dead = _kept_rows(layer, out, dead)
                if kept_dead:
                    return Outcome(False, f"kept dead neurons {kept_dead} at size={size} "
                                   "although the pruner claims drops_dead", {"errors": errors})
    return Outcome(True, "finite, and F approximated, with dead/zero/duplicate neurons",
                   {"errors": errors})


def _kept_rows(layer: Layer, out: tuple, dead: np.ndarray) -> list[int]:
    """Dead neurons whose (W_in row, bias) appears among the kept ones."""
    W_in, b_in, _ = out
    found = []
    for j in np.flatnonzero(dead):
        same = np.all(W_in == layer.W_in[j], axis=1) & (b_in == layer.b_in[j])
        if np.any(same):
            found.append(int(j))
    return found


def check_error_shrinks(pruner: Pruner, ctx: AuditContext) -> Outcome:
    """The error at fixed inputs shrinks as ``size`` grows from n/8 to n/2.

    Mean over 8 seeds of ``max_x max_i |F_i - F~_i| / T_i``; passes when the
    largest size has at most 0.9 times the smallest size's error and no step
    grows it by more than 25% (the margin for seed noise).
    """
    act, evidence = _act(ctx), {}
    for layer in ctx.layers:
        x, seeds = ctx.inputs(layer), _seeds(ctx, 8, 8)
        sizes = sorted({max(1, layer.n // 8), max(1, layer.n // 4), max(1, layer.n // 2)})
        errs = [float(np.mean([relative_error(layer, _triple(_call(pruner, layer, s, seed)),
                                              x, ctx.beta, act) for seed in seeds]))
                for s in sizes]
        evidence[layer.name] = {"sizes": sizes, "errors": errs, "seeds": [seeds[0], len(seeds)]}
        grows = any(b > 1.25 * a + ROUNDING for a, b in itertools.pairwise(errs))
        if errs[-1] > 0.9 * errs[0] + ROUNDING or grows:
            return Outcome(False, f"error does not shrink with size on layer {layer.name!r}: "
                           + ", ".join(f"size {s}: {e:.3g}" for s, e in
                                       zip(sizes, errs, strict=True)), evidence)
    return Outcome(True, "error shrinks as size grows", evidence)


def _epsilon(claim: Mapping[str, Any], layer: Layer, size: int, seed: int) -> float:
    eps = claim["epsilon"]
    if callable(eps):
        return float(eps(*layer.arrays(), size=size, rng=np.random.default_rng(seed)))
    return float(eps)


def check_guarantee(pruner: Pruner, ctx: AuditContext) -> Outcome:
    """A declared guarantee holds: ``|F_i - F~_i| <= epsilon T_i``.

    ``uniform``: the worst-case search (``ctx.method``, ``ctx.time_limit``) on
    the claimed ball finds no input beyond epsilon, at size n/2, one fixed seed
    per layer. ``pointwise``: at 8 inputs fixed before sampling, over 20 seeds,
    the number of violations at each input is not above the binomial critical
    value for ``delta``.
    """
    claim = ctx.claims.get("guarantee")
    if claim is None:
        return Outcome(True, "skipped: no guarantee claimed", skipped=True)
    beta = claim.get("beta", ctx.beta)
    if claim["kind"] == "pointwise":
        return _pointwise(pruner, ctx, claim, beta)
    if not search_available():
        return Outcome(True, "skipped: the worst-case search needs torch "
                       "(pip install torch==2.13.0)", skipped=True)
    # False alarms: a correct uniform bound fails on one draw with probability
    # <= delta, so this check (one draw per layer) falsely fails with
    # probability <= len(layers) * delta; the search never overstates (its
    # error is attained at a point it reports).
    act, evidence = _act(ctx), {}
    for tag, layer in enumerate(ctx.layers):
        size, seed = max(1, layer.n // 2), _seeds(ctx, 30 + tag, 1)[0]
        eps = _epsilon(claim, layer, size, seed)
        pruned = _triple(_call(pruner, layer, size, seed))
        found = search_worst_case(layer, pruned, beta=beta, activation=act, method=ctx.method,
                                  time_limit=ctx.time_limit, rng=np.random.default_rng(seed))
        evidence[layer.name] = {"size": size, "seed": seed, "epsilon": eps,
                                "found": found.error, "upper_bound": found.upper_bound,
                                "certified": found.certified, "status": found.status,
                                "x": found.x.tolist()}
        if found.error > eps * (1 + 1e-9) + ROUNDING:
            return Outcome(False, f"found an input with error {found.error:.4g} T > claimed "
                           f"epsilon {eps:.4g} T (layer {layer.name!r}, size={size}, "
                           f"seed={seed}, ||x|| = {np.linalg.norm(found.x):.4g} <= {beta})",
                           evidence)
    return Outcome(True, "no input beyond the claimed epsilon", evidence)


def _binomial_critical(trials: int, p: float, alpha: float) -> int:
    """Smallest c with ``P(Binomial(trials, p) >= c) <= alpha``."""
    tail = 1.0
    for c in range(trials + 1):
        if tail <= alpha:
            return c
        tail -= math.comb(trials, c) * p**c * (1 - p) ** (trials - c)
    return trials + 1


def _pointwise(pruner, ctx, claim, beta) -> Outcome:
    # False alarms: at most ALPHA per layer (binomial tail, Bonferroni over the
    # 8 inputs); a pointwise bound says nothing about inputs chosen after the
    # draws, so no adversarial search is run for it.
    act, evidence, trials = _act(ctx), {}, 20
    for tag, layer in enumerate(ctx.layers):
        size = max(1, layer.n // 2)
        x = ball_inputs(layer, beta, 8, np.random.default_rng([ctx.seed, 41, tag]))
        full, scale = forward(layer.W_in, layer.b_in, layer.W_out, x, act), \
            scale_of(layer, beta, act)
        seeds = _seeds(ctx, 40 + tag, trials)
        violations = np.zeros(len(x), dtype=int)
        for seed in seeds:
            eps = _epsilon(claim, layer, size, seed)
            err = np.max(np.abs(full - forward(*_triple(_call(pruner, layer, size, seed)), x,
                                               act)) / scale, axis=1)
            violations += err > eps * (1 + 1e-9) + ROUNDING
        critical = _binomial_critical(trials, claim["delta"], ALPHA / len(x))
        evidence[layer.name] = {"size": size, "seeds": [seeds[0], trials],
                                "violations": violations.tolist(), "critical": critical}
        if violations.max() >= critical:
            return Outcome(False, f"{int(violations.max())} of {trials} draws exceed epsilon "
                           f"at one fixed input (critical value {critical} for delta="
                           f"{claim['delta']}, layer {layer.name!r})", evidence)
    return Outcome(True, "pointwise violations within the binomial allowance", evidence)


#: The battery, in order: name -> check.
CHECKS: dict[str, Callable[[Pruner, AuditContext], Outcome]] = {
    "check_returns_arrays": check_returns_arrays,
    "check_size_budget": check_size_budget,
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
