"""Branch and bound on the difference of two deeper (leaky) ReLU networks.

The two networks are bounded jointly: each specification ``sigma (f_i -
g_i) / scale_i`` is back-substituted through each network's deeper layers
(Lemma B3 of proofs_notes/bab.md) down to the union first layer that the two
share, where their coefficients add (and cancel on the shared neurons), and
the resulting one-hidden-layer form is bounded by Lemma B1 (``bab.py``). The
deeper layers' ranges come from the same computation, layer by layer. Nodes
split first-layer neurons; a child's ranges and bound are intersected with
its parent's. Every bound carries Lemma B2's and Lemma B4's rounding margins,
and every iterate of the optimiser is sound, so stopping early is safe.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import numpy as np

from . import bab
from ._intervals import interval_bounds
from ._problem import Problem
from ._result import NOT_APPLICABLE, TIME_LIMIT

__all__ = ["DEEP_CERTIFICATE_FORMAT", "DeepPair", "deep_applies", "deep_bounds",
           "deep_branch_and_bound", "deep_pair", "write_deep_certificate"]

#: Adam steps: root specifications and root ranges, children's bounds, and
#: children's ranges (warm-started from the root's multipliers).
ROOT_STEPS, CHILD_STEPS, RANGE_STEPS = 300, 25, 0
#: Most multiply-adds of one evaluation of a layer's range rows: a larger layer
#: (conv networks) is bounded in chunks of its neurons, with the deadline
#: checked before each chunk (about a second of work each, on one core).
CHUNK_WORK = 2**28
#: Relative margin of Lemma B4 (twice the 1e-9 of the proof).
SUBSTITUTION_MARGIN = 2e-9


@dataclass(frozen=True)
class DeepPair:
    """Two networks over one union first layer (bab.md, Lemma B3).

    ``first``: the union layer as a :class:`~.bab.DifferenceLayer` (its
    ``coef``/``const`` unused); ``layers[N]``: network ``N``'s further hidden
    layers ``(W, b, slope)``; ``out[N]``: its output layer ``(V, v)``;
    ``index[N]``: the union row of each of its first-layer neurons.
    """

    first: bab.DifferenceLayer
    layers: tuple
    out: tuple
    index: tuple
    scale: np.ndarray

    @property
    def k(self) -> int:
        """Outputs."""
        return len(self.scale)


def deep_applies(problem: Problem) -> bool:
    """Whether the pair is two (leaky) ReLU networks with a linear output of
    which at least one has two or more hidden layers (one-hidden-layer pairs
    go to :func:`.bab.branch_and_bound`)."""
    nets = (problem.f, problem.g)
    if max(len(net) for net in nets) < 3 or min(len(net) for net in nets) < 2:
        return False
    if any(net[-1].activation is not None for net in nets):
        return False
    hidden = [layer.activation for net in nets for layer in net[:-1]]
    return all(a is not None and a.is_piecewise_linear for a in hidden)


def deep_pair(problem: Problem, pre0) -> DeepPair | None:
    """The :class:`DeepPair` of the problem (``pre0``: the union layer's
    ranges), or ``None`` where :func:`deep_applies` is false."""
    if not deep_applies(problem):
        return None
    sh = problem.shared
    nets = (problem.f, problem.g)
    n = len(sh.bias)
    slope = np.array([a.slope for a in sh.activations], dtype=np.float64)
    lo, hi = np.asarray(pre0[0], float), np.asarray(pre0[1], float)
    pad = bab.RANGE_MARGIN * (np.abs(lo) + np.abs(hi)) + 1e-300
    first = bab.DifferenceLayer(sh.weight, sh.bias, slope, np.zeros((1, n)), np.zeros(1),
                                lo - pad, hi + pad, np.full(n, -1), np.full(n, -1),
                                problem.domain)
    layers = tuple(tuple((lay.weight, lay.bias, np.full(len(lay.bias), lay.activation.slope))
                         for lay in net[1:-1]) for net in nets)
    out = tuple((net[-1].weight, net[-1].bias) for net in nets)
    return DeepPair(first, layers, out, (np.asarray(sh.index_f), np.asarray(sh.index_g)),
                    np.asarray(problem.scale, dtype=np.float64))


class _Torch:
    """The pair as float64 tensors on one device."""

    def __init__(self, pair: DeepPair, device) -> None:
        import torch

        def t(v):
            return torch.as_tensor(np.asarray(v, dtype=np.float64), device=device)

        self.pair = pair
        self.ts = bab._Tensors.of(pair.first, device)
        self.layers = [[(t(w), t(b), t(a)) for w, b, a in net] for net in pair.layers]
        self.out = [(t(v), t(c)) for v, c in pair.out]
        self.index = [torch.as_tensor(i, device=device) for i in pair.index]
        self.scale = t(pair.scale)
        self.n = pair.first.n
        self.device = device


class _Expired(Exception):
    """The deadline passed while a large layer's ranges were being bounded."""


def _relax(lam, lo, hi, a, alpha) -> tuple:
    """Lemma B1's lines for ``lam . phi(z)``, ``z in [lo, hi]``: slopes ``s``
    and intercepts ``t`` (B, w), and the step's magnitude (B,) for Lemma B4."""
    import torch

    on, off = lo >= 0, hi <= 0
    unstable = ~(on | off)
    width = torch.where(unstable, hi - lo, torch.ones_like(lo))
    q = (hi - a * lo) / width
    r = torch.where(unstable, (a - q) * lo, torch.zeros_like(lo))
    pos = lam > 0
    slope = torch.where(on, 1.0, torch.where(off, a, torch.where(pos, q, alpha)))
    s = lam * slope
    t = torch.where(unstable & pos, lam * r, torch.zeros_like(lam))
    reach = torch.maximum(lo.abs(), hi.abs())
    mag = (lam.abs() * (reach + r.abs())).sum(1)
    return s, t, mag


def _substitute(net, lam, const, mag, ranges, alphas, top: int, reach0,
                mus=None, sides=None) -> tuple:
    """Lemma B3 from ``lam`` on ``h^top`` of one network down to its
    first-layer outputs ``h^0``; returns ``(coef on h^0, const, magnitude,
    lams)``, ``lams[l - 1]`` the coefficients met on ``h^l``.

    The magnitude is Lemma B4's ``M3`` plus ``5e8`` times its underflow term
    (each of the step's products may lose ``2^-1075`` times the size of the
    value it multiplies), so that ``2e-9`` times it covers both. ``mus`` and
    ``sides`` (per layer, (B, w)): multipliers ``mu >= 0`` of the deeper
    splits ``side z_j >= 0``, added as ``mu side z_j`` (bab.md, Lemma B3)."""
    import torch

    lams = [None] * top
    for layer in range(top, 0, -1):
        lams[layer - 1] = lam
        w, b, a = net[layer - 1]
        lo, hi = ranges[layer - 1]
        s, t, m = _relax(lam, lo, hi, a, alphas[layer - 1])
        if mus is not None:
            s = s + mus[layer - 1] * sides[layer - 1]
            m = m + (mus[layer - 1].abs() * torch.maximum(lo.abs(), hi.abs())).sum(1)
        below = reach0 if layer == 1 else torch.maximum(ranges[layer - 2][0].abs(),
                                                        ranges[layer - 2][1].abs())
        under = (w.numel() + 3 * len(b)) * (below.amax(1).clamp(min=1.0)
                                            + torch.maximum(lo.abs(), hi.abs()).amax(1))
        mag = mag + m + (s.abs() * (below @ w.abs().T + b.abs())).sum(1) + 5e8 * 1e-300 * under
        const = const + t.sum(1) + s @ b
        lam = s @ w
    return lam, const, mag, lams


def _union(tt: _Torch, parts) -> object:
    """Scatter each network's first-layer coefficients onto the union layer."""
    import torch

    coef = torch.zeros((parts[0].shape[0], tt.n), dtype=parts[0].dtype, device=tt.device)
    for idx, c in zip(tt.index, parts, strict=True):
        coef = coef.index_add(1, idx, c)
    return coef


def _reach0(tt: _Torch, net: int, on, off):
    """``max(|L|, |U|)`` of the network's first-layer neurons under the splits."""
    import torch

    lo = torch.where(on, tt.ts.lo.clamp(min=0.0), tt.ts.lo)
    hi = torch.where(off, tt.ts.hi.clamp(max=0.0), tt.ts.hi)
    return torch.maximum(lo.abs(), hi.abs())[:, tt.index[net]]


def _form(tt: _Torch, spec, ranges, alphas, on, off, mus=None, sides=None) -> tuple:
    """Specification rows ``spec`` (B,) back-substituted onto the union layer:
    ``(coef (B, n), const (B,), magnitude (B,), lams)``, ``lams[N][l - 1]``
    the coefficients on network ``N``'s ``h^l`` (for the branching)."""
    import torch

    k = tt.pair.k
    out_i, sign = spec % k, torch.where(spec < k, 1.0, -1.0).to(tt.scale.dtype)
    const = sign * (tt.out[0][1][out_i] - tt.out[1][1][out_i]) / tt.scale[out_i]
    mag = const.abs()
    parts, lams = [], []
    for net, s_net in ((0, 1.0), (1, -1.0)):
        v = tt.out[net][0]
        lam = (s_net * sign / tt.scale[out_i])[:, None] * v[out_i]
        c, const, mag, met = _substitute(
            tt.layers[net], lam, const, mag, ranges[net], alphas[net], len(tt.layers[net]),
            _reach0(tt, net, on, off), None if mus is None else mus[net],
            None if sides is None else sides[net])
        parts.append(c)
        lams.append(met)
    return _union(tt, parts), const, mag, lams


def _range_form(tt: _Torch, net: int, layer: int, ranges, alphas, on, off,
                neurons=None) -> tuple:
    """Rows ``+-e_j`` on ``z^layer`` of one network, back-substituted onto the
    union layer, for every node (B) and neuron (w; ``neurons`` only, when
    given): (2 B w, ...) tensors, ordered node, sign (+ then -), neuron.
    ``alphas``: the lower slopes of the layers below, one row per range row."""
    import torch

    w, b, _ = tt.layers[net][layer - 1]
    if neurons is not None:
        w, b = w[neurons], b[neurons]
    width, batch = len(b), on.shape[0]
    sign = torch.tensor([1.0, -1.0], dtype=w.dtype, device=w.device)
    lam = (sign[:, None, None] * w[None]).reshape(2 * width, -1).repeat(batch, 1)
    const = (sign[:, None] * b[None]).reshape(-1).repeat(batch)
    rep = 2 * width

    def per_row(v):
        return v.repeat_interleave(rep, dim=0)

    sub_ranges = [(per_row(lo), per_row(hi)) for lo, hi in ranges[net][: layer - 1]]
    sub_alphas = alphas[: layer - 1]  # already one row per range row
    on_r, off_r = per_row(on), per_row(off)
    mag = const.abs()
    c, const, mag, _ = _substitute(tt.layers[net], lam, const, mag, sub_ranges, sub_alphas,
                                   layer - 1, _reach0(tt, net, on_r, off_r))
    parts = [c, torch.zeros((c.shape[0], len(tt.index[1 - net])), dtype=c.dtype,
                            device=c.device)]
    if net == 1:
        parts.reverse()
    return _union(tt, parts), const, mag, on_r, off_r


def _closer(lo, hi, a):
    """Default lower slopes: the side of the larger part of the range."""
    import torch

    return torch.where(hi >= -lo, torch.ones_like(lo), a.expand_as(lo))


def _minimise(tt: _Torch, build, on, off, alpha0, mu, p, extra, kinds, steps: int,
              deadline: float) -> list:
    """Projected Adam on ``(alpha0, mu, p, *extra)`` minimising the
    (unmargined) bound of the rows ``build(extra)`` returns; each row keeps
    its best iterate. ``kinds[i]``: ``("alpha", a)`` (projected on ``[a, 1]``)
    or ``("mu", sides)`` (``>= 0`` where ``sides != 0``, else 0)."""
    import torch

    ts = tt.ts
    split = on | off
    params = [alpha0.clone(), mu.clone()] + ([p.clone()] if p is not None else []) + \
        [d.clone() for d in extra]
    best = [q.detach().clone() for q in params]
    if steps <= 0:
        return best
    for q in params:
        q.requires_grad_(True)
    n_fixed = 3 if p is not None else 2
    with torch.no_grad():
        coef0 = build(params[n_fixed:])[0]
    scale = float(coef0.abs().amax().clamp_min(1e-300))
    lrs = [bab._LR, bab._LR * scale] + ([bab._LR * scale] if p is not None else []) + \
        [bab._LR if kind == "alpha" else bab._LR * scale for kind, _ in kinds]
    opt = torch.optim.Adam([{"params": [q], "lr": r} for q, r in zip(params, lrs,
                                                                    strict=True)])
    decay = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=bab._LR_DECAY)
    w = ts.w if ts.box is not None else ts.w_opt
    best_val = torch.full((alpha0.shape[0],), math.inf, dtype=alpha0.dtype,
                          device=alpha0.device)
    for step in range(steps + 1):
        last = step == steps or time.perf_counter() > deadline
        opt.zero_grad()
        coef, const, _ = build(params[n_fixed:])
        tsb = dataclasses.replace(ts, coef=coef, const=const)
        rows = torch.arange(coef.shape[0], device=coef.device)
        lam, kk = bab._lines(tsb, rows, on, off, params[0], params[1])[:2]
        val = bab._concretise(tsb, lam @ w, params[2] if p is not None else None) + kk
        with torch.no_grad():
            better = val < best_val
            best_val = torch.where(better, val, best_val)
            for kept, q in zip(best, params, strict=True):
                kept.copy_(torch.where(better[:, None], q, kept))
        if last:
            break
        val.sum().backward()
        opt.step()
        decay.step()
        with torch.no_grad():
            params[0].copy_(torch.minimum(torch.maximum(params[0], ts.a),
                                          torch.ones_like(params[0])))
            params[1].copy_(torch.where(split, params[1].clamp(min=0.0), 0.0))
            for q, (kind, arg) in zip(params[n_fixed:], kinds, strict=True):
                if kind == "alpha":
                    q.copy_(torch.minimum(torch.maximum(q, arg), torch.ones_like(q)))
                else:
                    q.copy_(torch.where(arg != 0, q.clamp(min=0.0), 0.0))
    return best


def _sound_rows(tt: _Torch, build, on, off, params, has_p: bool) -> tuple:
    """Sound bounds (B,) of the rows at ``params`` (Lemmas B1-B4), and the
    relaxed maximisers (B, d) with the first-layer coefficients."""
    import torch

    n_fixed = 3 if has_p else 2
    coef, const, mag = build(params[n_fixed:])
    tsb = dataclasses.replace(tt.ts, coef=coef, const=const)
    rows = torch.arange(coef.shape[0], device=coef.device)
    bound, x, pieces = bab._sound(tsb, rows, on, off, params[0], params[1],
                                  params[2] if has_p else None)
    bound = bound + SUBSTITUTION_MARGIN * mag
    bound = torch.where(torch.isnan(bound), math.inf, bound)
    return bound, x, coef, pieces


@dataclass
class _DNode:
    """A node: specification, first-layer splits, multipliers, deeper ranges
    (with the deeper splits applied to them), bound. ``branch``: the neuron
    to split next, ``(-1, 0, j)`` for union neuron ``j`` or ``(N, l, j)`` for
    neuron ``j`` of network ``N``'s ``z^l``; ``None`` when none is left.
    ``split_layer``: the deeper layer its last split was in (0: the first).
    ``path``: every split in order, ``(N, l, j, side)`` (``(-1, 0, j, side)``
    for the first layer); ``proof``: ``(depth, alpha0, mu, p, deeper)`` of
    the ancestor (or the node itself, ``depth == len(path)``) whose
    multipliers give ``bound`` (for the certificate)."""

    spec: int
    splits: tuple
    alpha0: np.ndarray
    mu: np.ndarray
    p: np.ndarray | None
    deeper: list
    ranges: list
    bound: float = math.inf
    branch: tuple | None = None
    split_layer: tuple = (-1, 0)
    polished: bool = False
    deep_splits: tuple = ()
    path: tuple = ()
    proof: tuple | None = None


def _split_masks(tt: _Torch, nodes) -> tuple:
    import torch

    on = torch.zeros((len(nodes), tt.n), dtype=torch.bool, device=tt.device)
    off = torch.zeros_like(on)
    for row, nd in enumerate(nodes):
        for j, s in nd.splits:
            (on if s > 0 else off)[row, j] = True
    return on, off


def _chunks(tt: _Torch, net: int, layer: int, batch: int) -> list:
    """The neurons of ``z^layer`` of network ``net`` in chunks whose range rows
    for ``batch`` nodes take at most :data:`CHUNK_WORK` multiply-adds per
    evaluation (``[None]``: the whole layer at once)."""
    import torch

    width = len(tt.layers[net][layer - 1][1])
    per_row = sum(w.numel() for w, _, _ in tt.layers[net][:layer]) + tt.ts.w.numel()
    size = max(1, CHUNK_WORK // (2 * batch * per_row))
    if size >= width:
        return [None]
    return [torch.arange(s, min(s + size, width), device=tt.device)
            for s in range(0, width, size)]


def _rows_of(neurons, width: int):
    """Range rows (``+`` then ``-``) of ``neurons`` within one node's ``2 width``."""
    import torch

    return torch.cat([neurons, neurons + width])


def _bound_ranges(tt: _Torch, nodes, cache: dict, steps: int,
                  deadline: float, nets=(0, 1), start: int = 1) -> None:
    """Ranges of the deeper layers ``start, start + 1, ...`` of ``nets`` for
    ``nodes``, layer by layer, intersected with each node's present ranges
    (bab.md, Lemma B3). ``cache[(net, layer)]``: the root's optimised
    multipliers of that layer's range rows (``alpha0``, ``mu``, ``p``, then
    the lower layers' slopes), filled at the root and the start of every
    later call (the certificate's range proofs).

    A layer too large for one evaluation (:func:`_chunks`) is bounded chunk
    by chunk, and :class:`_Expired` is raised at the deadline before a chunk;
    the chunks already done stay intersected in (each is sound)."""

    on, off = _split_masks(tt, nodes)
    has_p = tt.ts.box is not None and tt.ts.beta is not None
    for net in nets:
        for layer in range(start, len(tt.layers[net]) + 1):
            ranges = _stack_ranges(tt, nodes)  # with the layers below just bounded
            chunks = _chunks(tt, net, layer, len(nodes))
            firsts = []
            for neurons in chunks:
                if len(chunks) > 1 and time.perf_counter() > deadline:
                    raise _Expired
                firsts.append(_bound_chunk(tt, nodes, cache, steps, deadline, (net, layer),
                                           ranges, on, off, neurons, has_p))
            if (net, layer) not in cache:
                cache[(net, layer)] = _joined(firsts)


def _joined(parts: list) -> list:
    """The first node's multipliers of each chunk (rows ``+`` then ``-`` of its
    neurons) as those of the whole layer (``+`` rows of every neuron, then ``-``)."""
    import torch

    if len(parts) == 1:
        return parts[0]
    out = []
    for column in zip(*parts, strict=True):
        if column[0] is None:
            out.append(None)
            continue
        halves = [(v[: len(v) // 2], v[len(v) // 2:]) for v in column]
        out.append(torch.cat([h[0] for h in halves] + [h[1] for h in halves]))
    return out


def _bound_chunk(tt: _Torch, nodes, cache: dict, steps: int, deadline: float, key,
                 ranges, on, off, neurons, has_p: bool) -> list:
    """Bound the range rows of ``neurons`` (``None``: all) of layer ``key`` for
    every node and intersect them in; returns the first node's optimised
    multipliers (``alpha0``, ``mu``, ``p`` or ``None``, lower slopes) when
    ``key`` is not cached yet, else ``None``."""
    import torch

    net, layer = key
    width = len(tt.layers[net][layer - 1][1])
    part = width if neurons is None else len(neurons)
    rep = 2 * part  # range rows per node
    alphas = [_closer(lo, hi, a).repeat_interleave(rep, dim=0)
              for (lo, hi), (_, _, a) in zip(ranges[net][: layer - 1],
                                             tt.layers[net][: layer - 1], strict=True)]

    def build(deeper):
        return _range_form(tt, net, layer, ranges, deeper, on, off, neurons)[:3]

    _, _, _, on_r, off_r = _range_form(tt, net, layer, ranges, alphas, on, off, neurons)
    rows = on_r.shape[0]
    if key in cache:
        pick = slice(None) if neurons is None else _rows_of(neurons, width)
        alpha0, mu, p, *alphas = (None if q is None else q[pick].repeat(len(nodes), 1)
                                  for q in cache[key])
    else:
        alpha0 = tt.ts.a.expand(rows, -1).clone()
        alpha0 = torch.where(tt.ts.hi >= -tt.ts.lo, 1.0, alpha0)
        mu = torch.zeros((rows, tt.n), dtype=alpha0.dtype, device=tt.device)
        p = (torch.zeros((rows, tt.ts.w.shape[1]), dtype=alpha0.dtype,
                         device=tt.device) if has_p else None)
    kinds = [("alpha", a) for _, _, a in tt.layers[net][: layer - 1]]
    params = _minimise(tt, build, on_r, off_r, alpha0, mu, p, alphas, kinds, steps,
                       deadline)
    with torch.no_grad():
        bound = _sound_rows(tt, build, on_r, off_r, params, has_p)[0]
    bound = bound.reshape(len(nodes), 2, part).cpu().numpy()
    where = slice(None) if neurons is None else neurons.cpu().numpy()
    for row, nd in enumerate(nodes):
        lo, hi = (v.copy() for v in nd.ranges[net][layer - 1])
        lo[where] = np.maximum(lo[where], -bound[row, 1])
        hi[where] = np.minimum(hi[where], bound[row, 0])
        nd.ranges[net][layer - 1] = (lo, hi)
    if key in cache:
        return None
    first = [v[:rep].detach().clone() for v in params]
    return [first[0], first[1], first[2] if has_p else None, *first[3 if has_p else 2:]]


def _stack_ranges(tt: _Torch, nodes) -> list:
    import torch

    return [[tuple(torch.as_tensor(np.stack([nd.ranges[m][li][s] for nd in nodes]),
                                   device=tt.device) for s in (0, 1))
             for li in range(len(tt.layers[m]))] for m in (0, 1)]


def _bound_nodes(tt: _Torch, nodes, steps: int, deadline: float) -> tuple:
    """Optimise and soundly bound the nodes' specifications in place (each
    bound at most the node's present one); returns the relaxed maximisers
    (B, d)."""
    import torch

    on, off = _split_masks(tt, nodes)
    ranges = _stack_ranges(tt, nodes)
    spec = torch.as_tensor([nd.spec for nd in nodes], device=tt.device)
    has_p = nodes[0].p is not None

    m_f, m_g = len(tt.layers[0]), len(tt.layers[1])
    sides = _deep_sides(tt, nodes)

    def per_net(flat):  # alphas (f's layers, g's layers), then multipliers
        return [flat[:m_f], flat[m_f:m_f + m_g]], [flat[m_f + m_g:2 * m_f + m_g],
                                                     flat[2 * m_f + m_g:]]

    def build(deeper):
        alphas, mus = per_net(deeper)
        return _form(tt, spec, ranges, alphas, on, off, mus, sides)[:3]

    def stacked(values):
        return torch.as_tensor(np.stack(values), device=tt.device)

    alpha0 = stacked([nd.alpha0 for nd in nodes])
    mu = stacked([nd.mu for nd in nodes])
    p = stacked([nd.p for nd in nodes]) if has_p else None
    deeper = [stacked([nd.deeper[i] for nd in nodes]) for i in range(len(nodes[0].deeper))]
    kinds = [("alpha", a) for net in tt.layers for _, _, a in net] + \
        [("mu", side) for net in sides for side in net]
    params = _minimise(tt, build, on, off, alpha0, mu, p, deeper, kinds, steps, deadline)
    n_fixed = 3 if has_p else 2
    with torch.no_grad():
        bound, x, coef, pieces = _sound_rows(tt, build, on, off, params, has_p)
        alphas, mus = per_net(params[n_fixed:])
        lams = _form(tt, spec, ranges, alphas, on, off, mus, sides)[3]
        choice = _branch_choice(tt, coef, pieces, lams, ranges)
    bounds = bound.cpu().numpy()
    arrays = [q.detach().cpu().numpy() for q in params]
    for row, nd in enumerate(nodes):
        nd.alpha0, nd.mu = arrays[0][row], arrays[1][row]
        if has_p:
            nd.p = arrays[2][row]
        nd.deeper = [a[row] for a in arrays[n_fixed:]]
        nd.branch = choice[row]
        mine = float(bounds[row])
        if any(np.any(lo > hi) for net in nd.ranges for lo, hi in net):
            mine = -math.inf  # an empty region (Lemma B1)
        if mine < nd.bound or nd.proof is None:
            nd.bound = min(nd.bound, mine)
            nd.proof = (len(nd.path), nd.alpha0, nd.mu, nd.p, nd.deeper)
    return x


def _deep_sides(tt: _Torch, nodes) -> list:
    """``sides[N][l - 1]`` (B, w): +1/-1 where a deeper split of network ``N``'s
    ``z^l`` holds, 0 elsewhere."""
    import torch

    out = [[torch.zeros((len(nodes), len(b)), dtype=torch.float64, device=tt.device)
            for _, b, _ in net] for net in tt.layers]
    for row, nd in enumerate(nodes):
        for net, layer, j, side in nd.deep_splits:
            out[net][layer - 1][row, j] = float(side)
    return out


def _static_gap(lam, lo, hi, a):
    """How much the relaxation of ``lam_j phi(z_j)`` can exceed it on
    ``[L_j, U_j]``: the chord's gap at 0 for ``lam_j > 0``, the best lower
    line's for ``lam_j < 0``; ``-inf`` for stable neurons (split ones included)."""
    import torch

    unstable = (lo < 0) & (hi > 0)
    width = torch.where(unstable, hi - lo, torch.ones_like(lo))
    pos = lam * (1 - a) * (-lo) * hi / width
    neg = -lam * (1 - a) * torch.minimum(hi, -lo)
    gap = torch.where(lam > 0, pos, neg)
    return torch.where(unstable & (lam != 0) & torch.isfinite(gap), gap, -math.inf)


def _branch_choice(tt: _Torch, coef, pieces, lams, ranges) -> list:
    """Per row, the unstable neuron to split next, first layer or deeper
    (``_DNode.branch``): the largest static relaxation gap (bab.md, Lemma B3,
    branching); ``None`` when every neuron is stable or split."""
    import torch

    lo, hi = pieces[0], pieces[1]
    groups = [((-1, 0), _static_gap(coef, lo, hi, tt.ts.a))]
    for net in (0, 1):
        for layer, lam in enumerate(lams[net], start=1):
            r_lo, r_hi = ranges[net][layer - 1]
            groups.append(((net, layer), _static_gap(lam, r_lo, r_hi,
                                                     tt.layers[net][layer - 1][2])))
    scores = torch.cat([g for _, g in groups], dim=1)
    best, flat = scores.max(1)
    offsets = np.cumsum([0] + [g.shape[1] for _, g in groups])
    out = []
    for value, index in zip(best.cpu().numpy(), flat.cpu().numpy(), strict=True):
        if not math.isfinite(value):
            out.append(None)
            continue
        group = int(np.searchsorted(offsets, index, side="right") - 1)
        out.append((*groups[group][0], int(index - offsets[group])))
    return out


def _roots(tt: _Torch, deadline: float, cache: dict, fallback=None) -> list:
    """Every specification's root node, with the root ranges bounded.

    When the deadline passes first (:class:`_Expired`, large layers only), the
    ranges not bounded yet are the interval ranges ``fallback`` (``[f_pre,
    g_pre]``, sound); without ``fallback`` (certificates, whose checker
    recomputes every range from the cached multipliers) it is raised."""
    pair = tt.pair
    lay = pair.first
    has_p = tt.ts.box is not None and tt.ts.beta is not None
    alpha0 = np.where(lay.hi >= -lay.lo, 1.0, lay.slope)
    template = _DNode(0, (), alpha0, np.zeros(lay.n), np.zeros(lay.weight.shape[1])
                      if has_p else None, [],
                      [[(np.full(len(b), -np.inf), np.full(len(b), np.inf))
                        for _, b, _ in net] for net in pair.layers])
    try:
        _bound_ranges(tt, [template], cache, ROOT_STEPS, deadline)
    except _Expired:
        if fallback is None:
            raise
        template.ranges = [[(np.maximum(lo, flo), np.minimum(hi, fhi))
                            for (lo, hi), (flo, fhi) in zip(net, fall[:len(net)], strict=True)]
                           for net, fall in zip(template.ranges, fallback, strict=True)]
    deeper = [np.where(hi >= -lo, 1.0, a) for net, ranges in zip(pair.layers,
              template.ranges, strict=True) for (_, _, a), (lo, hi) in zip(net, ranges,
                                                                            strict=True)]
    deeper += [np.zeros(len(b)) for net in pair.layers for _, b, _ in net]
    return [dataclasses.replace(template, spec=s, deeper=[d.copy() for d in deeper],
                                ranges=[list(r) for r in template.ranges])
            for s in range(2 * pair.k)]


def _children(node: _DNode) -> list:
    """The two children splitting the node's chosen neuron: a first-layer
    split is added to ``splits`` (``mu_j = 0``); a deeper one clamps the
    neuron's range at 0 (its region's constraint, bab.md, Lemma B3)."""
    net, layer, j = node.branch
    out = []
    for side in (1, -1):
        child = _DNode(node.spec, node.splits, node.alpha0.copy(), node.mu.copy(),
                       None if node.p is None else node.p.copy(),
                       [d.copy() for d in node.deeper], [list(r) for r in node.ranges],
                       node.bound, None, (net, layer), False, node.deep_splits,
                       (*node.path, (net, layer, j, side)), node.proof)
        if net < 0:
            child.mu[j] = 0.0
            child.splits = (*node.splits, (j, side))
        else:
            lo, hi = (v.copy() for v in node.ranges[net][layer - 1])
            if side > 0:
                lo[j] = max(lo[j], 0.0)
            else:
                hi[j] = min(hi[j], 0.0)
            child.ranges[net][layer - 1] = (lo, hi)
            child.deep_splits = (*node.deep_splits, (net, layer, j, side))
        out.append(child)
    return out


def deep_bounds(problem: Problem, pre0, *, splits=None, steps: int = ROOT_STEPS,
                device="cpu") -> np.ndarray | None:
    """Sound bounds of every specification (``2k``: ``+`` then ``-`` per
    output) on the region of ``splits``, or ``None`` when :func:`deep_pair`
    does not apply (tests).

    Parameters
    ----------
    problem : Problem
    pre0 : tuple of numpy.ndarray
        Sound ranges of the union first layer on the domain.
    splits : sequence of ``(neuron, side)`` or None
        First-layer splits (``side`` +1: ``z_j >= 0``, -1: ``z_j <= 0``); the
        deeper ranges are re-bounded under them (``steps`` Adam steps) and
        intersected with the root's, as for a child.
    steps : int
        Adam steps of the specifications' bounds.

    Returns
    -------
    numpy.ndarray, shape (2k,) or None
    """
    pair = deep_pair(problem, pre0)
    if pair is None:
        return None
    tt = _Torch(pair, device)
    cache = {}
    nodes = _roots(tt, math.inf, cache)
    if splits:
        for nd in nodes:
            nd.splits = tuple((int(j), int(s)) for j, s in splits)
        _bound_ranges(tt, nodes, cache, steps, math.inf)
    _bound_nodes(tt, nodes, steps, math.inf)
    return np.array([nd.bound for nd in nodes])


def _rebound(tt: _Torch, children: list, cache: dict, deadline: float) -> None:
    """Re-bound the deeper ranges a split can tighten: every layer after a
    first-layer split, the same network's later layers after a deeper one."""
    groups: dict = {}
    for nd in children:
        groups.setdefault(nd.split_layer, []).append(nd)
    for (net, layer), group in groups.items():
        if net < 0:
            _bound_ranges(tt, group, cache, RANGE_STEPS, deadline)
        elif layer < len(tt.layers[net]):
            _bound_ranges(tt, group, cache, RANGE_STEPS, deadline, (net,), layer + 1)


def deep_branch_and_bound(problem: Problem, pre0, *, deadline: float = math.inf,
                          error: float = -math.inf, x=None, batch_size: int = 16,
                          keep_leaves: bool = False, progress=None,
                          max_nodes: int | None = None) -> bab.BabOutcome:
    """Bracket the worst case of two deeper (leaky) ReLU networks.

    Best first over the ``2k`` specifications, as :func:`.bab.branch_and_bound`,
    with the joint bounds of Lemma B3 (proofs_notes/bab.md): ``upper_bound``
    is sound at every moment, ``error``/``x`` the best input evaluated on the
    real networks. Splits are on the union first layer; each child's deeper
    ranges are re-bounded under its splits.

    Returns
    -------
    BabOutcome
        ``status`` as :func:`.bab.branch_and_bound`'s (``not_applicable`` when
        :func:`deep_pair` does not apply); with ``keep_leaves``, ``leaves``
        and ``proofs`` for :func:`write_deep_certificate`.
    """
    t0 = time.perf_counter()
    pair = deep_pair(problem, pre0)
    best = bab._Best(problem, error, x)
    if pair is None:
        return bab.BabOutcome(math.inf, best.error, best.x, NOT_APPLICABLE, 0)
    tt = _Torch(pair, problem.device if problem.device is not None else "cpu")
    cache = {}
    fallback = None
    if not keep_leaves:
        iv = interval_bounds(problem)
        fallback = [iv.f_pre, iv.g_pre]
    try:
        roots = _roots(tt, deadline, cache, fallback)
    except _Expired:  # a certificate needs the root's range proofs
        return bab.BabOutcome(math.inf, best.error, best.x, TIME_LIMIT, 0,
                              [(time.perf_counter() - t0, best.error, math.inf, 0)])
    best.update(tt.ts, _bound_nodes(tt, roots, ROOT_STEPS, deadline))
    tree = bab._Tree(keep_leaves)
    for nd in roots:
        tree.file(nd, best.error)
    out = bab.best_first(tree, best, len(roots), t0, deadline, progress, max_nodes,
                         lambda: _step(tt, tree, best, cache, batch_size, deadline))
    if keep_leaves:
        out = dataclasses.replace(out, leaves=tree.leaves(), layer=pair.first, proofs={
            key: [None if q is None else q.cpu().numpy() for q in params]
            for key, params in cache.items()})
    return out


def _step(tt: _Torch, tree, best, cache: dict, batch_size: int, deadline: float) -> int:
    """Split the best open nodes (a node with nothing left to split is
    optimised to convergence once, then kept as a leaf); return the number of
    nodes bounded."""
    popped = tree.pop(batch_size, best.error)
    done = [nd for nd in popped if nd.branch is None]
    tree.stuck += [nd for nd in done if nd.polished]
    polish = [nd for nd in done if not nd.polished]
    children = [c for nd in popped if nd.branch is not None for c in _children(nd)]
    if children:
        try:
            _rebound(tt, children, cache, deadline)
        except _Expired:  # the parents stay open, with their sound bounds
            for nd in popped:
                if not (nd.branch is None and nd.polished):
                    tree.file(nd, best.error)
            return 0
    for group, steps in ((polish, ROOT_STEPS), (children, CHILD_STEPS)):
        if group:
            best.update(tt.ts, _bound_nodes(tt, group, steps, deadline))
    for nd in polish:
        nd.polished = True
    for nd in polish + children:
        tree.file(nd, best.error)
    return len(polish) + len(children)


DEEP_CERTIFICATE_FORMAT = "coreset-verify/deep/1"


def _neuron_ids(pair: DeepPair) -> dict:
    """The certificate's number of each neuron: ``j`` on the union layer, then
    network f's deeper layers in order, then g's."""
    ids, at = {}, pair.first.n
    for net, layers in enumerate(pair.layers):
        for layer, (_, b, _) in enumerate(layers, start=1):
            ids[(net, layer)] = at
            at += len(b)
    return ids


def _union_map(index, n: int) -> np.ndarray:
    """Union neuron -> the network's neuron (-1 for none), from the network's
    neuron -> union row map ``index``."""
    out = np.full(n, -1, dtype=np.int64)
    out[np.asarray(index)] = np.arange(len(index))
    return out


def write_deep_certificate(path, outcome: bab.BabOutcome, problem: Problem) -> None:
    """Write ``outcome``'s leaves as a ``coreset-verify/deep/1`` certificate
    (proofs_notes/bab.md, "Certificate of a deeper pair").

    ``outcome`` must come from :func:`deep_branch_and_bound` with
    ``keep_leaves=True`` on ``problem`` unscaled; its claim is
    ``outcome.upper_bound``. Leaves share their proofs (a leaf whose bound is
    an ancestor's points at that ancestor's multipliers)."""
    pair = deep_pair(problem, (outcome.layer.lo, outcome.layer.hi))
    leaves, ids, n = outcome.leaves, _neuron_ids(pair), outcome.layer.n
    proofs: dict = {}
    leaf_proof = [proofs.setdefault(id(nd.proof[1]), (len(proofs), nd.proof))[0]
                  for nd in leaves]
    table = [pr for _, pr in sorted(proofs.values(), key=lambda v: v[0])]
    path_of = [[(j if net < 0 else ids[(net, layer)] + j, side)
                for net, layer, j, side in nd.path] for nd in leaves]
    dom, k = problem.domain, problem.k
    both = dom.has_ball and dom.has_box
    p_size = len(dom.lower) if both else 0
    width = sum(len(b) for net in pair.layers for _, b, _ in net)

    def rows(values, size):
        if size == 0:
            return np.zeros((len(values), 0))
        return np.asarray(values, dtype=np.float64).reshape(-1, size)

    arrays = {
        "format": np.array(DEEP_CERTIFICATE_FORMAT),
        "claim": np.array(float(outcome.upper_bound)),
        "beta": np.array(dom.beta if dom.has_ball else np.nan, dtype=np.float64),
        "lower": np.asarray(dom.lower if dom.has_box else np.zeros(0), dtype=np.float64),
        "upper": np.asarray(dom.upper if dom.has_box else np.zeros(0), dtype=np.float64),
        "scale": np.asarray(problem.scale, dtype=np.float64),
        "lo": outcome.layer.lo, "hi": outcome.layer.hi,
        **{key: _union_map(idx, n) for key, idx in zip(("index_f", "index_g"),
                                                         pair.index, strict=True)},
        "leaf_output": np.array([nd.spec % k for nd in leaves], dtype=np.int64),
        "leaf_sign": np.array([1 if nd.spec < k else -1 for nd in leaves], dtype=np.int64),
        "split_offsets": np.cumsum([0] + [len(q) for q in path_of]).astype(np.int64),
        "split_neuron": np.array([j for q in path_of for j, _ in q], dtype=np.int64),
        "split_side": np.array([s for q in path_of for _, s in q], dtype=np.int64),
        "leaf_proof": np.array(leaf_proof, dtype=np.int64),
        "proof_depth": np.array([pr[0] for pr in table], dtype=np.int64),
        "proof_alpha": rows([pr[1] for pr in table], n),
        "proof_mu": rows([pr[2] for pr in table], n),
        "proof_p": rows([pr[3] if both else [] for pr in table], p_size),
        "proof_deep_alpha": rows([np.concatenate(pr[4][: len(pr[4]) // 2] or [np.zeros(0)])
                                  for pr in table], width),
        "proof_deep_mu": rows([np.concatenate(pr[4][len(pr[4]) // 2:] or [np.zeros(0)])
                               for pr in table], width),
        "leaf_bound": np.array([nd.bound for nd in leaves], dtype=np.float64),
    }
    for (net, layer), (alpha0, _, p, *lower) in outcome.proofs.items():
        tag = f"{'fg'[net]}{layer}"
        arrays[f"range_alpha_{tag}"] = np.asarray(alpha0, dtype=np.float64)
        arrays[f"range_p_{tag}"] = rows(p if both else alpha0, p_size)
        arrays[f"range_lower_{tag}"] = np.asarray(
            np.concatenate(lower, axis=1) if lower else np.zeros((len(alpha0), 0)),
            dtype=np.float64)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)
