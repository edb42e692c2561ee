"""Fuzz cases of the convolutional functions: channel coresets and their bounds, the
BatchNorm fold, the conv operator bound, channel selection, and certified networks.

``channel_coreset`` / ``channel_bound``: tiny Conv2d layers followed by a Conv2d or a
Flatten and Linear, weights and radius of any float64 magnitude, some arrays and
options hostile. A returned coreset must be well formed (sorted kept channels, counts,
``pruned()``, ``scale = T``) and its bounds must hold: the conv pair is evaluated in
mpmath at every output channel and position (stride 1, no padding, the next layer
reading the conv's whole output), on inputs of the ball ``||x|| <= beta`` over the
whole input tensor, with the tolerance of ``_fuzz_cases``. ``fold_batchnorm``: each
returned entry against the formula evaluated in mpmath (IEEE propagation of NaN and
inf is faithful; an entry whose exact value is finite must be close to it).
``conv_operator_bound``: not below the spectral norm of the conv's explicit matrix
for one input size with full zero padding. ``select_channels``: the smaller model
computes what the original computes with the dropped channels' next-layer blocks
zeroed and the kept ones scaled. ``certified_network``: tiny MLPs and conv nets, a
tiny time limit; the kept draw has the least proved bound, no sampled input of the
ball beats it, and it is the pruning the chosen child of ``rng`` gives.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import numbers
import tempfile
from dataclasses import dataclass
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
    RTOL,
    SCALAR_HOSTILE,
    SIZE_HOSTILE,
    STAT_DELTA,
    TIME_HOSTILE,
    Case,
    FalseClaim,
    _choice,
    _rng,
    as_f64,
    check_scale,
    eps_of,
    hostile_array,
    hostile_arrays,
    label_of,
    scalar_args,
)
from _fuzz_certificate import check_choice, with_places
from _fuzz_layer import _act_name, _act_pool, _tampered
from _fuzz_models import (
    _ACT_MODULES,
    _networks,
    _same_state,
    _state,
    check_worst_case,
    net_model,
)
from _fuzz_reference import DPS, LayerPair, ball_points, mp_matrix, phi, to_float
from hypothesis import strategies as st

import coreset_verify as cv
from coreset_verify.errors import CoresetVerifyError

MAGS = [1e-300, 1e-310, 1e-320, 1e200, 1e300, 1.0, 2.0**-40, 1e-150, 1e100, 1e-5, 1e5]
RADII = [1e-300, 1e300, 1e308, 1.0, 0.5, 1e-150, 1e100, 1e-5]
PADDING_POOL = {"'zeros'": "zeros", "'reflect'": "reflect", "'circular'": "circular",
                "'replicate'": "replicate", **OPTION_HOSTILE}
SHAPE_HOSTILE = {"(0, 1)": (0, 1), "(2.0, 1)": (2.0, 1), "(1,)": (1,), "None": None,
                 "'11'": "11", "(10**400, 1)": (10**400, 1), "(-1, -1)": (-1, -1),
                 "(True, 1)": (True, 1), "(1, 1, 1)": (1, 1, 1), "(nan, 1)": (math.nan, 1),
                 "np.array": "ARRAY", "(np.int64, np.int64)": "NPINT", "swapped": "SWAP"}


def _mp(v) -> mpmath.mpf:
    return mpmath.mpf(float(v))


# ------------------------------------------------------------------ conv layers


@dataclass
class ConvBase:
    """A conv, its bias and the next layer's weight, and the geometry of the oracle:
    the conv's output is ``(ho, wo)`` (stride 1, no padding); a next Conv2d reads it
    whole, a Linear reads it flattened (``channel_shape = (ho, wo)``)."""

    w: np.ndarray
    b: np.ndarray
    V: np.ndarray
    channel_shape: tuple | None
    extra: tuple  # next conv: output size minus its kernel size, per dimension
    act: str
    beta: float
    seed: int
    label: str


def make_conv(seed: int, act: str, m_in: float, m_out: float, beta: float, b_scale: float,
              linear: bool) -> ConvBase:
    """The conv layer a case label names (``seed`` fixes the shapes and values)."""
    r = np.random.default_rng(seed)
    C, c_in, kh, kw, k = (int(r.integers(1, 6)), int(r.integers(1, 3)), int(r.integers(1, 3)),
                          int(r.integers(1, 3)), int(r.integers(1, 3)))
    w = r.standard_normal((C, c_in, kh, kw)) * m_in
    b = np.abs(r.standard_normal(C)) * b_scale
    extra = (int(r.integers(0, 2)), int(r.integers(0, 2)))
    if linear:
        shape = (int(r.integers(1, 3)), int(r.integers(1, 3)))
        V = r.standard_normal((k, C * shape[0] * shape[1])) * m_out
    else:
        shape = None
        V = r.standard_normal((k, C, int(r.integers(1, 3)), int(r.integers(1, 3)))) * m_out
    label = (f"make_conv({seed}, {act!r}, {m_in:.17g}, {m_out:.17g}, {beta:.17g}, "
             f"{b_scale:.17g}, linear={linear})")
    return ConvBase(w, b, V, shape, extra, act, beta, seed, label)


@st.composite
def conv_bases(draw, extreme: bool = True) -> ConvBase:
    r = _rng(draw)
    # Half the layers have extreme magnitudes (a refusal or a true bound is fine), half
    # moderate ones (a true bound is expected).
    extreme = extreme and r.random() < 0.5
    mags, radii = (MAGS, RADII) if extreme else ([1.0, 0.5, 2.0, 1e-3, 1e3], [1.0, 0.5, 3.0])
    m_in = _choice(r, mags)
    return make_conv(int(r.integers(2**32)), _choice(r, ACTS), m_in, _choice(r, mags),
                     _choice(r, radii), _choice(r, [0.0, 1.0, m_in]), bool(r.random() < 0.4))


class ConvPair:
    """The conv pair in mpmath: ``F_{i,q}(x) = sum_{c,o} V[i,c,o] phi(w_c . patch + b_c)``.

    ``x`` is the whole input (C_in, H_in, W_in) flattened in C order; the conv has
    stride 1 and no padding, its output ``(ho, wo)``; the next layer is a Conv2d
    (stride 1, no padding) over that output or a Linear over its Flatten."""

    def __init__(self, w, b, V, act: str, hw: tuple):
        w, V = as_f64(w), as_f64(V)
        self.C, self.c_in, self.kh, self.kw = w.shape
        self.ho, self.wo = hw
        self.h_in, self.w_in = self.ho + self.kh - 1, self.wo + self.kw - 1
        self.D = self.c_in * self.h_in * self.w_in
        self.act = act
        with mpmath.workdps(DPS):
            self.w = mp_matrix(w.reshape(self.C, -1))
            self.b = mp_matrix(as_f64(b))
        # the input entries each output position of the conv reads, in w's order
        self.patches = [[ci * self.h_in * self.w_in + (oy + u) * self.w_in + ox + v
                         for ci in range(self.c_in) for u in range(self.kh)
                         for v in range(self.kw)]
                        for oy in range(self.ho) for ox in range(self.wo)]
        self.next_terms = self.terms(V)

    @property
    def positions(self) -> int:
        return self.ho * self.wo

    def terms(self, V) -> list:
        """Per output (i, q): the ``(coefficient, local channel, position)`` it sums."""
        V = as_f64(V)
        out = []
        with mpmath.workdps(DPS):
            if V.ndim == 2:
                P = self.positions
                for i in range(V.shape[0]):
                    out.append([(_mp(V[i, c * P + p]), c, p)
                                for c in range(V.shape[1] // P) for p in range(P)])
                return out
            k, r, kh2, kw2 = V.shape
            for i in range(k):
                for qy in range(self.ho - kh2 + 1):
                    for qx in range(self.wo - kw2 + 1):
                        out.append([(_mp(V[i, c, u, v]), c, (qy + u) * self.wo + qx + v)
                                    for c in range(r) for u in range(kh2) for v in range(kw2)])
        return out

    def hidden(self, x: list) -> list:
        with mpmath.workdps(DPS):
            return [[phi(self.act, mpmath.fsum(a * x[j] for a, j in zip(self.w[c], patch,
                                                                         strict=True))
                         + self.b[c]) for patch in self.patches] for c in range(self.C)]

    @staticmethod
    def outputs(h: list, terms: list, kept=None) -> tuple[list, list]:
        """``(F, M)``: the outputs and the sums of their terms' magnitudes."""
        with mpmath.workdps(DPS):
            rows = range(len(h)) if kept is None else kept
            rows = list(rows)
            F = [mpmath.fsum(a * h[rows[c]][p] for a, c, p in t) for t in terms]
            M = [mpmath.fsum(abs(a * h[rows[c]][p]) for a, c, p in t) for t in terms]
            return F, M

    def reduced(self, V) -> LayerPair:
        """The dense pair ``(w_flat, b, A)``, ``A[i, c] = ||V[i, c]||_1`` (exact)."""
        V = as_f64(V)
        pair = LayerPair(np.zeros((self.C, 1)), np.zeros(self.C), np.zeros((1, self.C)),
                         self.act)
        with mpmath.workdps(DPS):
            blocks = V.reshape(V.shape[0], self.C, -1)
            pair.W_in, pair.b_in = self.w, self.b
            pair.W_out = [[mpmath.fsum(abs(_mp(v)) for v in blocks[i, c])
                           for c in range(self.C)] for i in range(V.shape[0])]
        return pair

    def extreme_rows(self) -> list:
        """Inputs that put each filter's maximiser in the first patch (unit vectors)."""
        rows = []
        for c in range(self.C):
            x = [mpmath.mpf(0)] * self.D
            for a, j in zip(self.w[c], self.patches[0], strict=True):
                x[j] = a
            rows.append(x)
        return rows


def geometry(w, V, channel_shape, extra) -> tuple | None:
    """The conv's output ``(ho, wo)`` for the arrays as passed (None: no oracle)."""
    w, V = as_f64(w), as_f64(V)
    if w.ndim != 4 or V.ndim not in (2, 4):
        return None
    if V.ndim == 2:
        return tuple(int(s) for s in channel_shape)
    return (V.shape[2] + extra[0], V.shape[3] + extra[1])


def check_channel_bound(bound, c, pair: ConvPair, seed: int, *, exact_q: bool) -> None:
    """The oracle of a ``Bound`` of a channel coreset: ``scale = T``; ``epsilon`` is the
    smaller of its two parts; the deterministic cap is not below the triangle bound
    ``max_i (T_i + sum_c ||U[i, c]||_1 env_c) / T_i`` (no other proof of a smaller
    one exists); and ``|F_{i,q} - F~_{i,q}| <= e T_i`` at sampled inputs of the ball
    for every output i and position q (e = the cap; epsilon too when ``delta <=
    STAT_DELTA`` and ``Q``, ``D`` were not understated)."""
    if not isinstance(bound, cv.Bound):
        raise FalseClaim(f"returned {type(bound).__name__}, not a Bound")
    if not (bound.epsilon >= 0) or bound.epsilon != min(bound.statistical,
                                                        bound.deterministic):
        raise FalseClaim(f"epsilon = {bound.epsilon}, statistical {bound.statistical}, "
                         f"deterministic {bound.deterministic}")
    U = as_f64(c.weight_next)
    if not np.all(np.isfinite(U)):
        raise FalseClaim("weight_next has non-finite entries next to a bound")
    V = c.layer[2]
    reduced = pair.reduced(V)
    check_scale(bound.scale, reduced, c.beta, "bound.scale")
    kept = [int(j) for j in as_f64(c.indices)]
    _check_cap(bound.deterministic, reduced, U, kept, c.beta, eps_of(c.weight_next))
    stat = bound.epsilon if (bound.delta <= STAT_DELTA and exact_q) else None
    pruned_terms = pair.terms(U)
    k = as_f64(V).shape[0]
    per_out = len(pair.next_terms) // k
    rng = np.random.default_rng(seed ^ 0x5EED)
    beta = mpmath.mpf(float(c.beta))
    pts = ball_points(pair.D, beta, rng, rows=pair.extreme_rows(), count=6)
    slack_eps = eps_of(c.weight_next)
    scale = as_f64(bound.scale)
    with mpmath.workdps(DPS):
        for p_index, x in enumerate(pts):
            h = pair.hidden(x)
            F, Mf = pair.outputs(h, pair.next_terms)
            G, Mg = pair.outputs(h, pruned_terms, kept)
            for o in range(len(F)):
                i = o // per_out
                diff = abs(F[o] - G[o])
                tol = 4 * slack_eps * (Mf[o] + Mg[o])
                for name, e in (("deterministic cap", bound.deterministic), ("epsilon", stat)):
                    if e is None or not math.isfinite(e):
                        continue
                    if name == "epsilon" and bound.kind == "pointwise" and p_index != 1:
                        continue  # pointwise: one input fixed before the draw
                    allowed = mpmath.mpf(e) * _mp(scale[i]) * (1 + RTOL) + tol
                    if diff > allowed:
                        raise FalseClaim(
                            f"output {i}, position {o % per_out}: |F - F~| = "
                            f"{to_float(diff):.6g} > {name} {e:.6g} * T {scale[i]:.6g}")


def _check_cap(cap: float, reduced: LayerPair, U, kept: list, beta, e: float) -> None:
    with mpmath.workdps(DPS):
        T = reduced.scale(_mp(beta))
        env = reduced.envelope(_mp(beta))
        blocks = U.reshape(U.shape[0], len(kept), -1)
        for i, t in enumerate(T):
            if t <= 0:
                continue
            kept_part = mpmath.fsum(mpmath.fsum(abs(_mp(v)) for v in blocks[i, r]) * env[j]
                                    for r, j in enumerate(kept))
            least = (t + kept_part) / t
            if _mp(cap) < least * (1 - 8 * mpmath.mpf(e) - mpmath.mpf(RTOL)):
                raise FalseClaim(f"deterministic cap {cap:.9g} below the triangle bound "
                                 f"{to_float(least):.9g} of output {i}")


def check_channel_coreset(c, w, b, V, channel_shape, extra, act_asked, beta, seed) -> None:
    """A returned coreset: well formed, ``T`` exact, and both kinds of bound hold."""
    if not isinstance(c, cv.ChannelCoreset):
        raise FalseClaim(f"returned {type(c).__name__}")
    act = _act_name(c.activation, act_asked)
    if not (isinstance(beta, int | float) and float(beta) == c.beta):
        raise FalseClaim(f"coreset.beta = {c.beta} for beta={beta!r}")
    w64, V64 = as_f64(w), as_f64(V)
    b64 = np.zeros(w64.shape[0]) if b is None else as_f64(b)
    C = w64.shape[0]
    idx, counts = as_f64(c.indices), np.asarray(c.counts)
    if idx.size == 0 or np.any(np.diff(idx) <= 0) or idx.min() < 0 or idx.max() >= C:
        raise FalseClaim(f"indices {idx} not sorted unique in [0, {C})")
    if counts.shape != (C,) or int(counts.sum()) != c.sample_size or not np.array_equal(
            np.flatnonzero(counts), idx.astype(int)):
        raise FalseClaim(f"counts {counts} for indices {idx}, sample_size {c.sample_size}")
    r = idx.size
    want = (V64.shape[0], r, *V64.shape[2:]) if V64.ndim == 4 else (
        V64.shape[0], r * (V64.shape[1] // C))
    if tuple(c.weight_next.shape) != want or c.n_kept != r:
        raise FalseClaim(f"weight_next of shape {tuple(c.weight_next.shape)}, n_kept "
                         f"{c.n_kept}, for {r} kept channels (expected {want})")
    dt = str(getattr(c.weight_next, "dtype", ""))
    if "float16" in dt:
        raise FalseClaim(f"weight_next of dtype {dt}")
    pw, pb, pu = (as_f64(a) for a in c.pruned())
    keep = idx.astype(int)
    if not (np.array_equal(pw, w64[keep]) and np.array_equal(pb, b64[keep])
            and np.array_equal(pu, as_f64(c.weight_next))):
        raise FalseClaim("pruned() is not the kept filters, biases and weight_next")
    if V64.ndim == 2 and tuple(c.channel_shape) != tuple(int(s) for s in channel_shape):
        raise FalseClaim(f"channel_shape {c.channel_shape} for {channel_shape}")
    hw = geometry(w64, V64, c.channel_shape, extra)
    pair = ConvPair(w64, b64, V64, act, hw)
    check_scale(c.scale, pair.reduced(V64), c.beta, "coreset.scale")
    Q = len(pair.next_terms) // V64.shape[0]
    for kind in ("uniform", "pointwise"):
        bound = cv.channel_bound(c, delta=1e-6, kind=kind, output_positions=Q,
                                 input_size=pair.D)
        check_channel_bound(bound, c, pair, seed, exact_q=True)


def _shape_value(value, base: ConvBase):
    if value == "ARRAY":
        return np.array(base.channel_shape or (1, 1))
    if value == "NPINT":
        return tuple(np.int64(s) for s in (base.channel_shape or (1, 1)))
    if value == "SWAP":
        return tuple(reversed(base.channel_shape or (1, 1)))
    return value


def channel_coreset_case(base: ConvBase, arrays: dict, args: dict, labels: list) -> Case:
    def call():
        return cv.channel_coreset(arrays["conv_weight"], arrays["conv_bias"],
                                  arrays["next_weight"], **args)

    def check(c):
        check_channel_coreset(c, arrays["conv_weight"], arrays["conv_bias"],
                              arrays["next_weight"], args.get("channel_shape"), base.extra,
                              args.get("activation", "relu"), args["beta"], base.seed)

    return Case("channel_coreset", label_of("channel_coreset", labels), call, check,
                base.label)


@st.composite
def channel_coreset_cases(draw) -> Case:
    base = draw(conv_bases())
    names = ("conv_weight", "conv_bias", "next_weight")
    arrays, labels = draw(hostile_arrays(dict(zip(names, (base.w, base.b, base.V),
                                                  strict=True)), names))
    valid = {"sample_size": 5, "beta": base.beta, "activation": base.act, "rng": base.seed}
    if base.channel_shape is not None:
        valid["channel_shape"] = base.channel_shape
    pools = {"sample_size": SIZE_HOSTILE, "distinct": SIZE_HOSTILE, "beta": BETA_HOSTILE,
             "activation": _act_pool(), "rng": RNG_HOSTILE, "max_draws": SIZE_HOSTILE,
             "channel_shape": SHAPE_HOSTILE, "padding_mode": PADDING_POOL}
    args, more = draw(scalar_args(pools, valid))
    if "channel_shape" in args:
        args["channel_shape"] = _shape_value(args["channel_shape"], base)
    if "distinct" in args and "sample_size=" not in " ".join(more):
        args.pop("sample_size")
    elif "distinct" not in args and "sample_size=" not in " ".join(more) and draw(
            st.integers(0, 3)) == 0:  # a valid distinct draw
        args.pop("sample_size")
        args["distinct"] = 1
    return channel_coreset_case(base, arrays, args, labels + more)


# ------------------------------------------------------------------ channel_bound


def _tampered_channel(c, how: str):
    """_fuzz_layer's tamperings on ``weight_next``, and two of a ChannelCoreset's own."""
    if how == "beta=nan":
        return dataclasses.replace(c, beta=math.nan)
    if how == "LayerCoreset":
        w, b, V = c.layer
        A = np.abs(as_f64(V)).reshape(as_f64(V).shape[0], as_f64(w).shape[0], -1).sum(axis=2)
        return cv.layer_coreset(as_f64(w).reshape(as_f64(w).shape[0], -1), as_f64(b), A,
                                sample_size=3, beta=1.0, rng=0)
    return _tampered(c, how, weight="weight_next")


KIND_POOL = {"'pointwise'": "pointwise", "'uniform'": "uniform", "'paper'": "paper",
             **OPTION_HOSTILE}
POSITIONS_HOSTILE = {**SIZE_HOSTILE, "1": 1, "2": 2}
INPUT_HOSTILE = {**SIZE_HOSTILE, "1": 1, "None": None}


def channel_bound_case(base: ConvBase, m, how: str, args: dict, labels: list) -> Case:
    state = {}

    def call():
        size = {"distinct": 1} if m == "distinct" else {"sample_size": m}
        c = cv.channel_coreset(base.w, base.b, base.V, **size, activation=base.act,
                               beta=base.beta, rng=base.seed, channel_shape=base.channel_shape)
        state["c"] = c
        pair = ConvPair(base.w, base.b, base.V, base.act,
                        geometry(base.w, base.V, base.channel_shape, base.extra))
        state["pair"] = pair
        Q, D = len(pair.next_terms) // base.V.shape[0], pair.D
        state["exact"] = _not_understated(args, Q, D)
        full = {"output_positions": Q, "input_size": D, **args}
        return cv.channel_bound(_tampered_channel(c, how), **full)

    def check(bound):
        if how != "none":
            raise FalseClaim(f"bound {bound.epsilon} for a tampered coreset ({how})")
        check_channel_bound(bound, state["c"], state["pair"], base.seed,
                            exact_q=state["exact"])

    return Case("channel_bound", label_of("channel_bound", labels), call, check,
                f"{base.label},m={m}")


def _not_understated(args: dict, Q: int, D: int) -> bool:
    """Whether ``Q`` and ``D`` as passed are at least the true ones (an upper bound is
    valid; a smaller one voids the statistical claim, not the deterministic cap)."""
    q, d = args.get("output_positions", Q), args.get("input_size", D)
    try:
        return (not isinstance(q, bool) and q >= Q) and (
            d is None or (not isinstance(d, bool) and d >= D))
    except TypeError:
        return False


@st.composite
def channel_bound_cases(draw) -> Case:
    base = draw(conv_bases())
    pools = {"delta": DELTA_HOSTILE, "kind": KIND_POOL, "output_positions": POSITIONS_HOSTILE,
             "input_size": INPUT_HOSTILE}
    valid = {"delta": draw(st.sampled_from([1e-6, 0.1, 1e-300])),
             "kind": draw(st.sampled_from(["pointwise", "uniform"]))}
    args, labels = draw(scalar_args(pools, valid))
    how = draw(st.sampled_from(["none", "none", "none", "nan weight_next", "sample_size=0",
                                "beta=-1", "beta=nan", "None", "tuple", "LayerCoreset"]))
    if how != "none":
        labels.append(f"coreset={how}")
    m = draw(st.sampled_from([1, 5, 40, 2**40, "distinct"]))
    return channel_bound_case(base, m, how, args, labels)


# ------------------------------------------------------------------ fold_batchnorm

BN_NAMES = ("conv_weight", "conv_bias", "weight", "bias", "running_mean", "running_var")
EPS_HOSTILE = {**SCALAR_HOSTILE, "1e308": 1e308, "np.float64": np.float64(1e-5), "0": 0}
BN_SPECIAL = ("var=-1", "var=0,eps=0", "var=5e-324,eps=0", "weight=1e300,var=1e-300,eps=0",
              "weight=1e-300,var=1e300,eps=0", "weight=0,var=0,eps=0",
              "mean=1e308,bias=-1e308")


def bn_arrays(base: ConvBase) -> dict:
    r = np.random.default_rng(base.seed ^ 0xB4)
    C = base.w.shape[0]
    return {"conv_weight": base.w, "conv_bias": base.b, "weight": 0.5 + r.random(C),
            "bias": 0.3 * r.standard_normal(C), "running_mean": 0.2 * r.standard_normal(C),
            "running_var": 0.5 + r.random(C)}


def _special_bn(arrays: dict, eps, how: str):
    a = {k: (np.array(v, dtype=np.float64) if isinstance(v, np.ndarray) else v)
         for k, v in arrays.items()}
    if how == "var=-1":
        a["running_var"][0] = -1.0
    elif how in ("var=0,eps=0", "var=5e-324,eps=0", "weight=0,var=0,eps=0"):
        a["running_var"][0] = 5e-324 if how.startswith("var=5") else 0.0
        if how.startswith("weight=0"):
            a["weight"][0] = 0.0
        eps = 0.0
    elif how in ("weight=1e300,var=1e-300,eps=0", "weight=1e-300,var=1e300,eps=0"):
        big = how.startswith("weight=1e300")
        a["weight"][0], a["running_var"][0], eps = (1e300, 1e-300, 0.0) if big else (
            1e-300, 1e300, 0.0)
        w0 = a["conv_weight"][0]  # filter 0 of magnitude 1e-300 (1e300): w s is ~1e150
        top = np.max(np.abs(w0))
        a["conv_weight"][0] = (w0 / top if top > 0 else w0 + 1.0) * (1e-300 if big else 1e300)
        if big:  # conv_bias = running_mean: the bias folds to bias, not to (b - mean) 1e450
            a["running_mean"][0] = 0.0 if a["conv_bias"] is None else a["conv_bias"][0]
    elif how == "mean=1e308,bias=-1e308":
        a["running_mean"][0], a["bias"][0] = 1e308, -1e308
    return a, eps


def _mp_or_special(v) -> mpmath.mpf:
    v = float(v)
    return mpmath.mpf(v) if math.isfinite(v) else mpmath.mpf(str(v))


def check_fold(out, arrays: dict, eps) -> None:
    """Each entry against ``s = weight / sqrt(var + eps)``, ``w s`` and
    ``(b - mean) s + bias`` in mpmath (NaN and inf propagate as IEEE does)."""
    if not (isinstance(out, tuple) and len(out) == 2):
        raise FalseClaim(f"returned {type(out).__name__}, not a pair")
    w = as_f64(arrays["conv_weight"])
    C = w.shape[0]
    b = np.zeros(C) if arrays["conv_bias"] is None else as_f64(arrays["conv_bias"])
    g, beta_, mean, var = (as_f64(arrays[n]) for n in BN_NAMES[2:])
    got_w, got_b = as_f64(out[0]), as_f64(out[1])
    if got_w.shape != w.shape or got_b.shape != (C,):
        raise FalseClaim(f"shapes {got_w.shape}, {got_b.shape} for {w.shape}")
    torch_in = hasattr(arrays["conv_weight"], "detach")
    if hasattr(out[0], "detach") != torch_in:
        raise FalseClaim(f"returned {type(out[0]).__name__} for {type(arrays['conv_weight'])}")
    # the arithmetic is done in the coarsest dtype given (float32 arrays with a float64
    # eps may come back as float64 arrays carrying float32 rounding)
    given = [arrays[n] for n in BN_NAMES if arrays[n] is not None]
    e = max(eps_of(out[0], out[1]), eps_of(*given))
    tiny = mpmath.mpf(2) ** (-149 if e > 2.0**-52 else -1074)
    top = mpmath.mpf(float(np.finfo(np.float32 if eps_of(out[0], out[1]) > 2.0**-52
                                    else np.float64).max))
    with mpmath.workdps(DPS):
        for c in range(C):
            v = _mp_or_special(var[c]) + _mp(eps)
            if mpmath.isnan(v) or v < 0:
                s = mpmath.mpf("nan")
            elif v == 0:
                gc = _mp_or_special(g[c])
                s = mpmath.mpf("nan") if gc == 0 or mpmath.isnan(gc) else (
                    mpmath.inf if gc > 0 else -mpmath.inf)
            else:
                s = _mp_or_special(g[c]) / mpmath.sqrt(v)
            wc = [_mp_or_special(x) for x in w[c].ravel()]
            exact_w = [x * s for x in wc]
            bm = _mp_or_special(b[c]) - _mp_or_special(mean[c])
            exact_b = bm * s + _mp_or_special(beta_[c])
            mag_b = (abs(_mp_or_special(b[c])) + abs(_mp_or_special(mean[c]))) * abs(s) + abs(
                _mp_or_special(beta_[c]))
            tol_b = 8 * e * mag_b + (abs(_mp_or_special(b[c])) + abs(_mp_or_special(mean[c]))
                                     + 4) * tiny
            for j, (x, gx) in enumerate(zip(exact_w, got_w[c].ravel(), strict=True)):
                tol = 8 * e * abs(x) + (abs(wc[j]) + 4) * tiny
                _compare(gx, x, tol, top, f"folded weight[{c}, {j}]")
            _compare(got_b[c], exact_b, tol_b, top, f"folded bias[{c}]")


def _compare(got: float, exact, tol, top, what: str) -> None:
    if mpmath.isnan(exact) or mpmath.isnan(tol):
        if got == got:
            raise FalseClaim(f"{what} = {got!r}, exact value undefined (NaN)")
        return
    if mpmath.isinf(exact):
        if got != to_float(exact):
            raise FalseClaim(f"{what} = {got!r}, exact value {exact}")
        return
    if abs(exact) >= top * (1 - 16 * mpmath.mpf(2) ** -23):  # may round to inf
        if math.isinf(got) and (got > 0) == (exact > 0):
            return
        if abs(exact) > top * (1 + mpmath.mpf(2) ** -23):
            raise FalseClaim(f"{what} = {got!r}, exact {to_float(exact):.6g} overflows")
    if not (got == got) or abs(_mp_or_special(got) - exact) > tol:
        raise FalseClaim(f"{what} = {got!r}, exact {to_float(exact):.17g}")


def fold_batchnorm_case(base: ConvBase, arrays: dict, eps, labels: list) -> Case:
    def call():
        return cv.fold_batchnorm(arrays["conv_weight"], arrays["conv_bias"],
                                 **{n: arrays[n] for n in BN_NAMES[2:]}, eps=eps)

    def check(out):
        check_fold(out, arrays, eps)

    return Case("fold_batchnorm", label_of("fold_batchnorm", labels), call, check,
                f"{base.label}, eps={eps!r}")


@st.composite
def fold_batchnorm_cases(draw) -> Case:
    base = draw(conv_bases())
    arrays = bn_arrays(base)
    r = _rng(draw)
    labels = []
    eps = _choice(r, [1e-5, 0.0, 1e-3])
    if r.random() < 0.25:
        arrays["conv_bias"] = None
        labels.append("conv_bias=None")
    if r.random() < 0.3:
        how = _choice(r, BN_SPECIAL)
        arrays, eps = _special_bn(arrays, eps, how)
        labels.append(how)
    if r.random() < 0.5:
        for name in r.permutation(list(BN_NAMES))[: int(r.integers(1, 3))]:
            how = _choice(r, ARRAY_HOSTILE)
            if arrays[str(name)] is not None:
                arrays[str(name)] = hostile_array(arrays[str(name)], how, r)
                labels.append(f"{name}={how}")
    if r.random() < 0.25:
        key = _choice(r, sorted(EPS_HOSTILE))
        eps = EPS_HOSTILE[key]
        labels.append(f"eps={key}")
    if r.random() < 0.2:  # every array float32, or every one a torch tensor
        cast = _choice(r, ["float32", "torch64"])
        arrays = {k: v if v is None or not isinstance(v, np.ndarray) else
                  hostile_array(v, cast, r) for k, v in arrays.items()}
        labels.append(f"all={cast}")
    return fold_batchnorm_case(base, arrays, eps, labels)


# ------------------------------------------------------------------ conv_operator_bound

STRIDE_VALID = {"1": 1, "2": 2, "3": 3, "(1, 2)": (1, 2), "(2, 1)": (2, 1), "[2, 3]": [2, 3],
                "np.int64(2)": np.int64(2)}
STRIDE_HOSTILE = {"0": 0, "-1": -1, "1.5": 1.5, "nan": math.nan, "'2'": "2", "None": None,
                  "(1, 2, 3)": (1, 2, 3), "True": True, "(0, 1)": (0, 1), "(1, -2)": (1, -2),
                  "2.0": 2.0}
STRIDE_POOL = {**STRIDE_VALID, **STRIDE_HOSTILE, "10**400": 10**400}
DILATION_POOL = {**STRIDE_VALID, **STRIDE_HOSTILE}


def _pair_of(v) -> tuple | None:
    """A stride or dilation as two positive ints (bool and numpy integers as ints, as
    Python does), or None."""
    items = (v, v) if isinstance(v, numbers.Integral) else tuple(v) if isinstance(
        v, tuple | list) else ()
    if len(items) != 2 or not all(isinstance(s, numbers.Integral) and s >= 1 for s in items):
        return None
    return tuple(int(s) for s in items)


def conv_matrix_norm(w: np.ndarray, stride: tuple, dilation: tuple) -> mpmath.mpf:
    """The spectral norm of the conv (zero padding ``dilation (k - 1)``, two windows
    per dimension beyond the first) as an explicit matrix, scaled by a power of 2."""
    C, c_in, kh, kw = w.shape
    if w.size == 0 or not np.any(w):
        return mpmath.mpf(0)
    e = int(np.frexp(np.max(np.abs(w)))[1])
    ws = np.ldexp(w, -e) if not np.iscomplexobj(w) else w * 2.0**-e
    (sh, sw), (dh, dw) = (min(s, d * (k - 1) + 1) for s, d, k in
                          zip(stride, dilation, (kh, kw), strict=True)), dilation
    ph, pw = dh * (kh - 1), dw * (kw - 1)
    H, W = dh * (kh - 1) + 1 + 2 * sh, dw * (kw - 1) + 1 + 2 * sw
    ho, wo = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    M = np.zeros((C * ho * wo, c_in * H * W), dtype=ws.dtype)
    rows = np.arange(C) * ho * wo
    cols = np.arange(c_in) * H * W
    for oy in range(ho):
        for ox in range(wo):
            for u in range(kh):
                for v in range(kw):
                    iy, ix = oy * sh + u * dh - ph, ox * sw + v * dw - pw
                    if 0 <= iy < H and 0 <= ix < W:
                        M[np.ix_(rows + oy * wo + ox, cols + iy * W + ix)] += ws[:, :, u, v]
    return mpmath.ldexp(mpmath.mpf(float(np.linalg.norm(M, 2))), e)


def check_operator_bound(result, weight, stride, dilation) -> None:
    s, d = _pair_of(stride), _pair_of(dilation)
    if s is None or d is None:
        raise FalseClaim(f"accepted stride={stride!r}, dilation={dilation!r}: "
                         f"returned {result!r}")
    if not isinstance(result, float) or result != result or result < 0:
        raise FalseClaim(f"returned {result!r}")
    if hasattr(weight, "detach"):
        w = as_f64(weight)
    else:
        w = np.asarray(weight)
        w = w.astype(np.complex128) if np.iscomplexobj(w) else w.astype(np.float64)
    if np.any(np.isnan(w)):
        raise FalseClaim(f"returned {result!r} for NaN weights (no operator norm)")
    if np.any(np.isinf(w)):
        if result != math.inf:
            raise FalseClaim(f"returned {result!r} for infinite weights")
        return
    true = conv_matrix_norm(w, s, d)
    if mpmath.mpf(result) < true * (1 - mpmath.mpf(1e-12)):
        raise FalseClaim(f"bound {result!r} below the true operator norm "
                         f"{to_float(true):.17g}")


def operator_bound_case(w_label: str, weight, stride, dilation, labels: list) -> Case:
    def call():
        return cv.conv_operator_bound(weight, stride=stride, dilation=dilation)

    def check(result):
        check_operator_bound(result, weight, stride, dilation)

    return Case("conv_operator_bound", label_of("conv_operator_bound", labels), call, check,
                f"{w_label}, stride={stride!r}, dilation={dilation!r}")


@st.composite
def conv_operator_bound_cases(draw) -> Case:
    r = _rng(draw)
    seed, mag = int(r.integers(2**32)), _choice(r, MAGS)
    g = np.random.default_rng(seed)
    shape = (int(g.integers(1, 4)), int(g.integers(1, 3)), int(g.integers(1, 4)),
             int(g.integers(1, 4)))
    w = g.standard_normal(shape) * mag
    w_label = f"default_rng({seed}).standard_normal({shape}) * {mag:g}"
    labels = []
    stride, dilation = _choice(r, list(STRIDE_VALID.values())), 1
    if r.random() < 0.4:
        dilation = _choice(r, list(STRIDE_VALID.values()))
    weight = w
    if r.random() < 0.5:
        how = _choice(r, [*ARRAY_HOSTILE, "complex_imag", "no_kernel"])
        if how == "complex_imag":
            weight = w * 1j
        elif how == "no_kernel":
            weight = w[:, :, :0]
        else:
            weight = hostile_array(w, how, r)
        labels.append(f"weight={how}")
    if r.random() < 0.3:
        key = _choice(r, sorted(STRIDE_POOL))
        stride = STRIDE_POOL[key]
        labels.append(f"stride={key}")
    if r.random() < 0.2:
        key = _choice(r, sorted(DILATION_POOL))
        dilation = DILATION_POOL[key]
        labels.append(f"dilation={key}")
    return operator_bound_case(w_label, weight, stride, dilation, labels)


# ------------------------------------------------------------------ conv models


def _nn():
    import torch.nn as nn

    return nn


def conv_model(seed: int, act: str, mag: float, dtype: str, *, bn: bool, pool: str | None,
               second: bool, hidden: bool):
    """``Unflatten, Conv2d [BN] phi [pool] [Conv2d phi] Flatten [Linear phi] Linear``."""
    import torch

    nn = _nn()
    r = np.random.default_rng(seed)
    c_in, H = int(r.integers(1, 3)), int(r.integers(3, 6))
    c1, k1 = int(r.integers(1, 5)), int(r.integers(1, 4))
    stride, padding = int(r.integers(1, 3)), int(r.integers(0, 2))
    layers = [nn.Unflatten(1, (c_in, H, H)), nn.Conv2d(c_in, c1, k1, stride=stride,
                                                       padding=padding)]
    side = (H + 2 * padding - k1) // stride + 1
    if bn:
        layers.append(nn.BatchNorm2d(c1))
    layers.append(getattr(nn, _ACT_MODULES[act])())
    if pool and side >= 2:
        layers.append(nn.MaxPool2d(2) if pool == "max" else nn.AvgPool2d(2))
        side //= 2
    if second and side >= 1:
        k2 = int(r.integers(1, min(side, 2) + 1))
        layers += [nn.Conv2d(c1, int(r.integers(1, 4)), k2), getattr(nn, _ACT_MODULES[act])()]
    layers.append(nn.Flatten())
    model = nn.Sequential(*layers).double().eval()
    with torch.no_grad():
        flat = model(torch.zeros(1, c_in * H * H, dtype=torch.float64)).shape[1]
    out = int(r.integers(1, 3))
    if hidden:
        h = int(r.integers(1, 5))
        layers += [nn.Linear(flat, h), getattr(nn, _ACT_MODULES[act])(), nn.Linear(h, out)]
    else:
        layers.append(nn.Linear(flat, out))
    model = nn.Sequential(*layers).double()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                m.weight.copy_(torch.from_numpy(r.standard_normal(tuple(m.weight.shape)) * mag))
                m.bias.copy_(torch.from_numpy(np.abs(r.standard_normal(m.bias.shape[0]))))
            elif isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(torch.from_numpy(0.5 + r.random(n)))
                m.bias.copy_(torch.from_numpy(0.3 * r.standard_normal(n)))
                m.running_mean.copy_(torch.from_numpy(0.2 * r.standard_normal(n)))
                m.running_var.copy_(torch.from_numpy(0.5 + r.random(n)))
    model = model.eval()
    return (model if dtype == "float64" else model.float()), c_in * H * H


@st.composite
def _conv_models(draw):
    r = _rng(draw)
    seed = int(r.integers(2**32))
    spec = {"act": _choice(r, ACTS), "mag": _choice(r, [1.0, 1.0, 0.5, 2.0**-20]),
            "dtype": _choice(r, ["float64", "float32"]), "bn": bool(r.random() < 0.3),
            "pool": _choice(r, [None, "max", "avg"]), "second": bool(r.random() < 0.4),
            "hidden": bool(r.random() < 0.4)}
    model, d = conv_model(seed, **spec)
    args = ", ".join(f"{k}={v!r}" for k, v in spec.items())
    return seed, model, d, f"conv_model({seed}, {args})"


CONV_HOSTILE = ("half", "bfloat16", "nan_weight", "meta", "not_module", "lambda", "empty",
                "groups2", "reflect", "bn_after_act", "no_unflatten", "mlp", "train",
                "pool_first", "inf_bn_var", "neg_bn_var")


def hostile_conv(model, how: str):
    """A conv model made hostile (some are valid: 'train', 'no_unflatten' with
    input_shape, a negative BatchNorm variance for select_channels)."""
    import torch

    nn = _nn()
    layers = list(model)
    conv = layers[1]
    if how == "half":
        return model.half()
    if how == "bfloat16":
        return model.bfloat16()
    if how == "meta":
        return model.to("meta")
    if how == "not_module":
        return layers
    if how == "lambda":
        return lambda x: x
    if how == "empty":
        return nn.Sequential()
    if how == "nan_weight":
        with torch.no_grad():
            conv.weight.view(-1)[0] = math.nan
        return model
    if how in ("groups2", "reflect"):
        new = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size,
                        stride=conv.stride, padding=max(1, conv.padding[0]) if how == "reflect"
                        else conv.padding, groups=1, padding_mode="reflect" if how == "reflect"
                        else "zeros")
        if how == "groups2":
            new = nn.Conv2d(2, 2, 1, groups=2)
            return nn.Sequential(nn.Unflatten(1, (2, 2, 2)), new, nn.ReLU(), nn.Flatten(),
                                 nn.Linear(8, 1)).to(conv.weight.dtype)
        layers[1] = new.to(conv.weight.dtype)
        return nn.Sequential(*layers)
    if how == "bn_after_act":
        at = next(i for i, m in enumerate(layers) if type(m).__name__ in _ACT_MODULES.values())
        layers.insert(at + 1, nn.BatchNorm2d(conv.out_channels).to(conv.weight.dtype).eval())
        return nn.Sequential(*layers)
    if how == "pool_first":
        layers.insert(2, nn.MaxPool2d(1))
        return nn.Sequential(*layers)
    if how == "no_unflatten":
        return nn.Sequential(*layers[1:])
    if how == "mlp":
        return nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)).double()
    if how == "train":
        return model.train()
    if how in ("inf_bn_var", "neg_bn_var"):
        layers.insert(2, nn.BatchNorm2d(conv.out_channels).to(conv.weight.dtype).eval())
        with torch.no_grad():
            layers[2].running_var.fill_(math.inf if how == "inf_bn_var" else -1.0)
        return nn.Sequential(*layers)
    return model


def _affine(model) -> list:
    nn = _nn()
    return [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]


def _forward64(model, x):
    import torch

    m = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        return m(x).numpy()


# ------------------------------------------------------------------ select_channels

INPUT_SHAPE_POOL = {"(1, 1, 1)": (1, 1, 1), "(1, -1, 4)": (1, -1, 4), "None": None,
                    "(1, 10**400, 4)": (1, 10**400, 4), "(1, 2**40, 2**40)": (1, 2**40, 2**40),
                    "(2.0, 4, 4)": (2.0, 4, 4), "'chw'": "chw", "(1, 4)": (1, 4),
                    "(9, 9, 9)": (9, 9, 9)}
KEPT_HOW = ("valid", "valid", "valid", "duplicates", "floats", "out of range", "negative",
            "empty", "None", "too few", "bools", "2d", "str", "generator", "all None")
SCALE_HOW = ("none", "none", "valid floats", "valid arrays", "nan", "inf", "wrong shape",
             "bare float", "1e308", "complex", "str", "too many", "None entry")


def _kept_and_scale(widths: list, rng: np.random.Generator, kept_how: str, scale_how: str):
    kept = [np.sort(rng.choice(w, size=int(rng.integers(1, w + 1)), replace=False))
            if rng.random() < 0.8 else None for w in widths]
    sizes = [w if k is None else k.size for k, w in zip(kept, widths, strict=True)]
    kept = {"duplicates": lambda: [np.zeros(3, dtype=int) for _ in widths],
            "floats": lambda: [np.arange(w) + 0.5 for w in widths],
            "out of range": lambda: [np.array([w]) for w in widths],
            "negative": lambda: [np.array([-1]) for _ in widths],
            "empty": lambda: [np.array([], dtype=int) for _ in widths],
            "None": lambda: None, "too few": lambda: kept[:-1],
            "bools": lambda: [np.ones(w, dtype=bool) for w in widths],
            "2d": lambda: [np.arange(w)[None, :] for w in widths],
            "str": lambda: "all", "generator": lambda: (k for k in kept),
            "all None": lambda: [None] * len(widths)}.get(kept_how, lambda: kept)()
    if kept_how == "all None":
        sizes = list(widths)
    scale = {"none": None,
             "valid floats": [float(rng.uniform(0.5, 2)) for _ in widths],
             "valid arrays": [rng.uniform(0.5, 2, s) for s in sizes],
             "nan": [math.nan for _ in widths], "inf": [math.inf for _ in widths],
             "wrong shape": [np.ones(s + 1) for s in sizes], "bare float": 2.0,
             "1e308": [1e308 for _ in widths], "complex": [1j for _ in widths],
             "str": "scale", "too many": [1.0] * (len(widths) + 1),
             "None entry": [None for _ in widths]}[scale_how]
    return kept, scale


def check_selected(out, model, before, kept, scale, x) -> None:
    """The smaller model against the original with the dropped channels' blocks of
    the next layer zeroed and the kept ones scaled (float64 forward passes)."""
    import torch

    nn = _nn()
    if not isinstance(out, nn.Sequential):
        raise FalseClaim(f"returned {type(out).__name__}")
    if not _same_state(model, before):
        raise FalseClaim("select_channels modified the original model")
    ref = copy.deepcopy(model).double().eval()
    units = _affine(ref)
    small = _affine(out)
    for layer, (idx, unit, nxt) in enumerate(zip(kept, units[:-1], units[1:], strict=True)):
        C = unit.weight.shape[0]
        idx = np.arange(C) if idx is None else np.asarray(idx, dtype=int)
        if small[layer].weight.shape[0] != idx.size:
            raise FalseClaim(f"unit {layer} has {small[layer].weight.shape[0]} channels, "
                             f"kept {idx.size}")
        factor = np.ones(idx.size) if scale is None or scale[layer] is None else \
            np.broadcast_to(np.asarray(scale[layer], dtype=np.float64), (idx.size,))
        with torch.no_grad():
            W = nxt.weight.view(nxt.weight.shape[0], C, -1)
            mult = torch.zeros(C, dtype=torch.float64)
            mult[torch.from_numpy(idx)] = torch.from_numpy(np.array(factor))
            W.mul_(mult[None, :, None])
    for p in out.parameters():
        if not torch.all(torch.isfinite(p)):
            raise FalseClaim("the returned model has non-finite weights (finite model, "
                             "finite scale)")
    a, b = _forward64(ref, x), _forward64(out, x)
    float32 = any(p.dtype != torch.float64 for p in model.parameters())
    rtol = 2.0**-18 if float32 else 2.0**-40
    if not np.all((np.abs(a - b) <= rtol * (1 + np.abs(a))) | (np.isnan(a) & np.isnan(b))):
        raise FalseClaim(f"selected model gives {b.ravel()[:4]}, expected {a.ravel()[:4]}")


def select_channels_case(seed: int, model, d: int, ctx: str, model_how: str, kept_how: str,
                         scale_how: str, shape_key: str | None) -> Case:
    import torch

    nn = _nn()
    labels = [f"model={model_how}"] if model_how != "valid" else []
    labels += [f"kept={kept_how}"] if kept_how != "valid" else []
    labels += [f"scale={scale_how}"] if scale_how != "none" else []
    hostile = hostile_conv(model, model_how) if model_how != "valid" else model
    rng = np.random.default_rng(seed)
    widths = [m.weight.shape[0] for m in _affine(hostile)][:-1] if isinstance(
        hostile, nn.Sequential) else [2]
    widths = widths or [2]
    kept, scale = _kept_and_scale(widths, rng, kept_how, scale_how)
    first = model[0]
    shape = tuple(first.unflattened_size)
    opts = {}
    if shape_key is not None:
        labels.append(f"input_shape={shape_key}")
        opts["input_shape"] = INPUT_SHAPE_POOL.get(shape_key, shape)
    elif model_how == "no_unflatten":
        opts["input_shape"] = shape  # the model's own input: valid
    before = _state(hostile) if hasattr(hostile, "state_dict") else None
    given = opts.get("input_shape")
    if model_how == "no_unflatten":  # any image shape the layers accept is valid
        valid_shape = isinstance(given, tuple) and len(given) == 3 and all(
            isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 64 for v in given)
        x = torch.from_numpy(rng.standard_normal((4, *given))) if valid_shape else None
    else:
        valid_shape = given in (None, shape)
        x = torch.from_numpy(rng.standard_normal((4, d)))

    def check(out):
        accepted = {"valid", "train", "no_unflatten", "neg_bn_var"}
        if model_how not in accepted or kept_how not in ("valid", "all None") or (
                scale_how not in ("none", "valid floats", "valid arrays", "None entry", "1e308")
                or not valid_shape):
            raise FalseClaim(f"select_channels accepted {', '.join(labels)}")
        check_selected(out, hostile, before, kept, scale, x)

    return Case("select_channels", label_of("select_channels", labels),
                lambda: cv.select_channels(hostile, kept, scale=scale, **opts), check,
                f"{ctx}, {model_how!r}, {kept_how!r}, {scale_how!r}, {shape_key!r}")


@st.composite
def select_channels_cases(draw) -> Case:
    seed, model, d, ctx = draw(_conv_models())
    r = _rng(draw)
    model_how = _choice(r, CONV_HOSTILE) if r.random() < 0.2 else "valid"
    kept_how = _choice(r, KEPT_HOW) if r.random() < 0.3 else "valid"
    scale_how = _choice(r, SCALE_HOW) if r.random() < 0.3 else _choice(
        r, ["none", "valid floats", "valid arrays"])
    shape_key = None
    if r.random() < 0.15:  # input_shape, mostly on a model without its Unflatten
        shape_key = _choice(r, [*INPUT_SHAPE_POOL, "own"])
        model_how = "no_unflatten" if r.random() < 0.7 else model_how
    return select_channels_case(seed, model, d, ctx, model_how, kept_how, scale_how, shape_key)


# ------------------------------------------------------------------ certified_network

CN_TIME = 0.1
DRAWS_POOL = {"0": 0, "-1": -1, "1.5": 1.5, "10**400": 10**400, "True": True, "1001": 1001,
              "nan": math.nan, "'2'": "2", "None": None, "np.int8(2)": np.int8(2)}
CN_TIME_POOL = {k: v for k, v in TIME_HOSTILE.items() if k not in ("1e308", "10**400", "2**63")}
CERT_POOL = {"'CERT'": "CERT", "'MISSING'": "MISSING", "'DIR'": "DIR", "5": 5}
OPTION_POOL = {"bogus=1": {"bogus": 1}, "keep and epsilon": {"epsilon": 0.5},
               "kind='paper'": {"kind": "paper"}, "order='x'": {"order": "x"},
               "keep=0": {"keep": 0}, "delta=1": {"delta": 1.0}}
_CN_FOLDER: list[Path] = []


def _cn_folder() -> Path:
    if not _CN_FOLDER:
        _CN_FOLDER.append(Path(tempfile.mkdtemp(prefix="fuzz_cnet_")))
    return _CN_FOLDER[0]


def check_certified_network(out, model, before, args: dict, options: dict, d: int,
                            seed: int) -> None:
    import torch

    if not isinstance(out, cv.CertifiedNetwork):
        raise FalseClaim(f"returned {type(out).__name__}")
    if not _same_state(model, before):
        raise FalseClaim("certified_network modified the original model")
    draws = int(args["draws"])
    check_choice(out, draws)
    pruned = out.pruned.model
    if isinstance(args.get("rng"), int):  # the kept draw is the chosen child's pruning
        child = np.random.default_rng(args["rng"]).spawn(draws)[out.chosen]
        again = cv.prune_network(model, beta=args["beta"], rng=child, **options).model
        x = torch.from_numpy(np.random.default_rng(seed).standard_normal((8, d)))
        if not np.array_equal(_forward64(again, x), _forward64(pruned, x)):
            raise FalseClaim("the kept pruning is not the chosen child's prune_network")
    beta = float(args["beta"])
    if isinstance(model[0], _nn().Linear):  # an MLP: the mpmath re-evaluation
        check_worst_case(out.worst_case, model, pruned, beta, None, seed)
    else:  # a conv net: float64 forward passes at sampled inputs of the ball
        wx = as_f64(out.worst_case.x)
        if wx.shape != (d,) or not np.linalg.norm(wx) <= beta * (1 + 1e-9):
            raise FalseClaim(f"worst_case.x of shape {wx.shape}, norm "
                             f"{np.linalg.norm(wx):.9g}, outside the ball of radius {beta}")
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((64, d))
        x *= beta * (1 - 1e-12) * (rng.random((64, 1)) ** (1 / d)) / np.linalg.norm(
            x, axis=1, keepdims=True)
        x[:32] /= np.linalg.norm(x[:32], axis=1, keepdims=True) / (beta * (1 - 1e-12))
        xt = torch.from_numpy(np.vstack([np.zeros((1, d)), x, wx[None]]))
        f, g = _forward64(model, xt), _forward64(pruned, xt)
        seen = np.abs(f - g).max(axis=1)
        allowed = out.worst_case.upper_bound * (1 + 1e-7) + 2.0**-40 * (
            np.abs(f) + np.abs(g)).max(axis=1)
        if np.any(seen > allowed):
            raise FalseClaim(f"a sampled input reaches {seen.max():.9g} > upper_bound "
                             f"{out.worst_case.upper_bound}")
    if args.get("certificate") is not None:
        if out.certificate != Path(args["certificate"]) or not out.certificate.is_file():
            raise FalseClaim(f"certificate {out.certificate} for {args['certificate']}")
        from coreset_verify.certificate import check

        got = check(out.certificate, model, pruned, beta=beta)
        if not got.upper_bound >= out.worst_case.error:
            raise FalseClaim(f"the certificate proves {got.upper_bound} < error "
                             f"{out.worst_case.error}")


def certified_network_case(seed: int, model, d: int, ctx: str, args: dict, options: dict,
                           labels: list) -> Case:
    args = with_places(args, _cn_folder(), f"net{seed}.npz")
    before = _state(model) if hasattr(model, "state_dict") else None
    named = [*args, *options, "options", "model"]

    def call():
        cert = args.get("certificate")
        if isinstance(cert, Path) and cert.is_file():
            cert.unlink()
        try:
            return cv.certified_network(model, **args, **options)
        except CoresetVerifyError as exc:
            text = str(exc)
            if not any(n in text for n in ("certified_network", "prune_network",
                                           "worst_case", *named)):
                raise FalseClaim(f"{type(exc).__name__} names neither the function nor "
                                 f"an argument: {text[:200]}") from None
            raise

    invalid = [x for x in labels if x.startswith("option=") and x != "option=kind='paper'"]

    def check(out):
        if invalid:
            raise FalseClaim(f"certified_network accepted {', '.join(invalid)}")
        check_certified_network(out, model, before, args, options, d, seed)

    return Case("certified_network", label_of("certified_network", labels), call, check,
                f"{ctx}, {args}, {options}")


@st.composite
def certified_network_cases(draw) -> Case:
    r = _rng(draw)
    hostile = r.random() < 0.5  # half the cases: a valid call (tiny MLP or conv net)
    if not hostile and r.random() < 0.5:
        seed, act = int(r.integers(2**32)), _choice(r, ACTS)
        d, widths = int(r.integers(1, 4)), (int(r.integers(1, 6)), int(r.integers(1, 5)),
                                            int(r.integers(1, 3)))
        model, labels = net_model(np.random.default_rng(seed), act, d, widths, 1.0,
                                  "float64"), []
        ctx = f"net_model(default_rng({seed}), {act!r}, {d}, {widths}, 1, 'float64')"
    elif hostile and r.random() < 0.5:
        seed, _act, d, model, labels, ctx = draw(_networks())
    else:
        seed, model, d, ctx = draw(_conv_models())
        labels = []
    valid = {"draws": int(r.integers(1, 3)), "time_limit": CN_TIME,
             "beta": _choice(r, [1.0, 0.5, 2.0]), "rng": seed}
    options = {"keep": _choice(r, [0.5, 1.0, 0.25]),
               "order": _choice(r, ["bottom-up", "top-down"]), "delta": 1e-6}
    pools = {"draws": DRAWS_POOL, "time_limit": CN_TIME_POOL, "beta": BETA_HOSTILE,
             "rng": RNG_HOSTILE, "certificate": CERT_POOL,
             "progress": {"3": 3, "'print'": "print"}}
    args, more = draw(scalar_args(pools, valid)) if hostile else (dict(valid), [])
    if hostile and r.random() < 0.3:
        key = _choice(r, sorted(OPTION_POOL))
        options = {**options, **OPTION_POOL[key]}
        more.append(f"option={key}")
    elif r.random() < 0.25:
        args["certificate"] = "CERT"  # valid: a file in an existing folder
    return certified_network_case(seed, model, d, ctx, args, options, labels + more)


# ------------------------------------------------------------------ known findings


def _op_repro(weight, label: str, stride=1, dilation=1) -> Case:
    return operator_bound_case(f"weight={_short(weight)}", weight, stride, dilation, [label])


def _short(a) -> str:
    a = np.asarray(a) if not isinstance(a, str) else a
    if isinstance(a, str) or a.size == 0:
        return repr(a)
    return f"np.full({a.shape}, {a.ravel()[0]!r})"


_BASE = (1, "relu", 1.0, 1.0, 1.0, 1.0, False)


def _bound_repro(m, how: str, args: dict, labels: list) -> Case:
    return channel_bound_case(make_conv(*_BASE), m, how, {"delta": 1e-6, "kind": "uniform",
                                                          **args}, labels)


def _fold_repro(how: str | None, eps, labels: list) -> Case:
    base = make_conv(*_BASE)
    arrays = bn_arrays(base)
    if how is not None:
        arrays, eps = _special_bn(arrays, eps, how)
    return fold_batchnorm_case(base, arrays, eps, labels)


def _select_repro(model_how: str, scale_how: str, shape_key: str | None = None) -> Case:
    spec = {"act": "relu", "mag": 1.0, "dtype": "float64", "bn": False, "pool": None,
            "second": False, "hidden": False}
    model, d = conv_model(3, **spec)
    return select_channels_case(3, model, d, f"conv_model(3, {spec})", model_how, "valid",
                                scale_how, shape_key)


KNOWN: dict = {}
#: Findings fixed since they were found: each reproducer must now pass its oracle.
FIXED = {
    "conv_operator_bound": (
        # np.linalg.norm's Frobenius cap squared the entries: 0.0 for 1e-300 (true 9e-300),
        # below the norm for 1e-160
        lambda: _op_repro(np.full((1, 1, 3, 3), 1e-300), "weight=x1e-300"),
        lambda: _op_repro(np.full((1, 1, 3, 3), 1e-160), "weight=x1e-160"),
        # inf weights gave a NaN bound, NaN weights a raw LinAlgError
        lambda: _op_repro(np.full((1, 1, 3, 3), math.inf), "weight=inf"),
        lambda: _op_repro(np.full((1, 1, 3, 3), math.nan), "weight=nan"),
        # unchecked weights escaped raw (a string, an empty filter bank) ...
        lambda: _op_repro("W", "weight=string"),
        lambda: _op_repro(np.ones((0, 1, 3, 3)), "weight=empty"),
        # ... and unchecked strides: 0 divided by zero, -1 gave a number
        lambda: _op_repro(np.ones((1, 1, 3, 3)), "stride=0", stride=0),
        lambda: _op_repro(np.ones((1, 1, 3, 3)), "stride=-1", stride=-1),
        lambda: _op_repro(np.ones((1, 1, 3, 3)), "dilation=(1, -2)", dilation=(1, -2)),
        # complex weights lost their imaginary part: 0.0 for 1j (true norm 9)
        lambda: _op_repro(np.full((1, 1, 3, 3), 1j), "weight=complex_imag"),
    ),
    "channel_bound": (
        # the ChannelCoreset record was not checked: beta=-1 gave a number, a NaN in
        # weight_next was ignored, sample_size=0 gave inf (distinct: math domain error)
        lambda: _bound_repro(5, "beta=-1", {}, ["coreset=beta=-1"]),
        lambda: _bound_repro(5, "nan weight_next", {}, ["coreset=nan weight_next"]),
        lambda: _bound_repro("distinct", "sample_size=0", {}, ["coreset=sample_size=0"]),
        # input_size=10**400 overflowed in the net's dimension
        lambda: _bound_repro(5, "none", {"input_size": 10**400}, ["input_size=10**400"]),
    ),
    "fold_batchnorm": (
        # s = weight / sqrt(var + eps) overflowed (underflowed) before the product
        lambda: _fold_repro("weight=1e300,var=1e-300,eps=0", 0.0,
                            ["weight=1e300,var=1e-300,eps=0"]),
        lambda: _fold_repro("weight=1e-300,var=1e300,eps=0", 0.0,
                            ["weight=1e-300,var=1e300,eps=0"]),
        # eps=10**400 escaped as a raw OverflowError
        lambda: _fold_repro(None, 10**400, ["eps=10**400"]),
    ),
    "select_channels": (
        # a meta model was copied out raw; scale=2.0 escaped list()'s TypeError;
        # input shapes too large (or too small) failed in torch; scale=[1e308] gave inf
        lambda: _select_repro("meta", "none"),
        lambda: _select_repro("valid", "bare float"),
        lambda: _select_repro("no_unflatten", "none", "(1, 2**40, 2**40)"),
        lambda: _select_repro("no_unflatten", "none", "(1, 10**400, 4)"),
        lambda: _select_repro("no_unflatten", "none", "(1, 1, 1)"),
        lambda: _select_repro("valid", "1e308"),
    ),
}
