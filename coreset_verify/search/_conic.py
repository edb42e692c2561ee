"""A thin wrapper of the Clarabel conic solver (LP / SOCP), and sound bounds
from its dual variables."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import MissingDependencyError
from ..nets.intervals import row_norms

__all__ = ["ConicProgram", "ConicSolution", "dual_bound", "solve_conic"]


@dataclass(frozen=True)
class ConicProgram:
    """``max c.v  s.t.  A_eq v = b_eq, A_in v <= b_in, lo <= v <= hi`` and,
    when ``beta`` is set, ``||v[:nx]||_2 <= beta``.

    ``lo``/``hi`` must be finite (they are in every program built here).
    Matrices are ``scipy.sparse`` (any format).
    """

    c: np.ndarray
    a_eq: object
    b_eq: np.ndarray
    a_in: object
    b_in: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    nx: int
    beta: float | None


@dataclass(frozen=True)
class ConicSolution:
    """``ok`` when Clarabel reports Solved/AlmostSolved; ``v`` the primal
    point, ``value`` ``c.v``; ``y_eq``/``y_in`` the dual multipliers (kept
    even when not ``ok``: :func:`dual_bound` is sound for any multipliers)."""

    ok: bool
    status: str
    v: np.ndarray | None
    value: float
    y_eq: np.ndarray | None
    y_in: np.ndarray | None


def _clarabel():
    try:
        import clarabel
    except ImportError:
        raise MissingDependencyError(
            "this search method needs the Clarabel solver (installed with cvxpy); "
            "pip install 'coreset-verify[solvers]'."
        ) from None
    return clarabel


def solve_conic(prog: ConicProgram, *, time_limit: float | None = None,
                ) -> ConicSolution:
    """Solve ``prog`` with Clarabel; never raises for a solver failure."""
    import scipy.sparse as sp

    clarabel = _clarabel()
    n = len(prog.c)
    eye = sp.identity(n, format="csc")
    blocks = [sp.csc_matrix(prog.a_eq), sp.csc_matrix(prog.a_in), eye, -eye]
    rhs = [prog.b_eq, prog.b_in, prog.hi, -prog.lo]
    cones = [clarabel.ZeroConeT(len(prog.b_eq)),
             clarabel.NonnegativeConeT(len(prog.b_in) + 2 * n)]
    if prog.beta is not None:
        sel = sp.hstack([sp.identity(prog.nx), sp.csc_matrix((prog.nx, n - prog.nx))])
        blocks.append(sp.vstack([sp.csc_matrix((1, n)), -sel]))
        rhs.append(np.concatenate([[prog.beta], np.zeros(prog.nx)]))
        cones.append(clarabel.SecondOrderConeT(prog.nx + 1))
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    if time_limit is not None and time_limit <= 1e9:  # longer: no limit
        settings.time_limit = max(float(time_limit), 1e-3)
    try:
        solver = clarabel.DefaultSolver(
            sp.csc_matrix((n, n)), -np.asarray(prog.c, dtype=float),
            sp.vstack(blocks, format="csc"), np.concatenate(rhs), cones, settings)
        sol = solver.solve()
    except Exception as exc:
        return ConicSolution(False, f"error: {exc}", None, -np.inf, None, None)
    status = str(sol.status)
    ok = status.endswith("Solved") and "Infeasible" not in status
    v, z = np.asarray(sol.x), np.asarray(sol.z)
    m_eq, m_in = len(prog.b_eq), len(prog.b_in)
    if not np.all(np.isfinite(z)):
        return ConicSolution(False, status, None, -np.inf, None, None)
    y_eq, y_in = z[:m_eq], z[m_eq:m_eq + m_in]
    if not ok or not np.all(np.isfinite(v)):
        return ConicSolution(False, status, None, -np.inf, y_eq, y_in)
    return ConicSolution(True, status, v, float(prog.c @ v), y_eq, y_in)


def _max_linear_over_domain(r_x: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                            beta: float | None) -> float:
    box = float(np.sum(np.maximum(r_x * lo, r_x * hi)))
    return box if beta is None else min(box, beta * float(row_norms(r_x[None])[0]))


def dual_bound(prog: ConicProgram, y_eq: np.ndarray, y_in: np.ndarray) -> float:
    """A sound upper bound on ``prog``'s maximum from ANY multipliers.

    Weak duality: for every ``y_eq`` and every ``y_in >= 0`` (negative entries
    are clipped to 0), with ``r = c - A_eq^T y_eq - A_in^T y_in``,

        max c.v <= y_eq.b_eq + y_in.b_in + max_{v in bounds and ball} r.v,

    the last term in closed form (box: sum of ``max(r lo, r hi)``; ball:
    ``beta ||r_x||``). The value is enlarged by ``1e-10`` of the sum of the
    magnitudes of its terms to cover float64 rounding, and by ``1e-300`` per
    entry of ``r`` times the largest ``|v_j|`` to cover underflow; a value that overflows
    (or is NaN, from ``inf - inf``) is ``inf``. See proofs_notes/search_bounds.md.
    """
    with np.errstate(all="ignore"):
        value = _dual_bound(prog, y_eq, y_in)
    return value if not np.isnan(value) else np.inf


def _dual_bound(prog: ConicProgram, y_eq: np.ndarray, y_in: np.ndarray) -> float:
    y_in = np.maximum(y_in, 0.0)
    r = prog.c - prog.a_eq.T @ y_eq - prog.a_in.T @ y_in
    nx = prog.nx
    terms = [float(y_eq @ prog.b_eq), float(y_in @ prog.b_in),
             float(np.sum(np.maximum(r[nx:] * prog.lo[nx:], r[nx:] * prog.hi[nx:]))),
             _max_linear_over_domain(r[:nx], prog.lo[:nx], prog.hi[:nx], prog.beta)]
    bounds = np.maximum(np.abs(prog.lo), np.abs(prog.hi))
    mags = (float(np.abs(y_eq) @ np.abs(prog.b_eq)) + float(y_in @ np.abs(prog.b_in))
            + float(np.abs(r) @ bounds))
    # Underflow: each entry of r may lose up to 1e-300 (products of tiny numbers),
    # multiplied by the largest value its variable takes.
    reach = max(float(np.max(bounds, initial=0.0)), prog.beta or 0.0)
    return sum(terms) + 1e-10 * mags + 1e-300 * (1.0 + reach * (len(r) + 1))
