"""Extreme magnitudes: every returned bracket holds, or a documented error is raised.

Random tiny ReLU networks whose layers are scaled by powers of two from 2**-600 to
2**600 (exact in float64; first layers also down to subnormal 2**-1060), on balls of
radius 2**-600 to 2**1023. The oracle is
independent of the package: the objective evaluated by numpy at dense samples of
the ball (and, for d = 1, at every breakpoint, where the maximum is attained).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from _search_helpers import one_hidden

from coreset_verify.errors import InvalidArgumentError
from coreset_verify.search import SOLVER_FAILED, worst_case
from coreset_verify.search.exact import MIP_MAX_MAGNITUDE

hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies


def _long(*arrays):
    """In x87 extended precision (np.longdouble: 15-bit exponent), so the oracle
    neither overflows nor underflows where float64 would."""
    return [np.asarray(a, dtype=np.longdouble) for a in arrays]


def _forward(w1, b1, w2, b2, x):
    w1, b1, w2, b2, x = _long(w1, b1, w2, b2, x)
    return np.maximum(x @ w1.T + b1, 0.0) @ w2.T + b2


def _samples(d: int, beta: float, pts: list, rng: np.random.Generator) -> np.ndarray:
    """Dense points of the ball: a grid plus breakpoints (d = 1), or directions
    on the sphere, shrunk copies, and the first layers' row directions (d = 2)."""
    if d == 1:
        grid = np.linspace(-1.0, 1.0, 2001) * beta
        breaks = [-b / w for w, b in pts if w != 0 and abs(b / w) <= beta]
        return np.concatenate([grid, np.array(breaks, dtype=float)])[:, None]
    angle = rng.uniform(0, 2 * np.pi, 1500)
    u = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    radius = np.concatenate([np.ones(1000), rng.random(500) ** 0.5])
    return u * (radius * beta)[:, None]


def _magnitude(w1, b1, w2, b2, x):
    w1, b1, w2, b2, x = _long(w1, b1, w2, b2, x)
    return np.abs(np.maximum(x @ w1.T + b1, 0.0)) @ np.abs(w2).T + np.abs(b2)


@st.composite
def scaled_pairs(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    d, k = draw(st.sampled_from([1, 2])), draw(st.sampled_from([1, 2]))
    exponent = st.one_of(st.sampled_from([-600, -300, -100, 0, 100, 300, 600]),
                         st.integers(-600, 600))
    e_in = draw(st.one_of(exponent, st.sampled_from([-1030, -1060])))  # subnormal weights
    e_out = draw(exponent)
    e_beta = draw(st.one_of(st.integers(-20, 20), exponent, st.just(1023)))
    shared = draw(st.booleans())
    rng = np.random.default_rng(seed)
    n_f, n_g = 3, 2
    s_in, s_out = 2.0**e_in, 2.0**e_out
    w1, b1 = rng.standard_normal((n_f, d)) * s_in, rng.standard_normal(n_f) * s_in
    w2, b2 = rng.standard_normal((k, n_f)) * s_out, 0.1 * rng.standard_normal(k) * s_out
    if shared:
        keep = np.sort(rng.choice(n_f, n_g, replace=False))
        g = (w1[keep], b1[keep], w2[:, keep] * rng.uniform(0.5, 2.0, (k, n_g)), b2)
    else:
        g = (rng.standard_normal((n_g, d)) * s_in, rng.standard_normal(n_g) * s_in,
             rng.standard_normal((k, n_g)) * s_out, b2)
    method = draw(st.sampled_from(["bounds", "exact", "auto"]))
    return (w1, b1, w2, b2), g, 2.0**e_beta, method


@hypothesis.settings(max_examples=25, deadline=None, derandomize=True,
                     suppress_health_check=list(hypothesis.HealthCheck))
@hypothesis.given(scaled_pairs())
def test_bracket_contains_sampled_errors_at_extreme_scales(case):
    f_w, g_w, beta, method = case
    try:
        res = worst_case(one_hidden(*f_w), one_hidden(*g_w), beta=beta, method=method,
                         time_limit=2.0, rng=0, restarts=4)
    except InvalidArgumentError as exc:
        hypothesis.event(f"refused: {str(exc)[:60]}")
        return  # a documented refusal (e.g. weights whose composition overflows)
    d = f_w[0].shape[1]
    pts = list(zip(f_w[0][:, 0], f_w[1], strict=True)) + list(
        zip(g_w[0][:, 0], g_w[1], strict=True)) if d == 1 else []
    x = _samples(d, beta, pts, np.random.default_rng(0))
    err = np.abs(_forward(*f_w, x) - _forward(*g_w, x)).max(axis=1)
    mag = (_magnitude(*f_w, x) + _magnitude(*g_w, x)).max(axis=1)
    hypothesis.event(f"{method}: {res.status}, finite={math.isfinite(res.upper_bound)}")
    assert not math.isnan(res.upper_bound)
    assert res.error <= res.upper_bound
    # rounding of the sampled objective (float64 weights, extended arithmetic): a few
    # ulps of the magnitudes; an error beyond float64's range needs upper_bound = inf.
    if not (np.all(np.isfinite(err)) and np.all(np.isfinite(mag))):
        return  # only where np.longdouble is float64 (no x87): the oracle overflowed
    slack = 1e-12 * mag + 1e-300
    upper = np.longdouble(res.upper_bound)
    assert np.all(err <= upper + slack), (err.max(), res.upper_bound, res.status)
    at_x = np.abs(_forward(*f_w, res.x[None]) - _forward(*g_w, res.x[None])).max()
    at_mag = (_magnitude(*f_w, res.x[None]) + _magnitude(*g_w, res.x[None])).max()
    assert abs(at_x - res.error) <= 1e-12 * at_mag + 1e-300


def test_mip_is_not_handed_magnitudes_beyond_its_tolerances():
    # Neuron 0 has weights of 2**-40 and an outgoing weight of 2**40, the others
    # weights near 1: no rescaling by layer brings the MIP's coefficients below
    # MIP_MAX_MAGNITUDE, and the solvers' absolute tolerances would not cover its
    # dual bound; so it is not solved, and the bounds stage's (sound) bound is kept.
    rng = np.random.default_rng(3)
    w1, b1, w2 = rng.standard_normal((3, 2)), rng.standard_normal(3), rng.standard_normal((1, 3))
    w1[0], b1[0], w2[0, 0] = w1[0] * 2.0**-40, 2.0**-40, 2.0**40
    f_w = (w1, b1, w2, np.zeros(1))
    g_w = (w1[1:], b1[1:], w2[:, 1:] * 1.5, np.zeros(1))
    res = worst_case(one_hidden(*f_w), one_hidden(*g_w), beta=1.0, method="exact", rng=0)
    exact = next(s for s in res.trace if s.name == "exact")
    assert 2.0**40 > MIP_MAX_MAGNITUDE
    assert exact.status == SOLVER_FAILED
    assert math.isfinite(res.upper_bound)
    x = _samples(2, 1.0, [], np.random.default_rng(1))
    sampled = np.abs(_forward(*f_w, x) - _forward(*g_w, x)).max()
    assert sampled <= res.upper_bound * (1 + 1e-12)


@pytest.mark.parametrize("exponents", [(-500, 500, 0), (300, -300, 0), (0, 0, 600),
                                       (-400, 0, 400)],
                         ids=["in-2^-500,out-2^500", "in-2^300,out-2^-300", "beta-2^600",
                              "in-2^-400,beta-2^400"])
@pytest.mark.parametrize("method", ["bounds", "exact"])
def test_scaled_networks_are_solved_as_well_as_unscaled(exponents, method):
    # (Leaky) ReLU is positively homogeneous: scaling the first layer by 2**a, the
    # second by 2**b and the radius by 2**c scales the objective by exactly
    # 2**(a + b + c). The programs are solved on a copy rescaled by powers of two,
    # so the bracket must be the unscaled one, scaled (not a solver failure).
    a, b, c = exponents
    rng = np.random.default_rng(8)
    w1, b1 = rng.standard_normal((5, 2)), rng.standard_normal(5)
    w2, b2 = rng.standard_normal((2, 5)), np.zeros(2)
    keep = [0, 2, 3]
    f0, g0 = (w1, b1, w2, b2), (w1[keep], b1[keep], w2[:, keep] * 1.7, b2)

    def scaled(w):
        return (w[0] * 2.0**a, w[1] * 2.0**(a + c), w[2] * 2.0**b, w[3])

    ref = worst_case(one_hidden(*f0), one_hidden(*g0), beta=1.0, method=method, rng=0)
    res = worst_case(one_hidden(*scaled(f0)), one_hidden(*scaled(g0)), beta=2.0**c,
                     method=method, rng=0)
    unit = 2.0 ** (a + b + c)
    assert res.status == ref.status
    assert res.upper_bound / unit == pytest.approx(ref.upper_bound, rel=1e-6)
    if method == "exact":
        assert res.certified
        assert res.error / unit == pytest.approx(ref.error, rel=1e-6)


@pytest.mark.parametrize("beta", [1e300, 1e-300], ids=["beta=1e300", "beta=1e-300"])
def test_float32_models_on_extreme_radii(beta):
    # FUZZ F3: the float32 Adam ascent overflowed (raw RuntimeError) at beta=1e300.
    # The ascent runs in float64 when float32 cannot carry the magnitudes.
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    nn = torch.nn
    f = nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 1, bias=False))
    g = nn.Sequential(nn.Linear(1, 1), nn.ReLU(), nn.Linear(1, 1, bias=False))
    res = worst_case(f, g, beta=beta, method="auto", time_limit=2.0, rng=0, restarts=4)
    w = [tuple(p.detach().double().numpy() for p in (n[0].weight, n[0].bias, n[2].weight))
         for n in (f, g)]
    x = np.linspace(-beta, beta, 4001)[:, None]
    err = np.abs(_forward(*w[0], np.zeros(1), x) - _forward(*w[1], np.zeros(1), x)).max()
    assert res.error <= res.upper_bound
    assert err <= res.upper_bound * (1 + 1e-9)
    assert res.certified
