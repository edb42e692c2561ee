"""Fuzz cases of the layer functions: sensitivities, coresets, bounds, sizes."""

from __future__ import annotations

import dataclasses
import math

import mpmath
import numpy as np
from _fuzz_cases import (
    ACTS,
    BETA_HOSTILE,
    BOOL_HOSTILE,
    DELTA_HOSTILE,
    OPTION_HOSTILE,
    RNG_HOSTILE,
    SIZE_HOSTILE,
    Base,
    Case,
    FalseClaim,
    as_f64,
    bases,
    check_bound,
    check_coreset,
    eps_of,
    label_of,
    layer_arrays,
    scalar_args,
)
from _fuzz_reference import DPS, LayerPair, mp_norm, phi
from hypothesis import strategies as st

import coreset_verify as cv

ACT_HOSTILE = {
    "'softplus(beta=0)'": "softplus(beta=0)", "'softplus(beta=-1)'": "softplus(beta=-1)",
    "'softplus(beta=nan)'": "softplus(beta=nan)", "'elu(alpha=nan)'": "elu(alpha=nan)",
    "'leaky_relu(negative_slope=-1)'": "leaky_relu(negative_slope=-1)",
    "'leaky_relu(negative_slope=inf)'": "leaky_relu(negative_slope=inf)",
    "'silu'": "silu", "'relu('": "relu(", "''": "", "None": None, "5": 5,
    "'softplus(beta=1e400)'": "softplus(beta=1e400)", "'RELU'": "RELU",
}
# Unknown keywords are not fuzzed on functions with a fixed signature: Python itself
# raises TypeError there, as for any function. They are fuzzed where options are a
# mapping or **options (audit claims, coreset_pruner, parametrize_with_checks).


def _passed(arrays: dict, base: Base) -> Base:
    """The base as the caller passed it (the oracle re-reads hostile-but-valid arrays)."""
    return dataclasses.replace(base, W_in=as_f64(arrays["W_in"]), b_in=as_f64(arrays["b_in"]),
                               W_out=as_f64(arrays["W_out"]))


def _act_pool() -> dict:
    return {**ACT_HOSTILE, **{f"'{a}'": a for a in ACTS}}


def _act_name(result_act, asked) -> str:
    name = getattr(result_act, "name", asked)
    if name not in ACTS or getattr(result_act, "params", ()) not in (
            (), (("alpha", 1.0),), (("negative_slope", 0.01),),
            (("beta", 1.0), ("threshold", 20.0))):
        raise FalseClaim(f"accepted activation {asked!r} the fuzz cannot re-evaluate")
    return name


# ------------------------------------------------------------------ sensitivities


def _check_phi(which, result, base: Base, act: str):
    pair = LayerPair(base.W_in, base.b_in, np.zeros((1, base.W_in.shape[0])), act)
    r = as_f64(result)
    if r.shape != (base.W_in.shape[0],):
        raise FalseClaim(f"shape {r.shape}")
    with mpmath.workdps(DPS):
        beta = mpmath.mpf(float(base.beta))
        env = pair.envelope(beta)
        for j, (row, b) in enumerate(zip(pair.W_in, pair.b_in, strict=True)):
            sign = 1 if which == "phi_hi" else -1
            true = env[j] if which == "envelope" else phi(act, sign * beta * mp_norm(row) + b)
            # the result is rounded to its own dtype (float32 in, float32 out)
            slack = abs(true) * (1e-9 + 4 * eps_of(result)) + mpmath.mpf(2) ** -1074
            # phi_hi and envelope are upper bounds (must not be below), phi_lo a lower one
            if (which != "phi_lo" and r[j] < true - slack) or (
                    which == "phi_lo" and r[j] > true + slack):
                raise FalseClaim(f"{which}[{j}] = {r[j]:.6g}, true {float(true):.6g}")


def _check_sens(result, base: Base, act: str, output: bool):
    pair = LayerPair(base.W_in, base.b_in, base.W_out, act)
    with mpmath.workdps(DPS):
        beta = mpmath.mpf(float(base.beta))
        T, env = pair.scale(beta), pair.envelope(beta)
        s = [[abs(c) * e / T[i] if T[i] > 0 else mpmath.mpf(0)
              for c, e in zip(pair.W_out[i], env, strict=True)] for i in range(len(T))]
    if output:
        got = as_f64(result)
        for i in range(len(T)):
            for j in range(len(env)):
                if T[i] > 0 and not abs(got[i, j] - float(s[i][j])) <= 1e-6:
                    raise FalseClaim(f"s_{i}[{j}] = {got[i, j]:.6g}, true {float(s[i][j]):.6g}")
        return
    if result.reduction != "per-output":
        return
    scale = as_f64(result.scale)
    for i in range(len(T)):
        if not abs(scale[i] - T[i]) <= 1e-6 * T[i]:
            raise FalseClaim(f"scale T_{i} = {scale[i]:.6g}, true {float(T[i]):.6g}")
    sens = as_f64(result.sensitivity)
    for j in range(len(env)):
        true = max(float(s[i][j]) for i in range(len(T)))
        if not abs(sens[j] - true) <= 1e-6:
            raise FalseClaim(f"sensitivity[{j}] = {sens[j]:.6g}, true {true:.6g}")


@st.composite
def sensitivity_cases(draw, target: str) -> Case:
    base = draw(bases())
    names = ("W_in", "b_in") if target in ("phi_hi", "phi_lo", "envelope") else (
        "W_in", "b_in", "W_out")
    arrays, labels = draw(layer_arrays(base, names))
    pools = {"beta": BETA_HOSTILE, "activation": _act_pool()}
    if target == "layer_sensitivities":
        pools["reduction"] = OPTION_HOSTILE
    args, more = draw(scalar_args(pools, {"beta": base.beta, "activation": base.act}))
    fn = getattr(cv, target)
    pos = [arrays[n] for n in names]

    def check(result):
        b = dataclasses.replace(_passed(arrays, base), beta=float(args["beta"]))
        act = _act_name(cv.get_activation(args["activation"]), args["activation"])
        if target in ("phi_hi", "phi_lo", "envelope"):
            _check_phi(target, result, b, act)
        else:
            _check_sens(result, b, act, output=target == "output_sensitivities")

    return Case(target, label_of(target, labels + more), lambda: fn(*pos, **args), check,
                base.label)


# ------------------------------------------------------------------ coresets


def _coreset_args(draw, base: Base, *, neuron: bool):
    valid = {"sample_size": 5, "beta": base.beta, "activation": base.act, "rng": base.seed}
    pools = {"sample_size": SIZE_HOSTILE, "distinct": SIZE_HOSTILE, "beta": BETA_HOSTILE,
             "activation": _act_pool(), "rng": RNG_HOSTILE, "split_signs": BOOL_HOSTILE}
    if not neuron:
        pools["reduction"] = OPTION_HOSTILE
        pools["max_draws"] = SIZE_HOSTILE
    args, labels = draw(scalar_args(pools, valid))
    if "distinct" in args and "sample_size=" not in " ".join(labels):
        args.pop("sample_size")
    if draw(st.booleans()):
        args["split_signs"] = True
        labels.append("split_signs=True")
    return args, labels


def _check_returned_coreset(c, b: Base, args) -> None:
    if not isinstance(c, cv.LayerCoreset):
        raise FalseClaim(f"returned {type(c).__name__}")
    act = _act_name(c.activation, args.get("activation"))
    beta = args["beta"]
    if not (isinstance(beta, int | float) and float(beta) == c.beta):
        raise FalseClaim(f"coreset.beta = {c.beta} for beta={beta!r}")
    check_coreset(c, dataclasses.replace(b, act=act, beta=c.beta))


@st.composite
def layer_coreset_cases(draw) -> Case:
    base = draw(bases())
    arrays, labels = draw(layer_arrays(base))
    args, more = _coreset_args(draw, base, neuron=False)

    def call():
        return cv.layer_coreset(arrays["W_in"], arrays["b_in"], arrays["W_out"], **args)

    def check(c):
        _check_returned_coreset(c, _passed(arrays, base), args)
        if all(isinstance(a, np.ndarray) and a.dtype == np.float64 for a in arrays.values()):
            _check_same_on_torch(c, arrays, args)

    return Case("layer_coreset", label_of("layer_coreset", labels + more), call, check,
                base.label)


def _check_same_on_torch(c, arrays, args) -> None:
    """Same seed, same coreset: the torch backend draws exactly what numpy drew."""
    import torch

    if not isinstance(args.get("rng"), int):
        return  # a Generator is consumed by the first call
    t = cv.layer_coreset(*(torch.from_numpy(arrays[n]) for n in ("W_in", "b_in", "W_out")),
                         **args)
    a, b = as_f64(c.indices), as_f64(t.indices)
    if a.shape != b.shape or np.any(a != b):
        raise FalseClaim(f"numpy kept {a.astype(int)}, torch kept {b.astype(int)} (same seed)")
    u, v = as_f64(c.weight_out), as_f64(t.weight_out)
    if not np.allclose(u, v, rtol=1e-12, atol=0, equal_nan=True):
        raise FalseClaim("numpy and torch weight_out differ (same seed)")


@st.composite
def neuron_coreset_cases(draw) -> Case:
    base = draw(bases())
    base = dataclasses.replace(base, W_out=base.W_out[:1])
    arrays, labels = draw(layer_arrays(base))
    args, more = _coreset_args(draw, base, neuron=True)
    weights = arrays["W_out"]
    if isinstance(weights, np.ndarray) and weights.ndim == 2 and weights.shape[0] == 1:
        weights = weights[0]
    elif hasattr(weights, "shape") and hasattr(weights, "detach") and weights.ndim == 2 \
            and weights.shape[0] == 1:
        weights = weights[0]
    args["biases"] = arrays["b_in"]

    def call():
        return cv.neuron_coreset(arrays["W_in"], weights, **args)

    def check(c):
        given = {**arrays, "b_in": np.zeros(len(as_f64(arrays["W_in"])))
                 if arrays["b_in"] is None else arrays["b_in"]}  # biases=None: no biases
        b = _passed(given, base)
        _check_returned_coreset(c, dataclasses.replace(b, W_out=b.W_out.reshape(1, -1)), args)

    return Case("neuron_coreset", label_of("neuron_coreset", labels + more), call, check,
                base.label)


# ------------------------------------------------------------------ bounds and sizes

KIND_POOL = {"'pointwise'": "pointwise", "'uniform'": "uniform", "'paper'": "paper",
             **OPTION_HOSTILE}
FORM_POOL = {"'additive'": "additive", "'multiplicative'": "multiplicative", **OPTION_HOSTILE}


def _tampered(c, how: str, weight: str = "weight_out"):
    """The coreset record ``c`` edited as ``how`` says (``weight``: the field of the
    re-weighted next layer)."""
    if how == f"nan {weight}":
        w = np.array(as_f64(getattr(c, weight)))
        w.flat[0] = math.nan
        return dataclasses.replace(c, **{weight: w})
    if how == "sample_size=0":
        return dataclasses.replace(c, sample_size=0)
    if how == "beta=-1":
        return dataclasses.replace(c, beta=-1.0)
    if how == "None":
        return None
    if how == "tuple":
        return tuple(c.pruned())
    return c


@st.composite
def theoretical_bound_cases(draw) -> Case:
    base = draw(bases())
    split = draw(st.booleans())
    pools = {"delta": DELTA_HOSTILE, "kind": KIND_POOL, "form": FORM_POOL,
             "paper_constant": DELTA_HOSTILE, "paper_dimension": BETA_HOSTILE}
    valid = {"delta": draw(st.sampled_from([1e-6, 0.1, 1e-300])),
             "kind": draw(st.sampled_from(["pointwise", "uniform", "paper"])),
             "form": draw(st.sampled_from(["additive", "multiplicative"]))}
    args, labels = draw(scalar_args(pools, valid))
    how = draw(st.sampled_from(["none", "none", "nan weight_out", "sample_size=0", "beta=-1",
                                "None", "tuple"]))
    if how != "none":
        labels.append(f"coreset={how}")
    if split:
        labels.append("split_signs=True")
    m = draw(st.sampled_from([1, 5, 40, 2**40]))
    state = {}

    def call():
        c = cv.layer_coreset(base.W_in, base.b_in, base.W_out, sample_size=m,
                             activation=base.act, beta=base.beta, rng=base.seed,
                             split_signs=split)
        state["c"] = c
        return cv.theoretical_bound(_tampered(c, how), **args)

    def check(bound):
        if how != "none":
            raise FalseClaim(f"bound {bound.epsilon} for a tampered coreset ({how})")
        check_bound(bound, state["c"], base, search=True)

    return Case("theoretical_bound", label_of("theoretical_bound", labels), call, check,
                f"{base.label},m={m}")


def check_sample_size(m, arrays: dict, base: Base, args: dict) -> None:
    """m is a size, and a coreset of m draws meets the epsilon asked for (same options)."""
    if isinstance(m, bool) or not isinstance(m, int | np.integer) or m < 1:
        raise FalseClaim(f"size {m!r}")
    if m > 20000 or args.get("kind") == "paper":
        return
    b = _passed(arrays, base)
    opts = {k: args[k] for k in ("split_signs", "reduction") if k in args}
    try:
        c = cv.layer_coreset(arrays["W_in"], arrays["b_in"], arrays["W_out"],
                             sample_size=int(m), activation=args["activation"],
                             beta=args["beta"], rng=base.seed, **opts)
    except cv.CoresetVerifyError as exc:
        raise FalseClaim(f"sample_size_for gave m = {m}, but layer_coreset refuses the "
                         f"same layer: {type(exc).__name__}: {str(exc)[:200]}") from None
    bound = cv.theoretical_bound(c, delta=args["delta"], kind=args["kind"],
                                 form=args.get("form", "additive"))
    if not bound.epsilon <= args["epsilon"] * (1 + 1e-9):
        raise FalseClaim(f"m = {m} gives epsilon {bound.epsilon} > {args['epsilon']}")
    act = _act_name(c.activation, args["activation"])
    check_bound(bound, c, dataclasses.replace(b, act=act, beta=c.beta))


@st.composite
def sample_size_for_cases(draw) -> Case:
    base = draw(bases())
    arrays, labels = draw(layer_arrays(base))
    pools = {"epsilon": DELTA_HOSTILE, "delta": DELTA_HOSTILE, "beta": BETA_HOSTILE,
             "kind": KIND_POOL, "form": FORM_POOL, "split_signs": BOOL_HOSTILE,
             "reduction": OPTION_HOSTILE, "paper_constant": DELTA_HOSTILE,
             "activation": _act_pool()}
    valid = {"epsilon": draw(st.sampled_from([0.5, 0.9, 1e-3])),
             "delta": draw(st.sampled_from([1e-6, 0.1, 1e-300])), "beta": base.beta,
             "activation": base.act, "kind": draw(st.sampled_from(["pointwise", "uniform"]))}
    args, more = draw(scalar_args(pools, valid))

    def check(m):
        check_sample_size(m, arrays, base, args)

    def call():
        return cv.sample_size_for(arrays["W_in"], arrays["b_in"], arrays["W_out"], **args)

    return Case("sample_size_for", label_of("sample_size_for", labels + more), call, check,
                base.label)
