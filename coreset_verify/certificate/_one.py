"""The one-hidden-layer certificate (``coreset-verify/one-hidden-layer/1``,
proofs_notes/bab.md, "Certificate")."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..nets.model import read_layers
from ._common import FORMAT, FUNC, first_ranges, relaxed, require, union_layer

_BLOCK = 1 << 20  # entries of one (leaves, max(n, d)) block of the leaf bounds


def networks(c: dict, original: Any, pruned: Any) -> dict[str, Any]:
    """Item 2: the union layer of bab.md's "Setting" and the coefficients of (1)."""
    read = []
    for model, name in ((original, "original"), (pruned, "pruned")):
        layers = read_layers(model, func=FUNC, name=name)
        acts = [lay.activation for lay in layers]
        require(len(layers) == 2 and acts[0] is not None and acts[0].is_piecewise_linear
                and acts[1] is None, f"{name} must read as Linear -> ReLU or LeakyReLU(0 <= "
                f"slope < 1) -> Linear to match a {FORMAT} certificate; it reads as "
                + " -> ".join("affine" + (f", {a.name}" if a else "") for a in acts))
        read.append((layers[0].weight, layers[0].bias, acts[0].slope, layers[1].weight,
                     layers[1].bias))
    (wf, bf, af, vf, of), (wg, bg, ag, vg, og) = read
    d, k, db = wf.shape[1], len(c["scale"]), len(c["lower"])
    require(wg.shape[1] == d and len(of) == len(og) == k and db in (0, d), f"the models map "
            f"R^{d} and R^{wg.shape[1]} to R^{len(of)} and R^{len(og)}; the certificate is for "
            f"k = {k} outputs and a box in R^{db} (0: none)")
    W, b, a = union_layer(c, [(wf, bf, af), (wg, bg, ag)])
    F, G = c["index_f"], c["index_g"]
    Cf, Cg = np.where(F >= 0, vf[:, F], 0.0), np.where(G >= 0, vg[:, G], 0.0)
    return {"W": W, "b": b, "a": a, "C": (Cf - Cg) / c["scale"][:, None],
            "e": (of - og) / c["scale"], **first_ranges(W, b, c)}


def bounds(c: dict, net: dict) -> np.ndarray:
    """Item 5: every leaf's recomputed bound, in blocks of leaves."""
    nl, step = len(c["leaf_output"]), max(1, _BLOCK // max(net["W"].shape))
    return np.concatenate([_block(c, net, s, min(s + step, nl)) for s in range(0, nl, step)])


def _block(c: dict, net: dict, first: int, last: int) -> np.ndarray:
    """Lemma B1's bound plus Lemma B2's margin, leaves ``first:last``."""
    m, n = last - first, len(net["b"])
    ends = c["split_offsets"][first:last + 1]
    rows, span = np.repeat(np.arange(m), np.diff(ends)), slice(ends[0], ends[-1])
    j, s, mu = c["split_neuron"][span], c["split_side"][span], c["split_mu"][span]
    lo, hi = np.tile(net["lo"], (m, 1)), np.tile(net["hi"], (m, 1))
    lo[rows[s > 0], j[s > 0]] = np.maximum(lo[rows[s > 0], j[s > 0]], 0.0)
    hi[rows[s < 0], j[s < 0]] = np.minimum(hi[rows[s < 0], j[s < 0]], 0.0)
    signed = np.zeros((m, n))
    signed[rows, j] = mu * s  # a neuron is split once on a path (item 4)
    out, sign = c["leaf_output"][first:last], c["leaf_sign"][first:last]
    p = c["box_p"][first:last] if c["box_p"].size else None
    return relaxed(net, sign[:, None] * net["C"][out], sign * net["e"][out], lo, hi,
                   c["alpha"][first:last], signed, p, lambda r, q: f"alpha[{first + r}, {q}]")
