"""The certificate of a deeper pair (``coreset-verify/deep/1``, proofs_notes/bab.md,
"Certificate of a deeper pair"): Lemma B3's back-substitution, re-done in numpy."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..nets.model import read_layers
from ._common import DEEP_FORMAT, FUNC, TINY, first_ranges, relaxed, require, union_layer

#: Lemma B4's margin on the ranges, as the search computes them (twice the
#: proof's 1e-9, with Lemma B2's margin doubled too), and on the leaves.
_RANGE_MARGIN, _LEAF_MARGIN = 2e-9, 1e-9


def _layers(model: Any, name: str) -> list:
    """``[(W, b, slope), ..., (V, v)]``: affine, (leaky) ReLU, ..., affine, as
    :func:`~coreset_verify.nets.model.read_layers` reads it (the search's reading)."""
    layers = read_layers(model, func=FUNC, name=name)
    acts = [lay.activation for lay in layers]
    ok = len(layers) >= 2 and acts[-1] is None and all(
        a is not None and a.is_piecewise_linear for a in acts[:-1])
    require(ok, f"{name} must read as Linear -> ReLU or LeakyReLU(0 <= slope < 1) -> ... -> "
            f"Linear to match a {DEEP_FORMAT} certificate; it reads as "
            + " -> ".join("affine" + (f", {a.name}" if a else "") for a in acts))
    out = [(lay.weight, lay.bias, lay.activation.slope) for lay in layers[:-1]]
    return [*out, (layers[-1].weight, layers[-1].bias)]


def networks(c: dict, dims: dict, original: Any, pruned: Any) -> dict[str, Any]:
    """Item 2: the union layer, each network's deeper layers and output, and
    the range proofs' multipliers (``range_*`` keys) of every deeper layer."""
    f, g = _layers(original, "original"), _layers(pruned, "pruned")
    d, k = f[0][0].shape[1], len(c["scale"])
    require(g[0][0].shape[1] == d and len(f[-1][1]) == len(g[-1][1]) == k and
            len(c["lower"]) in (0, d), f"the models map R^{d} and R^{g[0][0].shape[1]} to "
            f"R^{len(f[-1][1])} and R^{len(g[-1][1])}; the certificate is for k = {k} outputs "
            f"and a box in R^{len(c['lower'])} (0: none)")
    W, b, a = union_layer(c, [f[0], g[0]])
    index = [np.flatnonzero(c[key] >= 0)[np.argsort(c[key][c[key] >= 0])]
             for key in ("index_f", "index_g")]  # union row of each network's neuron
    deeper = [[(w, bb, np.full(len(bb), s)) for w, bb, s in net[1:-1]] for net in (f, g)]
    widths = [len(lay[1]) for net in deeper for lay in net]
    require(sum(widths) == dims["w"], f"the deeper layers have {sum(widths)} neurons; the "
            f"certificate's proof_deep_alpha has {dims['w']} columns")
    net = {"W": W, "b": b, "a": a, "layers": deeper, "index": index,
           "out": [net[-1] for net in (f, g)], "ids": np.cumsum([len(b), *widths])[:-1],
           **first_ranges(W, b, c)}
    net["proofs"] = _range_proofs(c, dims, net)
    slopes = np.concatenate([lay[2] for lay_net in deeper for lay in lay_net] or [[]])
    arr = c["proof_deep_alpha"]
    require(np.all((arr >= slopes) & (arr <= 1)), "proof_deep_alpha has slopes outside [a, 1]")
    return net


def _range_proofs(c: dict, dims: dict, net: dict) -> dict:
    """The ``range_*`` arrays of every deeper layer, shapes and slopes checked."""
    proofs, n, p = {}, len(net["b"]), dims["p"]
    for N, layers in enumerate(net["layers"]):
        for layer, (_, bias, _) in enumerate(layers, start=1):
            tag, rows = f"{'fg'[N]}{layer}", 2 * len(bias)
            below = sum(len(lay[1]) for lay in layers[: layer - 1])
            want = {"alpha": (rows, n), "p": (rows, p), "lower": (rows, below)}
            got = {part: c.get(f"range_{part}_{tag}") for part in want}
            for part, shape in want.items():
                require(got[part] is not None and got[part].shape == shape, f"range_{part}_{tag}"
                        f" has shape {None if got[part] is None else got[part].shape}, "
                        f"expected {shape}")
            slopes = np.concatenate([lay[2] for lay in layers[: layer - 1]] or [[]])
            low = got["lower"]
            require(np.all((low >= slopes) & (low <= 1)), f"range_lower_{tag} has slopes "
                    "outside [a, 1]")
            proofs[(N, layer)] = got
    expected = {f"range_{part}_{'fg'[N]}{layer}" for N, layer in proofs
                for part in ("alpha", "p", "lower")}
    extra = sorted(key for key in c if key.startswith("range_") and key not in expected)
    require(not extra, f"unexpected keys {extra}")
    return proofs


def _substitute(layers: list, lam, const, mag, ranges: list, alphas: list, reach0, mus=None):
    """Lemma B3 from ``lam`` on the top layer's ``h`` down to ``h^0``, with
    Lemma B4's magnitude; ``mus`` the signed multipliers of deeper splits."""
    with np.errstate(all="ignore"):
        for layer in range(len(layers), 0, -1):
            W, b, a = layers[layer - 1]
            lo, hi = ranges[layer - 1]
            on, off = lo >= 0, hi <= 0
            unstable = ~(on | off)
            width = np.where(unstable, hi - lo, 1.0)
            q = (hi - a * lo) / width
            r = np.where(unstable, (a - q) * lo, 0.0)
            pos = lam > 0
            s = lam * np.where(on, 1.0, np.where(off, a, np.where(pos, q, alphas[layer - 1])))
            t = np.where(unstable & pos, lam * r, 0.0)
            reach = np.maximum(np.abs(lo), np.abs(hi))
            m = (np.abs(lam) * (reach + np.abs(r))).sum(1)
            if mus is not None:
                s = s + mus[layer - 1]
                m = m + (np.abs(mus[layer - 1]) * reach).sum(1)
            below = reach0 if layer == 1 else np.maximum(*(np.abs(v) for v in ranges[layer - 2]))
            under = (W.size + 3 * len(b)) * (max(np.max(below, initial=0.0), 1.0) + reach.max())
            mag = mag + m + (np.abs(s) * (below @ np.abs(W).T + np.abs(b))).sum(1) + \
                5e8 * TINY * under
            const = const + t.sum(1) + s @ b
            lam = s @ W
    return lam, const, mag


class _Tree:
    """Ranges of the deeper layers at every node needed, top-down as the
    search computes them (bab.md, "Certificate of a deeper pair")."""

    def __init__(self, c: dict, net: dict) -> None:
        self.c, self.net, self.memo = c, net, {}

    def first(self, path: tuple) -> tuple:
        """The union layer's ranges on the region of ``path``'s first-layer splits."""
        lo, hi = self.net["lo"].copy(), self.net["hi"].copy()
        n = len(lo)
        for j, side in path:
            if j < n and side > 0:
                lo[j] = max(lo[j], 0.0)
            elif j < n:
                hi[j] = min(hi[j], 0.0)
        return lo, hi

    def where(self, j: int) -> tuple:
        """``(N, layer, neuron)`` of a deeper neuron's number ``j``."""
        ids = self.net["ids"]
        at = int(np.searchsorted(ids, j, side="right") - 1)
        sizes = [len(lay) for lay in self.net["layers"]]
        N = 0 if at < sizes[0] else 1
        return N, at - (0 if N == 0 else sizes[0]), j - ids[at]

    def ranges(self, path: tuple) -> list:
        if path in self.memo:
            return self.memo[path]
        layers = self.net["layers"]
        if not path:
            out = [[(np.full(len(b), -np.inf), np.full(len(b), np.inf)) for _, b, _ in lay]
                   for lay in layers]
            todo = [(N, layer) for N in (0, 1) for layer in range(1, len(layers[N]) + 1)]
        else:
            out = [list(net) for net in self.ranges(path[:-1])]
            j, side = path[-1]
            if j < len(self.net["b"]):
                todo = [(N, layer) for N in (0, 1) for layer in range(1, len(layers[N]) + 1)]
            else:
                N, layer, q = self.where(j)
                lo, hi = (v.copy() for v in out[N][layer])
                lo[q], hi[q] = (max(lo[q], 0.0), hi[q]) if side > 0 else (lo[q], min(hi[q], 0.0))
                out[N][layer] = (lo, hi)
                todo = [(N, m) for m in range(layer + 2, len(layers[N]) + 1)]
        lo0, hi0 = self.first(path)
        for N, layer in todo:
            up, down = self._range(out, N, layer, lo0, hi0)
            lo, hi = out[N][layer - 1]
            out[N][layer - 1] = (np.maximum(lo, down), np.minimum(hi, up))
        self.memo[path] = out
        return out

    def _range(self, ranges: list, N: int, layer: int, lo0, hi0) -> tuple:
        net = self.net
        W, b, _ = net["layers"][N][layer - 1]
        proof, w = net["proofs"][(N, layer)], len(b)
        below = net["layers"][N][: layer - 1]
        cuts = np.cumsum([len(lay[1]) for lay in below])[:-1]
        alphas = np.split(proof["lower"], cuts, axis=1) if below else []
        const = np.concatenate([b, -b])
        coef, const, mag = _substitute(below, np.concatenate([W, -W]), const, np.abs(const),
                                       ranges[N][: layer - 1], alphas, self.reach0(N, lo0, hi0))
        bound = relaxed(net, self.union(N, coef), const, np.tile(lo0, (2 * w, 1)),
                        np.tile(hi0, (2 * w, 1)), proof["alpha"], 0.0,
                        proof["p"] if proof["p"].size else None,
                        lambda r, q: f"range_alpha_{'fg'[N]}{layer}[{r}, {q}]", 2.0)
        bound = bound + _RANGE_MARGIN * mag
        bound = np.where(np.isnan(bound), np.inf, bound)
        return bound[:w], -bound[w:]

    def reach0(self, N: int, lo0, hi0):
        return np.maximum(np.abs(lo0), np.abs(hi0))[self.net["index"][N]]

    def union(self, N: int, coef) -> np.ndarray:
        out = np.zeros((coef.shape[0], len(self.net["b"])))
        out[:, self.net["index"][N]] += coef
        return out


def bounds(c: dict, net: dict) -> np.ndarray:
    """Item 5: every leaf's bound, recomputed at the node its proof names."""
    tree, off = _Tree(c, net), c["split_offsets"]
    pairs: dict = {}
    for leaf, proof in enumerate(c["leaf_proof"].tolist()):
        depth = int(c["proof_depth"][proof])
        require(depth <= off[leaf + 1] - off[leaf], f"leaf {leaf}'s proof {proof} is at depth "
                f"{depth}, below the leaf (depth {off[leaf + 1] - off[leaf]})")
        path = tuple(zip(c["split_neuron"][off[leaf]:off[leaf] + depth].tolist(),
                         c["split_side"][off[leaf]:off[leaf] + depth].tolist(), strict=True))
        pairs.setdefault(path, []).append((leaf, proof))
    out = np.empty(len(c["leaf_output"]))
    for path, group in pairs.items():
        leaves, proofs = (np.array(v) for v in zip(*group, strict=True))
        out[leaves] = _node_bounds(tree, path, leaves, proofs)
    return out


def _node_bounds(tree: _Tree, path: tuple, leaves, proofs) -> np.ndarray:
    """The bounds of ``leaves``' specifications at the node ``path`` with
    their proofs' multipliers (Lemmas B3, B1, B2, B4)."""
    c, net = tree.c, tree.net
    ranges, (lo0, hi0) = tree.ranges(path), tree.first(path)
    n, m = len(net["b"]), len(leaves)
    out, sign = c["leaf_output"][leaves], c["leaf_sign"][leaves]
    scale = c["scale"][out]
    (_vf, of), (_vg, og) = net["out"]
    const = sign * (of[out] - og[out]) / scale
    mag, coef = np.abs(const), np.zeros((m, n))
    sides, split = np.zeros(len(c["proof_deep_mu"][0])), np.zeros(n)
    for j, side in path:
        if j < n:
            split[j] = side
        else:
            sides[j - n] = side
    cuts = np.cumsum([len(lay[1]) for lay_net in net["layers"] for lay in lay_net])[:-1]
    alphas = np.split(c["proof_deep_alpha"][proofs], cuts, axis=1)
    mus = np.split(c["proof_deep_mu"][proofs] * sides, cuts, axis=1)
    at = 0
    for N, s_net, (v, _) in ((0, 1.0, net["out"][0]), (1, -1.0, net["out"][1])):
        lay = net["layers"][N]
        lam = (s_net * sign / scale)[:, None] * v[out]
        part, const, mag = _substitute(lay, lam, const, mag, ranges[N], alphas[at:at + len(lay)],
                                       tree.reach0(N, lo0, hi0), mus[at:at + len(lay)])
        coef += tree.union(N, part)
        at += len(lay)
    p = c["proof_p"][proofs] if c["proof_p"].size else None
    bound = relaxed(net, coef, const, np.tile(lo0, (m, 1)), np.tile(hi0, (m, 1)),
                    c["proof_alpha"][proofs], c["proof_mu"][proofs] * split, p,
                    lambda r, q: f"proof_alpha[{proofs[r]}, {q}]") + _LEAF_MARGIN * mag
    empty = any(np.any(lo > hi) for lay_net in ranges for lo, hi in lay_net)
    return np.full(m, -np.inf) if empty else np.where(np.isnan(bound), np.inf, bound)
