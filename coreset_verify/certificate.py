"""Re-check a branch-and-bound certificate, independently of the search.

A certificate (format ``coreset-verify/one-hidden-layer/1``, a ``.npz`` file)
claims ``max_x max_i |f_i(x) - g_i(x)| / scale_i <= claim`` for two
``Linear -> (leaky) ReLU -> Linear`` networks over a ball, a box or both. It
lists the leaves of one split tree per specification ``(i, sigma)``, each with
its splits and the multipliers ``(alpha, mu, p)`` of Lemma B1. :func:`check`
re-reads the models, checks that the trees cover every specification's
domain, and recomputes every leaf's bound in float64 numpy with Lemma B2's
rounding margin (proofs_notes/bab.md, "Certificate"). It imports nothing from
:mod:`coreset_verify.search`: the ranges, lines and norms are written here again.

numpy only at import time; torch is imported when the models are read.
"""

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
_FLOATS = ("claim", "beta", "lower", "upper", "scale", "split_mu", "alpha", "box_p",
           "leaf_bound")
_INTS = ("index_f", "index_g", "leaf_output", "leaf_sign", "split_offsets", "split_neuron",
         "split_side")
_TINY = 1e-300  # absolute widening: covers underflow (each product loses < 2**-1074)
_BLOCK = 1 << 20  # entries of one (leaves, max(n, d)) block of the leaf bounds


@dataclass(frozen=True)
class CertificateCheck:
    """A certificate that :func:`check` accepted.

    ``upper_bound``: the proved claim; ``leaves``, ``specifications`` (``2 k``):
    counts; ``max_leaf_bound``: the largest recomputed leaf bound, margin
    included (``-inf`` when every leaf is empty), at most ``upper_bound``.
    """

    upper_bound: float
    leaves: int
    specifications: int
    max_leaf_bound: float


def check(path: str | os.PathLike, original: Any, pruned: Any, *, beta: float | None = None,
          lower: Any = None, upper: Any = None, scale: Any = None) -> CertificateCheck:
    """Verify that a certificate proves its bound on ``|original - pruned|``.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.npz`` certificate (read with ``allow_pickle=False``).
    original, pruned : torch.nn.Module
        ``f`` and ``g``: each ``Linear -> ReLU or LeakyReLU -> Linear``.
    beta, lower, upper : optional
        The domain asked about. When any is given, the certificate's domain
        must be exactly this one (ball iff ``beta``, box iff ``lower``/``upper``;
        a scalar bound means the same value in every coordinate).
    scale : float or array_like, shape (k,), optional
        The output scales asked about; when given, they must equal the
        certificate's.

    Returns
    -------
    CertificateCheck
        ``upper_bound`` is the certificate's claim, now proved:
        ``max_x max_i |f_i(x) - g_i(x)| / scale_i <= upper_bound`` on its domain.

    Raises
    ------
    InvalidArgumentError
        ``path`` is no str/PathLike or names no file; a model is no torch
        module, has unsupported layers, non-finite weights, or other dtypes
        than float32/float64; bad ``beta``/``lower``/``upper``/``scale``.
    CertificateError
        Anything else, naming what failed: an unreadable or malformed file,
        models of another shape than ``Linear -> (leaky) ReLU -> Linear`` or
        that ``index_f``/``index_g`` do not match, a domain or scale other than
        the one asked about, leaves that do not cover some specification, or
        a recomputed leaf bound above the claim.

    Notes
    -----
    Soundness is Lemmas B1 (every leaf bound bounds (1) on its region) and B2
    (rounding) of proofs_notes/bab.md, with the partition argument of its
    section "The global bracket".
    """
    c = _load(path)
    net = _networks(c, original, pruned)
    _asked(c, beta, lower, upper, scale)
    _cover(c)
    bound = _leaf_bounds(c, net)
    worst = int(np.argmax(np.where(np.isnan(bound), np.inf, bound)))
    if not bound[worst] <= c["claim"]:
        raise CertificateError(
            f"leaf {worst} (output {c['leaf_output'][worst]}, sign "
            f"{c['leaf_sign'][worst]:+d}): recomputed bound {float(bound[worst])!r} exceeds "
            f"claim {float(c['claim'])!r}")
    return CertificateCheck(float(c["claim"]), len(bound), 2 * len(c["scale"]),
                            float(bound[worst]))


def _load(path: Any) -> dict[str, np.ndarray]:
    if not isinstance(path, (str, os.PathLike)):
        raise fail(_FUNC, "path", "a str or os.PathLike naming a .npz certificate",
                   type(path).__name__)
    if not os.path.isfile(path):
        raise fail(_FUNC, "path", "the name of an existing certificate file", os.fspath(path))
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError(f"it holds a single {type(data).__name__}, not an .npz archive")
        with data:
            arrays = {key: data[key] for key in data.files}
    except Exception as exc:  # zipfile, zlib, numpy format errors: all mean unreadable
        raise CertificateError(f"{os.fspath(path)!s} is not a readable {FORMAT} certificate "
                               f"({type(exc).__name__}: {exc})") from None
    return _validated(arrays)


def _validated(a: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Keys, dtypes, shapes and values of item 1 of bab.md's checklist."""
    keys = {"format", *_FLOATS, *_INTS}
    if a.keys() != keys:
        raise CertificateError(f"the certificate's keys are wrong: missing "
                               f"{sorted(keys - a.keys())}, unexpected {sorted(a.keys() - keys)}")
    if a["format"].dtype.kind != "U" or a["format"].shape != () or a["format"][()] != FORMAT:
        raise CertificateError(f"format is {a['format']!r}, expected {FORMAT!r}")
    for keys_, kind, name in ((_FLOATS, "f", "float64"), (_INTS, "i", "int64")):
        for key in keys_:
            if a[key].dtype.kind != kind or a[key].dtype.itemsize != 8:
                raise CertificateError(f"{key} has dtype {a[key].dtype}, expected {name}")
            a[key] = a[key].astype(name)
    for key in ("lower", "index_f", "leaf_output", "split_neuron", "scale"):
        if a[key].ndim != 1:
            raise CertificateError(f"{key} has shape {a[key].shape}, expected one axis")
    n, nl, ns = len(a["index_f"]), len(a["leaf_output"]), len(a["split_neuron"])
    db, dp = len(a["lower"]), a["box_p"].shape[-1] if a["box_p"].ndim == 2 else -1
    shapes = {"claim": (), "beta": (), "upper": (db,), "index_g": (n,), "leaf_sign": (nl,),
              "split_offsets": (nl + 1,), "split_side": (ns,), "split_mu": (ns,),
              "alpha": (nl, n), "box_p": (nl, dp), "leaf_bound": (nl,)}
    for key, shape in shapes.items():
        if a[key].shape != shape:
            raise CertificateError(f"{key} has shape {a[key].shape}, expected {shape}")
    for key in _FLOATS:
        bad = ~np.isfinite(a[key]) & (key != "beta")
        if bad.any():
            at = tuple(int(i) for i in np.argwhere(bad)[0])
            raise CertificateError(f"{key}{list(at) if at else ''} = {a[key][at]} is not finite")
    ball, box = not np.isnan(a["beta"]), db > 0
    _require(n > 0 and nl > 0 and len(a["scale"]) > 0, "index_f, leaf_output and scale must "
             f"not be empty; got n = {n}, {nl} leaves, k = {len(a['scale'])}")
    _require(ball or box, "the certificate has neither a ball (beta is nan) nor a box")
    _require(not ball or (np.isfinite(a["beta"]) and a["beta"] > 0),
             f"beta = {a['beta']} is neither nan (no ball) nor a finite number > 0")
    _require(dp == (db if ball and box else 0), f"box_p has shape {a['box_p'].shape}, expected "
             f"{(nl, db if ball and box else 0)} (ball: {ball}, box: {box})")
    _first_bad(a, "lower", a["lower"] > a["upper"], "lower <= upper")
    _first_bad(a, "scale", a["scale"] <= 0, "scale > 0")
    for key, hi in (("leaf_output", len(a["scale"])), ("split_neuron", n)):
        _first_bad(a, key, (a[key] < 0) | (a[key] >= hi), f"a value in [0, {hi})")
    for key in ("leaf_sign", "split_side"):
        _first_bad(a, key, np.abs(a[key]) != 1, "+1 or -1")
    _first_bad(a, "split_mu", a["split_mu"] < 0, "mu >= 0")
    off = a["split_offsets"]
    _require(off[0] == 0 and off[-1] == ns and np.all(np.diff(off) >= 0), "split_offsets must "
             f"rise from 0 to {ns} (the number of splits); got {off}")
    return a


def _require(ok: Any, message: str) -> None:
    if not ok:
        raise CertificateError(message)


def _first_bad(c: dict, key: str, bad: np.ndarray, expected: str) -> None:
    if bad.any():
        j = int(np.argmax(bad))
        raise CertificateError(f"{key}[{j}] = {c[key][j]}; expected {expected}")


def _read(model: Any, name: str) -> tuple[np.ndarray, ...]:
    ops = read_model(model, func=_FUNC, name=name)
    kinds = [type(op) for op in ops]
    if kinds != [LinearOp, ActivationOp, LinearOp] or not (
            ops[1].activation.is_piecewise_linear and ops[2].weight.shape[1] ==
            ops[0].weight.shape[0]):
        got = ", ".join(op.name if isinstance(op, LinearOp) else op.activation.name
                        for op in ops)
        raise CertificateError(f"{name} must be Linear -> ReLU or LeakyReLU(0 <= slope < 1) "
                               f"-> Linear, chained, to match a {FORMAT} certificate; got {got}")
    return ops[0].weight, ops[0].bias, ops[1].activation.slope, ops[2].weight, ops[2].bias


def _index(c: dict, key: str, m: int, name: str) -> np.ndarray:
    idx = c[key]
    _first_bad(c, key, (idx < -1) | (idx >= m), f"-1 or a neuron of {name} (it has {m})")
    counts = np.bincount(idx[idx >= 0], minlength=m)
    if np.any(counts != 1):
        q = int(np.argmax(counts != 1))
        raise CertificateError(f"{key} must list every neuron of {name} exactly once; neuron "
                               f"{q} appears {counts[q]} times")
    return idx


def _networks(c: dict, original: Any, pruned: Any) -> dict[str, Any]:
    """The union layer of bab.md's "Setting" and the coefficients of (1)."""
    (wf, bf, af, vf, of), (wg, bg, ag, vg, og) = _read(original, "original"), _read(pruned,
                                                                                   "pruned")
    d, k = wf.shape[1], len(c["scale"])
    _require(wg.shape[1] == d and vf.shape[0] == vg.shape[0] == k, f"the models map R^"
             f"{wf.shape[1]} and R^{wg.shape[1]} to R^{vf.shape[0]} and R^{vg.shape[0]}; the "
             f"certificate is for k = {k} outputs")
    _require(len(c["lower"]) in (0, d), f"lower has {len(c['lower'])} entries; the models "
             f"have d = {d} inputs")
    F, G = _index(c, "index_f", wf.shape[0], "original"), _index(c, "index_g", wg.shape[0],
                                                                 "pruned")
    _first_bad(c, "index_g", (F < 0) & (G < 0), "a neuron where index_f is -1")
    both = (F >= 0) & (G >= 0)
    same = np.all(wf[F] == wg[G], axis=1) & (bf[F] == bg[G])
    if np.any(both & ~same):
        q = int(np.argmax(both & ~same))
        raise CertificateError(f"union neuron {q} pairs neuron {F[q]} of original with neuron "
                               f"{G[q]} of pruned, whose rows or biases differ")
    _require(af == ag or not both.any(), f"index_f/index_g pair neurons of slopes {af} and {ag}")
    W, b = np.where((F >= 0)[:, None], wf[F], wg[G]), np.where(F >= 0, bf[F], bg[G])
    Cf, Cg = np.where(F >= 0, vf[:, F], 0.0), np.where(G >= 0, vg[:, G], 0.0)
    scale = c["scale"]
    return {"W": W, "b": b, "a": np.where(F >= 0, af, ag), "C": (Cf - Cg) / scale[:, None],
            "e": (of - og) / scale, **_ranges(W, b, c)}


def _as_vector(value: Any, name: str, size: int) -> np.ndarray:
    try:
        v = np.asarray(value.detach().cpu() if hasattr(value, "detach") else value, np.float64)
    except (TypeError, ValueError, RuntimeError):
        raise fail(_FUNC, name, f"a number or an array of shape ({size},)", value) from None
    if v.ndim == 0:
        v = np.full(size, float(v))
    if v.shape != (size,) or not np.all(np.isfinite(v)):
        raise fail(_FUNC, name, f"a finite number or array of shape ({size},)", value)
    return v


def _asked(c: dict, beta: Any, lower: Any, upper: Any, scale: Any) -> None:
    """Item 3: the domain and scales are those the caller asks about."""
    if (lower is None) != (upper is None):
        raise fail(_FUNC, "lower" if lower is None else "upper", "given together with "
                   f"{'upper' if lower is None else 'lower'} (a box)", None)
    d = len(c["lower"])
    if beta is not None or lower is not None:
        mine = np.nan if beta is None else check_positive(beta, "beta", _FUNC)
        _require(mine == c["beta"] or (np.isnan(mine) and np.isnan(c["beta"])), f"the "
                 f"certificate's beta is {c['beta']} (nan: no ball), the one asked about {mine}")
        _require((lower is None) == (d == 0), f"the certificate {'has' if d else 'has no'} box, "
                 f"the domain asked about {'has none' if lower is None else 'has one'}")
        for name, value in (("lower", lower), ("upper", upper)):
            if value is not None:
                _first_bad(c, name, _as_vector(value, name, d) != c[name], f"the {name} asked "
                           f"about, {value!r}")
    if scale is not None:
        _first_bad(c, "scale", _as_vector(scale, "scale", len(c["scale"])) != c["scale"],
                   f"the scale asked about, {scale!r}")


def _cover(c: dict) -> None:
    """Item 4: each specification's leaves form a complete split tree."""
    out, sign = c["leaf_output"].tolist(), c["leaf_sign"].tolist()
    off, neuron, side = (c[k].tolist() for k in ("split_offsets", "split_neuron", "split_side"))
    groups: dict[tuple[int, int], list[int]] = {}
    for leaf, spec in enumerate(zip(out, sign, strict=True)):
        groups.setdefault(spec, []).append(leaf)
    for spec in ((i, s) for i in range(len(c["scale"])) for s in (1, -1)):
        name = f"output {spec[0]} sign {spec[1]:+d}"
        stack: list[tuple[list[int], tuple[tuple[int, int], ...]]] = [(groups.get(spec, []), ())]
        while stack:
            leaves, path = stack.pop()
            depth = len(path)
            _require(leaves, f"{name}: leaves do not cover the domain: no leaf for split path "
                     f"{list(path)}")
            ends = [leaf for leaf in leaves if off[leaf] + depth == off[leaf + 1]]
            _require(not ends or len(leaves) == 1, f"{name}: leaves {leaves[:2]} overlap: leaf "
                     f"{ends[0] if ends else -1} ends at split path {list(path)}")
            if ends:
                continue
            nxt = {neuron[off[leaf] + depth] for leaf in leaves}
            _require(len(nxt) == 1, f"{name}: after split path {list(path)} the leaves split "
                     f"different neurons {sorted(nxt)}")
            j = nxt.pop()
            _require(all(j != p for p, _ in path), f"{name}: neuron {j} is split twice on "
                     f"split path {[*path, (j, '...')]}")
            for s in (1, -1):
                stack.append(([leaf for leaf in leaves if side[off[leaf] + depth] == s],
                              (*path, (j, s))))


def _norms(x: np.ndarray) -> np.ndarray:
    """Row norms, scaled by the largest entry (no underflow, no spurious overflow)."""
    s = np.max(np.abs(x), axis=-1, initial=0.0)
    t = np.where(s > 0, s, 1.0)
    return s * np.sqrt(np.sum((x / t[..., None]) ** 2, axis=-1))


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
            lo, hi = np.maximum(lo, b - wide), np.minimum(hi, b + wide)
        if len(lower):
            ends = np.stack([W * lower, W * upper])
            wide = rel * (np.abs(W) @ radius + np.abs(b)) + _TINY
            lo = np.maximum(lo, b + ends.min(0).sum(1) - wide)
            hi = np.minimum(hi, b + ends.max(0).sum(1) + wide)
    lo, hi = np.where(np.isnan(lo), -np.inf, lo), np.where(np.isnan(hi), np.inf, hi)
    r = max(beta if not np.isnan(beta) else 0.0, float(np.max(radius, initial=0.0)))
    return {"lo": lo, "hi": hi, "reach": np.maximum(np.maximum(-lo, hi), np.abs(b)),
            "radius": radius, "R": r}


def _leaf_bounds(c: dict, net: dict) -> np.ndarray:
    """Item 5: Lemma B1's bound of every leaf, plus Lemma B2's margin."""
    nl, step = len(c["leaf_output"]), max(1, _BLOCK // max(net["W"].shape))
    return np.concatenate([_block(c, net, s, min(s + step, nl)) for s in range(0, nl, step)])


def _block(c: dict, net: dict, first: int, last: int) -> np.ndarray:
    W, b, a, lo0, hi0 = net["W"], net["b"], net["a"], net["lo"], net["hi"]
    m, (n, d) = last - first, W.shape
    ends = c["split_offsets"][first:last + 1]
    rows = np.repeat(np.arange(m), np.diff(ends))
    span = slice(ends[0], ends[-1])
    j, s, mu = c["split_neuron"][span], c["split_side"][span], c["split_mu"][span]
    lo, hi = np.tile(lo0, (m, 1)), np.tile(hi0, (m, 1))
    lo[rows[s > 0], j[s > 0]] = np.maximum(lo[rows[s > 0], j[s > 0]], 0.0)
    hi[rows[s < 0], j[s < 0]] = np.minimum(hi[rows[s < 0], j[s < 0]], 0.0)
    empty = np.any(lo > hi, axis=1)
    out, sign = c["leaf_output"][first:last], c["leaf_sign"][first:last]
    coef, e = sign[:, None] * net["C"][out], sign * net["e"][out]
    on, off = lo >= 0, hi <= 0  # stable on, stable off
    pos, neg = ~on & ~off & (coef >= 0), ~on & ~off & (coef < 0)
    alpha = c["alpha"][first:last]
    bad = neg & ~empty[:, None] & ~((alpha >= a) & (alpha <= 1))
    if bad.any():
        leaf, q = (int(v) for v in np.argwhere(bad)[0])
        raise CertificateError(f"alpha[{first + leaf}, {q}] = {alpha[leaf, q]} outside "
                               f"[{a[q]}, 1]")
    with np.errstate(all="ignore"):
        width = hi - lo
        chord_slope, chord_cut = (hi - a * lo) / width, -(1 - a) * lo * hi / width
        lam = np.where(on, coef, np.where(off, a * coef, np.where(
            pos, coef * chord_slope, coef * alpha)))
        t = np.where(pos, coef * chord_cut, 0.0)
        np.add.at(lam, (rows, j), mu * s)  # mu s z_j >= 0 on the leaf's region
        np.add.at(t, (rows, j), mu * s * b[j])
        A, K = lam @ W, lam @ b + t.sum(1) + e
        size = np.abs(lam) @ np.abs(W)
        lower, upper, radius, beta = c["lower"], c["upper"], net["radius"], float(c["beta"])
        if len(lower) and not np.isnan(beta):
            p = c["box_p"][first:last]
            top = beta * _norms(A - p) + np.maximum(p * lower, p * upper).sum(1)
            big = beta * _norms(size + np.abs(p)) + np.abs(p) @ radius
        elif len(lower):
            top, big = np.maximum(A * lower, A * upper).sum(1), size @ radius
        else:
            top, big = beta * _norms(A), beta * _norms(size)
        big = big + np.abs(lam) @ net["reach"] + np.abs(t).sum(1) + np.abs(e)
        bound = top + K + 1e-9 * big + (n + d + 5) * net["R"] * _TINY
    return np.where(empty, -np.inf, bound)
