"""What both certificate checkers share: reading the file, the domain asked
about, the split trees, the first layer's ranges and Lemma B1's bound with
Lemma B2's margin (proofs_notes/bab.md), in float64 numpy."""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np

from .._validation import check_positive, fail
from ..errors import CertificateError

FUNC = "coreset_verify.certificate.check"
FORMAT = "coreset-verify/one-hidden-layer/1"
DEEP_FORMAT = "coreset-verify/deep/1"
_COMMON = {"format": (), "claim": (), "beta": (), "lower": ("d",), "upper": ("d",),
           "scale": ("k",), "index_f": ("n",), "index_g": ("n",), "leaf_output": ("L",),
           "leaf_sign": ("L",), "split_offsets": ("L+1",), "split_neuron": ("S",),
           "split_side": ("S",)}
#: Every key and its axes, per format (the first key with an axis fixes it);
#: lo, hi are optional; a deep certificate also has range_{alpha,p,lower}_<net><layer>.
SHAPES = {
    FORMAT: _COMMON | {"split_mu": ("S",), "alpha": ("L", "n"), "box_p": ("L", "p"),
                       "leaf_bound": ("L",), "lo": ("n",), "hi": ("n",)},
    DEEP_FORMAT: _COMMON | {"leaf_proof": ("L",), "proof_depth": ("P",),
                            "proof_alpha": ("P", "n"), "proof_mu": ("P", "n"),
                            "proof_p": ("P", "p"), "proof_deep_alpha": ("P", "w"),
                            "proof_deep_mu": ("P", "w"), "leaf_bound": ("L",),
                            "lo": ("n",), "hi": ("n",)}}
_INTS = ("index_f", "index_g", "leaf_output", "leaf_sign", "split_offsets", "split_neuron",
         "split_side", "leaf_proof", "proof_depth")
_INFORMATIVE = ("leaf_bound", "lo", "hi")  # may be infinite, never NaN
_RANGE_KEY = re.compile(r"range_(alpha|p|lower)_[fg][1-9][0-9]*")
TINY = 1e-300  # absolute widening: covers underflow (each product loses < 2**-1074)


def require(ok: Any, message: str) -> None:
    if not ok:
        raise CertificateError(message)


def first_bad(c: dict, key: str, bad: np.ndarray, expected: str) -> None:
    if np.any(bad):
        j = int(np.argmax(bad))
        raise CertificateError(f"{key}[{j}] = {c[key][j]}; expected {expected}")


def _read(path: Any) -> dict[str, np.ndarray]:
    if not isinstance(path, (str, os.PathLike)) or not os.path.isfile(path):
        raise fail(FUNC, "path", "the name (str or os.PathLike) of an existing file", path)
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError(f"it holds a single {type(data).__name__}, not an .npz archive")
        with data:
            a = {key: data[key] for key in data.files}
    except Exception as exc:  # zipfile, zlib, numpy format errors: all mean unreadable
        raise CertificateError(f"{os.fspath(path)!s} is not a readable certificate "
                               f"({type(exc).__name__}: {exc})") from None
    odd = sorted(key for key, value in a.items() if not isinstance(value, np.ndarray))
    require(not odd, f"members {odd} are not .npy arrays")  # numpy returns their bytes
    fmt = a.get("format")
    require(fmt is not None and fmt.dtype.kind == "U" and fmt.shape == () and fmt[()] in SHAPES,
            f"format is {fmt!r}, expected one of {sorted(SHAPES)}")
    return a


def _value(a: dict, key: str, bad_if_nan_only: bool) -> None:
    bad = np.isnan(a[key]) if bad_if_nan_only else ~np.isfinite(a[key])
    if key != "beta" and bad.any():
        at = tuple(int(i) for i in np.argwhere(bad)[0])
        raise CertificateError(f"{key}{list(at) if at else ''} = {a[key][at]} is not "
                               f"{'a number' if bad_if_nan_only else 'finite'}")


def load(path: Any) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Item 1 of bab.md's checklist: keys, dtypes, shapes, values; the arrays
    and their dimensions (``d, k, n, L, S`` and ``P, w`` or ``p``)."""
    a = _read(path)
    fmt = str(a["format"][()])
    shapes = SHAPES[fmt]
    keys = set(shapes) - ({"lo", "hi"} if {"lo", "hi"}.isdisjoint(a) else set())
    ranges = {key for key in a if fmt == DEEP_FORMAT and _RANGE_KEY.fullmatch(key)}
    require(a.keys() - ranges == keys, f"the certificate's keys are wrong: missing "
            f"{sorted(keys - a.keys())}, unexpected {sorted(a.keys() - ranges - keys)}")
    dims: dict[str, int] = {}
    for key in sorted(keys - {"format"}, key=list(shapes).index):
        kind, name = ("i", "int64") if key in _INTS else ("f", "float64")
        require(a[key].dtype.kind == kind and a[key].dtype.itemsize == 8,
                f"{key} has dtype {a[key].dtype}, expected {name}")
        a[key], axes, got = a[key].astype(name), shapes[key], a[key].shape
        want = tuple(dims["L"] + 1 if x == "L+1" else dims.setdefault(x, g)
                     for x, g in zip(axes, got, strict=True)) if len(got) == len(axes) else None
        require(want == got, f"{key} has shape {got}, expected "
                f"{tuple(dims.get(x, x) for x in axes)}".replace("'", ""))
        _value(a, key, key in _INFORMATIVE)
    for key in sorted(ranges):
        require(a[key].dtype == np.float64 and a[key].ndim == 2, f"{key} has dtype "
                f"{a[key].dtype} and shape {a[key].shape}, expected a 2-d float64 array")
        _value(a, key, False)
    _check_values(a, dims)
    return a, dims


def _check_values(a: dict, dims: dict) -> None:
    ball, box = not np.isnan(a["beta"]), dims["d"] > 0
    require(min(dims["n"], dims["L"], dims["k"]) > 0, f"empty: n, L, k = {dims['n']}, "
            f"{dims['L']}, {dims['k']}")
    require((ball or box) and (not ball or 0 < a["beta"] < np.inf), f"beta = {a['beta']} must "
            "be a finite number > 0, or nan (no ball) when lower and upper give a box")
    key = "box_p" if "box_p" in a else "proof_p"
    require(dims["p"] == (dims["d"] if ball and box else 0), f"{key} has shape "
            f"{a[key].shape}; its second axis is d with a ball and a box, else 0")
    neurons = dims["n"] + dims.get("w", 0)
    checks = [("lower", a["lower"] > a["upper"], "lower <= upper"),
              ("scale", a["scale"] <= 0, "scale > 0"),
              *((key, np.abs(a[key]) != 1, "+1 or -1") for key in ("leaf_sign", "split_side")),
              ("leaf_output", (a["leaf_output"] < 0) | (a["leaf_output"] >= dims["k"]),
               f"a value in [0, {dims['k']})"),
              ("split_neuron", (a["split_neuron"] < 0) | (a["split_neuron"] >= neurons),
               f"a value in [0, {neurons})")]
    checks += [(key, a[key] < 0, "mu >= 0") for key in ("split_mu", "proof_mu",
                                                         "proof_deep_mu") if key in a]
    if "leaf_proof" in a:
        checks.append(("leaf_proof", (a["leaf_proof"] < 0) | (a["leaf_proof"] >= dims["P"]),
                       f"a value in [0, {dims['P']})"))
    for key, bad, expected in checks:
        first_bad(a, key, bad, expected)
    off = a["split_offsets"]
    require(off[0] == 0 and off[-1] == dims["S"] and np.all(np.diff(off) >= 0), "split_offsets"
            f" must rise from 0 to {dims['S']} (the number of splits); got {off}")


def union_layer(c: dict, firsts: list) -> tuple:
    """Item 2: the union layer of bab.md's "Setting" from the two networks'
    first layers ``(W, b, slope)``: ``(W, b, a)`` of the union neurons."""
    (wf, bf, af), (wg, bg, ag) = firsts
    for key, m, name in (("index_f", len(bf), "original"), ("index_g", len(bg), "pruned")):
        first_bad(c, key, (c[key] < -1) | (c[key] >= m), f"-1 or a neuron of {name} (of {m})")
        counts = np.bincount(c[key][c[key] >= 0], minlength=m)
        first_bad({"count": counts}, "count", counts != 1, f"1: {key} lists each neuron of "
                  f"{name} once")
    F, G = c["index_f"], c["index_g"]
    first_bad(c, "index_g", (F < 0) & (G < 0), "a neuron where index_f is -1")
    both = (F >= 0) & (G >= 0)
    differ = both & ~(np.all(wf[F] == wg[G], axis=1) & (bf[F] == bg[G]))
    q = int(np.argmax(differ))
    require(not differ[q], f"union neuron {q} pairs neuron {F[q]} of original with neuron "
            f"{G[q]} of pruned, whose rows or biases differ")
    require(af == ag or not both.any(), f"index_f/index_g pair neurons of slopes {af} and {ag}")
    W, b = np.where((F >= 0)[:, None], wf[F], wg[G]), np.where(F >= 0, bf[F], bg[G])
    return W, b, np.where(F >= 0, af, ag)


def asked(c: dict, d: int, beta: Any, lower: Any, upper: Any, scale: Any) -> None:
    """Item 3: the domain and scales are those the caller asks about."""
    if (lower is None) != (upper is None):
        raise fail(FUNC, "lower" if lower is None else "upper", "given with the other", None)
    wanted = {"scale": (scale, len(c["scale"]))}
    if beta is not None or lower is not None:
        wanted |= {"lower": (lower, d), "upper": (upper, d)} if lower is not None else {}
        mine = np.nan if beta is None else check_positive(beta, "beta", FUNC)
        require(np.array_equal(mine, c["beta"], equal_nan=True) and (lower is None) == (
            len(c["lower"]) == 0), f"the certificate's domain (beta {c['beta']}, box "
            f"{len(c['lower']) > 0}) is not the one asked about (beta {mine}, box "
            f"{lower is not None}); beta nan means no ball")
    for name, (value, size) in wanted.items():
        try:
            v = np.broadcast_to(np.asarray(value, np.float64), (size,))
        except (TypeError, ValueError, RuntimeError):
            v = np.full(size, np.nan)
        if value is not None and not np.all(np.isfinite(v) & ((v > 0) | (name != "scale"))):
            raise fail(FUNC, name, f"a finite number{' > 0' * (name == 'scale')} or an array "
                       f"of them of shape ({size},)", value)
        first_bad(c, name, (v != c[name]) & (value is not None), f"the {name} asked about")


def cover(c: dict) -> None:
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
            require(leaves, f"leaves do not cover the domain: no leaf for {where}")
            ends = [leaf for leaf in leaves if off[leaf] + len(path) == off[leaf + 1]]
            require(not ends or len(leaves) == 1, f"leaves {leaves[:2]} overlap at {where}")
            if ends:
                continue
            nxt = {neuron[off[leaf] + len(path)] for leaf in leaves}
            require(len(nxt) == 1, f"the leaves split different neurons {sorted(nxt)} at {where}")
            j = nxt.pop()
            require(all(j != p for p, _ in path), f"neuron {j} is split twice at {where}")
            for s in (1, -1):
                stack.append(([leaf for leaf in leaves if side[off[leaf] + len(path)] == s],
                              (*path, (j, s))))


def norms(x: np.ndarray) -> np.ndarray:
    """Row norms, scaled by the largest entry (no underflow, no spurious overflow)."""
    s = np.max(np.abs(x), axis=-1, initial=0.0)
    return s * np.sqrt(np.sum((x / np.where(s > 0, s, 1.0)[..., None]) ** 2, axis=-1))


def first_ranges(W: np.ndarray, b: np.ndarray, c: dict) -> dict[str, Any]:
    """``[L_j, U_j]`` on the domain, widened outward for rounding (search_bounds.md 1),
    with the union layer and the domain: the ``net`` of :func:`relaxed`."""
    n, d = W.shape
    rel = max(1e-12, (d + 5) * np.finfo(np.float64).eps)
    lo, hi = np.full(n, -np.inf), np.full(n, np.inf)
    lower, upper, beta = c["lower"], c["upper"], float(c["beta"])
    radius = np.maximum(np.abs(lower), np.abs(upper))
    with np.errstate(over="ignore", invalid="ignore"):
        if not np.isnan(beta):
            reach = beta * norms(W)
            wide = reach + rel * (reach + np.abs(b)) + TINY
            lo, hi = b - wide, b + wide
        if len(lower):
            ends, wide = np.stack([W * lower, W * upper]), rel * (np.abs(W) @ radius + np.abs(b))
            lo = np.maximum(lo, b + ends.min(0).sum(1) - wide - TINY)
            hi = np.minimum(hi, b + ends.max(0).sum(1) + wide + TINY)
    lo, hi = np.where(np.isnan(lo), -np.inf, lo), np.where(np.isnan(hi), np.inf, hi)
    if "lo" in c:  # the search's ranges: any interval containing z_j(X) will do (B1)
        j = int(np.argmax(~((c["lo"] <= lo) & (c["hi"] >= hi))))
        require(c["lo"][j] <= lo[j] and c["hi"][j] >= hi[j], f"[lo[{j}], hi[{j}]] = "
                f"[{c['lo'][j]}, {c['hi'][j]}] does not contain the checker's [{lo[j]}, {hi[j]}]")
        lo, hi = c["lo"], c["hi"]
    box = (lower, upper) if len(lower) else (np.zeros(d), np.zeros(d))  # no box: p = 0
    return {"lo": lo, "hi": hi, "reach": np.maximum(np.maximum(-lo, hi), np.abs(b)),
            "beta": np.nan_to_num(beta), "lower": box[0], "upper": box[1],
            "R": max(1.0, np.nan_to_num(beta), np.max(radius, initial=0.0))}  # >= 1: K's terms


def relaxed(net: dict, coef, e, lo, hi, alpha, mu, p, where: str, margin: float = 1.0):
    """Lemma B1's bound plus ``margin`` times Lemma B2's margin for the rows
    ``coef . phi(z) + e`` (R, n) on regions with first-layer ranges ``lo, hi``
    (R, n; the splits already applied), lower slopes ``alpha``, signed split
    multipliers ``mu`` (``mu_j s_j``) and box multipliers ``p`` (or None);
    ``where(row, neuron)`` names an alpha in an error. Empty regions give ``-inf``."""
    W, b, a = net["W"], net["b"], net["a"]
    n, d = W.shape
    empty = np.any(lo > hi, axis=1)  # X_S is empty: any number bounds it
    on, off = lo >= 0, hi <= 0  # stable on, stable off
    pos, neg = ~on & ~off & (coef >= 0), ~on & ~off & (coef < 0)
    bad = neg & ~empty[:, None] & ~((alpha >= a) & (alpha <= 1))
    row, q = np.unravel_index(np.argmax(bad), bad.shape)
    require(not bad[row, q], f"{where(row, q)} = {alpha[row, q]} outside [{a[q]}, 1]")
    with np.errstate(all="ignore"):
        chord = (hi - a * lo) / (hi - lo), -(1 - a) * lo * hi / (hi - lo)
        lam = np.where(on, coef, np.where(off, a * coef, np.where(
            pos, coef * chord[0], coef * alpha)))
        t = np.where(pos, coef * chord[1], 0.0)
        # + mu s z_j(x) >= 0 on the leaf's region: lambda_j += mu s, and its mu s b_j is
        # then in lambda . b (bab.md's "t_j += mu s b_j" would count it twice)
        lam = lam + mu
        A, K, size = lam @ W, lam @ b + t.sum(1) + e, np.abs(lam) @ np.abs(W)
        # max over X of A . x <= beta ||A - p|| + box(p): p = 0 on a ball, p = A on a box
        beta, lower, upper = net["beta"], net["lower"], net["upper"]
        p = p if p is not None else (A if beta == 0 else 0 * A)
        p_size = size if beta == 0 else np.abs(p)  # the magnitudes of the terms of p
        top = beta * norms(A - p) + np.maximum(p * lower, p * upper).sum(1)
        big = beta * norms(size + p_size) + p_size @ np.maximum(-lower, upper)
        big = big + np.abs(lam) @ net["reach"] + np.abs(t).sum(1) + np.abs(e)
        # underflow: of the products with x (R), and of a subnormal c_j, lambda_j or
        # t_j times z_j, whose size is at most reach_j (bab.md, Lemma B2)
        tiny = ((n + d + 5) * net["R"] + 4 * float(np.sum(net["reach"])) + 4) * TINY
        bound = top + K + margin * (1e-9 * big + tiny)
    return np.where(empty, -np.inf, np.where(np.isnan(bound), np.inf, bound))
