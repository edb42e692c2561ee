"""Every upper bound is sound: no sampled point of the domain exceeds it."""

from __future__ import annotations

import numpy as np
import pytest
from _search_helpers import nn, sample_max, tiny_pair, torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coreset_verify.search import worst_case
from coreset_verify.search._problem import make_problem
from coreset_verify.search.bounds import relaxation_bounds
from coreset_verify.search.exact import exact_search

SETTINGS = settings(max_examples=6, derandomize=True, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _deep_pair(seed: int):
    """Two-hidden-layer leaky-ReLU original vs one-hidden-layer pruned."""
    torch.manual_seed(seed)
    f = nn.Sequential(nn.Linear(2, 3), nn.LeakyReLU(0.1),
                      nn.Sequential(nn.Linear(3, 3), nn.ReLU()),
                      nn.Dropout(0.5), nn.Linear(3, 2)).double()
    g = nn.Sequential(nn.Flatten(), nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))
    return f, g.double()


@SETTINGS
@given(seed=st.integers(0, 10_000), shared=st.booleans(), deep=st.booleans(),
       beta=st.sampled_from([0.5, 1.0, 3.0]))
def test_interval_linear_relaxation_and_exact_bounds_are_sound(seed, shared, deep,
                                                               beta):
    f, g = _deep_pair(seed) if deep else tiny_pair(seed, d=2, n_f=4, n_g=2, k=2,
                                                   shared=shared)
    f.eval()
    seen = sample_max(f, g, beta, 10_000, seed)
    problem = make_problem(f, g, beta=beta, lower=None, upper=None, scale=None)
    out = relaxation_bounds(problem)
    for stage in out.stages:
        assert stage.upper_bound >= seen * (1 - 1e-9) - 1e-12, stage
    exact = exact_search(problem, out, time_limit=20)
    assert exact.upper_bound >= seen * (1 - 1e-9) - 1e-12
    assert exact.value <= exact.upper_bound


@SETTINGS
@given(seed=st.integers(0, 10_000), half=st.floats(0.2, 2.0))
def test_box_bounds_are_sound(seed, half):
    f, g = tiny_pair(seed, d=2, n_f=4, n_g=3, k=2, shared=seed % 2 == 0)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-half, half, (10_000, 2))
    x[:4] = [[-half, -half], [-half, half], [half, -half], [half, half]]
    with torch.no_grad():
        xt = torch.as_tensor(x)
        seen = float((f(xt) - g(xt)).abs().max())
    res = worst_case(f, g, lower=-half, upper=half, rng=seed)
    assert res.upper_bound >= seen * (1 - 1e-9) - 1e-12
    # exact on a tiny box: the bracket closes to the documented 1e-4 tolerance
    assert res.error >= seen * (1 - 1e-4) - 1e-9
    for stage in res.trace:
        assert stage.upper_bound >= seen * (1 - 1e-9) - 1e-12, stage


@pytest.mark.slow
@settings(max_examples=60, derandomize=True, deadline=None)
@given(seed=st.integers(0, 10_000), beta=st.floats(0.1, 5.0))
def test_auto_bounds_are_sound_many_networks(seed, beta):
    f, g = tiny_pair(seed, d=3, n_f=5, n_g=3, k=2, shared=seed % 2 == 0)
    seen = sample_max(f, g, beta, 50_000, seed)
    res = worst_case(f, g, beta=beta, rng=seed)
    assert res.upper_bound >= seen * (1 - 1e-9) - 1e-12
    assert res.error >= seen * (1 - 1e-4) - 1e-9  # the documented tolerance


@pytest.mark.parametrize(
    "act",
    [nn.Sigmoid(), nn.Tanh(), nn.Softplus(beta=2.0), nn.ELU(0.7), nn.LeakyReLU(0.3)],
    ids=["sigmoid", "tanh", "softplus", "elu", "leaky_relu"],
)
@pytest.mark.parametrize("shared", [True, False], ids=["shared", "independent"])
def test_bounds_of_every_activation_are_sound(act, shared):
    f, g = tiny_pair(21, d=2, n_f=5, n_g=3, k=2, shared=shared, act=act)
    seen = sample_max(f, g, 2.0, 20_000, 21)
    res = worst_case(f, g, beta=2.0, method="auto", rng=0)
    assert res.upper_bound >= seen * (1 - 1e-9)
    assert res.error >= 0.99 * seen
    for stage in res.trace:
        assert stage.upper_bound >= seen * (1 - 1e-9), stage
