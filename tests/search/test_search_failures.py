"""Solver failures and time-outs give a status, never an exception."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _search_helpers import tiny_pair

from coreset_verify.search import SOLVER_FAILED, TIME_LIMIT, verify, worst_case
from coreset_verify.search import exact as exact_module


@pytest.fixture(scope="module")
def medium():
    return tiny_pair(5, d=8, n_f=40, n_g=10, k=3, shared=True)


def test_tiny_time_limit_returns_time_limit_status(medium):
    f, g = medium
    res = worst_case(f, g, beta=2.0, method="exact", time_limit=1e-3, rng=0)
    assert res.status in (TIME_LIMIT, "optimal")
    assert res.error <= res.upper_bound
    assert math.isfinite(res.upper_bound)
    assert verify(res, f, g)


def test_auto_respects_time_limit(medium):
    f, g = medium
    res = worst_case(f, g, beta=2.0, time_limit=2.0, rng=0)
    assert res.seconds < 10.0
    assert res.error <= res.upper_bound
    assert verify(res, f, g)


@pytest.mark.parametrize("domain", [{"beta": 1.0}, {"lower": -1.0, "upper": 1.0}],
                         ids=["scip", "highs"])
def test_raising_solver_gives_solver_failed(monkeypatch, medium, domain):
    def boom(*args, **kwargs):
        raise RuntimeError("solver exploded")

    monkeypatch.setattr(exact_module, "_solve_scip", boom)
    monkeypatch.setattr(exact_module, "_solve_highs", boom)
    f, g = medium
    res = worst_case(f, g, method="exact", rng=0, **domain)
    assert res.status == SOLVER_FAILED
    exact_stage = [s for s in res.trace if s.name == "exact"]
    assert exact_stage[0].status == SOLVER_FAILED
    assert math.isfinite(res.upper_bound)  # the bounds stage still proved one
    assert verify(res, f, g)


def test_failing_relaxation_keeps_interval_bounds(monkeypatch, medium):
    from coreset_verify.search import bounds as bounds_module
    from coreset_verify.search._conic import ConicSolution

    monkeypatch.setattr(bounds_module, "solve_conic", lambda *a, **k: ConicSolution(
        False, "broken", None, -np.inf, None, None))
    f, g = medium
    res = worst_case(f, g, beta=1.0, method="bounds")
    relax = next(s for s in res.trace if s.name == "bounds:relaxation")
    assert relax.status == SOLVER_FAILED
    assert math.isfinite(res.upper_bound)


def test_auto_without_solvers_still_bounds(monkeypatch):
    from coreset_verify.errors import MissingDependencyError
    from coreset_verify.search import _conic

    def missing():
        raise MissingDependencyError("no clarabel; pip install 'coreset-verify[solvers]'")

    def no_scip(*args, **kwargs):
        raise MissingDependencyError("no pyscipopt")

    monkeypatch.setattr(_conic, "_clarabel", missing)
    monkeypatch.setattr(exact_module, "_solve_scip", no_scip)
    f, g = tiny_pair(2, d=2, n_f=4, n_g=2, k=1, shared=True)
    res = worst_case(f, g, beta=1.0, rng=0)
    statuses = {s.name: s.status for s in res.trace}
    assert statuses["region"] == "not_applicable"
    assert statuses["bab"] == "optimal"  # branch and bound needs no external solver
    assert math.isfinite(res.upper_bound)
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    deep_f, deep_g = (torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(),
                                          torch.nn.Linear(3, 3), torch.nn.ReLU(),
                                          torch.nn.Linear(3, 1)).double() for _ in range(2))
    deeper = worst_case(deep_f, deep_g, beta=1.0, rng=0)  # not for bab: exact, no SCIP
    assert {s.name: s.status for s in deeper.trace}["exact"] == "not_applicable"
    assert verify(res, f, g)
    with pytest.raises(MissingDependencyError, match="solvers"):
        worst_case(f, g, beta=1.0, method="bounds")


def test_gradient_stage_does_not_use_torch_optim(monkeypatch):
    # torch.optim.Adam imports torch._dynamo on first use (3-4 s that no time limit
    # covered); the search writes its Adam step out instead.
    import torch

    def no_optim(*args, **kwargs):
        raise AssertionError("torch.optim.Adam used")

    monkeypatch.setattr(torch.optim, "Adam", no_optim)
    f, g = tiny_pair(2, d=3, n_f=6, n_g=3, k=2, shared=True)
    res = worst_case(f, g, beta=1.0, method="gradient", rng=0)
    assert res.error > 0


@pytest.mark.parametrize("domain", [{"beta": 1.0}, {"lower": -1.0, "upper": 1.0}],
                         ids=["scip", "highs"])
def test_huge_time_limit_means_no_limit(domain):
    # FUZZ F13: time_limit=1e308 is a valid finite limit, but SCIP refuses more than
    # 1e20 s and the MIP never ran (solver_failed, C-level ERROR lines).
    f, g = tiny_pair(2, d=2, n_f=4, n_g=2, k=1, shared=True)
    res = worst_case(f, g, method="exact", time_limit=1e308, rng=0, **domain)
    exact = next(s for s in res.trace if s.name == "exact")
    assert exact.status == "optimal"
    assert res.certified
