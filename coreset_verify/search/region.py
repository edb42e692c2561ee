"""Local search over activation regions of (leaky) ReLU networks.

Inside one activation region (every neuron's sign fixed) both networks are
affine, so ``sign * (f_i - g_i) / scale_i`` is affine in ``x``; its maximum over
the region's polyhedron intersected with the domain is a conic program (an
SOCP for the ball, an LP for a box) solved by Clarabel. From the optimum the
search flips the neurons whose constraints block it (largest dual
multipliers) and keeps the best neighbour, until none improves.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ._conic import ConicProgram, solve_conic
from ._problem import Problem

__all__ = ["RegionOutcome", "activation_pattern", "region_search"]


@dataclass(frozen=True)
class RegionOutcome:
    """Best point of a region search: ``x`` (d,), its objective ``value``
    (torch float64), the number of conic programs solved and whether the
    search stopped at a local optimum (``converged``)."""

    x: np.ndarray
    value: float
    solves: int
    converged: bool


def _blocks(problem: Problem) -> list:
    """``(source, weight, bias, activation)`` per block, the union layer first.

    ``source`` is ``None`` for the union layer (input ``x``), else
    ``(net, position)`` of the block feeding it: ``("f"|"g", -1)`` means the
    union layer seen through ``index_f``/``index_g``.
    """
    sh = problem.shared
    blocks = [(None, sh.weight, sh.bias, sh.activations)]
    for name, net in (("f", problem.f), ("g", problem.g)):
        for pos, layer in enumerate(net[1:]):
            src = (name, -1) if pos == 0 else (name, len(blocks) - 1)
            acts = (layer.activation,) * len(layer.bias)
            blocks.append((src, layer.weight, layer.bias, acts))
    return blocks


def _slopes(acts: tuple, on: np.ndarray) -> np.ndarray:
    return np.array([1.0 if a is None or o else a.slope
                     for a, o in zip(acts, on, strict=True)])


def _affine_maps(problem: Problem, pattern: list, deadline: float = math.inf) -> tuple:
    """Pre-activation maps ``(P, q)`` per block and the outputs' maps; ``None``
    when ``deadline`` passes first (checked before each block)."""
    sh, blocks = problem.shared, _blocks(problem)
    pre, post = [], []
    for (src, w, b, acts), on in zip(blocks, pattern, strict=True):
        if time.perf_counter() > deadline:
            return None
        if src is None:
            p_in, q_in = np.eye(problem.d), np.zeros(problem.d)
        elif src[1] == -1:
            idx = sh.index_f if src[0] == "f" else sh.index_g
            p_in, q_in = post[0][0][idx], post[0][1][idx]
        else:
            p_in, q_in = post[src[1]]
        p, q = w @ p_in, w @ q_in + b
        s = _slopes(acts, on)
        pre.append((p, q))
        post.append((s[:, None] * p, s * q))
    last_f = len(problem.f) - 1
    out_f = post[last_f] if last_f else (post[0][0][sh.index_f], post[0][1][sh.index_f])
    out_g = post[-1] if len(problem.g) > 1 else (post[0][0][sh.index_g],
                                                 post[0][1][sh.index_g])
    return blocks, pre, out_f, out_g


def activation_pattern(problem: Problem, x: np.ndarray) -> list:
    """Boolean ``z > 0`` per block (see :func:`_blocks`) at input ``x``: one
    forward pass, block by block."""
    sh, pattern, post = problem.shared, [], []
    for src, w, b, acts in _blocks(problem):
        if src is None:
            h = np.asarray(x, dtype=np.float64)
        elif src[1] == -1:
            h = post[0][sh.index_f if src[0] == "f" else sh.index_g]
        else:
            h = post[src[1]]
        z = w @ h + b
        pattern.append(z > 0)
        post.append(_slopes(acts, pattern[-1]) * z)
    return pattern


def _program(problem: Problem, pattern: list, i: int, sign: float,
             deadline: float = math.inf) -> tuple | None:
    maps = _affine_maps(problem, pattern, deadline)
    if maps is None:
        return None
    blocks, pre, out_f, out_g = maps
    rows, rhs, where = [], [], []
    for b, ((p, q), on, blk) in enumerate(zip(pre, pattern, blocks, strict=True)):
        has = np.array([a is not None for a in blk[3]])
        sigma = np.where(on, 1.0, -1.0)[has]
        rows.append(-sigma[:, None] * p[has])
        rhs.append(sigma * q[has])
        where.extend((b, j) for j in np.flatnonzero(has))
    c = sign * (out_f[0][i] - out_g[0][i]) / problem.scale[i]
    a_in, dom, basis = np.vstack(rows), problem.domain, problem.input_basis
    if basis is not None:  # ball only: optimise over y with x = Q y
        a_in, c = a_in @ basis, c @ basis
    nx = len(c)
    lo = dom.lower if dom.has_box else np.full(nx, -dom.beta)
    hi = dom.upper if dom.has_box else np.full(nx, dom.beta)
    prog = ConicProgram(c, sp.csr_matrix((0, nx)), np.zeros(0), sp.csr_matrix(a_in),
                        np.concatenate(rhs), lo, hi, nx, dom.beta)
    return prog, where


def _solve_pattern(problem: Problem, pattern: list, i: int, sign: float,
                   deadline: float) -> tuple:
    built = _program(problem, pattern, i, sign, deadline)
    if built is None or time.perf_counter() > deadline:  # no time left to solve it
        return None, -math.inf, None, []
    prog, where = built
    left = deadline - time.perf_counter() if math.isfinite(deadline) else None
    sol = solve_conic(prog, time_limit=left)
    if not sol.ok:
        return None, -math.inf, None, where
    v = sol.v if problem.input_basis is None else problem.input_basis @ sol.v
    x = _clip_to_domain(problem, v)
    return x, problem.evaluate(x)[0], sol.y_in, where


def _clip_to_domain(problem: Problem, x: np.ndarray) -> np.ndarray:
    import torch

    return problem.domain.project(torch.as_tensor(x[None, :]))[0].numpy()


def region_search(problem: Problem, x0: np.ndarray, i: int, sign: float, *,
                  deadline: float = math.inf, max_iter: int = 25,
                  flips: int = 3) -> RegionOutcome:
    """Region-by-region ascent of ``sign * (f_i - g_i)/scale_i`` from ``x0``.

    Parameters
    ----------
    problem : Problem
        Must be piecewise linear (``problem.piecewise_linear``).
    x0 : numpy.ndarray, shape (d,)
        Starting point; its activation pattern is the first region.
    i, sign : int, float
        Output and sign (``+1`` or ``-1``) to maximise.
    deadline : float
        ``time.perf_counter()`` value after which to stop.
    max_iter, flips : int
        Moves at most, and neighbours tried per move (the neurons with the
        largest dual multipliers).

    Returns
    -------
    RegionOutcome
        The best point by the true objective ``max_i |f_i - g_i| / scale_i``.
    """
    with np.errstate(over="ignore", invalid="ignore"):  # huge weights: the solver fails
        return _region_search(problem, x0, i, sign, deadline, max_iter, flips)


def _region_search(problem: Problem, x0: np.ndarray, i: int, sign: float, deadline: float,
                   max_iter: int, flips: int) -> RegionOutcome:
    pattern = activation_pattern(problem, x0)
    x, val, duals, where = _solve_pattern(problem, pattern, i, sign, deadline)
    best_x, best_val = np.asarray(x0, float), problem.evaluate(x0)[0]
    solves, converged = 1, False
    if x is not None and val > best_val:
        best_x, best_val = x, val
    for _ in range(max_iter):
        if duals is None or time.perf_counter() > deadline:
            break
        moved = None
        for r in np.argsort(-duals)[:flips]:
            if duals[r] <= 1e-9 or time.perf_counter() > deadline:
                break
            trial = [p.copy() for p in pattern]
            b, j = where[r]
            trial[b][j] = not trial[b][j]
            res = _solve_pattern(problem, trial, i, sign, deadline)
            solves += 1
            if res[0] is not None and res[1] > best_val * (1 + 1e-9) + 1e-12:
                best_x, best_val, moved = res[0], res[1], (trial, res)
        if moved is None:
            converged = True
            break
        pattern, (_, _, duals, where) = moved
    return RegionOutcome(best_x, best_val, solves, converged)
