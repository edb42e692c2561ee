"""Branch and bound on the difference of two one-hidden-layer (leaky) ReLU networks.

Every node bound is Lemma B1 of proofs_notes/bab.md, evaluated in float64 with
Lemma B2's rounding margin, for multipliers ``(alpha, mu, p)`` improved by
projected Adam steps: any iterate is a proof, so stopping early is safe. Nodes
are bounded in batches as torch tensor operations (on the device of the
problem's modules). The leaves, their splits and multipliers form a
certificate that :func:`coreset_verify.certificate.check` re-verifies.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from dataclasses import dataclass, field

import numpy as np

from ._problem import Problem
from ._result import BOUNDED, NOT_APPLICABLE, OPTIMAL, TIME_LIMIT, is_certified
from .bounds import difference_terms

__all__ = ["CERTIFICATE_FORMAT", "BabOutcome", "DifferenceLayer", "branch_and_bound",
           "difference_layer", "node_bounds", "write_certificate"]

#: Adam steps for the root nodes, for children (warm-started from the parent)
#: and for nodes with no positive unstable neuron left (exact relaxation).
ROOT_STEPS, CHILD_STEPS, EXACT_STEPS = 300, 25, 300
#: Neurons scored per node; the split is the one whose children bound best.
BRANCH_CANDIDATES = 4
#: Relative rounding margin of the reported bounds (twice Lemma B2's 1e-9).
BOUND_MARGIN = 2e-9
#: Relative widening of the first layer's ranges (see :func:`difference_layer`).
RANGE_MARGIN = 1e-9
_LR, _LR_DECAY = 0.05, 0.995


@dataclass(frozen=True)
class DifferenceLayer:
    """The difference network ``coef[p] . phi(W x + b) + const[p]`` (bab.md (1)).

    ``lo``/``hi``: sound pre-activation ranges of the union layer on the
    domain; ``index_f``/``index_g``: for each union neuron, its row in each
    network's first layer or -1.
    """

    weight: np.ndarray
    bias: np.ndarray
    slope: np.ndarray
    coef: np.ndarray
    const: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    index_f: np.ndarray
    index_g: np.ndarray
    domain: object

    @property
    def n(self) -> int:
        """Union neurons."""
        return len(self.bias)


def difference_layer(problem: Problem, pre0) -> DifferenceLayer | None:
    """The :class:`DifferenceLayer` of a one-hidden-layer (leaky) ReLU pair, or
    ``None`` for any other pair; ``pre0`` is the union layer's range."""
    terms = difference_terms(problem)
    if terms is None:
        return None
    sh = problem.shared
    n = len(sh.bias)
    index_f = np.full(n, -1, dtype=np.int64)
    index_f[sh.index_f] = np.arange(len(sh.index_f))
    index_g = np.full(n, -1, dtype=np.int64)
    index_g[sh.index_g] = np.arange(len(sh.index_g))
    slope = np.array([a.slope for a in sh.activations], dtype=np.float64)
    lo, hi = np.asarray(pre0[0], float), np.asarray(pre0[1], float)
    # widened by RANGE_MARGIN of their size, so that the checker's own ranges
    # (margin 1e-12) lie inside them and it can use these (bab.md, certificate)
    pad = RANGE_MARGIN * (np.abs(lo) + np.abs(hi)) + 1e-300
    return DifferenceLayer(sh.weight, sh.bias, slope, terms[0], terms[1], lo - pad,
                           hi + pad, index_f, index_g, problem.domain)


@dataclass
class _Node:
    """One node: specification, ordered splits, multipliers, sound bound."""

    spec: int
    splits: tuple
    alpha: np.ndarray
    mu: np.ndarray
    p: np.ndarray | None
    bound: float = math.inf
    candidates: np.ndarray | None = None
    exact_rounds: int = 0
    p_alt: np.ndarray | None = None

    @property
    def branch(self) -> int:
        """The best-scored neuron to split, -1 when none is left."""
        return -1 if self.candidates is None else int(self.candidates[0])


@dataclass
class _Tensors:
    """The layer as torch tensors (float64) on one device."""

    w: object
    w_opt: object
    basis: object
    b: object
    a: object
    coef: object
    const: object
    lo: object
    hi: object
    box: tuple | None
    beta: float | None
    layer: DifferenceLayer | None = None

    @classmethod
    def of(cls, layer: DifferenceLayer, device) -> _Tensors:
        import torch

        def t(v):
            return torch.as_tensor(np.asarray(v, dtype=np.float64), device=device)

        dom = layer.domain
        w = t(layer.weight)
        w_opt, basis = w, None
        if dom.has_ball and not dom.has_box and layer.n < w.shape[1]:
            # optimise in the row space (at most n columns); bounds stay d-space
            basis, _ = torch.linalg.qr(w.T)
            w_opt = w @ basis
        box = (t(dom.lower), t(dom.upper)) if dom.has_box else None
        return cls(w, w_opt, basis, t(layer.bias), t(layer.slope), t(layer.coef),
                   t(layer.const), t(layer.lo), t(layer.hi), box, dom.beta, layer)


def _lines(ts: _Tensors, spec, on, off, alpha, mu) -> tuple:
    """``lambda`` (B, n), ``K`` (B,) of Lemma B1, with the pieces the margin
    and the branching need."""
    import torch

    c = ts.coef[spec]
    lo = torch.where(on, ts.lo.clamp(min=0.0), ts.lo)
    hi = torch.where(off, ts.hi.clamp(max=0.0), ts.hi)
    st_on, st_off = lo >= 0, hi <= 0
    unstable = ~(st_on | st_off)
    width = torch.where(unstable, hi - lo, torch.ones_like(lo))
    q = (hi - ts.a * lo) / width
    r = torch.where(unstable, (ts.a - q) * lo, torch.zeros_like(lo))
    pos = c >= 0
    slope = torch.where(st_on, 1.0, torch.where(st_off, ts.a,
                        torch.where(pos, q, alpha)))
    lam = c * slope + mu * (on.to(c.dtype) - off.to(c.dtype))
    t = torch.where(unstable & pos, c * r, torch.zeros_like(c))
    k = lam @ ts.b + t.sum(1) + ts.const[spec]
    empty = (lo > hi).any(1)
    return lam, k, t, lo, hi, q, r, empty


def _concretise(ts: _Tensors, a, p):
    """Lemma B1's upper bound on ``max a . x`` over the domain, shape (B,)."""
    import torch

    if ts.box is None:
        return ts.beta * a.norm(dim=1)
    lower, upper = ts.box
    if ts.beta is None:
        return torch.where(a > 0, a * upper, a * lower).sum(1)
    return (ts.beta * (a - p).norm(dim=1)
            + torch.where(p > 0, p * upper, p * lower).sum(1))


def _optimise(ts: _Tensors, spec, on, off, alpha, mu, p, steps: int,
              deadline: float = math.inf) -> tuple:
    """Projected Adam on ``(alpha, mu, p)`` minimising Lemma B1's bound; stops
    early at ``deadline`` (every iterate gives a sound bound)."""
    import torch

    if steps <= 0:
        return alpha, mu, p
    split = on | off
    params = [alpha.clone().requires_grad_(True), mu.clone().requires_grad_(True)]
    if p is not None:
        params.append(p.clone().requires_grad_(True))
    scale = ts.coef[spec].abs().amax(1, keepdim=True).clamp_min(1e-300)
    lr = [_LR, _LR * float(scale.max())] + ([_LR * float(scale.max())] if p is not None
                                             else [])
    opt = torch.optim.Adam([{"params": [q], "lr": r} for q, r in zip(params, lr,
                                                                    strict=True)])
    decay = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=_LR_DECAY)
    w = ts.w if ts.box is not None else ts.w_opt
    best = [q.detach().clone() for q in params]
    best_val = torch.full((len(spec),), math.inf, dtype=ts.w.dtype, device=ts.w.device)
    for step in range(steps + 1):
        last = step == steps or time.perf_counter() > deadline
        opt.zero_grad()
        lam, k = _lines(ts, spec, on, off, params[0], params[1])[:2]
        val = _concretise(ts, lam @ w, params[2] if p is not None else None) + k
        with torch.no_grad():  # keep each node's best iterate (Adam is not monotone)
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
            params[0].copy_(torch.minimum(torch.maximum(params[0], ts.a), torch.ones_like(
                params[0])))
            params[1].copy_(torch.where(split, params[1].clamp(min=0.0), 0.0))
    return best[0], best[1], (best[2] if p is not None else None)


def _sound(ts: _Tensors, spec, on, off, alpha, mu, p) -> tuple:
    """Bounds (B,) in float64 with the margin of Lemma B2 (twice), and the
    relaxed maximisers (B, d) with the pieces the branching needs."""
    import torch

    lam, k, t, lo, hi, q, r, empty = _lines(ts, spec, on, off, alpha, mu)
    a = lam @ ts.w
    val = _concretise(ts, a, p)
    abs_a = lam.abs() @ ts.w.abs()
    mag = (lam.abs() * torch.maximum(lo.abs(), hi.abs()).nan_to_num(posinf=math.inf)).sum(1)
    mag = mag + t.abs().sum(1) + ts.const[spec].abs() + lam.abs() @ ts.b.abs()
    reach = 0.0
    if ts.box is not None:
        box_abs = torch.maximum(ts.box[0].abs(), ts.box[1].abs())
        reach = float(box_abs.max())
    if ts.beta is not None:
        reach = max(reach, ts.beta)
    if ts.box is None:
        mag = mag + ts.beta * abs_a.norm(dim=1)
    elif ts.beta is None:
        mag = mag + (abs_a * box_abs).sum(1)
    else:
        mag = mag + ts.beta * (abs_a.norm(dim=1) + p.norm(dim=1)) + (p.abs() * box_abs).sum(1)
    n_terms = ts.w.shape[0] + ts.w.shape[1] + 4
    # underflow (bab.md, Lemma B2): products with x, and a subnormal c_j, lambda_j
    # or t_j times z_j (at most max(|L_j|, |U_j|, |b_j|)); twice the checker's
    reach_z = float(torch.maximum(torch.maximum(ts.lo.abs(), ts.hi.abs()), ts.b.abs()).sum())
    tiny = ((n_terms + 2) * reach + 8 * reach_z + 8) * 1e-300
    bound = val + k + BOUND_MARGIN * mag + tiny
    bound = torch.where(torch.isnan(bound), math.inf, bound)
    bound = torch.where(empty, -math.inf, bound)
    x = _maximiser(ts, a, p)
    return bound, x, (lo, hi, q, r)


def _maximiser(ts: _Tensors, a, p):
    """The maximiser of ``a . x`` (ball), its box vertex, or the ball's one for
    ``a - p`` (both; projected onto the domain by the caller)."""
    import torch

    if ts.box is not None and ts.beta is None:
        return torch.where(a > 0, ts.box[1], ts.box[0])
    v = a if p is None else a - p
    norm = v.norm(dim=1, keepdim=True)
    return torch.where(norm > 0, ts.beta * v / norm.clamp_min(1e-300), torch.zeros_like(v))


def _branch_choice(ts: _Tensors, spec, split, x, pieces) -> np.ndarray:
    """Per node, the ``BRANCH_CANDIDATES`` neurons most worth splitting, best
    first (-1 where fewer are left): the largest chord gaps at the relaxed
    maximiser, else the largest gaps at 0 (bab.md, branching). Shape (B, K)."""
    import torch

    lo, hi, q, r = pieces
    c = ts.coef[spec]
    cand = (lo < 0) & (hi > 0) & (c > 0) & ~split
    z = x @ ts.w.T + ts.b
    phi = torch.maximum(z, ts.a * z)
    gap = torch.where(cand, c * (q * z + r - phi), -math.inf)
    static = torch.where(cand, c * r, -math.inf)
    best = torch.where(gap.amax(1, keepdim=True) > 0, gap, static)
    score, choice = best.topk(min(BRANCH_CANDIDATES, best.shape[1]), dim=1)
    return torch.where(torch.isfinite(score), choice, -1).cpu().numpy()


def node_bounds(layer: DifferenceLayer, specs, splits, *, steps: int = ROOT_STEPS,
                device="cpu") -> np.ndarray:
    """Sound bounds of nodes given by specification and split list (tests).

    Parameters
    ----------
    layer : DifferenceLayer
    specs : sequence of int
    splits : sequence of sequences of ``(neuron, side)``
    steps : int
        Adam steps from the default start.

    Returns
    -------
    numpy.ndarray, shape (B,)
    """
    ts = _Tensors.of(layer, device)
    nodes = [_root(layer, s, ts) for s in specs]
    for node, sp in zip(nodes, splits, strict=True):
        node.splits = tuple((int(j), int(s)) for j, s in sp)
    bounds, _, _ = _bound_batch(ts, nodes, steps)
    return bounds


def _root(layer: DifferenceLayer, spec: int, ts: _Tensors) -> _Node:
    """A root node, ``alpha`` starting at the closer side (as the linear bound)."""
    alpha = np.where(layer.hi >= -layer.lo, 1.0, layer.slope)
    p = None
    if ts.box is not None and ts.beta is not None:
        p = np.zeros(layer.weight.shape[1])
    return _Node(spec, (), alpha, np.zeros(layer.n), p)


def _stack(ts: _Tensors, nodes: list) -> tuple:
    import torch

    dev = ts.w.device
    n = ts.b.shape[0]
    spec = torch.as_tensor([nd.spec for nd in nodes], device=dev)
    on = torch.zeros((len(nodes), n), dtype=torch.bool, device=dev)
    off = torch.zeros_like(on)
    for row, nd in enumerate(nodes):
        for j, s in nd.splits:
            (on if s > 0 else off)[row, j] = True
    alpha = torch.as_tensor(np.stack([nd.alpha for nd in nodes]), device=dev)
    mu = torch.as_tensor(np.stack([nd.mu for nd in nodes]), device=dev)
    p = None
    if nodes[0].p is not None:
        p = torch.as_tensor(np.stack([nd.p for nd in nodes]), device=dev)
    return spec, on, off, alpha, mu, p


def _bound_batch(ts: _Tensors, nodes: list, steps: int,
                 deadline: float = math.inf) -> tuple:
    """Optimise (until ``deadline`` at most) and soundly bound ``nodes`` in
    place; return bounds (B,), relaxed maximisers (B, d) and branching
    choices (B,)."""
    import torch

    spec, on, off, alpha0, mu0, p0 = _stack(ts, nodes)
    alpha, mu, p = _optimise(ts, spec, on, off, alpha0, mu0, p0, steps, deadline)
    with torch.no_grad():
        bound, x, pieces = _sound(ts, spec, on, off, alpha, mu, p)
        starts = [p0] if steps > 0 else []
        if p0 is not None and all(nd.p_alt is not None for nd in nodes):
            starts.append(torch.as_tensor(np.stack([nd.p_alt for nd in nodes]),
                                          device=p0.device))
        for p_start in starts:  # keep a start where the steps made it worse (never
            # above the parent's bound: bab.md, "children")
            start, x0, _ = _sound(ts, spec, on, off, alpha0, mu0, p_start)
            worse = start < bound
            bound = torch.where(worse, start, bound)
            alpha = torch.where(worse[:, None], alpha0, alpha)
            mu = torch.where(worse[:, None], mu0, mu)
            p = None if p is None else torch.where(worse[:, None], p_start, p)
            x = torch.where(worse[:, None], x0, x)
        choice = _branch_choice(ts, spec, on | off, x, pieces)
    bounds = bound.cpu().numpy()
    a_np, m_np = alpha.cpu().numpy(), mu.cpu().numpy()
    p_np = None if p is None else p.cpu().numpy()
    for row, nd in enumerate(nodes):
        nd.alpha, nd.mu, nd.bound, nd.p_alt = a_np[row], m_np[row], float(bounds[row]), None
        nd.candidates = choice[row]
        if p_np is not None:
            nd.p = p_np[row]
    return bounds, x, choice


@dataclass
class BabOutcome:
    """What the branch and bound proved and found.

    ``upper_bound`` bounds ``max_x max_i |f_i - g_i| / scale_i`` (sound);
    ``error``/``x`` the best input evaluated; ``trace`` rows ``(seconds,
    error, upper_bound, nodes)``; ``leaves`` every leaf when kept (for the
    certificate), with ``proofs`` the multipliers of the deeper ranges
    (deep.py).
    """

    upper_bound: float
    error: float
    x: np.ndarray | None
    status: str
    nodes: int
    trace: list = field(default_factory=list)
    leaves: list | None = None
    layer: DifferenceLayer | None = None
    proofs: dict | None = None


def _exact_node(ts: _Tensors, node: _Node, best: _Best) -> None:
    """Solve a node with no positive unstable neuron exactly (a concave
    maximisation, Clarabel via cvxpy): its maximiser is offered to ``best``
    and its dual variables become the node's multipliers (bab.md: they attain
    the node's maximum). A failed solve changes nothing."""
    import torch

    try:
        import cvxpy as cp
    except ImportError:  # the bounds stay sound; only this primal point is missed
        return
    w = ts.w_opt if ts.box is None else ts.w
    wn, b = w.cpu().numpy(), ts.b.cpu().numpy()
    c, a = ts.coef[node.spec].cpu().numpy(), ts.a.cpu().numpy()
    lo, hi = ts.lo.cpu().numpy().copy(), ts.hi.cpu().numpy().copy()
    side = np.zeros(len(b))
    for j, s in node.splits:
        side[j] = s
        lo[j], hi[j] = (max(lo[j], 0.0), hi[j]) if s > 0 else (lo[j], min(hi[j], 0.0))
    on, off = lo >= 0, hi <= 0
    neg = ~(on | off) & (c < 0)
    x = cp.Variable(wn.shape[1])
    z = wn @ x + b
    h = cp.Variable(int(neg.sum()))
    lin = np.where(on, c, np.where(off, c * a, 0.0))
    cons = [h >= z[neg], h >= cp.multiply(a[neg], z[neg])]
    split = np.flatnonzero(side)
    if len(split):
        cons.append(cp.multiply(side[split], z[split]) >= 0)
    if ts.beta is not None:
        cons.append(cp.norm(x) <= ts.beta)
    if ts.box is not None:
        cons += [x >= ts.box[0].cpu().numpy(), x <= ts.box[1].cpu().numpy()]
    prob = cp.Problem(cp.Maximize(lin @ z + c[neg] @ h), cons)
    try:
        prob.solve(solver="CLARABEL")
    except (cp.error.SolverError, ValueError):
        return
    if x.value is None or cons[0].dual_value is None:
        return
    xv = x.value if ts.basis is None else ts.basis.cpu().numpy() @ x.value
    best.update(ts, torch.as_tensor(xv[None], dtype=torch.float64))
    nu1, nu2 = np.maximum(cons[0].dual_value, 0), np.maximum(cons[1].dual_value, 0)
    alpha = node.alpha.copy()
    tot = np.maximum(nu1 + nu2, 1e-300)
    alpha[neg] = np.clip((nu1 + a[neg] * nu2) / tot, a[neg], 1.0)
    node.alpha = alpha
    if len(split):
        mu = np.zeros(len(b))
        mu[split] = np.maximum(cons[2].dual_value, 0)
        node.mu = mu
    if ts.box is not None and ts.beta is not None:
        node.p = cons[-1].dual_value - cons[-2].dual_value


class _Best:
    """The best input evaluated on the real networks (float64)."""

    def __init__(self, problem: Problem, error: float, x) -> None:
        self.problem, self.error, self.x = problem, error, x
        self.layers = None

    def update(self, ts: _Tensors, points) -> None:
        import torch

        if self.layers is None:
            self.layers = self.problem.torch_layers(torch.float64, "cpu")
        pts = self.problem.domain.project(points.detach().to("cpu", torch.float64))
        with torch.no_grad():
            vals = self.problem.signed_differences(pts, self.layers).abs().amax(1)
        vals = torch.where(torch.isfinite(vals), vals, -math.inf)
        i = int(torch.argmax(vals))
        if float(vals[i]) > self.error:
            self.error, self.x = float(vals[i]), pts[i].numpy().copy()


def _children(node: _Node, j: int | None = None, layer: DifferenceLayer | None = None,
              ) -> list:
    """The two children splitting neuron ``j`` (default: the best-scored one),
    warm-started from the node's multipliers with ``mu_j = 0``. On a ball and
    a box together each child also gets ``p_alt = p + (lambda_child_j -
    lambda_parent_j) w_j`` (needs ``layer``): the start that is below the
    parent when the box, not the ball, ends ``z_j``'s range (bab.md)."""
    j = node.branch if j is None else j
    out = []
    for side in (1, -1):
        mu = node.mu.copy()
        mu[j] = 0.0
        child = _Node(node.spec, (*node.splits, (j, side)), node.alpha.copy(), mu,
                      None if node.p is None else node.p.copy())
        if node.p is not None and layer is not None:
            lo, hi, a = layer.lo[j], layer.hi[j], layer.slope[j]
            c = layer.coef[node.spec, j]
            q = (hi - a * lo) / (hi - lo)
            child.p_alt = node.p + c * ((1.0 if side > 0 else a) - q) * layer.weight[j]
        out.append(child)
    return out


@dataclass
class _Tree:
    """Open nodes (a heap by bound), nodes that cannot be split or improved,
    and closed leaves (bound at most the error found when closed)."""

    keep_leaves: bool
    heap: list = field(default_factory=list)
    stuck: list = field(default_factory=list)
    closed: list = field(default_factory=list)
    closed_max: float = -math.inf
    count: itertools.count = field(default_factory=itertools.count)

    def file(self, node: _Node, error: float) -> None:
        if node.bound <= error:
            self.close(node)
        else:
            heapq.heappush(self.heap, (-node.bound, next(self.count), node))

    def close(self, node: _Node) -> None:
        self.closed_max = max(self.closed_max, node.bound)
        if self.keep_leaves:
            self.closed.append(node)

    def upper(self, error: float) -> float:
        top = -self.heap[0][0] if self.heap else -math.inf
        stuck = max((nd.bound for nd in self.stuck), default=-math.inf)
        return max(top, stuck, self.closed_max, error)

    def pop(self, count: int, error: float) -> list:
        out = []
        while self.heap and len(out) < count:
            node = heapq.heappop(self.heap)[2]
            if node.bound <= error:
                self.close(node)
            else:
                out.append(node)
        return out

    def leaves(self) -> list:
        return self.closed + self.stuck + [h[2] for h in self.heap]


def branch_and_bound(problem: Problem, pre0, *, deadline: float = math.inf,
                     error: float = -math.inf, x=None, batch_size: int = 128,
                     keep_leaves: bool = False, progress=None,
                     max_nodes: int | None = None) -> BabOutcome:
    """Bracket the worst case of a one-hidden-layer (leaky) ReLU pair.

    Best-first branch and bound over the ``2k`` specifications
    (proofs_notes/bab.md): every open node carries a sound bound (Lemmas B1,
    B2); the upper bound is the largest over open nodes, leaves that cannot
    be split and closed leaves; the error is the largest objective met at the
    nodes' relaxed maximisers and exact convex solves.

    Parameters
    ----------
    problem : Problem
    pre0 : tuple of numpy.ndarray
        Sound ranges ``(lo, hi)`` of the union first layer on the domain.
    deadline : float
        ``time.perf_counter()`` value at which to stop (the bracket so far is
        returned).
    error, x : float, numpy.ndarray or None
        An input already found and its objective (the search's incumbent).
    batch_size : int
        Open nodes split per step (each gives two children, bounded together).
    keep_leaves : bool
        Keep closed leaves (needed for a certificate).
    progress : callable or None
        ``progress("bab", nodes, 0)`` after each step.
    max_nodes : int or None
        Stop after this many nodes (tests); ``None``: no limit.

    Returns
    -------
    BabOutcome
        ``status``: ``optimal`` (bracket closed within tolerance),
        ``time_limit``, ``bounded`` (node limit or nothing left to split) or
        ``not_applicable`` (not a one-hidden-layer (leaky) ReLU pair).
    """
    t0 = time.perf_counter()
    layer = difference_layer(problem, pre0)
    best = _Best(problem, error, x)
    if layer is None:
        return BabOutcome(math.inf, best.error, best.x, NOT_APPLICABLE, 0)
    ts = _Tensors.of(layer, problem.device if problem.device is not None else "cpu")
    tree, nodes = _Tree(keep_leaves), 0
    for start in range(0, len(layer.const), batch_size):
        batch = [_root(layer, s, ts) for s in range(start, min(start + batch_size,
                                                                len(layer.const)))]
        _, xs, _ = _bound_batch(ts, batch, ROOT_STEPS, deadline)
        best.update(ts, xs)
        nodes += len(batch)
        for nd in batch:
            tree.file(nd, best.error)
    out = best_first(tree, best, nodes, t0, deadline, progress, max_nodes,
                     lambda: _step(ts, tree, best, batch_size, deadline))
    if keep_leaves:
        out.leaves, out.layer = tree.leaves(), layer
    return out


def best_first(tree: _Tree, best: _Best, nodes: int, t0: float, deadline: float,
               progress, max_nodes: int | None, step) -> BabOutcome:
    """The best-first loop shared by both searches: record the bracket, stop
    when it is closed, nothing is open, the node limit or the deadline is
    reached, else ``step()`` (which splits and bounds open nodes and returns
    how many it bounded)."""
    status, trace = BOUNDED, []
    while True:
        upper = tree.upper(best.error)
        trace.append((time.perf_counter() - t0, best.error, upper, nodes))
        if progress is not None:
            progress("bab", nodes, 0)
        if is_certified(best.error, upper):
            status = OPTIMAL
            break
        if not tree.heap or (max_nodes is not None and nodes >= max_nodes):
            break
        if time.perf_counter() > deadline:
            status = TIME_LIMIT
            break
        nodes += step()
    return BabOutcome(tree.upper(best.error), best.error, best.x, status, nodes, trace)


def _choose_splits(ts: _Tensors, nodes: list) -> list:
    """The children of each node, split on the candidate whose worse child has
    the smallest bound at the parent's multipliers (a filtered smart
    branching: one sound evaluation per candidate child, no Adam steps)."""
    import torch

    trials, owners = [], []
    for row, nd in enumerate(nodes):
        for j in nd.candidates[nd.candidates >= 0]:
            trials += _children(nd, int(j), ts.layer)
            owners.append((row, int(j)))
    if not trials or len(trials) == 2 * len(nodes):
        return [c for nd in nodes for c in _children(nd, None, ts.layer)]
    with torch.no_grad():
        bounds = _sound(ts, *_stack(ts, trials))[0].cpu().numpy()
    worse = np.maximum(bounds[0::2], bounds[1::2])
    best: dict = {}
    for (row, j), value in zip(owners, worse, strict=True):
        if row not in best or value < best[row][0]:
            best[row] = (value, j)
    return [c for row, nd in enumerate(nodes)
            for c in _children(nd, best[row][1], ts.layer)]


def _step(ts: _Tensors, tree: _Tree, best: _Best, batch_size: int,
          deadline: float) -> int:
    """Split the best open nodes; return the number of nodes bounded."""
    popped = tree.pop(batch_size, best.error)
    split = [nd for nd in popped if nd.branch >= 0]
    exact = [nd for nd in popped if nd.branch < 0]
    children = _choose_splits(ts, split)
    if children:
        _, xs, _ = _bound_batch(ts, children, CHILD_STEPS, deadline)
        best.update(ts, xs)
    refine = []
    for nd in exact:
        (tree.stuck if nd.exact_rounds >= 2 else refine).append(nd)
        nd.exact_rounds += 1
        if nd.exact_rounds == 1 and time.perf_counter() < deadline:
            _exact_node(ts, nd, best)
    if refine:
        first = [nd for nd in refine if nd.exact_rounds == 1]
        again = [nd for nd in refine if nd.exact_rounds > 1]
        for group, steps in ((first, 0), (again, EXACT_STEPS)):
            if group:
                _, xs, _ = _bound_batch(ts, group, steps, deadline)
                best.update(ts, xs)
    for nd in children + refine:
        tree.file(nd, best.error)
    return len(children) + len(refine)


#: The ``format`` entry of the certificates written here (proofs_notes/bab.md).
CERTIFICATE_FORMAT = "coreset-verify/one-hidden-layer/1"


def write_certificate(path, outcome: BabOutcome, problem: Problem) -> None:
    """Write ``outcome``'s leaves as a certificate (proofs_notes/bab.md table).

    ``outcome`` must come from :func:`branch_and_bound` with
    ``keep_leaves=True``; its claim is ``outcome.upper_bound``.
    """
    layer, leaves = outcome.layer, outcome.leaves
    k, dom = problem.k, problem.domain
    offsets = np.cumsum([0] + [len(nd.splits) for nd in leaves])
    splits = [s for nd in leaves for s in nd.splits]
    mus = [nd.mu[j] for nd in leaves for j, _ in nd.splits]
    both = dom.has_ball and dom.has_box
    arrays = {
        "format": np.array(CERTIFICATE_FORMAT),
        "claim": np.array(float(outcome.upper_bound)),
        "beta": np.array(dom.beta if dom.has_ball else np.nan, dtype=np.float64),
        "lower": np.asarray(dom.lower if dom.has_box else np.zeros(0), dtype=np.float64),
        "upper": np.asarray(dom.upper if dom.has_box else np.zeros(0), dtype=np.float64),
        "scale": np.asarray(problem.scale, dtype=np.float64),
        "lo": layer.lo, "hi": layer.hi,
        "index_f": layer.index_f, "index_g": layer.index_g,
        "leaf_output": np.array([nd.spec % k for nd in leaves], dtype=np.int64),
        "leaf_sign": np.array([1 if nd.spec < k else -1 for nd in leaves], dtype=np.int64),
        "split_offsets": offsets.astype(np.int64),
        "split_neuron": np.array([j for j, _ in splits], dtype=np.int64),
        "split_side": np.array([s for _, s in splits], dtype=np.int64),
        "split_mu": np.array(mus, dtype=np.float64),
        "alpha": np.stack([nd.alpha for nd in leaves]).astype(np.float64),
        "box_p": (np.stack([nd.p for nd in leaves]) if both
                  else np.zeros((len(leaves), 0))).astype(np.float64),
        "leaf_bound": np.array([nd.bound for nd in leaves], dtype=np.float64),
    }
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)
