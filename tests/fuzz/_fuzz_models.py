"""Fuzz cases of the functions that take torch models: search, verdict, networks."""

from __future__ import annotations

import dataclasses
import math
import tempfile
from pathlib import Path

import mpmath
import numpy as np
from _fuzz_cases import (
    ACTS,
    ARRAY_HOSTILE,
    BETA_HOSTILE,
    DELTA_HOSTILE,
    OPTION_HOSTILE,
    RNG_HOSTILE,
    SIZE_HOSTILE,
    TIME_HOSTILE,
    Base,
    Case,
    FalseClaim,
    as_f64,
    bases,
    check_scale,
    hostile_array,
    label_of,
    layer_arrays,
    scalar_args,
)
from _fuzz_reference import DPS, LayerPair, ball_points, model_layers, mp_matrix, run_model
from hypothesis import strategies as st

import coreset_verify as cv

SEARCH_TIME = 1.0  # every search call gets a time limit
TIME_POOL = {k: v for k, v in TIME_HOSTILE.items() if k not in ("None", "inf")}
METHOD_POOL = {"'gradient'": "gradient", "'bounds'": "bounds", "'auto'": "auto",
               "'exact'": "exact", "'region'": "region", **OPTION_HOSTILE}
MODEL_HOSTILE = ("half", "bfloat16", "nan_weight", "inf_weight", "conv1d", "batchnorm",
                 "softplus_beta0", "softplus_beta_neg", "leaky_negative", "empty", "not_module",
                 "meta", "x1e200", "x1e-300", "float64", "no_bias", "dropout", "nested",
                 "wrong_width", "lambda", "rnn")
_ACT_MODULES = {"relu": "ReLU", "sigmoid": "Sigmoid", "softplus": "Softplus",
                "leaky_relu": "LeakyReLU", "tanh": "Tanh", "elu": "ELU"}


def _nn():
    import torch.nn as nn

    return nn


def pair_modules(W_in, b_in, W_out, act: str, dtype: str = "float64"):
    """``nn.Sequential(Linear(d, n), phi, Linear(n, k, bias=False))`` built by hand."""
    import torch

    nn = _nn()
    n, d = W_in.shape
    first = nn.Linear(d, n, dtype=torch.float64)  # float64 first: 1e-300 survives the copy
    second = nn.Linear(n, W_out.shape[0], bias=False, dtype=torch.float64)
    with torch.no_grad():
        first.weight.copy_(torch.from_numpy(np.asarray(W_in, dtype=np.float64)))
        first.bias.copy_(torch.from_numpy(np.asarray(b_in, dtype=np.float64)))
        second.weight.copy_(torch.from_numpy(np.asarray(W_out, dtype=np.float64)))
    model = nn.Sequential(first, getattr(nn, _ACT_MODULES[act])(), second)
    return model.double() if dtype == "float64" else model.float()


def pruned_of(base: Base, rng: np.random.Generator):
    """A pruned layer pair: a random subset of neurons, re-weighted at random."""
    n = base.W_in.shape[0]
    keep = np.sort(rng.choice(n, size=max(1, n // 2), replace=False))
    U = base.W_out[:, keep] * rng.uniform(0.5, 2.0, size=(base.W_out.shape[0], keep.size))
    return keep, U


def hostile_model(model, how: str):
    """``model`` (a float64 Sequential) made hostile by ``how``."""
    import torch

    nn = _nn()
    first, act, second = model[0], model[1], model[2]
    d = first.in_features
    if how == "half":
        return model.half()
    if how == "bfloat16":
        return model.bfloat16()
    if how in ("nan_weight", "inf_weight", "x1e200", "x1e-300"):
        with torch.no_grad():
            if how == "nan_weight":
                first.weight[0, 0] = math.nan
            elif how == "inf_weight":
                second.weight[0, 0] = math.inf
            else:
                first.weight.mul_(1e200 if how == "x1e200" else 1e-300)
        return model
    seq = {
        "conv1d": lambda: nn.Sequential(nn.Unflatten(1, (1, d)), nn.Conv1d(1, 1, 1),
                                        nn.Flatten(), first, act, second),
        "batchnorm": lambda: nn.Sequential(first, nn.BatchNorm1d(first.out_features), act,
                                           second),
        "softplus_beta0": lambda: nn.Sequential(first, nn.Softplus(beta=0), second),
        "softplus_beta_neg": lambda: nn.Sequential(first, nn.Softplus(beta=-1), second),
        "leaky_negative": lambda: nn.Sequential(first, nn.LeakyReLU(-1.0), second),
        "empty": lambda: nn.Sequential(),
        "dropout": lambda: nn.Sequential(first, nn.Dropout(0.5), act, second).train(),
        "nested": lambda: nn.Sequential(nn.Sequential(first, act), second),
        "no_bias": lambda: nn.Sequential(nn.Linear(d, first.out_features, bias=False), act,
                                         second),
        "rnn": lambda: nn.Sequential(nn.RNN(d, 2)),
        "wrong_width": lambda: nn.Sequential(first, act, nn.Linear(first.out_features + 1, 1)),
    }
    if how in seq:
        return seq[how]().double()
    if how == "not_module":
        return [first, act, second]
    if how == "lambda":
        return lambda x: x
    if how == "meta":
        return model.to("meta")
    if how == "float64":
        return model
    return model


def _max_obj(f_layers, g_layers, x, scale):
    """``(max_i |f_i - g_i| / s_i, max_i (Mf_i + Mg_i) / s_i)``: the objective at ``x``
    and the magnitude of the output terms (what float64 rounding scales with)."""
    with mpmath.workdps(DPS):
        Mf, Mg = [], []
        f, g = run_model(f_layers, x, Mf), run_model(g_layers, x, Mg)
        s = [mpmath.mpf(float(v)) for v in scale]
        return (max(abs(a - b) / si for a, b, si in zip(f, g, s, strict=True)),
                max((a + b) / si for a, b, si in zip(Mf, Mg, s, strict=True)))


def _in_ball(x, beta) -> bool:
    with mpmath.workdps(DPS):
        nx = mpmath.sqrt(mpmath.fsum(mpmath.mpf(float(v)) ** 2 for v in x))
        return nx <= mpmath.mpf(float(beta)) * (1 + mpmath.mpf(1e-9))


def _in_box(x, lower, upper) -> bool:
    if lower is None:
        return True
    lo, hi = np.broadcast_to(as_f64(lower), x.shape), np.broadcast_to(as_f64(upper), x.shape)
    slack = 1e-9 * np.maximum(np.abs(lo), np.abs(hi))
    return bool(np.all(x >= lo - slack) and np.all(x <= hi + slack))


def _domain_points(d, beta, lower, upper, rng, rows) -> list:
    """Inputs of the ball, the box (which contains 0), or both: box points are
    shrunk toward 0 into the ball, which keeps them in the box."""
    if lower is None:
        return ball_points(d, mpmath.mpf(float(beta)), rng, rows=rows)
    lo, hi = np.broadcast_to(as_f64(lower), (d,)), np.broadcast_to(as_f64(upper), (d,))
    corners = [np.where(rng.random(d) < 0.5, lo, hi) for _ in range(8)]
    inside = [lo + rng.random(d) * (hi - lo) for _ in range(8)]
    pts = []
    with mpmath.workdps(DPS):
        for p in [np.zeros(d), *corners, *inside]:
            x = [mpmath.mpf(float(v)) for v in p]
            if beta is not None:
                nx = mpmath.sqrt(mpmath.fsum(v * v for v in x))
                if nx > mpmath.mpf(float(beta)):
                    x = [v * mpmath.mpf(float(beta)) / nx * (1 - mpmath.mpf(2) ** -60)
                         for v in x]
            pts.append(x)
    return pts


def _operations(layers) -> int:
    """Multiply-adds of one evaluation: one per weight and bias."""
    return sum(len(p[0]) * (len(p[0][0]) + 1) for kind, p in layers if kind == "linear")


def check_worst_case(result, original, pruned, beta, scale, seed, tag="", lower=None,
                     upper=None) -> None:
    """x in the domain, error = the re-evaluation at x, no sampled input beats the bound."""
    if not isinstance(result, cv.WorstCase):
        raise FalseClaim(f"returned {type(result).__name__}")
    try:
        f_layers, g_layers = model_layers(original), model_layers(pruned)
    except KeyError:
        return  # a layer the reference cannot evaluate (then it must be a clean refusal)
    x = np.asarray(result.x, dtype=np.float64)
    if x.shape != (original[0].in_features,) or not np.all(np.isfinite(x)):
        raise FalseClaim(f"{tag}x = {x}")
    if beta is not None and not _in_ball(x, beta):
        raise FalseClaim(f"{tag}x outside the ball: ||x|| = {np.linalg.norm(x):.6g} > {beta}")
    if not _in_box(x, lower, upper):
        raise FalseClaim(f"{tag}x = {x} outside the box [{lower}, {upper}]")
    k = len(f_layers[-1][1][0]) if f_layers[-1][0] == "linear" else None
    scale = np.broadcast_to(np.ones(k) if scale is None else as_f64(scale), (k,))
    # error: re-evaluated by the package in float64 (relative 1e-6 of the value, plus
    # 2**-40 of the term magnitude M for cancellation, plus float64's smallest step);
    # upper_bound: relative 1e-7 + 2**-40 M + the smallest step.
    value, M = _max_obj(f_layers, g_layers, [mpmath.mpf(float(v)) for v in x], scale)
    err = result.error
    # Underflow: each float64 operation may be off by float64's smallest step 2**-1074
    # in absolute terms; allow one step per multiply-add of both networks.
    ops = _operations(f_layers) + _operations(g_layers)
    tiny = ops * mpmath.mpf(2) ** -1074 / min(mpmath.mpf(float(v)) for v in scale)
    if not abs(mpmath.mpf(float(err)) - value) <= 1e-6 * value + 2.0**-40 * M + tiny:
        raise FalseClaim(f"{tag}error {err:.9g} but re-evaluated {float(value):.9g} at x")
    ub = result.upper_bound
    rng = np.random.default_rng(seed)
    for p in _domain_points(len(x), beta, lower, upper, rng, f_layers[0][1][0]):
        v, M = _max_obj(f_layers, g_layers, p, scale)
        allowed = mpmath.mpf(float(ub)) * (1 + mpmath.mpf(1e-7)) + 2.0**-40 * M + tiny
        if not (ub != ub) and v > allowed:
            raise FalseClaim(f"{tag}a sampled input reaches {float(v):.9g} > upper_bound {ub}")


@st.composite
def _models(draw, extreme=True, hostile=True):
    base = draw(bases(extreme=extreme))
    rng = np.random.default_rng(base.seed)
    keep, U = pruned_of(base, rng)
    dtype = draw(st.sampled_from(["float64", "float32"]))
    original = pair_modules(base.W_in, base.b_in, base.W_out, base.act, dtype)
    pruned = pair_modules(base.W_in[keep], base.b_in[keep], U, base.act, dtype)
    labels = []
    if hostile and draw(st.booleans()):
        which = draw(st.sampled_from(["original", "pruned"]))
        how = draw(st.sampled_from(MODEL_HOSTILE))
        labels.append(f"{which}={how}")
        if which == "original":
            original = hostile_model(original, how)
        else:
            pruned = hostile_model(pruned, how)
    return base, original, pruned, labels


@st.composite
def worst_case_cases(draw) -> Case:
    base, original, pruned, labels = draw(_models())
    pools = {"beta": BETA_HOSTILE, "method": METHOD_POOL, "time_limit": TIME_POOL,
             "rng": RNG_HOSTILE, "restarts": SIZE_HOSTILE,
             "scale": {h: h for h in ARRAY_HOSTILE}}
    valid = {"beta": base.beta, "method": draw(st.sampled_from(["gradient", "bounds", "auto"])),
             "time_limit": SEARCH_TIME, "rng": 0, "restarts": 4}
    args, more = draw(scalar_args(pools, valid))
    if "scale" in args:
        args["scale"] = hostile_array(np.ones(base.W_out.shape[0]), args["scale"],
                                      np.random.default_rng(0))
    r = np.random.default_rng(base.seed)
    domain = str(r.choice(["ball", "ball", "box", "ball and box"]))
    if domain != "ball":  # a box around 0, sides up to beta (or 1), some of it hostile
        d, side = base.W_in.shape[1], float(base.beta) if domain == "box" else 1.0
        args["lower"], args["upper"] = -side * r.uniform(0.1, 1, d), side * r.uniform(0.1, 1, d)
        if domain == "box":
            args.pop("beta")
        how = str(r.choice(["valid", "valid", "nan", "lower>upper", "inf", "shape"]))
        if how == "nan":
            args["lower"][0] = math.nan
        elif how == "lower>upper":
            args["lower"], args["upper"] = args["upper"], args["lower"]
        elif how == "inf":
            args["upper"] = np.full(d, math.inf)
        elif how == "shape":
            args["upper"] = np.ones(d + 1)
        more = [*more, f"domain={domain}"] + ([] if how == "valid" else [f"box={how}"])

    def check(result):
        check_worst_case(result, original, pruned, args.get("beta"), args.get("scale"),
                         base.seed, lower=args.get("lower"), upper=args.get("upper"))

    return Case("worst_case", label_of("worst_case", labels + more),
                lambda: cv.worst_case(original, pruned, **args), check, base.label)


@st.composite
def verify_cases(draw) -> Case:
    base, original, pruned, _ = draw(_models(extreme=False, hostile=False))
    how = draw(st.sampled_from(["genuine", "error*2", "x outside", "output=99", "nan error",
                                "None", "rtol=nan", "atol=-1", "models swapped",
                                "other models", "upper<error", "models None"]))

    def call():
        r = cv.worst_case(original, pruned, beta=base.beta, method="gradient",
                          time_limit=SEARCH_TIME, rng=0, restarts=2)
        opts, models = {}, (original, pruned)
        if how == "error*2":
            r = dataclasses.replace(r, error=r.error * 2 + 1)
        elif how == "x outside":
            r = dataclasses.replace(r, x=np.full_like(r.x, 10 * base.beta))
        elif how == "output=99":
            r = dataclasses.replace(r, output=99)
        elif how == "nan error":
            r = dataclasses.replace(r, error=math.nan)
        elif how == "upper<error":
            r = dataclasses.replace(r, upper_bound=r.error / 2 - 1)
        elif how == "None":
            r = None
        elif how == "rtol=nan":
            opts = {"rtol": math.nan}
        elif how == "atol=-1":
            opts = {"atol": -1.0}
        elif how == "models swapped":
            models = (pruned, original)
        elif how == "models None":
            models = (None, None)
        elif how == "other models":
            models = (pair_modules(base.W_in * 2, base.b_in, base.W_out, base.act), pruned)
        return how, cv.verify(r, *models, **opts)

    def check(out):
        how_, ok = out
        if not isinstance(ok, bool):
            raise FalseClaim(f"verify returned {ok!r}, not a bool")
        if how_ in ("error*2", "x outside", "output=99", "nan error", "upper<error") and ok:
            raise FalseClaim(f"verify accepted a tampered result ({how_})")
        if how_ == "genuine" and not ok:
            raise FalseClaim("verify rejected a genuine result")

    return Case("verify", label_of("verify", [] if how == "genuine" else [how]), call, check,
                base.label)


@st.composite
def check_guarantee_cases(draw) -> Case:
    base = draw(bases())
    arrays, labels = draw(layer_arrays(base))
    pools = {"delta": DELTA_HOSTILE, "time_limit": TIME_POOL, "method": METHOD_POOL,
             "kind": {"'pointwise'": "pointwise", "'paper'": "paper", **OPTION_HOSTILE},
             "rng": RNG_HOSTILE, "paper_constant": DELTA_HOSTILE,
             "data": {h: h for h in ("nan", "inf", "float16", "transposed", "list", "empty",
                                     "None", "x1e300", "complex128")}}
    valid = {"delta": draw(st.sampled_from([1e-6, 0.1])), "time_limit": SEARCH_TIME,
             "method": draw(st.sampled_from(["gradient", "bounds", "auto"])), "rng": 0}
    args, more = draw(scalar_args(pools, valid))
    shape = getattr(arrays["W_in"], "shape", ())  # the data follow the layer as passed
    d = shape[-1] if len(shape) == 2 and shape[-1] > 0 else base.W_in.shape[1]
    x0 = np.random.default_rng(0).standard_normal((3, d)) * base.beta / (2 * math.sqrt(d))
    if "data" in args:
        args["data"] = hostile_array(x0, args["data"], np.random.default_rng(0))
    elif draw(st.integers(0, 2)) == 0:
        args["data"] = x0  # valid data inside the ball: data_error is re-checked
    m = draw(st.sampled_from([1, 3, 20]))

    def call():
        layer = (arrays["W_in"], arrays["b_in"], arrays["W_out"])
        c = cv.layer_coreset(*layer, sample_size=m, activation=base.act, beta=base.beta,
                             rng=base.seed)
        kind = args.get("kind", "uniform")
        cv.theoretical_bound(c, delta=args["delta"], kind=kind)
        try:
            return c, cv.check_guarantee(*layer, c, **args)
        except cv.CoresetVerifyError as exc:
            if more or isinstance(exc, cv.MagnitudeError):
                raise  # a hostile option, or magnitudes the search cannot carry: documented
            raise FalseClaim(f"layer_coreset and theoretical_bound accept this layer, "
                             f"check_guarantee refuses it: {type(exc).__name__}: "
                             f"{str(exc)[:200]}") from None

    def check(out):
        c, g = out
        data = args.get("data") if "data" not in " ".join(more) else None
        _check_guarantee_result(g, c, _passed_base(arrays, base), data)

    return Case("check_guarantee", label_of("check_guarantee", labels + more), call, check,
                f"{base.label},m={m}")


def _passed_base(arrays, base: Base) -> Base:
    return dataclasses.replace(base, W_in=as_f64(arrays["W_in"]), b_in=as_f64(arrays["b_in"]),
                               W_out=as_f64(arrays["W_out"]))


def _check_guarantee_result(g, c, base: Base, data=None) -> None:
    pair = LayerPair(base.W_in, base.b_in, base.W_out, base.act)
    check_scale(g.bound.scale, pair, base.beta, "bound.scale")
    scale = as_f64(g.bound.scale)
    if g.verdict == "holds" and not g.certified <= g.epsilon * (1 + 1e-9):
        raise FalseClaim(f"verdict holds with certified {g.certified} > epsilon {g.epsilon}")
    if g.verdict == "violated" and not g.found > g.epsilon:
        raise FalseClaim(f"verdict violated with found {g.found} <= epsilon {g.epsilon}")
    idx = [int(j) for j in as_f64(c.indices)]
    U = mp_matrix(c.weight_out)
    wc = g.worst_case
    x = np.asarray(wc.x, dtype=np.float64)
    if not _in_ball(x, base.beta):
        raise FalseClaim(f"worst x outside the ball: ||x|| = {np.linalg.norm(x):.6g}")

    def objective(p):
        with mpmath.workdps(DPS):
            F, Ft = pair.outputs(p), pair.outputs(p, W_out=U, rows=idx)
            return max(abs(a - b) / mpmath.mpf(float(s)) if s > 0 else mpmath.mpf(0)
                       for a, b, s in zip(F, Ft, scale, strict=True))

    v = objective([mpmath.mpf(float(v)) for v in x])
    if not abs(mpmath.mpf(float(g.found)) - v) <= 1e-6 * v + 1e-12:
        raise FalseClaim(f"found {g.found:.9g} but re-evaluated {float(v):.9g} at x")
    if data is not None:
        rows = [[mpmath.mpf(float(v)) for v in row] for row in np.asarray(data)]
        worst = max(objective(row) for row in rows)
        if g.data_error is None or not abs(mpmath.mpf(float(g.data_error)) - worst) <= (
                1e-6 * worst + 1e-12):
            raise FalseClaim(f"data_error {g.data_error} but re-evaluated {float(worst):.9g}")
    rng = np.random.default_rng(base.seed)
    extra = [] if data is None else rows
    for p in [*ball_points(x.size, mpmath.mpf(float(base.beta)), rng, rows=pair.W_in), *extra]:
        v = objective(p)
        if v > mpmath.mpf(float(g.certified)) * (1 + mpmath.mpf(1e-7)) + 1e-9:
            raise FalseClaim(f"a sampled input reaches {float(v):.9g} > certified {g.certified}")


# ------------------------------------------------------------------ networks


def net_model(rng: np.random.Generator, act: str, d: int, widths: tuple, mag: float,
              dtype: str):
    import torch

    nn = _nn()
    layers, prev = [], d
    for i, w in enumerate(widths):
        lin = nn.Linear(prev, w, dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(rng.standard_normal((w, prev)) * mag))
            lin.bias.copy_(torch.from_numpy(np.abs(rng.standard_normal(w))))
        layers.append(lin)
        if i < len(widths) - 1:
            layers.append(getattr(nn, _ACT_MODULES[act])())
        prev = w
    model = nn.Sequential(*layers)
    return model.double() if dtype == "float64" else model.float()


NET_HOSTILE = ("half", "bfloat16", "nan_weight", "softplus_beta0", "leaky_negative", "empty",
               "not_module", "meta", "x1e200", "x1e-300", "conv1d", "rnn", "lambda")


REFUSED_NETS = ("half", "bfloat16", "empty", "not_module", "meta", "conv1d", "rnn", "lambda")


@st.composite
def _networks(draw, hostile=NET_HOSTILE):
    """A small MLP (half the time made hostile); the label is the call rebuilding it."""
    r = np.random.default_rng(draw(st.integers(0, 2**63 - 1)))
    seed = int(r.integers(2**32))
    act = str(r.choice(ACTS))
    d = int(r.integers(1, 4))
    widths = (int(r.integers(1, 7)), int(r.integers(1, 6)), int(r.integers(1, 3)))
    mag = float(r.choice([1.0, 1.0, 2.0**-30, 1e-100, 1e100, 1e-300, 1e150]))
    dtype = str(r.choice(["float64", "float32"]))
    model = net_model(np.random.default_rng(seed), act, d, widths, mag, dtype)
    labels = []
    if r.random() < 0.5:
        how = str(r.choice(hostile))
        labels.append(f"model={how}")
        model = _hostile_net(model, how)
    ctx = f"net_model(default_rng({seed}), {act!r}, {d}, {widths}, {mag:g}, {dtype!r})"
    return seed, act, d, model, labels, ctx


def _hostile_net(model, how):
    import torch

    nn = _nn()
    if how in ("half", "bfloat16", "not_module", "lambda", "meta", "empty", "rnn", "conv1d"):
        first = model[0]
        return hostile_model(nn.Sequential(first, model[1], model[2]), how) if how in (
            "conv1d", "rnn") else hostile_model(model, how)
    if how in ("softplus_beta0", "leaky_negative"):
        layers = list(model)
        layers[1] = nn.Softplus(beta=0) if how == "softplus_beta0" else nn.LeakyReLU(-1.0)
        return nn.Sequential(*layers)
    with torch.no_grad():
        if how == "nan_weight":
            model[0].weight[0, 0] = math.nan
        else:
            model[0].weight.mul_(1e200 if how == "x1e200" else 1e-300)
    return model


def _state(model):
    try:
        return {k: v.detach().clone() for k, v in model.state_dict().items()}
    except Exception:
        return None


def _same_state(model, before) -> bool:
    import torch

    if before is None:
        return True
    after = model.state_dict()
    return all(torch.equal(before[k], after[k]) or (
        before[k].is_floating_point() and torch.allclose(before[k], after[k], equal_nan=True))
        for k in before)


def check_pruned_network(pn, model, before, beta, seed, d) -> None:
    if not isinstance(pn, cv.PrunedNetwork):
        raise FalseClaim(f"returned {type(pn).__name__}")
    if not _same_state(model, before):
        raise FalseClaim("prune_network modified the original model")
    cb = np.asarray(cv.composed_bound(pn), dtype=np.float64)
    if cb.ndim != 1 or np.any(np.isnan(cb)) or np.any(cb < 0):
        raise FalseClaim(f"composed_bound = {cb}")
    try:
        f_layers, g_layers = model_layers(model), model_layers(pn.model)
    except KeyError:
        return
    import torch

    # Rounding of the pruned weights (re-weighted in float64, stored in the model's
    # dtype) scales with the output layer's term magnitudes Mf, Mg, not with |f|, |g|.
    float32 = any(p.dtype != torch.float64 for p in pn.model.parameters())
    rtol = 2.0**-20 if float32 else 2.0**-48
    stat = pn.delta <= 1e-3 and pn.kind != "paper"
    rng = np.random.default_rng(seed)
    pts = ball_points(d, mpmath.mpf(float(beta)), rng, rows=f_layers[0][1][0])
    masked = cv.to_masks(pn, model)
    m_layers = model_layers(masked)
    with mpmath.workdps(DPS):
        for p_index, x in enumerate(pts):
            Mf, Mg = [], []
            f, g = run_model(f_layers, x, Mf), run_model(g_layers, x, Mg)
            h = run_model(m_layers, x)
            for i in range(len(f)):
                tol = rtol * (Mf[i] + Mg[i]) + mpmath.mpf(2) ** -1074
                if not abs(g[i] - h[i]) <= 2.0**-20 * (Mg[i] + abs(h[i])):
                    raise FalseClaim(f"to_masks output {float(h[i]):.9g} != pruned "
                                     f"{float(g[i]):.9g}")
                if not stat or (pn.kind == "pointwise" and p_index != 1):
                    continue
                if abs(f[i] - g[i]) > mpmath.mpf(float(cb[i])) + tol:
                    raise FalseClaim(f"output {i}: |f - g| = {float(abs(f[i] - g[i])):.6g} > "
                                     f"composed_bound {cb[i]:.6g}")


@st.composite
def prune_network_cases(draw) -> Case:
    seed, _act, d, model, labels, ctx = draw(_networks())
    r = np.random.default_rng(seed)
    keep_pool = {"0": 0, "-1": -1, "nan": math.nan, "1.5": 1.5, "10**400": 10**400,
                 "{'bad': 0.5}": {"bad": 0.5}, "'half'": "half", "True": True, "1e-320": 1e-320}
    pools = {"keep": keep_pool, "epsilon": DELTA_HOSTILE, "delta": DELTA_HOSTILE,
             "beta": BETA_HOSTILE, "rng": RNG_HOSTILE, "order": OPTION_HOSTILE,
             "kind": OPTION_HOSTILE}
    valid = {"keep": float(r.choice([0.5, 1.0, 0.25])), "delta": 1e-6,
             "beta": float(r.choice([1.0, 0.5, 1e-100, 1e100, 1e-300, 1e300])), "rng": seed,
             "order": str(r.choice(["bottom-up", "top-down"])),
             "kind": str(r.choice(["uniform", "pointwise", "paper"]))}
    ctx = f"{ctx}, keep={valid['keep']}, beta={valid['beta']:g}, order={valid['order']!r}, " \
          f"kind={valid['kind']!r}"
    args, more = draw(scalar_args(pools, valid))
    if "epsilon" in args:
        args.pop("keep", None) if "keep=" not in " ".join(more) else None
    before = _state(model) if hasattr(model, "state_dict") else None

    def check(pn):
        check_pruned_network(pn, model, before, args["beta"], seed, d)

    return Case("prune_network", label_of("prune_network", labels + more),
                lambda: cv.prune_network(model, **args), check, ctx)


@st.composite
def select_neurons_cases(draw) -> Case:
    seed, _act, d, model, labels, ctx = draw(_networks(REFUSED_NETS))
    rng = np.random.default_rng(seed)
    widths = [m.out_features for m in model if hasattr(m, "out_features")][:-1] if isinstance(
        model, _nn().Sequential) else [2, 2]
    kept = [np.sort(rng.choice(w, size=max(1, w // 2), replace=False)) for w in widths]
    scale = None
    how = draw(st.sampled_from(["valid", "valid", "duplicates", "floats", "out of range",
                                "negative", "empty", "None", "too few", "bools", "scale nan",
                                "scale wrong", "scale valid", "2d"]))
    if how == "duplicates":
        kept = [np.zeros(10, dtype=int) for _ in widths]
    elif how == "floats":
        kept = [k + 0.5 for k in kept]
    elif how == "out of range":
        kept = [np.array([w + 3]) for w in widths]
    elif how == "negative":
        kept = [np.array([-1]) for _ in widths]
    elif how == "empty":
        kept = [np.array([], dtype=int) for _ in widths]
    elif how == "None":
        kept = None
    elif how == "too few":
        kept = kept[:-1]
    elif how == "bools":
        kept = [np.ones(w, dtype=bool) for w in widths]
    elif how == "2d":
        kept = [k[None, :] for k in kept]
    elif how.startswith("scale"):
        scale = [np.full(k.size, {"scale nan": math.nan, "scale valid": 2.0}.get(how, 1.0))
                 if how != "scale wrong" else np.ones(k.size + 1) for k in kept]
    if how != "valid":
        labels = [*labels, f"kept={how}"]

    def check(out):
        if how not in ("valid", "scale valid") or (labels[:1] and labels[0].startswith("model=")):
            raise FalseClaim(f"select_neurons accepted {', '.join(labels)}")
        _check_selected(out, model, kept, scale, d, seed)

    return Case("select_neurons", label_of("select_neurons", labels),
                lambda: cv.select_neurons(model, kept, scale=scale), check, ctx)


def _check_selected(out, model, kept, scale, d, seed):
    f_layers, g_layers = model_layers(model), model_layers(out)
    # Reference: zero the dropped neurons' outgoing columns, scale the kept ones.
    ref, li = [], 0
    for kind, p in f_layers:
        if kind == "linear" and li > 0:
            W, b = p
            keep = set(int(j) for j in kept[li - 1])
            s = 1 if scale is None else mpmath.mpf(float(np.asarray(scale[li - 1]).ravel()[0]))
            W = [[c * s if j in keep else mpmath.mpf(0) for j, c in enumerate(row)] for row in W]
            p = (W, b)
        if kind == "linear":
            li += 1
        ref.append((kind, p))
    rng = np.random.default_rng(seed)
    for x in ball_points(d, mpmath.mpf(1), rng):
        a, b = run_model(ref, x), run_model(g_layers, x)
        for u, v in zip(a, b, strict=True):
            if not abs(u - v) <= 1e-5 * (1 + abs(u)):
                raise FalseClaim(f"selected model gives {float(v):.9g}, expected {float(u):.9g}")


ARCH = [2, 3, 2, 1]  # the layer sizes of the clean state dicts below


@st.composite
def save_load_cases(draw) -> Case:
    seed, _act, d, model, labels, ctx = draw(_networks(REFUSED_NETS))
    how = draw(st.sampled_from(["roundtrip", "roundtrip", "missing dir", "directory",
                                "empty file", "text file", "truncated", "path None",
                                "path int", "state_dict half", "state_dict nan",
                                "architecture bad"]))
    if how != "roundtrip":
        labels = [*labels, f"path={how}"]
    clean_sd = net_model(np.random.default_rng(seed), "relu", ARCH[0], tuple(ARCH[1:]), 1.0,
                         "float64").state_dict()

    def call():
        tmp = Path(tempfile.mkdtemp(prefix="fuzz_io_"))
        good = tmp / "model.pt"
        if how == "missing dir":
            return cv.save_model(model, tmp / "no" / "such" / "m.pt")
        if how == "path None":
            return cv.save_model(model, None)
        if how == "path int":
            return cv.load_model(5)
        if how == "directory":
            return cv.load_model(tmp)
        if how in ("empty file", "text file"):
            good.write_text("" if how == "empty file" else "hello\n")
            return cv.load_model(good)
        if how == "state_dict half":
            return cv.load_model({k: v.half() for k, v in clean_sd.items()}, architecture=ARCH)
        if how == "state_dict nan":
            sd = {k: v.clone() for k, v in clean_sd.items()}
            next(iter(sd.values())).view(-1)[0] = math.nan
            return cv.load_model(sd, architecture=ARCH)
        if how == "architecture bad":
            return cv.load_model(clean_sd, architecture=[-1, "x"])
        cv.save_model(model, good)
        if how == "truncated":
            good.write_bytes(good.read_bytes()[:20])
        return cv.load_model(good)

    def check(loaded):
        if how != "roundtrip" or labels:
            raise FalseClaim(f"accepted {', '.join(labels)}: returned {type(loaded).__name__}")
        a, b = model_layers(model), model_layers(loaded)
        for x in ball_points(d, mpmath.mpf(1), np.random.default_rng(seed), count=3):
            for u, v in zip(run_model(a, x), run_model(b, x), strict=True):
                if not abs(u - v) <= 1e-6 * (1 + abs(u)):
                    raise FalseClaim(f"loaded model gives {float(v)} != {float(u)}")

    return Case("save_model.load_model", label_of("save_model.load_model", labels), call,
                check, ctx)


@st.composite
def records_cases(draw) -> Case:
    """composed_bound and to_masks on hostile records and models."""
    seed = draw(st.integers(0, 2**32 - 1))
    how = draw(st.sampled_from(["valid", "composed None", "composed tampered epsilon nan",
                                "composed tampered beta -1", "masks other model",
                                "masks half", "masks inplace 'yes'", "masks None",
                                "masks not pruned", "masks meta"]))
    model = net_model(np.random.default_rng(seed), "relu", 2, (4, 3, 1), 1.0, "float64")

    def call():
        pn = cv.prune_network(model, keep=0.5, delta=1e-6, beta=1.0, rng=seed)
        if how == "valid":
            return pn, cv.composed_bound(pn), cv.to_masks(pn, model)
        if how.startswith("composed"):
            arg = None if how == "composed None" else dataclasses.replace(
                pn, layers=tuple(dataclasses.replace(L, epsilon=math.nan) for L in pn.layers)
            ) if "epsilon" in how else dataclasses.replace(pn, beta=-1.0)
            return cv.composed_bound(arg)
        other = {"masks other model": lambda: net_model(np.random.default_rng(seed + 1), "relu",
                                                        3, (5, 3, 1), 1.0, "float64"),
                 "masks half": lambda: model.half(), "masks None": lambda: None,
                 "masks meta": lambda: model.to("meta")}
        if how == "masks inplace 'yes'":
            return cv.to_masks(pn, model, inplace="yes")
        if how == "masks not pruned":
            return cv.to_masks(model, model)
        return cv.to_masks(pn, other[how]())

    def check(out):
        if how != "valid":
            raise FalseClaim(f"{how} accepted: returned {type(out).__name__}")
        check_pruned_network(out[0], model, None, 1.0, seed, 2)  # re-derives both

    return Case("composed_bound.to_masks", label_of("composed_bound.to_masks",
                                                    [] if how == "valid" else [how]),
                call, check)
