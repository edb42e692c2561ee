"""Hostile calls of every public function and the oracle that judges them.

A case is one call of one public function with some arguments replaced by
hostile values (labelled, so that the census counts distinct kinds of bad
input). The oracle (:func:`run_case`): the call raises a subclass of
``CoresetVerifyError`` ("clean"), or it returns and every claim it makes holds
when re-checked with the independent arithmetic of ``_fuzz_reference``
("correct"); anything else is a "failure" (a raw exception, a false bound, a
call that runs past its guard time or memory).

Tolerances (stated once, used everywhere): a returned bound ``e * s_i`` is
compared with the exact difference of the returned arrays as
``|F_i - F~_i| <= e * s_i * (1 + 1e-9) + 4 * eps_dtype * M_i``, where ``M_i``
sums the magnitudes of the terms of F_i and F~_i and ``eps_dtype`` is the
machine epsilon of the returned arrays (the package computes in float64 and
may round its result to float32). Statistical parts (probability ``>= 1 -
delta``) are checked only for ``delta <= 1e-3``: with the Hypothesis seed
fixed, a run is deterministic, and the chance that one given example is a
legitimate statistical miss is at most 1e-3 (pointwise bounds are checked at
one input fixed before the draw).
"""

from __future__ import annotations

import contextlib
import math
import resource
import signal
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import mpmath
import numpy as np
from _fuzz_reference import (
    DPS,
    LayerPair,
    as_f64,
    ball_points,
    mp_matrix,
    to_float,
)
from hypothesis import strategies as st

import coreset_verify as cv
from coreset_verify.errors import CoresetVerifyError

CALL_SECONDS = 20  # a call running longer is a finding (every time limit passed is <= 2 s)
MEMORY_HEADROOM = 3 * 2**30  # address space a call may add before MemoryError
STAT_DELTA = 1e-3  # statistical claims are checked at delta <= this
RTOL = 1e-9
ACTS = ("relu", "sigmoid", "softplus", "leaky_relu", "tanh", "elu")


class FalseClaim(AssertionError):
    """A returned value contradicts the independent re-computation."""


class Refused(Exception):
    """Raised by an oracle when the result is a documented refusal (exit code 2)."""


class GuardTimeout(BaseException):
    """Raised by the alarm when a call overruns CALL_SECONDS."""


@dataclass
class Case:
    """One hostile call: the public function, the hostile choices, the call, the oracle."""

    target: str
    label: str
    call: Callable[[], Any]
    check: Callable[[Any], None] = field(default=lambda result: None)
    context: str = ""

    @property
    def where(self) -> str:
        return f"{self.label} [{self.context}]" if self.context else self.label


@dataclass
class Outcome:
    kind: str  # "clean", "correct" or "failure"
    detail: str = ""


# ------------------------------------------------------------------ guards


def _vm_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0  # pragma: no cover


@contextlib.contextmanager
def guarded():
    """Bound the address space and the wall time of one call (restored after)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _vm_bytes() + MEMORY_HEADROOM
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)

    def alarm(signum, frame):
        raise GuardTimeout(f"call ran past {CALL_SECONDS} s")

    old = signal.signal(signal.SIGALRM, alarm)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    signal.alarm(CALL_SECONDS)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def run_case(case: Case) -> Outcome:
    """Call, classify, and judge the result with the case's oracle."""
    try:
        with guarded():
            result = case.call()
    except CoresetVerifyError as exc:
        return Outcome("clean", f"{case.where}: {type(exc).__name__}: {str(exc)[:300]}")
    except GuardTimeout as exc:
        return Outcome("failure", f"{case.where}: {exc}")
    except FalseClaim as exc:  # an inconsistency seen between two calls of the case
        return Outcome("failure", f"{case.where}: false claim: {exc}")
    except Exception as exc:
        return Outcome("failure", f"{case.where}: raw {type(exc).__name__}: {str(exc)[:300]}")
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            case.check(result)
    except FalseClaim as exc:
        return Outcome("failure", f"{case.where}: false claim: {exc}")
    except Refused as exc:
        return Outcome("clean", f"{case.where}: {exc}")
    except CoresetVerifyError as exc:  # a follow-up call inside the oracle refused cleanly
        return Outcome("clean", f"{case.where}: (follow-up) {type(exc).__name__}: "
                                f"{str(exc)[:300]}")
    except Exception as exc:
        return Outcome("failure",
                       f"{case.where}: in oracle follow-up raw {type(exc).__name__}: "
                       f"{str(exc)[:300]}")
    return Outcome("correct")


# ------------------------------------------------------------------ hostile values


def _torch():
    import torch

    return torch


HUGE_INT = 10**400

SCALAR_HOSTILE: dict[str, Any] = {
    "0": 0, "-1": -1, "nan": math.nan, "inf": math.inf, "-inf": -math.inf,
    "1e308": 1e308, "10**400": HUGE_INT, "2**63": 2**63, "5e-324": 5e-324,
    "True": True, "str": "3", "None": None, "complex": 1j, "list": [1.0],
    "np.nan32": np.float32("nan"), "-0.0": -0.0, "1.5": 1.5, "1e-320": 1e-320,
}
DELTA_HOSTILE = {**SCALAR_HOSTILE, "1": 1.0, "1-1e-16": 1 - 1e-16, "1e-300": 1e-300}
BETA_HOSTILE = {**SCALAR_HOSTILE, "1e-300": 1e-300, "1e300": 1e300}
SIZE_HOSTILE = {**SCALAR_HOSTILE, "np.int8": np.int8(3), "10**11": 10**11, "2**62": 2**62,
                "10**12": 10**12,
                "np.uint64(2**63)": np.uint64(2**63), "3.0": 3.0}
TIME_HOSTILE = {**SCALAR_HOSTILE, "1e-300": 1e-300, "0.01": 0.01}
BOOL_HOSTILE = {"'yes'": "yes", "1": 1, "None": None, "np.bool_": np.bool_(True),
                "nan": math.nan, "[]": []}
RNG_HOSTILE = {"'seed'": "seed", "-1": -1, "1.5": 1.5, "10**400": HUGE_INT, "nan": math.nan,
               "object": object(), "[1, 2]": [1, 2], "np.random.RandomState":
               np.random.RandomState(0), "torch.Generator": "TORCH_GEN"}
OPTION_HOSTILE = {"'unknown'": "unknown", "None": None, "1": 1, "'UNIFORM'": "UNIFORM",
                  "''": ""}
ARRAY_HOSTILE = (
    "nan", "inf", "-inf", "float16", "bfloat16", "int64", "bool", "complex128", "object",
    "torch64", "torch32", "torch16", "torch_bf16", "torch_meta", "torch_sparse", "torch_int",
    "torch_grad", "list", "None", "0-d", "empty", "flat", "transposed", "extra_col", "string",
    "x1e-300", "x1e-320", "x1e300", "x1e200", "signed_zero", "zeros", "float32", "tuple",
    "zero_row", "all_dead", "subnormal_mix",
)


def hostile_array(a: np.ndarray, how: str, rng: np.random.Generator) -> Any:
    """``a`` made hostile by ``how`` (some of these are valid and must then work)."""
    with np.errstate(all="ignore"):
        return _hostile_array(np.array(a, dtype=np.float64), how, rng)


def _hostile_array(a: np.ndarray, how: str, rng: np.random.Generator) -> Any:
    torch = _torch()
    if how in ("nan", "inf", "-inf") and a.size:
        b = a.copy()
        b.flat[int(rng.integers(a.size))] = float(how)
        return b
    simple = {
        "float16": lambda: a.astype(np.float16), "int64": lambda: a.astype(np.int64),
        "bool": lambda: a.astype(bool), "complex128": lambda: a.astype(np.complex128),
        "object": lambda: a.astype(object), "float32": lambda: a.astype(np.float32),
        "list": a.tolist, "tuple": lambda: tuple(a.tolist()), "None": lambda: None,
        "0-d": lambda: np.float64(1.0), "empty": lambda: a[:0],
        "flat": lambda: a.ravel(), "transposed": lambda: a.T.copy(),
        "extra_col": lambda: np.concatenate([a, a[..., :1]], axis=-1),
        "string": lambda: "W", "x1e-300": lambda: a * 1e-300, "x1e-320": lambda: a * 1e-320,
        "x1e300": lambda: a * 1e300, "x1e200": lambda: a * 1e200,
        "signed_zero": lambda: np.copysign(np.zeros_like(a), -1.0),
        "zeros": lambda: np.zeros_like(a),
        "zero_row": lambda: np.concatenate([np.zeros_like(a[:1]), a[1:]]),
        "all_dead": lambda: np.full_like(a, -1e6),
        "subnormal_mix": lambda: np.where(np.arange(a.size).reshape(a.shape) % 2, a * 1e-310,
                                          a),
    }
    if how in simple:
        return simple[how]()
    t = torch.from_numpy(a.copy())
    tensors = {
        "torch64": lambda: t, "torch32": lambda: t.float(), "torch16": lambda: t.half(),
        "torch_bf16": lambda: t.bfloat16(), "bfloat16": lambda: t.bfloat16(),
        "torch_meta": lambda: t.to("meta"), "torch_sparse": lambda: t.to_sparse(),
        "torch_int": lambda: t.long(), "torch_grad": lambda: t.clone().requires_grad_(True),
    }
    return tensors.get(how, lambda: a)()


def _rng_value(v):
    if v == "TORCH_GEN":
        return _torch().Generator().manual_seed(0)
    return v


# ------------------------------------------------------------------ base layers


@dataclass
class Base:
    W_in: np.ndarray
    b_in: np.ndarray
    W_out: np.ndarray
    act: str
    beta: float
    seed: int
    label: str


def _rng(draw) -> np.random.Generator:
    """A generator seeded by Hypothesis: choices drawn from it are spread evenly over
    the pools (Hypothesis alone favours the first entries of a short list)."""
    return np.random.default_rng(draw(st.integers(0, 2**63 - 1)))


def _choice(r: np.random.Generator, values):
    values = list(values)
    return values[int(r.integers(len(values)))]


def make_base(seed: int, act: str, m_in: float, m_out: float, beta: float,
              b_scale: float) -> Base:
    """The layer pair a case label names (``seed`` fixes the shapes and values)."""
    r = np.random.default_rng(seed)
    n, d, k = int(r.integers(1, 7)), int(r.integers(1, 4)), int(r.integers(1, 3))
    W_in = r.standard_normal((n, d)) * m_in
    b_in = np.abs(r.standard_normal(n)) * b_scale
    W_out = r.standard_normal((k, n)) * m_out
    label = (f"make_base({seed}, {act!r}, {m_in:.17g}, {m_out:.17g}, {beta:.17g}, "
             f"{b_scale:.17g})")
    return Base(W_in, b_in, W_out, act, beta, seed, label)


@st.composite
def bases(draw, extreme: bool = True) -> Base:
    """A small valid layer pair, with weights and radius of any float64 magnitude.

    Its label is the call of :func:`make_base` that rebuilds it."""
    r = _rng(draw)
    # Half the magnitudes are beyond what float64 carries through T_i (refusal or a true
    # bound is fine), half are extreme but representable (a true bound is expected).
    mags = [1e-300, 1e-310, 1e-320, 1e200, 1e300, 1.0, 2.0**-40, 1e-150, 1e100, 1e-5, 1e5]
    radii = [1e-300, 1e300, 1e308, 1.0, 0.5, 1e-150, 1e100, 1e-5]
    mags, radii = (mags, radii) if extreme else ([1.0], [1.0, 0.5])
    m_in = _choice(r, mags)
    return make_base(int(r.integers(2**32)), _choice(r, ACTS), m_in, _choice(r, mags),
                     _choice(r, radii), _choice(r, [0.0, 1.0, m_in]))


# ------------------------------------------------------------------ oracles


def eps_of(*arrays) -> float:
    e = 2.0**-52
    for a in arrays:
        dt = getattr(a, "dtype", None)
        if dt is not None and str(dt) in ("float32", "torch.float32"):
            e = 2.0**-23
    return e


def check_layer_bound(pair: LayerPair, kept, U, *, cap: float, eps_stat: float | None,
                      scale, beta, form: str, seed: int, slack_eps: float,
                      kind: str = "uniform", extra: tuple = ()) -> None:
    """``|F_i - F~_i| <= e * s_i`` at sampled inputs, for e = the cap always and the
    statistical epsilon when given (``s_i = scale_i``, or ``G_i(x)`` multiplicative).
    ``extra`` inputs (e.g. a search's worst input) are checked too."""
    rng = np.random.default_rng(seed ^ 0x5EED)
    kept = [int(j) for j in np.asarray(kept).ravel()]
    U_mp = mp_matrix(U)
    scale = as_f64(scale)
    pts = ball_points(len(pair.W_in[0]), mpmath.mpf(float(beta)), rng, rows=pair.W_in)
    pts += [[mpmath.mpf(float(v)) for v in x] for x in extra]
    with mpmath.workdps(DPS):
        for p_index, x in enumerate(pts):
            F = pair.outputs(x)
            Ft = pair.outputs(x, W_out=U_mp, rows=kept)
            h = pair.hidden(x)
            s = pair.magnitude(x) if form == "multiplicative" else [mpmath.mpf(v) for v in scale]
            for i in range(len(F)):
                diff = abs(F[i] - Ft[i])
                M = (mpmath.fsum(abs(c) * abs(hj) for c, hj in zip(pair.W_out[i], h, strict=True))
                     + mpmath.fsum(abs(c) * abs(h[j]) for c, j in zip(U_mp[i], kept, strict=True)))
                tol = 4 * slack_eps * M
                for name, e in (("deterministic cap", cap), ("epsilon", eps_stat)):
                    if e is None or not math.isfinite(e):
                        continue
                    if name == "epsilon" and kind == "pointwise" and p_index != 1:
                        continue  # pointwise: one input fixed before the draw
                    allowed = mpmath.mpf(e) * s[i] * (1 + RTOL) + tol
                    if diff > allowed:
                        raise FalseClaim(
                            f"output {i}: |F - F~| = {to_float(diff):.6g} > {name} {e:.6g} * "
                            f"scale {to_float(s[i]):.6g} = {to_float(allowed):.6g}")


def check_scale(scale, pair: LayerPair, beta, what: str) -> None:
    """``scale`` is ``T_i`` (relative 1e-6): a smaller T would shrink every claim."""
    with mpmath.workdps(DPS):
        T = pair.scale(mpmath.mpf(float(beta)))
    got = as_f64(scale)
    for i, t in enumerate(T):
        if not abs(mpmath.mpf(float(got[i])) - t) <= 1e-6 * t:
            raise FalseClaim(f"{what}[{i}] = {got[i]:.9g}, true T_{i} = {float(t):.9g}")


def check_bound(bound, coreset, base: Base, search: bool = False) -> None:
    """The oracle of a ``Bound`` of ``coreset`` on the layer pair of ``base``."""
    if not isinstance(bound, cv.Bound):
        raise FalseClaim(f"returned {type(bound).__name__}, not a Bound")
    pair = LayerPair(base.W_in, base.b_in, base.W_out, base.act)  # the caller's arrays
    U = as_f64(coreset.weight_out)
    if not np.all(np.isfinite(U)):
        raise FalseClaim("weight_out has non-finite entries next to a bound")
    if not (bound.epsilon >= 0):
        raise FalseClaim(f"epsilon = {bound.epsilon}")
    check_scale(bound.scale, pair, coreset.beta, "bound.scale")
    stat = bound.statistical if (bound.delta <= STAT_DELTA and bound.kind != "paper") else None
    extra = searched_inputs(base, as_f64(coreset.indices), U, coreset.beta) if search else ()
    check_layer_bound(pair, as_f64(coreset.indices), U, cap=bound.deterministic,
                      eps_stat=stat, scale=bound.scale, beta=coreset.beta, form=bound.form,
                      seed=base.seed, slack_eps=eps_of(coreset.weight_out), kind=bound.kind,
                      extra=extra)


def searched_inputs(base: Base, kept, U, beta) -> tuple:
    """The worst input a short gradient search finds between the pair and its pruned
    version (more adversarial than sampling); () when the search refuses or fails."""
    from _fuzz_models import pair_modules

    keep = np.asarray(kept, dtype=int)
    try:
        with guarded():
            original = pair_modules(base.W_in, base.b_in, base.W_out, base.act)
            pruned = pair_modules(base.W_in[keep], base.b_in[keep], U, base.act)
            r = cv.worst_case(original, pruned, beta=float(beta), method="gradient",
                              time_limit=0.5, rng=0, restarts=8)
    except (Exception, GuardTimeout):
        return ()
    return (np.asarray(r.x, dtype=np.float64),)


def check_coreset(c, base: Base, delta: float = 1e-6) -> None:
    """A returned coreset: well-formed, and its uniform and pointwise bounds hold."""
    idx = as_f64(c.indices)
    n = np.asarray(base.W_in).shape[0] if np.ndim(base.W_in) == 2 else None
    if idx.size and (np.any(idx != np.round(idx)) or np.any(np.diff(idx) <= 0)
                     or idx.min() < 0 or (n is not None and idx.max() >= n)):
        raise FalseClaim(f"indices {idx} not sorted unique in [0, {n})")
    dt = str(getattr(c.weight_out, "dtype", ""))
    if "float16" in dt or "bfloat16" in dt:
        raise FalseClaim(f"weight_out of dtype {dt}")
    for kind in ("uniform", "pointwise"):
        check_bound(cv.theoretical_bound(c, delta=delta, kind=kind), c, base)


# ------------------------------------------------------------------ strategies


def layer_arrays(base: Base, names=("W_in", "b_in", "W_out")):
    """The base arrays with zero to two of them made hostile; and the labels."""
    return hostile_arrays({"W_in": base.W_in, "b_in": base.b_in, "W_out": base.W_out},
                          names)


@st.composite
def hostile_arrays(draw, arrays: dict, names):
    """``arrays`` with zero to two of ``names`` made hostile; and the labels."""
    arrays = dict(arrays)
    r = _rng(draw)
    labels = []
    if r.random() < 0.5:
        return arrays, labels  # half the cases: valid arrays of extreme magnitude
    for name in r.permutation(list(names))[: int(r.integers(1, 3))]:
        how = _choice(r, ARRAY_HOSTILE)
        arrays[str(name)] = hostile_array(arrays[str(name)], how, r)
        labels.append(f"{name}={how}")
    return arrays, labels


@st.composite
def scalar_args(draw, pools: dict, valid: dict):
    """``valid`` with zero to two entries replaced from their hostile pools."""
    args, labels = dict(valid), []
    r = _rng(draw)
    if r.random() < 0.5:
        return args, labels
    for name in r.permutation(sorted(pools))[: int(r.integers(1, 3))]:
        key = _choice(r, sorted(pools[str(name)]))
        args[str(name)] = _rng_value(pools[str(name)][key])
        labels.append(f"{name}={key}")
    return args, labels


def label_of(target: str, labels: list) -> str:
    """The census key: the function and the kinds of hostile value (not the draw)."""
    return f"{target}({', '.join(sorted(labels)) or 'valid'})"
