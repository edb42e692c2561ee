"""Fuzz cases of :func:`coreset_verify.certificate.check` and :func:`certified_coreset`.

``certificate.check``: genuine certificates, written by ``worst_case(method="bab",
certificate=...)`` on tiny one-hidden-layer (leaky) ReLU pairs and cached for the
session, are made hostile (bytes of the ``.npz``, bytes of one ``.npy`` member,
arrays doctored, or the question changed: other models, domain, scale, path). The
checker must raise ``CertificateError`` (``InvalidArgumentError`` only where an
argument is bad) or return a claim that holds: no input of the domain, among the
maximisers of every activation pattern (cvxpy, Clarabel) and dense samples, has an
objective ``max_i |f_i - g_i| / scale_i`` above it, the objective re-evaluated in
mpmath (exact for these sizes), so no tolerance is needed.

``certified_coreset``: small layers and hostile arguments; a refusal must name the
function or the argument, and a result must keep the draw with the smallest proved
bound, a bound that no sampled input of the ball beats (``T_i`` as the unit).
"""

from __future__ import annotations

import copy
import dataclasses
import io
import itertools
import math
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mpmath
import numpy as np
from _fuzz_cases import (
    ACTS,
    BETA_HOSTILE,
    RNG_HOSTILE,
    SIZE_HOSTILE,
    TIME_HOSTILE,
    Base,
    Case,
    FalseClaim,
    _choice,
    _rng,
    _rng_value,
    as_f64,
    check_layer_bound,
    check_scale,
    eps_of,
    label_of,
    make_base,
)
from _fuzz_models import MODEL_HOSTILE, hostile_model
from _fuzz_reference import LayerPair
from hypothesis import strategies as st

import coreset_verify as cv
from coreset_verify import certificate as certificate_module
from coreset_verify.errors import CertificateError, CoresetVerifyError, InvalidArgumentError

CHECK = "certificate.check"
#: (seed, d, n_f, n_g, k, shared, slope, domain, scale, magnitudes of the first and the
#: second layer): union layers of <= 6 neurons. The last two put ``C = (V_f - V_g) /
#: scale`` near float64's smallest subnormal while ``|z|`` reaches 1e30 or so.
PAIRS = (
    (0, 2, 4, 2, 2, True, 0.0, "ball", None, 1.0, 1.0),
    (1, 3, 3, 3, 1, False, 0.0, "box", None, 1.0, 1.0),
    (2, 2, 5, 3, 2, True, 0.1, "both", (0.5, 2.0), 1.0, 1.0),
    (3, 1, 3, 2, 2, False, 0.0, "both", None, 1.0, 1.0),
    (4, 3, 4, 2, 1, True, 0.1, "ball", (1.5,), 1.0, 1.0),
    (5, 2, 4, 2, 2, False, 0.01, "box", (2.0, 0.25), 1.0, 1.0),
    (6, 1, 2, 1, 1, True, 0.0, "ball", (1.5e308,), 1e30, 1e-15),
    (7, 2, 3, 2, 1, True, 0.1, "box", (1e308,), 1e28, 1e-16),
)
_GENUINE: dict[int, Any] = {}
_POINTS: dict[bytes, np.ndarray] = {}  # question -> maximisers of every activation pattern
_FOLDER: list[Path] = []


def _folder() -> Path:
    if not _FOLDER:
        _FOLDER.append(Path(tempfile.mkdtemp(prefix="fuzz_cert_")))
    return _FOLDER[0]


# ------------------------------------------------------------------ the pairs


def _module(W, b, V, o, slope):
    import torch
    import torch.nn as nn

    act = nn.ReLU() if slope == 0 else nn.LeakyReLU(slope)
    model = nn.Sequential(nn.Linear(W.shape[1], len(b)), act, nn.Linear(len(b), len(o)))
    model = model.double()
    with torch.no_grad():
        for layer, (w, c) in zip((model[0], model[2]), ((W, b), (V, o)), strict=True):
            layer.weight.copy_(torch.from_numpy(np.array(w, dtype=np.float64)))
            layer.bias.copy_(torch.from_numpy(np.array(c, dtype=np.float64)))
    return model


def make_pair(seed: int, d: int, n_f: int, n_g: int, k: int, shared: bool, slope: float,
              m_in: float = 1.0, m_out: float = 1.0):
    """``(f, g)``; with ``shared`` g keeps ``n_g`` rows of f, re-weighted (a coreset)."""
    r = np.random.default_rng(seed)
    W, b = m_in * r.standard_normal((n_f, d)), 0.5 * m_in * r.standard_normal(n_f)
    V, o = m_out * r.standard_normal((k, n_f)), 0.1 * m_out * r.standard_normal(k)
    if shared:
        keep = np.sort(r.choice(n_f, n_g, replace=False))
        g = (W[keep], b[keep], V[:, keep] * r.uniform(0.5, 2.0, (k, n_g)), o)
    else:
        g = (m_in * r.standard_normal((n_g, d)), 0.5 * m_in * r.standard_normal(n_g),
             m_out * r.standard_normal((k, n_g)), 0.1 * m_out * r.standard_normal(k))
    return _module(W, b, V, o, slope), _module(*g, slope)


@dataclass
class Dom:
    """A domain: the ball ``||x|| <= beta`` (beta None: none), the box, or both."""

    beta: float | None
    lower: np.ndarray | None
    upper: np.ndarray | None

    def kwargs(self) -> dict:
        return {"beta": self.beta, "lower": self.lower, "upper": self.upper}

    def key(self) -> bytes:
        box = b"" if self.lower is None else self.lower.tobytes() + self.upper.tobytes()
        return repr(self.beta).encode() + b"|" + box


def spec_domain(kind: str, d: int) -> Dom:
    lower, upper = -np.linspace(1.0, 0.6, d), np.linspace(0.8, 1.2, d)
    return {"ball": Dom(1.5, None, None), "box": Dom(None, lower, upper),
            "both": Dom(1.2, lower, upper)}[kind]


def file_domain(c: dict) -> Dom:
    beta = float(c["beta"])
    box = len(c["lower"]) > 0
    return Dom(None if math.isnan(beta) else beta, c["lower"] if box else None,
               c["upper"] if box else None)


@dataclass
class Genuine:
    f: Any
    g: Any
    dom: Dom
    scale: np.ndarray
    arrays: dict
    data: bytes
    result: Any
    tight: float  # the checker's own recomputed bound: the least claim it accepts


def genuine(i: int) -> Genuine:
    """The certificate of ``PAIRS[i]`` (built once a session) and the oracle's check
    that it is no weaker than the search (its maximisers reach the search's error)."""
    if i in _GENUINE:
        return _GENUINE[i]
    seed, d, n_f, n_g, k, shared, slope, kind, scale, m_in, m_out = PAIRS[i]
    f, g = make_pair(seed, d, n_f, n_g, k, shared, slope, m_in, m_out)
    dom, path = spec_domain(kind, d), _folder() / f"genuine{i}.npz"
    scale = np.ones(k) if scale is None else np.array(scale)
    res = cv.worst_case(f, g, **dom.kwargs(), scale=scale, method="bab", time_limit=5, rng=0,
                        certificate=path)
    data = path.read_bytes()
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        arrays = {key: z[key].copy() for key in z.files}
    nets = read_net(f), read_net(g)
    pts = pattern_points(*nets, dom, scale)
    best = max((_exact(*nets, x, scale) for x in _inside(dom, pts) if _exactly_inside(dom, x)),
               default=-math.inf)
    if not best >= res.error * (1 - 1e-6) - 1e-12:
        raise FalseClaim(f"oracle weaker than the search on PAIRS[{i}]: {float(best)!r} < "
                         f"error {res.error!r}")
    try:  # the oracle is alive: a claim just below the search's error is caught
        check_claim(res.error * (1 - 1e-6), *nets, dom, scale)
    except FalseClaim:
        pass
    else:
        raise FalseClaim(f"oracle missed a planted claim below the error on PAIRS[{i}]")
    tight = certificate_module.check(path, f, g).max_leaf_bound
    _GENUINE[i] = Genuine(f, g, dom, scale, arrays, data, res, tight)
    return _GENUINE[i]


# ------------------------------------------------------------------ the oracle


@dataclass
class Net:
    """A ``Linear -> (leaky) ReLU -> Linear`` network in float64."""

    W: np.ndarray
    b: np.ndarray
    slope: float
    V: np.ndarray
    o: np.ndarray


def _leaves(model) -> list:
    import torch.nn as nn

    if isinstance(model, nn.Sequential):
        return [leaf for m in model for leaf in _leaves(m)]
    if isinstance(model, (nn.Identity, nn.Flatten, nn.Dropout)):
        return []
    return [model]


def read_net(model) -> Net | None:
    """The network, read here apart from the package; None if it is not one."""
    import torch.nn as nn

    if not isinstance(model, nn.Sequential):
        return None
    leaves = _leaves(model)
    if len(leaves) != 3 or not (isinstance(leaves[0], nn.Linear) and isinstance(
            leaves[2], nn.Linear) and type(leaves[1]) in (nn.ReLU, nn.LeakyReLU)):
        return None
    slope = getattr(leaves[1], "negative_slope", 0.0)
    try:
        arrays = [None if p is None else p.detach().cpu().double().numpy() for p in (
            leaves[0].weight, leaves[0].bias, leaves[2].weight, leaves[2].bias)]
    except Exception:  # meta tensors and the like: no function to evaluate
        return None
    W, b, V, o = arrays
    b = np.zeros(W.shape[0]) if b is None else b
    o = np.zeros(V.shape[0]) if o is None else o
    if not (0 <= slope < 1 and V.shape[1] == W.shape[0]) or not all(
            np.all(np.isfinite(a)) for a in (W, b, V, o)):
        return None
    return Net(W, b, float(slope), V, o)


def _values(f: Net, g: Net, X: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The objective at the rows of ``X``, in float64 (a ranking only)."""
    def out(net):
        z = X @ net.W.T + net.b
        return np.where(z >= 0, z, net.slope * z) @ net.V.T + net.o

    with np.errstate(all="ignore"):
        v = np.max(np.abs(out(f) - out(g)) / scale, axis=1)
    return np.where(np.isnan(v), np.inf, v)


def _exact(f: Net, g: Net, x: np.ndarray, scale: np.ndarray) -> mpmath.mpf:
    """The objective at ``x`` in mpmath, 80 digits: exact for these float inputs."""
    with mpmath.workdps(80):
        xs = [mpmath.mpf(float(v)) for v in x]

        def out(net):
            h = []
            for row, b in zip(net.W, net.b, strict=True):
                z = mpmath.fsum(mpmath.mpf(float(w)) * v for w, v in zip(row, xs, strict=True))
                z += mpmath.mpf(float(b))
                h.append(z if z >= 0 else mpmath.mpf(net.slope) * z)
            return [mpmath.fsum(mpmath.mpf(float(c)) * hj for c, hj in zip(row, h, strict=True))
                    + mpmath.mpf(float(o)) for row, o in zip(net.V, net.o, strict=True)]

        return max(abs(a - b) / mpmath.mpf(float(s))
                   for a, b, s in zip(out(f), out(g), scale, strict=True))


def _inside(dom: Dom, X: np.ndarray) -> np.ndarray:
    """The rows of ``X`` moved into the domain (clipped to the box, then shrunk into
    the ball), those that are then in it in float64 (see ``_exactly_inside``)."""
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    with np.errstate(all="ignore"):
        if dom.lower is not None:
            X = np.clip(X, dom.lower, dom.upper)
        if dom.beta is not None:
            norm = np.linalg.norm(X, axis=1)
            X = X * np.where(norm > dom.beta, dom.beta / norm * (1 - 2.0**-40), 1.0)[:, None]
        ok = np.all(np.isfinite(X), axis=1)
        if dom.lower is not None:
            ok &= np.all((X >= dom.lower) & (X <= dom.upper), axis=1)
    return X[ok]


def _exactly_inside(dom: Dom, x: np.ndarray) -> bool:
    """``x`` is in the box (float comparisons are exact) and the ball (mpmath)."""
    if dom.lower is not None and not (np.all(x >= dom.lower) and np.all(x <= dom.upper)):
        return False
    if dom.beta is None:
        return True
    with mpmath.workdps(80):
        return mpmath.fsum(mpmath.mpf(float(v)) ** 2 for v in x) <= mpmath.mpf(dom.beta) ** 2


def _samples(dom: Dom, d: int, rng: np.random.Generator, count: int = 1500) -> np.ndarray:
    """Dense random inputs of the domain's ball and box (moved in by ``_inside``)."""
    pts = [np.zeros((1, d))]
    with np.errstate(all="ignore"):
        if dom.beta is not None:
            u = rng.standard_normal((count, d))
            u /= np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-300)
            r = np.where(np.arange(count) % 2, 1.0, rng.random(count) ** (1 / d))[:, None]
            pts.append(dom.beta * u * r)
        if dom.lower is not None:
            lo, hi = dom.lower, dom.upper
            pts.append(lo + rng.random((count, d)) * (hi - lo))
            pts.append(np.where(rng.random((64, d)) < 0.5, lo, hi))
    return np.vstack(pts)


def _union(f: Net, g: Net) -> tuple:
    """Distinct first-layer rows of both networks, and each network's output weight
    on them: ``f - g`` is a function of the union layer's activation pattern."""
    rows = np.hstack([np.vstack([f.W, g.W]), np.concatenate([f.b, g.b])[:, None]])
    uniq, inverse = np.unique(rows, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    m, nf = len(uniq), len(f.b)
    Cf, Cg = np.zeros((len(f.o), m)), np.zeros((len(g.o), m))
    np.add.at(Cf.T, inverse[:nf], f.V.T)
    np.add.at(Cg.T, inverse[nf:], g.V.T)
    return uniq[:, :-1], uniq[:, -1], Cf, Cg


_PROBLEMS: dict = {}


def _problem(m: int, d: int, ball: bool, box: bool):
    import cvxpy as cp

    key = (m, d, ball, box)
    if key not in _PROBLEMS:
        x, A, c, obj = cp.Variable(d), cp.Parameter((m, d)), cp.Parameter(m), cp.Parameter(d)
        beta, lo, hi = cp.Parameter(nonneg=True), cp.Parameter(d), cp.Parameter(d)
        cons = [A @ x + c >= 0] + ([cp.norm(x) <= beta] if ball else []) + (
            [x >= lo, x <= hi] if box else [])
        _PROBLEMS[key] = (cp.Problem(cp.Maximize(obj @ x), cons), x, A, c, obj, beta, lo, hi)
    return _PROBLEMS[key]


def pattern_points(f: Net, g: Net, dom: Dom, scale: np.ndarray) -> np.ndarray:
    """A maximiser of every specification on every activation pattern of the union
    layer that meets the domain (cvxpy + Clarabel; depth first, dead patterns pruned).
    Cached per question; empty beyond 8 union neurons or when the solver fails."""
    key = b"".join(a.tobytes() for n in (f, g) for a in (n.W, n.b, n.V, n.o,
                                                          np.array(n.slope)))
    key += dom.key() + scale.tobytes()
    if key in _POINTS:
        return _POINTS[key]
    U, ub, Cf, Cg = _union(f, g)
    m, d = U.shape
    pts: list = []
    if m <= 8 and f.W.shape[1] == g.W.shape[1] and len(f.o) == len(g.o):
        pts = _enumerate(U, ub, Cf, Cg, f.slope, g.slope, dom)
    _POINTS[key] = np.array(pts).reshape(-1, d)
    return _POINTS[key]


def _enumerate(U, ub, Cf, Cg, af, ag, dom: Dom) -> list:
    m, d = U.shape
    prob, x, A, c, obj, beta, lo, hi = _problem(m, d, dom.beta is not None,
                                                dom.lower is not None)
    beta.value = 0.0 if dom.beta is None else dom.beta
    lo.value = np.zeros(d) if dom.lower is None else dom.lower
    hi.value = np.zeros(d) if dom.lower is None else dom.upper

    norm = np.maximum(np.max(np.abs(U), axis=1), 1e-300)  # rows scaled to ~1: same regions

    def solve(signs, direction):
        top = np.max(np.abs(direction), initial=0.0)
        A.value, c.value = signs[:, None] * U / norm[:, None], signs * ub / norm
        obj.value = direction / top if top > 0 else direction
        try:
            prob.solve(solver="CLARABEL")
        except Exception:  # a numerically hostile domain: no point (none is claimed)
            return None
        ok = prob.status in ("optimal", "optimal_inaccurate") and x.value is not None
        return x.value.copy() if ok else None

    pts, stack = [], [np.zeros(m)]
    while stack:
        signs = stack.pop()
        depth = int(np.count_nonzero(signs))
        if depth and solve(signs, np.zeros(d)) is None:
            continue
        if depth < m:
            stack += [np.where(np.arange(m) == depth, s, signs) for s in (1.0, -1.0)]
            continue
        on = signs > 0
        lin = (Cf * np.where(on, 1.0, af) - Cg * np.where(on, 1.0, ag)) @ U
        for row, s in itertools.product(lin, (1.0, -1.0)):
            p = solve(signs, s * row)
            if p is not None:
                pts.append(p)
    return pts


def check_claim(claim: float, f: Net, g: Net, dom: Dom, scale: np.ndarray,
                seed: int = 0, extra=()) -> None:
    """No input of the domain has an objective above ``claim`` (exact arithmetic)."""
    if not (claim == claim):
        raise FalseClaim("a NaN claim was accepted")
    d = f.W.shape[1]
    X = np.vstack([pattern_points(f, g, dom, scale),
                   _samples(dom, d, np.random.default_rng(seed)),
                   *(np.reshape(e, (-1, d)) for e in extra)])
    X = _inside(dom, X)
    if not len(X):
        return  # the domain is empty (a doctored box outside the ball): any claim holds
    values = _values(f, g, X, scale)
    top = [j for j in np.argsort(-values)[:12] if _exactly_inside(dom, X[j])][:4]
    for j in top:
        v = _exact(f, g, X[j], scale)
        if v > mpmath.mpf(float(claim)):
            raise FalseClaim(f"claim {claim!r} accepted, but at x = {X[j].tolist()} the "
                             f"objective is {mpmath.nstr(v, 17)}")


# ------------------------------------------------------------------ hostile certificates


def _npz(arrays: dict, compressed: bool = True) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asanyarray(a), allow_pickle=False)
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _flip(data: bytes, r: np.random.Generator, start: int = 0, stop: int | None = None,
          flips: int | None = None) -> bytes:
    out = bytearray(data)
    stop = len(out) if stop is None else stop
    for _ in range(flips or int(r.integers(1, 9))):
        if stop > start:
            out[int(r.integers(start, stop))] ^= 1 << int(r.integers(8))
    return bytes(out)


BYTES = ("flip bits", "truncate", "append", "prepend", "zero run", "empty", "swap halves",
         "uncompressed flip")


def bytes_change(gen: Genuine, how: str, r: np.random.Generator) -> bytes:
    data = gen.data
    if how == "flip bits":
        return _flip(data, r)
    if how == "truncate":
        return data[: int(r.integers(0, len(data)))]
    if how == "append":
        return data + r.bytes(int(r.integers(1, 64)))
    if how == "prepend":
        return r.bytes(int(r.integers(1, 64))) + data
    if how == "zero run":
        i = int(r.integers(len(data)))
        return data[:i] + bytes(min(32, len(data) - i)) + data[i + 32:]
    if how == "empty":
        return b""
    if how == "swap halves":
        return data[len(data) // 2:] + data[: len(data) // 2]
    return _flip(_npz(gen.arrays, compressed=False), r)  # "uncompressed flip": CRC fails


NPY = ("header bits", "data bits", "huge shape", "object dtype", "fortran", "bad magic",
       "raw member", "big-endian", "float32 descr", "extra member", "no .npy suffix",
       "nested npz")


def npy_change(gen: Genuine, how: str, key: str, r: np.random.Generator) -> bytes:
    """One member rewritten with a correct CRC: the hostile bytes reach numpy."""
    members = {f"{k}.npy": _npy(v) for k, v in gen.arrays.items()}
    name, raw = f"{key}.npy", members[f"{key}.npy"]
    head = raw.index(b"\n") + 1  # the .npy header ends with a newline
    a = gen.arrays[key]
    header = {"huge shape": "{'descr': '<f8', 'fortran_order': False, 'shape': (10**9,), }",
              "object dtype": f"{{'descr': '|O', 'fortran_order': False, 'shape': {a.shape}, }}",
              "fortran": f"{{'descr': '{a.dtype.str}', 'fortran_order': True, 'shape': "
                         f"{a.shape[::-1]}, }}",
              "float32 descr": f"{{'descr': '<f4', 'fortran_order': False, 'shape': "
                               f"{a.shape}, }}"}
    if how == "header bits":
        members[name] = _flip(raw, r, 0, head)
    elif how == "data bits":
        members[name] = _flip(raw, r, head, flips=int(r.integers(1, 4)))
    elif how in header:
        text = header[how].replace("10**9", str(10**9)).encode("latin1")
        members[name] = b"\x93NUMPY\x01\x00" + len(text + b"\n").to_bytes(2, "little") + \
            text + b"\n" + raw[head:]
    elif how == "bad magic":
        members[name] = b"\x93NUMPX" + raw[6:]
    elif how == "raw member":
        members[key] = members.pop(name)[head:]
    elif how == "big-endian":
        members[name] = _npy(a.astype(a.dtype.newbyteorder(">")) if a.dtype.kind != "U" else a)
    elif how == "extra member":
        members["junk.npy"] = _npy(np.arange(3))
    elif how == "no .npy suffix":
        members[key] = members.pop(name)
    else:  # "nested npz": the member is itself an archive
        members[name] = _npz({key: a})
    return _zip(members)


def _leaf_axis(key: str) -> bool:
    return key in ("leaf_output", "leaf_sign", "alpha", "box_p", "leaf_bound")


DTYPES = ("float32", "int32", "int64", "float64", "bool", "complex128", "uint64", "float16",
          "<U5", "object")
VALUES = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "1e308": 1e308, "-1": -1,
          "0": 0, "-0.0": -0.0, "5e-324": 5e-324, "2**62": 2**62, "-2**63": -(2**63),
          "1e-300": 1e-300, "+1": 1}
ARRAY = ("dtype", "shape", "value", "drop key", "add key", "rename key", "permute leaves",
         "claim at the recomputed bound",
         "swap rows of one key", "split side", "split neuron", "split offsets", "drop leaf",
         "duplicate leaf", "leaf output", "leaf sign", "mu", "alpha", "box_p", "claim",
         "lo hi", "beta", "box", "scale", "index", "format", "leaf_bound", "no lo hi",
         "reverse splits")


def _at(a: np.ndarray, r: np.random.Generator) -> tuple | None:
    return None if a.size == 0 else np.unravel_index(int(r.integers(a.size)), a.shape)


def _set(a: np.ndarray, value, r: np.random.Generator) -> np.ndarray:
    """``a`` with one random entry set to ``value`` (the dtype kept where it can be)."""
    out = np.array(a, dtype=np.float64 if isinstance(value, float) and a.dtype.kind == "i"
                   else a.dtype, copy=True)
    at = _at(out, r)
    if at is None:
        return np.array([value])
    try:
        out[at] = value
    except (OverflowError, ValueError):
        out = out.astype(np.float64)
        out[at] = float(value)
    return out


def _drop_leaf(c: dict, leaf: int) -> dict:
    off = c["split_offsets"]
    keep = np.ones(len(c["split_neuron"]), dtype=bool)
    keep[off[leaf]:off[leaf + 1]] = False
    out = dict(c)
    for key in ("split_neuron", "split_side", "split_mu"):
        out[key] = c[key][keep]
    for key in ("leaf_output", "leaf_sign", "alpha", "box_p", "leaf_bound"):
        out[key] = np.delete(c[key], leaf, axis=0)
    sizes = np.delete(np.diff(off), leaf)
    out["split_offsets"] = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return out


def _leaves_in(c: dict, order: np.ndarray) -> dict:
    """The leaves in ``order`` (a permutation, or a repeat), splits carried along."""
    off = c["split_offsets"]
    spans = [np.arange(off[q], off[q + 1]) for q in order]
    take = np.concatenate(spans).astype(int) if spans else np.zeros(0, int)
    out = dict(c)
    for key in ("split_neuron", "split_side", "split_mu"):
        out[key] = c[key][take]
    for key in ("leaf_output", "leaf_sign", "alpha", "box_p", "leaf_bound"):
        out[key] = c[key][order]
    out["split_offsets"] = np.concatenate([[0], np.cumsum([len(s) for s in spans])]).astype(
        np.int64)
    return out


def array_change(gen: Genuine, how: str, key: str, r: np.random.Generator) -> dict:
    """The genuine arrays with one doctoring ``how`` (on ``key`` where it names one)."""
    c = {k: v.copy() for k, v in gen.arrays.items()}
    L, S = len(c["leaf_output"]), len(c["split_neuron"])
    leaf = int(r.integers(L))
    split = int(r.integers(S)) if S else None
    factor = float(_choice(r, [0.0, 0.5, 2.0, 1e3, -1.0, 1 + 1e-9, 1 - 1e-9, 1e-300]))
    if how in NUMBERS:
        return _numbers_change(c, gen, how, r, leaf, factor)
    return _structure_change(c, how, key, r, leaf, split)


def _structure_change(c: dict, how: str, key: str, r: np.random.Generator, leaf: int,
                      split: int | None) -> dict:
    """Dtypes, shapes, single values, keys, the order and the tree of the leaves."""
    L, S = len(c["leaf_output"]), len(c["split_neuron"])
    if how == "dtype":
        kind = str(_choice(r, DTYPES))
        try:
            c[key] = c[key].astype(kind if kind != "object" else object)
        except (TypeError, ValueError):  # a string that is no number
            c[key] = c[key].astype(object)
    elif how == "shape":
        a = c[key]
        c[key] = _choice(r, [lambda: np.append(a, a.ravel()[:1]), lambda: a.ravel()[:-1],
                             lambda: a[None], lambda: a.reshape(-1),
                             lambda: np.asarray(a.ravel()[0] if a.size else 0),
                             lambda: a.reshape(-1)[:0],
                             lambda: a.T])()
    elif how == "value":
        c[key] = _set(c[key], VALUES[_choice(r, sorted(VALUES))], r)
    elif how == "drop key":
        c.pop(key)
    elif how == "add key":
        c[_choice(r, ["junk", "claim2", "lo_", "beta "])] = np.zeros(1)
    elif how == "rename key":
        c[key.upper()] = c.pop(key)
    elif how == "permute leaves":  # valid: the leaves in another order
        c = _leaves_in(c, r.permutation(L))
    elif how == "swap rows of one key":
        c[key] = c[key][r.permutation(L)]
    elif how == "reverse splits":
        c["split_neuron"], c["split_side"] = c["split_neuron"][::-1], c["split_side"][::-1]
    elif how in ("split side", "split neuron", "split offsets") and S:
        target = {"split side": "split_side", "split neuron": "split_neuron",
                  "split offsets": "split_offsets"}[how]
        at = split if how != "split offsets" else int(r.integers(1, L + 1))
        c[target][at] = {"split side": -c[target][at], "split neuron": (
            c[target][at] + int(r.integers(1, 4))) % len(c["lo"]),
            "split offsets": c[target][at] + _choice(r, [-1, 1])}[how]
    elif how == "drop leaf":
        c = _drop_leaf(c, leaf)
    elif how == "duplicate leaf":
        c = _leaves_in(c, np.append(np.arange(L), leaf))
    elif how == "leaf output":
        c["leaf_output"][leaf] = (c["leaf_output"][leaf] + 1) % len(c["scale"])
    elif how == "leaf sign" or (how.startswith("split") and not S):
        c["leaf_sign"][leaf] *= -1
    return c


#: the doctorings of multipliers, claim, ranges, domain, scales, indices and format
NUMBERS = ("mu", "alpha", "box_p", "claim", "claim at the recomputed bound", "lo hi", "beta",
           "box", "scale", "index", "format", "leaf_bound", "no lo hi")


def _numbers_change(c: dict, gen: Genuine, how: str, r: np.random.Generator, leaf: int,
                    factor: float) -> dict:
    """Multipliers, the claim, ``lo``/``hi``, the domain, scales, indices, format."""
    S = len(c["split_neuron"])
    if how == "mu":
        c["split_mu"] = c["split_mu"] * factor if S else c["split_mu"]
    elif how == "alpha":
        value = _choice(r, ["slope", 1.0, 0.5, -0.1, 1.5, "scaled", 0.0])
        if value == "scaled":
            c["alpha"] = c["alpha"] * factor
        else:
            c["alpha"][leaf] = 0.1 if value == "slope" else value
    elif how == "box_p":
        c["box_p"] = c["box_p"] * factor + (r.standard_normal(c["box_p"].shape)
                                            if factor == 0 else 0)
    elif how == "claim":
        claim, top = float(c["claim"]), float(np.max(c["leaf_bound"]))
        c["claim"] = np.array(_choice(r, [claim * (1 - 1e-12), claim * (1 - 1e-6),
                                          claim * (1 - 1e-3), top, claim * 2, claim + 1, 0.0,
                                          -claim, 1e308, np.nextafter(claim, -np.inf)]))
    elif how == "claim at the recomputed bound":  # the least claim the checker accepts
        c["claim"] = np.array(gen.tight)
    elif how == "lo hi":
        lo, hi = c["lo"], c["hi"]
        mid, half = (lo + hi) / 2, (hi - lo) / 2
        c["lo"], c["hi"] = _choice(r, [(mid - half * factor, mid + half * factor), (hi, lo),
                                       (lo - 1.0, hi + 1.0), (lo * 0 - np.inf, hi * 0 + np.inf),
                                       (lo + 1e-9 * half, hi), (lo, lo)])
    elif how == "beta":
        c["beta"] = np.array(float(c["beta"]) * factor if factor > 0 else _choice(
            r, [math.nan, 0.0, -1.0, math.inf, 1e300]))
    elif how == "box":
        lower, upper = c["lower"], c["upper"]
        c["lower"], c["upper"] = _choice(r, [(lower * 2, upper * 2), (lower / 2, upper / 2),
                                             (upper, lower), (lower[:0], upper[:0]),
                                             (lower + 0.3, upper + 0.3), (lower * factor,
                                                                          upper * factor)])
    elif how == "scale":
        c["scale"] = c["scale"] * factor
    elif how == "index":
        target = _choice(r, ["index_f", "index_g"])
        c[target] = _choice(r, [lambda: c[target][::-1].copy(), lambda: _set(c[target], -1, r),
                                lambda: _set(c[target], 99, r),
                                lambda: c["index_g" if target == "index_f" else "index_f"],
                                lambda: np.zeros_like(c[target])])()
    elif how == "format":
        c["format"] = _choice(r, [np.array("coreset-verify/one-hidden-layer/2"),
                                  np.array(b"coreset-verify/one-hidden-layer/1"),
                                  np.array(["coreset-verify/one-hidden-layer/1"]), np.array(1.0)])
    elif how == "leaf_bound":
        c["leaf_bound"] = _set(c["leaf_bound"], _choice(r, [math.nan, -math.inf, math.inf,
                                                            -5.0]), r)
    elif how == "no lo hi":  # valid: the checker then uses its own ranges
        c.pop("lo")
        c.pop("hi")
    return c


# ------------------------------------------------------------------ hostile questions


def _copy_net(model, change):
    import torch

    out = copy.deepcopy(model)
    with torch.no_grad():
        change(out)
    return out


def question_change(gen: Genuine, how: str, r: np.random.Generator) -> tuple:
    """``(f, g, keyword arguments, path override)`` of a changed question."""
    kw = {**gen.dom.kwargs(), "scale": gen.scale} if r.random() < 0.5 else {}
    if how in ("beta asked", "box asked", "lower only", "scale asked", "path"):
        return gen.f, gen.g, *_argument_change(gen, how, r, kw)
    return *_model_change(gen, how, r), kw, None


def _model_change(gen: Genuine, how: str, r: np.random.Generator) -> tuple:
    """``(f, g)``: other models, or the same ones in another form."""
    import torch.nn as nn

    f, g = gen.f, gen.g
    if how == "swap models":
        f, g = g, f
    elif how == "other pair":
        other = genuine(int(r.integers(len(PAIRS))))
        f, g = (other.f, g) if r.random() < 0.5 else (f, other.g)
    elif how == "output weight":
        s = float(_choice(r, [1 + 1e-9, 2.0, 0.5, -1.0, 1 - 2**-52]))
        f = _copy_net(f, lambda m: m[2].weight.mul_(s))
    elif how == "output bias":
        g = _copy_net(g, lambda m: m[2].bias.add_(float(_choice(r, [1e-9, 1.0, -0.3]))))
    elif how == "row ulp":
        def nudge(m):
            w = m[0].weight.detach().numpy()
            w[0, 0] = np.nextafter(w[0, 0], np.inf)
        f = _copy_net(f, nudge)
    elif how == "float32":
        f, g = copy.deepcopy(f).float(), copy.deepcopy(g).float()
    elif how == "half":
        f = copy.deepcopy(f).half()
    elif how == "hostile model":
        which = _choice(r, ["f", "g"])
        model = hostile_model(copy.deepcopy(f if which == "f" else g), _choice(r, MODEL_HOSTILE))
        f, g = (model, g) if which == "f" else (f, model)
    elif how == "slope":
        act = _choice(r, [nn.ReLU(), nn.LeakyReLU(0.2), nn.LeakyReLU(0.1), nn.LeakyReLU(0.01)])
        f = nn.Sequential(copy.deepcopy(f[0]), act, copy.deepcopy(f[2]))
    elif how == "pass-through layers":  # valid: Identity and Dropout change nothing
        f = nn.Sequential(nn.Identity(), nn.Sequential(f[0], nn.Dropout(0.5)), f[1], f[2])
    return f, g


def _argument_change(gen: Genuine, how: str, r: np.random.Generator, kw: dict) -> tuple:
    """``(keyword arguments, path override)``: another question asked, or a bad one."""
    import torch

    f, path = gen.f, None
    if how == "beta asked":
        kw = {**gen.dom.kwargs(), "beta": _rng_value(BETA_HOSTILE[_choice(
            r, sorted(BETA_HOSTILE))]) if r.random() < 0.5 else (gen.dom.beta or 1.0) * (
                1 + 1e-12)}
    elif how == "box asked":
        d = f[0].in_features
        box = _choice(r, [(-np.ones(d), np.ones(d)), (np.full(d, np.nan), np.ones(d)),
                          (np.ones(d), -np.ones(d)), (-np.ones(d + 1), np.ones(d + 1)),
                          ("a", "b"), (-1.0, 1.0), (np.zeros(d), np.zeros(d))])
        kw = {**gen.dom.kwargs(), "lower": box[0], "upper": box[1]}
    elif how == "lower only":
        kw = {"beta": gen.dom.beta, "lower": -np.ones(f[0].in_features)}
    elif how == "scale asked":
        k = len(gen.scale)
        kw["scale"] = _choice(r, [np.ones(k), gen.scale * 2, np.full(k, np.nan), -gen.scale,
                                  np.ones(k + 1), "s", torch.from_numpy(gen.scale.copy()),
                                  gen.scale.tolist(), gen.scale.astype(np.float32), 0.0])
    elif how == "path":
        path = _choice(r, [None, 3, b"c.npz", "DIR", "MISSING", "PATH", 1.5, ["c.npz"]])
    return kw, path


QUESTION = ("swap models", "other pair", "output weight", "output bias", "row ulp", "float32",
            "half", "hostile model", "slope", "pass-through layers", "beta asked", "box asked",
            "lower only", "scale asked", "path")
#: changes that may give a bad argument (InvalidArgumentError is documented for them)
ARGUMENTS = ("hostile model", "half", "float32", "beta asked", "box asked", "lower only",
             "scale asked", "path")
#: families and their weights: most cases doctor arrays, where the arithmetic is
FAMILIES = {"valid": 1, "bytes": 2, "npy": 3, "array": 9, "question": 5}


def _read(path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        return {key: z[key] for key in z.files}


def certificate_case(spec: int, family: str, how: str, key: str, seed: int) -> Case:
    """One call of ``certificate.check`` (rebuilt by this call from its context)."""
    context = f"certificate_case({spec}, {family!r}, {how!r}, {key!r}, {seed})"
    tag = how + (f" {key}" if family in ("npy", "array") and key else "")
    label = label_of(CHECK, [] if family == "valid" else [f"{family}: {tag}"])
    try:
        gen = genuine(spec)
    except Exception as exc:  # the genuine certificate itself failed: a finding
        def fail_call(exc=exc):
            if isinstance(exc, CertificateError):
                raise FalseClaim(f"the search's own certificate is rejected: {exc}") from None
            raise exc
        return Case(CHECK, label, fail_call, context=context)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        f, g, kw, path, data = _prepare(gen, family, how, key, np.random.default_rng(seed))
    allowed = (CertificateError, InvalidArgumentError) if how in ARGUMENTS else CertificateError
    file = _folder() / "case.npz"
    where = {"DIR": _folder(), "MISSING": _folder() / "missing.npz", "PATH": file,
             None: str(file)}.get(path, path) if isinstance(path, (str, type(None))) else path
    if family == "valid":
        allowed = ()  # a genuine certificate, asked its own question, must be accepted
    return _check_case(label, context, file, data, where, f, g, kw, allowed, seed)


def _prepare(gen: Genuine, family: str, how: str, key: str, r: np.random.Generator) -> tuple:
    """``(f, g, keyword arguments, path override, file bytes)`` of one case."""
    f, g, kw, path = gen.f, gen.g, {}, None
    if family == "valid":
        kw = {**gen.dom.kwargs(), "scale": gen.scale} if r.random() < 0.5 else {}
        data = gen.data
    elif family == "bytes":
        data = bytes_change(gen, how, r)
    elif family == "npy":
        data = npy_change(gen, how, key, r)
    elif family == "array":
        data = _npz(array_change(gen, how, key, r), compressed=bool(r.random() < 0.5))
    else:
        f, g, kw, path = question_change(gen, how, r)
        data = gen.data
    return f, g, kw, path, data


def _check_case(label, context, file, data, where, f, g, kw, allowed, seed) -> Case:
    """The call of ``check`` on ``data`` written to ``file``, and its oracle."""

    def call():
        file.write_bytes(data)
        try:
            return certificate_module.check(where, f, g, **kw)
        except CoresetVerifyError as exc:
            if not allowed:
                raise FalseClaim(f"a genuine certificate is rejected: {exc}") from None
            if not isinstance(exc, allowed):
                raise FalseClaim(f"{type(exc).__name__} where only CertificateError is "
                                 f"documented: {exc}") from None
            if isinstance(exc, InvalidArgumentError) and "certificate.check" not in str(exc):
                raise FalseClaim(f"the error does not name certificate.check: {exc}") from None
            raise

    def check(out):
        _check_accepted(out, file, f, g, kw, seed)

    return Case(CHECK, label, call, check, context)


def _check_accepted(out, file: Path, f, g, kw: dict, seed: int) -> None:
    """The oracle of an accepted certificate: well-formed result, the asked question is
    the certificate's, and the claim holds over its domain."""
    if not isinstance(out, certificate_module.CertificateCheck):
        raise FalseClaim(f"returned {type(out).__name__}")
    c = _read(file)
    if out.upper_bound != float(c["claim"]) or out.leaves != len(c["leaf_output"]) or (
            out.specifications != 2 * len(c["scale"])) or not (
            out.max_leaf_bound <= out.upper_bound):
        raise FalseClaim(f"{out} does not describe the certificate (claim {c['claim']})")
    nets = read_net(f), read_net(g)
    if None in nets:
        raise FalseClaim("accepted models that are not Linear -> (leaky) ReLU -> Linear")
    dom, scale = file_domain(c), np.asarray(c["scale"], dtype=np.float64)
    asked = Dom(kw.get("beta"), kw.get("lower"), kw.get("upper"))
    if kw.get("beta") is not None or kw.get("lower") is not None:
        d = nets[0].W.shape[1]
        same = (asked.beta == dom.beta) and ((asked.lower is None) == (dom.lower is None)) and (
            asked.lower is None or (np.array_equal(np.broadcast_to(as_f64(asked.lower), (d,)),
                                                   dom.lower) and np.array_equal(
                np.broadcast_to(as_f64(asked.upper), (d,)), dom.upper)))
        if not same:
            raise FalseClaim(f"accepted for another domain: asked {asked}, certificate {dom}")
    if kw.get("scale") is not None and not np.array_equal(
            np.broadcast_to(as_f64(kw["scale"]), scale.shape), scale):
        raise FalseClaim(f"accepted for scale {kw['scale']}, certificate has {scale}")
    check_claim(out.upper_bound, *nets, dom, scale, seed)


@st.composite
def certificate_cases(draw) -> Case:
    r = _rng(draw)
    family = str(r.choice(list(FAMILIES), p=np.array(list(FAMILIES.values())) /
                          sum(FAMILIES.values())))
    how = {"valid": "genuine", "bytes": _choice(r, BYTES), "npy": _choice(r, NPY),
           "array": _choice(r, ARRAY), "question": _choice(r, QUESTION)}[family]
    key = ""
    if family in ("npy", "array") and (family == "npy" or how in (
            "dtype", "shape", "value", "drop key", "rename key", "swap rows of one key")):
        keys = sorted(genuine_keys(how))
        key = _choice(r, keys)
    return certificate_case(int(r.integers(len(PAIRS))), family, how, key,
                            int(r.integers(2**32)))


def genuine_keys(how: str) -> list:
    keys = ["format", "claim", "beta", "lower", "upper", "scale", "lo", "hi", "index_f",
            "index_g", "leaf_output", "leaf_sign", "split_offsets", "split_neuron",
            "split_side", "split_mu", "alpha", "box_p", "leaf_bound"]
    return [k for k in keys if _leaf_axis(k)] if how == "swap rows of one key" else keys


# ------------------------------------------------------------------ certified_coreset

CERTIFIED = "certified_coreset"
DRAWS_HOSTILE = {**SIZE_HOSTILE, "1001": 1001}
OPTIONS = {"split_signs": True, "reduction": "per-output", "max_draws": 10**4,
           "bogus": 1, "beta2": 1.0}


@st.composite
def certified_cases(draw) -> Case:
    r = _rng(draw)
    seed = int(r.integers(2**32))
    act = _choice(r, ["relu", "relu", "leaky_relu", "sigmoid"])
    mags = [1.0, 1.0, 1.0, 1e-5, 1e5, 2.0**-40, 1e30]  # extreme but representable too
    m_in = float(_choice(r, mags))
    base = make_base(seed, act, m_in, float(_choice(r, mags)),
                     float(_choice(r, [1.0, 0.5, 2.0])), m_in)
    valid = {"draws": int(r.integers(1, 4)), "time_limit": float(_choice(r, [0.2, 0.5])),
             "beta": base.beta, "rng": int(r.integers(100)), "activation": act}
    size = _choice(r, ["distinct", "sample_size"])
    valid[size] = int(r.integers(1, base.W_in.shape[0] + 2))
    labels = []
    if r.random() < 0.3:
        valid["certificate"] = "CERT"
        if act == "sigmoid":  # certificates are for (leaky) ReLU layers only
            labels.append("certificate=sigmoid layer")
    if r.random() < 0.5:
        # time limits of 1e308 or 2**63 s are valid and honoured: the guard's alarm would fire
        pools = {"draws": DRAWS_HOSTILE, "time_limit": {k: v for k, v in TIME_HOSTILE.items()
                                                        if k not in ("1e308", "2**63")},
                 "beta": BETA_HOSTILE, size: SIZE_HOSTILE, "rng": RNG_HOSTILE,
                 "activation": {"'tanh'": "tanh", "'silu'": "silu", "None": None, "1": 1},
                 "certificate": {"3": 3, "'missing'": "MISSING", "'dir'": "DIR", "b''": b"x"},
                 "both sizes": {"yes": True}, "progress": {"3": 3, "'print'": "print"},
                 "option": {k: k for k in OPTIONS}}
        for name in r.permutation(sorted(pools))[: int(r.integers(1, 3))]:
            pick = _choice(r, sorted(pools[str(name)]))
            labels.append(f"{name}={pick}")
            if name == "both sizes":
                valid["sample_size"] = valid["distinct"] = 3
            elif name == "option":
                valid[pick] = OPTIONS[pick]
            else:
                valid[str(name)] = _rng_value(pools[str(name)][pick])
    return _certified_case(base, valid, labels, f"{base.label}, {valid}")


def _certified_case(base: Base, args: dict, labels: list, context: str) -> Case:
    if args.get("activation") in ACTS:  # the layer the call prunes: the oracle's too
        base = dataclasses.replace(base, act=args["activation"])
    args = with_places(args, _folder(), "certified.npz")
    # a refusal must name the function or an argument given (any of them: the first
    # one checked may be a valid-looking one, e.g. distinct above the live neurons)
    named = [*args, "options"]
    sizes = [n for n in ("distinct", "sample_size") if n in args]

    def call():
        if isinstance(args.get("certificate"), Path) and args["certificate"].exists() and \
                args["certificate"].is_file():
            args["certificate"].unlink()
        try:
            return cv.certified_coreset(base.W_in, base.b_in, base.W_out, **args)
        except CoresetVerifyError as exc:
            text = str(exc)
            if "certified_coreset" not in text and not any(n in text for n in named):
                raise FalseClaim(f"{type(exc).__name__} names neither certified_coreset nor "
                                 f"{named}: {text[:200]}") from None
            if not labels and not any(n in text for n in sizes):
                raise FalseClaim(f"valid arguments refused: {type(exc).__name__}: "
                                 f"{text[:200]}") from None
            raise

    def check(out):
        check_certified(out, base, args)

    return Case(CERTIFIED, label_of(CERTIFIED, labels), call, check, context)


def with_places(args: dict, folder: Path, name: str) -> dict:
    """``args`` of a certified_* case with its placeholders filled in: the
    certificate ``"CERT"`` (``folder / name``), ``"MISSING"`` (in no folder) and
    ``"DIR"`` (a folder), and ``progress="print"`` (a callback that records)."""
    places = {"CERT": folder / name, "MISSING": folder / "no" / "c.npz", "DIR": folder}
    if isinstance(args.get("certificate"), str) and args["certificate"] in places:
        args = {**args, "certificate": places[args["certificate"]]}
    if args.get("progress") == "print":
        seen = []
        args = {**args, "progress": lambda *a: seen.append(a)}
    return args


def check_choice(out, draws: int) -> None:
    """One bracket per draw, each one, and the kept draw the least proved bound
    (``certified_coreset`` and ``certified_network`` alike)."""
    brackets = out.brackets
    if len(brackets) != draws or not 0 <= out.chosen < draws:
        raise FalseClaim(f"{len(brackets)} brackets, chosen {out.chosen}, for draws={draws}")
    uppers = [u for _, u in brackets]
    if out.chosen != int(np.argmin(uppers)) or out.worst_case.upper_bound != uppers[out.chosen]:
        raise FalseClaim(f"chose draw {out.chosen} ({out.worst_case.upper_bound}) among "
                         f"upper bounds {uppers}")
    for found, upper in brackets:
        if not found <= upper:
            raise FalseClaim(f"bracket ({found}, {upper}) is not one")


def check_certified(out, base: Base, args: dict) -> None:
    """The kept draw has the least proved bound, a bound no sampled input beats."""
    if not isinstance(out, cv.CertifiedCoreset):
        raise FalseClaim(f"returned {type(out).__name__}")
    check_choice(out, int(args["draws"]))
    c = out.coreset
    pair = LayerPair(base.W_in, base.b_in, base.W_out, base.act)
    check_scale(c.scale, pair, args["beta"], "coreset.scale")
    kept, U = as_f64(c.indices).astype(int), as_f64(c.weight_out)
    pw, pb, pu = (as_f64(a) for a in c.pruned())
    if not (np.array_equal(pw, base.W_in[kept]) and np.array_equal(pb, base.b_in[kept])
            and np.array_equal(pu, U)):
        raise FalseClaim("coreset.pruned() is not the kept rows and weight_out")
    T = np.where(as_f64(c.scale) > 0, as_f64(c.scale), 1.0)
    wc = out.worst_case
    check_layer_bound(pair, kept, U, cap=wc.upper_bound, eps_stat=None, scale=T,
                      beta=args["beta"], form="additive", seed=base.seed,
                      slack_eps=eps_of(c.weight_out), extra=(as_f64(wc.x),))
    if args.get("certificate") is not None:
        _check_certified_file(out, base, args, kept, U, T)


def _check_certified_file(out, base: Base, args: dict, kept, U, T) -> None:
    from coreset_verify.nets import layer_pair_modules

    if out.certificate != Path(args["certificate"]) or not out.certificate.is_file():
        raise FalseClaim(f"certificate {out.certificate} for {args['certificate']}")
    f = layer_pair_modules(base.W_in, base.b_in, base.W_out, activation=base.act)
    g = layer_pair_modules(base.W_in[kept], base.b_in[kept], U, activation=base.act)
    got = certificate_module.check(out.certificate, f, g, beta=args["beta"], scale=T)
    if not got.upper_bound >= out.worst_case.error:
        raise FalseClaim(f"the certificate proves {got.upper_bound} < error "
                         f"{out.worst_case.error}")
    check_claim(got.upper_bound, read_net(f), read_net(g), Dom(args["beta"], None, None), T,
                base.seed)


# ------------------------------------------------------------------ known findings


@dataclass(frozen=True)
class Known:
    """A finding not fixed yet (a strict expected failure, see ``_fuzz_registry``):
    failures whose detail matches ``pattern`` do not fail the run, and ``reproducer``
    must still fail with it; once the code is fixed it passes and the entry must go."""

    pattern: str
    reproducer: Callable[[], Case]
    reason: str


def _certified_repro(label: str, **extra) -> Case:
    base = make_base(1, "relu", 1.0, 1.0, 1.0, 1.0)
    args = {"draws": 1, "time_limit": 0.2, "beta": 1.0, "sample_size": 2, "rng": 0, **extra}
    return _certified_case(base, args, [label], f"{base.label}, {args}")


KNOWN: dict = {}
#: Findings fixed since they were found: each reproducer must now pass its oracle.
FIXED = {
    CHECK: (  # an .npz member that is not an .npy array escaped as AttributeError
        lambda: certificate_case(0, "npy", "bad magic", "alpha", 0),
        # Lemma B2 missed the underflow of subnormal c_j times |z_j| up to 1e30:
        # a claim below the true maximum was accepted
        lambda: certificate_case(7, "array", "claim at the recomputed bound", "", 0),
        lambda: certificate_case(6, "array", "claim at the recomputed bound", "", 0),
    ),
    CERTIFIED: (  # unchecked progress, options and a folder as certificate escaped raw
        lambda: _certified_repro("progress=3", progress=3),
        lambda: _certified_repro("option=bogus", bogus=1),
        lambda: _certified_repro("certificate='dir'", certificate="DIR"),
    ),
}
