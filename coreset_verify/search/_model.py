"""The joint mixed-integer model of two (leaky) ReLU networks.

Variables ``v`` (in this order): the input ``x``, then for the union first
layer and every later layer of each network the pre-activations ``z`` and
post-activations ``h``, then one indicator ``delta`` per unstable neuron.
Shared first-layer neurons are ONE set of variables for both networks, so
any linear function of the outputs, e.g. ``f_i - g_i``, is a function of
the difference network. With ``delta`` continuous in [0, 1] the program is the
triangle (LP) relaxation; with ``delta`` binary it is exact (big-M form,
constants from the interval bounds). See proofs_notes/search_bounds.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ..activations import Activation
from ._conic import ConicProgram
from ._intervals import Intervals
from ._problem import Problem

__all__ = ["JointModel", "Matrices", "build_joint_model"]


class Matrices(NamedTuple):
    """``A_eq v = b_eq``, ``A_in v <= b_in`` (CSR), ``lo <= v <= hi``."""

    a_eq: Any
    b_eq: np.ndarray
    a_in: Any
    b_in: np.ndarray
    lo: np.ndarray
    hi: np.ndarray


@dataclass
class JointModel:
    """A growing sparse model; ``rows_eq``/``rows_in`` hold COO triplets."""

    nx: int
    beta: float | None
    lo: list = field(default_factory=list)
    hi: list = field(default_factory=list)
    binaries: list = field(default_factory=list)
    eq: list = field(default_factory=list)  # (rows, cols, vals, rhs)
    ineq: list = field(default_factory=list)
    n_eq: int = 0
    n_in: int = 0
    out_f: np.ndarray | None = None
    out_g: np.ndarray | None = None
    layers: list = field(default_factory=list)  # forward recipe, see assignment
    basis: np.ndarray | None = None  # x = basis @ v[:nx] when set

    def input_point(self, v: np.ndarray) -> np.ndarray:
        """The input ``x`` of a model point ``v``."""
        y = np.asarray(v[: self.nx], float)
        return y if self.basis is None else self.basis @ y

    @property
    def n(self) -> int:
        """Number of variables so far."""
        return sum(len(a) for a in self.lo)

    def add_vars(self, lo: np.ndarray, hi: np.ndarray, binary: bool = False,
                 ) -> np.ndarray:
        """Append variables with bounds; return their indices."""
        start = self.n
        self.lo.append(np.asarray(lo, float))
        self.hi.append(np.asarray(hi, float))
        idx = np.arange(start, start + len(self.lo[-1]))
        if binary:
            self.binaries.append(idx)
        return idx

    def add_rows(self, kind: str, cols: list, vals: list, rhs: np.ndarray) -> None:
        """Append rows ``sum_t vals[t] * v[cols[t]] (=, <=) rhs``, each term a
        (m,)- or (m, p)-array of columns/coefficients (one row per entry)."""
        m = len(rhs)
        base = self.n_eq if kind == "eq" else self.n_in
        rows, cc, vv = [], [], []
        for c, v in zip(cols, vals, strict=True):
            c, v = np.asarray(c), np.broadcast_to(np.asarray(v, float), np.shape(c))
            r = np.broadcast_to(base + np.arange(m).reshape((m,) + (1,) * (c.ndim - 1)),
                                c.shape)
            rows.append(r.ravel())
            cc.append(c.ravel())
            vv.append(v.ravel())
        entry = (np.concatenate(rows), np.concatenate(cc), np.concatenate(vv),
                 np.asarray(rhs, float))
        if kind == "eq":
            self.eq.append(entry)
            self.n_eq += m
        else:
            self.ineq.append(entry)
            self.n_in += m

    def matrices(self) -> Matrices:
        """The constraints as :class:`Matrices` (CSR)."""
        import scipy.sparse as sp

        def stack(entries: list, m: int) -> tuple:
            if not entries:
                return sp.csr_matrix((0, self.n)), np.zeros(0)
            r, c, v, b = (np.concatenate(t) for t in zip(*entries, strict=True))
            return sp.csr_matrix((v, (r, c)), shape=(m, self.n)), b

        a_eq, b_eq = stack(self.eq, self.n_eq)
        a_in, b_in = stack(self.ineq, self.n_in)
        return Matrices(a_eq, b_eq, a_in, b_in, np.concatenate(self.lo),
                        np.concatenate(self.hi))

    def program(self, c: np.ndarray) -> ConicProgram:
        """The relaxation ``max c.v`` (indicators continuous)."""
        a_eq, b_eq, a_in, b_in, lo, hi = self.matrices()
        return ConicProgram(c, a_eq, b_eq, a_in, b_in, lo, hi, self.nx, self.beta)

    def difference_objective(self, i: int, sign: float, scale: float) -> np.ndarray:
        """``c`` with ``c.v = sign * (f_i - g_i) / scale``."""
        c = np.zeros(self.n)
        c[self.out_f[i]] += sign / scale
        c[self.out_g[i]] -= sign / scale
        return c

    def assignment(self, x: np.ndarray) -> np.ndarray:
        """Every variable's value at input ``x`` (a feasible point of the MIP)."""
        v = np.zeros(self.n)
        v[: self.nx] = x if self.basis is None else self.basis.T @ x
        for w, b, src, z_idx, h_idx, act, d_idx, d_mask in self.layers:
            z = w @ v[src] + b
            v[z_idx] = z
            if h_idx is not None:
                v[h_idx] = act.numpy(z)
                v[d_idx] = (z[d_mask] > 0).astype(float)
        lo, hi = np.concatenate(self.lo), np.concatenate(self.hi)
        return np.clip(v, lo, hi)


def _add_layer(model: JointModel, w: np.ndarray, b: np.ndarray, src: np.ndarray,
               pre: tuple, post: tuple, act: Activation | None) -> np.ndarray:
    """Add ``z = w v[src] + b`` and ``h = act(z)``; return output indices."""
    z = model.add_vars(*pre)
    m = len(b)
    model.add_rows("eq", [z, np.broadcast_to(src, (m, len(src)))],
                   [1.0, -w], b)
    if act is None:
        model.layers.append((w, b, src, z, None, None, None, None))
        return z
    h = model.add_vars(*post)
    lo, hi, a = pre[0], pre[1], act.slope
    on, off = lo >= 0, (hi <= 0) & (lo < 0)
    unstable = ~(on | off)
    model.add_rows("eq", [h[on], z[on]], [1.0, -1.0], np.zeros(on.sum()))
    model.add_rows("eq", [h[off], z[off]], [1.0, -a], np.zeros(off.sum()))
    zu, hu, lu, uu = z[unstable], h[unstable], lo[unstable], hi[unstable]
    nu = len(zu)
    d = model.add_vars(np.zeros(nu), np.ones(nu), binary=True)
    model.add_rows("in", [zu, hu], [1.0, -1.0], np.zeros(nu))          # z <= h
    model.add_rows("in", [zu, hu], [a, -1.0], np.zeros(nu))            # a z <= h
    model.add_rows("in", [hu, zu, d], [1.0, -1.0, -(1 - a) * lu], -(1 - a) * lu)
    model.add_rows("in", [hu, zu, d], [1.0, -a, -(1 - a) * uu], np.zeros(nu))
    model.layers.append((w, b, src, z, h, act, d, unstable))
    return h


def _add_union_layer(model: JointModel, problem: Problem, iv: Intervals) -> np.ndarray:
    sh = problem.shared
    out = np.empty(len(sh.bias), dtype=np.int64)
    x = np.arange(model.nx)
    weight = sh.weight if model.basis is None else sh.weight @ model.basis
    for act in dict.fromkeys(sh.activations):
        mask = np.array([a == act for a in sh.activations])
        out[mask] = _add_layer(model, weight[mask], sh.bias[mask], x,
                               (iv.pre0[0][mask], iv.pre0[1][mask]),
                               (iv.post0[0][mask], iv.post0[1][mask]), act)
    return out


def build_joint_model(problem: Problem, iv: Intervals) -> JointModel:
    """The joint model of both networks over the domain.

    Requires every activation to be piecewise linear
    (``problem.piecewise_linear``); variable bounds are the intervals ``iv``.
    On a ball, the input variables are ``y`` with ``x = Q y``
    (``problem.input_basis``) when that is smaller.
    """
    dom, basis = problem.domain, problem.input_basis
    if basis is not None:
        model = JointModel(basis.shape[1], dom.beta, basis=basis)
        model.add_vars(np.full(model.nx, -dom.beta), np.full(model.nx, dom.beta))
        return _add_networks(model, problem, iv)
    model = JointModel(problem.d, dom.beta)
    if dom.has_box:
        lo, hi = dom.lower.copy(), dom.upper.copy()
        if dom.has_ball:
            lo, hi = np.maximum(lo, -dom.beta), np.minimum(hi, dom.beta)
    else:
        lo, hi = np.full(problem.d, -dom.beta), np.full(problem.d, dom.beta)
    model.add_vars(lo, hi)
    return _add_networks(model, problem, iv)


def _add_networks(model: JointModel, problem: Problem, iv: Intervals) -> JointModel:
    h0 = _add_union_layer(model, problem, iv)
    sh = problem.shared
    outs = []
    for net, src, pre, post in ((problem.f, h0[sh.index_f], iv.f_pre, iv.f_post),
                                (problem.g, h0[sh.index_g], iv.g_pre, iv.g_post)):
        for layer, p, q in zip(net[1:], pre, post, strict=True):
            src = _add_layer(model, layer.weight, layer.bias, src, p, q,
                             layer.activation)
        outs.append(src)
    model.out_f, model.out_g = outs
    return model
