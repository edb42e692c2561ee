"""Re-check a branch-and-bound certificate (proofs_notes/bab.md) in float64 numpy,
independently of :mod:`coreset_verify.search` (nothing is imported from it)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validation import check_positive, fail
from .errors import CertificateError
from .nets.model import ActivationOp, LinearOp, read_model

__all__ = ["FORMAT", "CertificateCheck", "check"]

FORMAT = "coreset-verify/one-hidden-layer/1"
_FUNC = "coreset_verify.certificate.check"
#: Every key and its axes (the first key with an axis fixes it); lo, hi are optional.
_SHAPES = {"format": (), "claim": (), "beta": (), "lower": ("d",), "upper": ("d",),
           "scale": ("k",), "index_f": ("n",), "index_g": ("n",), "leaf_output": ("L",),
           "leaf_sign": ("L",), "split_offsets": ("L+1",), "split_neuron": ("S",),
           "split_side": ("S",), "split_mu": ("S",), "alpha": ("L", "n"), "box_p": ("L", "p"),
           "leaf_bound": ("L",), "lo": ("n",), "hi": ("n",)}
_INTS = ("index_f", "index_g", "leaf_output", "leaf_sign", "split_offsets", "split_neuron",
         "split_side")
_INFORMATIVE = ("leaf_bound", "lo", "hi")  # may be infinite, never NaN
_TINY = 1e-300  # absolute widening: covers underflow (each product loses < 2**-1074)
_BLOCK = 1 << 20  # entries of one (leaves, max(n, d)) block of the leaf bounds


@dataclass(frozen=True)
class CertificateCheck:
    """An accepted certificate: the proved claim ``upper_bound``, counts, and the largest
    recomputed leaf bound with its margin (``-inf`` when every leaf is empty)."""

    upper_bound: float
    leaves: int
    specifications: int
    max_leaf_bound: float


def check(path: str | os.PathLike, original: Any, pruned: Any, *, beta: float | None = None,
          lower: Any = None, upper: Any = None, scale: Any = None) -> CertificateCheck:
    """Verify that the certificate at ``path`` proves its bound on ``|original - pruned|``.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.npz`` certificate, format ``coreset-verify/one-hidden-layer/1``.
    original, pruned : torch.nn.Module
        ``f`` and ``g``: each ``Linear -> ReLU or LeakyReLU -> Linear``.
    beta, lower, upper, scale : float or array_like, optional
        The domain (ball, box or both) and output scales asked about; when
        given, the certificate's must be exactly these.

    Returns
    -------
    CertificateCheck
        ``upper_bound``, the claim, is proved: ``max_i |f_i(x) - g_i(x)| / scale_i``
        is at most it for every ``x`` of the certificate's domain.

    Raises
    ------
    InvalidArgumentError
        ``path`` names no file; a model cannot be read (``nets.model.read_model``);
        bad ``beta``, ``lower``, ``upper`` or ``scale``.
    CertificateError
        An item of the checklist in proofs_notes/bab.md, "Certificate", fails (named).
        Optional ``lo``/``hi`` (the search's ranges) serve if they contain the checker's.
    """
    c = _load(path)
    net = _networks(c, original, pruned)
    _asked(c, net["W"].shape[1], beta, lower, upper, scale)
    _cover(c)
    nl, step = len(c["leaf_output"]), max(1, _BLOCK // max(net["W"].shape))
    bound = np.concatenate([_bounds(c, net, s, min(s + step, nl)) for s in range(0, nl, step)])
    worst = int(np.argmax(np.where(np.isnan(bound), np.inf, bound)))
    _require(bound[worst] <= c["claim"], f"leaf {worst} (output {c['leaf_output'][worst]}, "
             f"sign {c['leaf_sign'][worst]:+d}): recomputed bound {float(bound[worst])!r} "
             f"exceeds claim {float(c['claim'])!r}")
    return CertificateCheck(float(c["claim"]), nl, 2 * len(c["scale"]), float(bound[worst]))


def _require(ok: Any, message: str) -> None:
    if not ok:
        raise CertificateError(message)


def _first_bad(c: dict, key: str, bad: np.ndarray, expected: str) -> None:
    if np.any(bad):
        j = int(np.argmax(bad))
        raise CertificateError(f"{key}[{j}] = {c[key][j]}; expected {expected}")


def _load(path: Any) -> dict[str, np.ndarray]:
    """Item 1 of bab.md's checklist: keys, dtypes, shapes, values."""
    if not isinstance(path, (str, os.PathLike)) or not os.path.isfile(path):
        raise fail(_FUNC, "path", "the name (str or os.PathLike) of an existing file", path)
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError(f"it holds a single {type(data).__name__}, not an .npz archive")
        with data:
            a = {key: data[key] for key in data.files}
    except Exception as exc:  # zipfile, zlib, numpy format errors: all mean unreadable
        raise CertificateError(f"{os.fspath(path)!s} is not a readable {FORMAT} certificate "
                               f"({type(exc).__name__}: {exc})") from None
    odd = sorted(key for key, value in a.items() if not isinstance(value, np.ndarray))
    _require(not odd, f"members {odd} are not .npy arrays")  # numpy returns their bytes
    keys = set(_SHAPES) - ({"lo", "hi"} if {"lo", "hi"}.isdisjoint(a) else set())
    _require(a.keys() == keys, f"the certificate's keys are wrong: missing "
             f"{sorted(keys - a.keys())}, unexpected {sorted(a.keys() - keys)}")
    _require(a["format"].dtype.kind == "U" and a["format"].shape == () and
             a["format"][()] == FORMAT, f"format is {a['format']!r}, expected {FORMAT!r}")
    dims: dict[str, int] = {}
    for key in sorted(keys - {"format"}, key=list(_SHAPES).index):
        kind, name = ("i", "int64") if key in _INTS else ("f", "float64")
        _require(a[key].dtype.kind == kind and a[key].dtype.itemsize == 8,
                 f"{key} has dtype {a[key].dtype}, expected {name}")
        a[key], axes, got = a[key].astype(name), _SHAPES[key], a[key].shape
        want = tuple(dims["L"] + 1 if x == "L+1" else dims.setdefault(x, g)
                     for x, g in zip(axes, got, strict=True)) if len(got) == len(axes) else None
        _require(want == got, f"{key} has shape {got}, expected "
                 f"{tuple(dims.get(x, x) for x in axes)}".replace("'", ""))
        bad = np.isnan(a[key]) if key in _INFORMATIVE else ~np.isfinite(a[key])
        if key != "beta" and bad.any():
            at = tuple(int(i) for i in np.argwhere(bad)[0])
            raise CertificateError(f"{key}{list(at) if at else ''} = {a[key][at]} is not "
                                   f"{'a number' if key in _INFORMATIVE else 'finite'}")
    ball, box = not np.isnan(a["beta"]), dims["d"] > 0
    _require(min(dims["n"], dims["L"], dims["k"]) > 0, f"empty: n, L, k = {dims['n']}, "
             f"{dims['L']}, {dims['k']}")
    _require((ball or box) and (not ball or 0 < a["beta"] < np.inf), f"beta = {a['beta']} must "
             "be a finite number > 0, or nan (no ball) when lower and upper give a box")
    _require(dims["p"] == (dims["d"] if ball and box else 0), f"box_p has shape "
             f"{a['box_p'].shape}; its second axis is d with a ball and a box, else 0")
    for key, bad, expected in (
            ("lower", a["lower"] > a["upper"], "lower <= upper"),
            ("scale", a["scale"] <= 0, "scale > 0"), ("split_mu", a["split_mu"] < 0, "mu >= 0"),
            *((key, np.abs(a[key]) != 1, "+1 or -1") for key in ("leaf_sign", "split_side")),
            *((key, (a[key] < 0) | (a[key] >= dims[x]), f"a value in [0, {dims[x]})")
              for key, x in (("leaf_output", "k"), ("split_neuron", "n")))):
        _first_bad(a, key, bad, expected)
    off = a["split_offsets"]
    _require(off[0] == 0 and off[-1] == dims["S"] and np.all(np.diff(off) >= 0), "split_offsets"
             f" must rise from 0 to {dims['S']} (the number of splits); got {off}")
    return a


def _networks(c: dict, original: Any, pruned: Any) -> dict[str, Any]:
    """Item 2: the union layer of bab.md's "Setting" and the coefficients of (1)."""
    read = []
    for model, name in ((original, "original"), (pruned, "pruned")):
        ops = read_model(model, func=_FUNC, name=name)
        _require([type(op) for op in ops] == [LinearOp, ActivationOp, LinearOp] and (
            ops[1].activation.is_piecewise_linear and ops[2].weight.shape[1] == len(ops[0].bias)),
            f"{name} must be Linear -> ReLU or LeakyReLU(0 <= slope < 1) -> Linear, chained, to "
            f"match a {FORMAT} certificate; got " + ", ".join(
                op.name if isinstance(op, LinearOp) else op.activation.name for op in ops))
        read.append((ops[0].weight, ops[0].bias, ops[1].activation.slope, ops[2].weight,
                     ops[2].bias))
    (wf, bf, af, vf, of), (wg, bg, ag, vg, og) = read
    d, k, db = wf.shape[1], len(c["scale"]), len(c["lower"])
    _require(wg.shape[1] == d and len(of) == len(og) == k and db in (0, d), f"the models map "
             f"R^{d} and R^{wg.shape[1]} to R^{len(of)} and R^{len(og)}; the certificate is for "
             f"k = {k} outputs and a box in R^{db} (0: none)")
    for key, m, name in (("index_f", len(bf), "original"), ("index_g", len(bg), "pruned")):
        _first_bad(c, key, (c[key] < -1) | (c[key] >= m), f"-1 or a neuron of {name} (of {m})")
        counts = np.bincount(c[key][c[key] >= 0], minlength=m)
        _first_bad({"count": counts}, "count", counts != 1, f"1: {key} lists each neuron of "
                   f"{name} once")
    F, G = c["index_f"], c["index_g"]
    _first_bad(c, "index_g", (F < 0) & (G < 0), "a neuron where index_f is -1")
    both = (F >= 0) & (G >= 0)
    differ = both & ~(np.all(wf[F] == wg[G], axis=1) & (bf[F] == bg[G]))
    q = int(np.argmax(differ))
    _require(not differ[q], f"union neuron {q} pairs neuron {F[q]} of original with neuron "
             f"{G[q]} of pruned, whose rows or biases differ")
    _require(af == ag or not both.any(), f"index_f/index_g pair neurons of slopes {af} and {ag}")
    W, b = np.where((F >= 0)[:, None], wf[F], wg[G]), np.where(F >= 0, bf[F], bg[G])
    Cf, Cg = np.where(F >= 0, vf[:, F], 0.0), np.where(G >= 0, vg[:, G], 0.0)
    return {"W": W, "b": b, "a": np.where(F >= 0, af, ag), "C": (Cf - Cg) / c["scale"][:, None],
            "e": (of - og) / c["scale"], **_ranges(W, b, c)}


def _asked(c: dict, d: int, beta: Any, lower: Any, upper: Any, scale: Any) -> None:
    """Item 3: the domain and scales are those the caller asks about."""
    if (lower is None) != (upper is None):
        raise fail(_FUNC, "lower" if lower is None else "upper", "given with the other", None)
    asked = {"scale": (scale, len(c["scale"]))}
    if beta is not None or lower is not None:
        asked |= {"lower": (lower, d), "upper": (upper, d)} if lower is not None else {}
        mine = np.nan if beta is None else check_positive(beta, "beta", _FUNC)
        _require(np.array_equal(mine, c["beta"], equal_nan=True) and (lower is None) == (
            len(c["lower"]) == 0), f"the certificate's domain (beta {c['beta']}, box "
            f"{len(c['lower']) > 0}) is not the one asked about (beta {mine}, box "
            f"{lower is not None}); beta nan means no ball")
    for name, (value, size) in asked.items():
        try:
            v = np.broadcast_to(np.asarray(value, np.float64), (size,))
        except (TypeError, ValueError, RuntimeError):
            v = np.full(size, np.nan)
        if value is not None and not np.all(np.isfinite(v) & ((v > 0) | (name != "scale"))):
            raise fail(_FUNC, name, f"a finite number{' > 0' * (name == 'scale')} or an array "
                       f"of them of shape ({size},)", value)
        _first_bad(c, name, (v != c[name]) & (value is not None), f"the {name} asked about")


def _cover(c: dict) -> None:
    """Item 4: each specification's leaves form a complete split tree."""
    off, neuron, side, out, sign_ = (c[k].tolist() for k in (
        "split_offsets", "split_neuron", "split_side", "leaf_output", "leaf_sign"))
    groups: dict[tuple[int, int], list[int]] = {}
    for leaf, spec in enumerate(zip(out, sign_, strict=True)):
        groups.setdefault(spec, []).append(leaf)
    for i, sign in ((i, s) for i in range(len(c["scale"])) for s in (1, -1)):
        stack: list[tuple[list[int], tuple]] = [(groups.get((i, sign), []), ())]
        while stack:
            leaves, path = stack.pop()
            where = f"output {i} sign {sign:+d}, split path {list(path)}"
            _require(leaves, f"leaves do not cover the domain: no leaf for {where}")
            ends = [leaf for leaf in leaves if off[leaf] + len(path) == off[leaf + 1]]
            _require(not ends or len(leaves) == 1, f"leaves {leaves[:2]} overlap at {where}")
            if ends:
                continue
            nxt = {neuron[off[leaf] + len(path)] for leaf in leaves}
            _require(len(nxt) == 1, f"the leaves split different neurons {sorted(nxt)} at {where}")
            j = nxt.pop()
            _require(all(j != p for p, _ in path), f"neuron {j} is split twice at {where}")
            for s in (1, -1):
                stack.append(([leaf for leaf in leaves if side[off[leaf] + len(path)] == s],
                              (*path, (j, s))))


def _norms(x: np.ndarray) -> np.ndarray:
    """Row norms, scaled by the largest entry (no underflow, no spurious overflow)."""
    s = np.max(np.abs(x), axis=-1, initial=0.0)
    return s * np.sqrt(np.sum((x / np.where(s > 0, s, 1.0)[..., None]) ** 2, axis=-1))


def _ranges(W: np.ndarray, b: np.ndarray, c: dict) -> dict[str, Any]:
    """``[L_j, U_j]`` on the domain, widened outward for rounding (search_bounds.md 1)."""
    n, d = W.shape
    rel = max(1e-12, (d + 5) * np.finfo(np.float64).eps)
    lo, hi = np.full(n, -np.inf), np.full(n, np.inf)
    lower, upper, beta = c["lower"], c["upper"], float(c["beta"])
    radius = np.maximum(np.abs(lower), np.abs(upper))
    with np.errstate(over="ignore", invalid="ignore"):
        if not np.isnan(beta):
            reach = beta * _norms(W)
            wide = reach + rel * (reach + np.abs(b)) + _TINY
            lo, hi = b - wide, b + wide
        if len(lower):
            ends, wide = np.stack([W * lower, W * upper]), rel * (np.abs(W) @ radius + np.abs(b))
            lo = np.maximum(lo, b + ends.min(0).sum(1) - wide - _TINY)
            hi = np.minimum(hi, b + ends.max(0).sum(1) + wide + _TINY)
    lo, hi = np.where(np.isnan(lo), -np.inf, lo), np.where(np.isnan(hi), np.inf, hi)
    if "lo" in c:  # the search's ranges: any interval containing z_j(X) will do (B1)
        j = int(np.argmax(~((c["lo"] <= lo) & (c["hi"] >= hi))))
        _require(c["lo"][j] <= lo[j] and c["hi"][j] >= hi[j], f"[lo[{j}], hi[{j}]] = "
                 f"[{c['lo'][j]}, {c['hi'][j]}] does not contain the checker's [{lo[j]}, {hi[j]}]")
        lo, hi = c["lo"], c["hi"]
    box = (lower, upper) if len(lower) else (np.zeros(d), np.zeros(d))  # no box: p = 0
    return {"lo": lo, "hi": hi, "reach": np.maximum(np.maximum(-lo, hi), np.abs(b)),
            "beta": np.nan_to_num(beta), "lower": box[0], "upper": box[1],
            "R": max(1.0, np.nan_to_num(beta), np.max(radius, initial=0.0))}  # >= 1: K's terms


def _bounds(c: dict, net: dict, first: int, last: int) -> np.ndarray:
    """Item 5: Lemma B1's bound plus Lemma B2's margin, leaves ``first:last``."""
    W, b, a = net["W"], net["b"], net["a"]
    m, (n, d) = last - first, W.shape
    ends = c["split_offsets"][first:last + 1]
    rows, span = np.repeat(np.arange(m), np.diff(ends)), slice(ends[0], ends[-1])
    j, s, mu = c["split_neuron"][span], c["split_side"][span], c["split_mu"][span]
    lo, hi = np.tile(net["lo"], (m, 1)), np.tile(net["hi"], (m, 1))
    lo[rows[s > 0], j[s > 0]] = np.maximum(lo[rows[s > 0], j[s > 0]], 0.0)
    hi[rows[s < 0], j[s < 0]] = np.minimum(hi[rows[s < 0], j[s < 0]], 0.0)
    empty = np.any(lo > hi, axis=1)  # X_S is empty: any number bounds the leaf
    out, sign = c["leaf_output"][first:last], c["leaf_sign"][first:last]
    coef, e = sign[:, None] * net["C"][out], sign * net["e"][out]
    on, off = lo >= 0, hi <= 0  # stable on, stable off
    pos, neg = ~on & ~off & (coef >= 0), ~on & ~off & (coef < 0)
    alpha = c["alpha"][first:last]
    bad = neg & ~empty[:, None] & ~((alpha >= a) & (alpha <= 1))
    leaf, q = np.unravel_index(np.argmax(bad), bad.shape)
    _require(not bad[leaf, q], f"alpha[{first + leaf}, {q}] = {alpha[leaf, q]} outside "
             f"[{a[q]}, 1]")
    with np.errstate(all="ignore"):
        chord = (hi - a * lo) / (hi - lo), -(1 - a) * lo * hi / (hi - lo)
        lam = np.where(on, coef, np.where(off, a * coef, np.where(
            pos, coef * chord[0], coef * alpha)))
        t = np.where(pos, coef * chord[1], 0.0)
        # + mu s z_j(x) >= 0 on the leaf's region: lambda_j += mu s, and its mu s b_j is
        # then in lambda . b (bab.md's "t_j += mu s b_j" would count it twice)
        np.add.at(lam, (rows, j), mu * s)
        A, K, size = lam @ W, lam @ b + t.sum(1) + e, np.abs(lam) @ np.abs(W)
        # max over X of A . x <= beta ||A - p|| + box(p): p = 0 on a ball, p = A on a box
        beta, lower, upper = net["beta"], net["lower"], net["upper"]
        p = c["box_p"][first:last] if c["box_p"].size else (A if beta == 0 else 0 * A)
        p_size = size if beta == 0 else np.abs(p)  # the magnitudes of the terms of p
        top = beta * _norms(A - p) + np.maximum(p * lower, p * upper).sum(1)
        big = beta * _norms(size + p_size) + p_size @ np.maximum(-lower, upper)
        big = big + np.abs(lam) @ net["reach"] + np.abs(t).sum(1) + np.abs(e)
        # underflow: of the products with x (R), and of a subnormal c_j, lambda_j or
        # t_j times z_j, whose size is at most reach_j (bab.md, Lemma B2)
        tiny = ((n + d + 5) * net["R"] + 4 * float(np.sum(net["reach"])) + 4) * _TINY
        bound = top + K + 1e-9 * big + tiny
    return np.where(empty, -np.inf, bound)
