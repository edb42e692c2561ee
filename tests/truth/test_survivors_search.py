"""Known answers for the sound bounds of the worst-case search, written to kill
the mutants of ``search/bounds.py`` and ``search/_intervals.py`` that survived
mutation testing (proofs_notes/search_bounds.md, sections 1-4 and 8).

Every expected value is derived here from the formulas of search_bounds.md
(ranges ``b +- beta ||w||`` on the ball, the vertex formula on a box, interval
arithmetic after the first layer, the chord / lower line of section 3), or
computed by an independent oracle (the triangle LP of section 4 written in
cvxpy, the objective at sampled points). The instances are small and chosen so
that every branch matters: non-unit output scales, output biases that differ,
shared neurons with different output weights, stably active, stably inactive
and unstable neurons (one with a symmetric range), leaky slopes, box domains,
single-Linear, output-activated and deeper networks (whose difference terms do
not exist), mixed first-layer activations, magnitudes of ``2**-600``, ``1e200`` and
``2**-1000``, and a weight at the bottom of the normal range (which stops the
rescaled copy).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
cp = pytest.importorskip("cvxpy")

from coreset_verify.search._intervals import interval_bounds  # noqa: E402
from coreset_verify.search._problem import make_problem  # noqa: E402
from coreset_verify.search.bounds import (  # noqa: E402
    difference_terms,
    linear_relaxation_bounds,
    relaxation_bounds,
)

RTOL = 1e-9  # the code widens every range by ~1e-12 relative; this is far above


def _seq(*spec, d):
    """``nn.Sequential`` from ``(W, b)`` pairs and activation classes (float64)."""
    mods = []
    for item in spec:
        if isinstance(item, tuple):
            W = np.atleast_2d(np.asarray(item[0], dtype=np.float64))
            lin = torch.nn.Linear(W.shape[1], W.shape[0]).double()
            with torch.no_grad():
                lin.weight.copy_(torch.as_tensor(W))
                lin.bias.copy_(torch.as_tensor(np.asarray(item[1], dtype=np.float64)))
            mods.append(lin)
        else:
            mods.append(item())
    assert mods[0].in_features == d
    return torch.nn.Sequential(*mods)


def _problem(f, g, beta=1.0, lower=None, upper=None, scale=None):
    return make_problem(f, g, beta=beta, lower=lower, upper=upper, scale=scale)


def _relu(z, slope=0.0):
    return np.maximum(z, slope * z)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _ball(W, b, beta):
    r = beta * np.linalg.norm(W, axis=1)
    return b - r, b + r


def _box(W, b, lower, upper):
    c, r = (lower + upper) / 2, (upper - lower) / 2
    return W @ c + b - np.abs(W) @ r, W @ c + b + np.abs(W) @ r


def _affine(M, c, lo, hi):
    mid, rad = (lo + hi) / 2, (hi - lo) / 2
    return M @ mid + c - np.abs(M) @ rad, M @ mid + c + np.abs(M) @ rad


def _pairs(dlo, dhi, scale):
    """(k, 2) pair bounds: ``(f - g)/s`` from above, ``(g - f)/s`` from above."""
    return np.stack([dhi, -dlo], axis=1) / np.asarray(scale)[:, None]


# --- a one-hidden-layer pair with shared neurons (sections 1-3 by hand) -------

def _shared_pair(slope):
    """f: 6 neurons on R^3, 3 outputs; g keeps neurons 0, 2 and 4 of f (identical
    rows, so shared), re-weighted, and adds one neuron of its own.

    Neuron 1 is stably active, 3 stably inactive, 4 unstable with bias 0 (a
    symmetric range, the tie of the lower line), the others unstable.
    """
    gen = np.random.default_rng(11)
    W = gen.normal(size=(6, 3))
    norms = np.linalg.norm(W, axis=1)
    b = np.array([0.4, 1.5 * norms[1] + 1.0, -0.3, -1.5 * norms[3] - 1.0, 0.0, 0.2])
    A = gen.normal(size=(3, 6))
    own_w, own_b = gen.normal(size=(1, 3)), np.array([0.1])
    Wg, bg1 = np.vstack([W[[0, 2, 4]], own_w]), np.concatenate([b[[0, 2, 4]], own_b])
    B = gen.normal(size=(3, 4))
    bf, bg = np.array([0.3, -0.2, 0.5]), np.array([-0.4, 0.1, 0.5])
    # union layer: f's six neurons, then g's own one; D = A - U scattered
    Wu, bu = np.vstack([W, own_w]), np.concatenate([b, own_b])
    D = np.zeros((3, 7))
    D[:, :6] += A
    D[:, [0, 2, 4, 6]] -= B
    act = (lambda: torch.nn.LeakyReLU(slope)) if slope else torch.nn.ReLU
    f = _seq((W, b), act, (A, bf), d=3)
    g = _seq((Wg, bg1), act, (B, bg), d=3)
    hand = {"W": W, "b": b, "A": A, "Wg": Wg, "bg1": bg1, "B": B, "bf": bf, "bg": bg,
            "Wu": Wu, "bu": bu, "D": D, "e": bf - bg, "slope": slope}
    return f, g, hand


def _hand_interval(h, lo, hi, scale, phi):
    """Section 1-2: interval bounds of both networks and of the difference network."""
    plo, phi_ = phi(lo), phi(hi)
    flo, fhi = _affine(h["A"], h["bf"], plo[:6], phi_[:6])
    glo, ghi = _affine(h["B"], h["bg"], plo[[0, 2, 4, 6]], phi_[[0, 2, 4, 6]])
    jlo, jhi = _affine(h["D"], h["e"], plo, phi_)
    dlo, dhi = np.maximum(flo - ghi, jlo), np.minimum(fhi - glo, jhi)
    return _pairs(dlo, dhi, scale)


def _hand_linear(D, e, Wu, bu, lo, hi, slope, scale, best):
    """Section 3: chord above when the coefficient is >= 0, else the lower line
    ``z`` (when ``hi >= -lo``) or ``a z``; stable neurons exact. ``best(grad)``
    is the maximum of ``grad . x`` over the domain."""
    on, off = lo >= 0, hi <= 0
    unstable = ~(on | off)
    width = np.where(unstable, hi - lo, 1.0)
    chord = (hi - slope * lo) / width
    su = np.where(on, 1.0, np.where(off, slope, chord))
    tu = np.where(unstable, slope * lo - chord * lo, 0.0)
    sl = np.where(on, 1.0, np.where(off, slope, np.where(hi >= -lo, 1.0, slope)))
    out = np.empty((D.shape[0], 2))
    for i in range(D.shape[0]):
        for s, sign in enumerate((1.0, -1.0)):
            coef = sign * D[i] / scale[i]
            slopes = np.where(coef >= 0, coef * su, coef * sl)
            const = slopes @ bu + np.sum(np.where(coef >= 0, coef * tu, 0.0))
            const += sign * e[i] / scale[i]
            out[i, s] = const + best(slopes @ Wu)
    return out


@pytest.mark.parametrize("slope", [0.0, 0.1])
def test_linear_relaxation_is_the_hand_derivation_on_shared_neurons(slope):
    """Every pair's linear bound (not only the largest) equals section 3 by hand:
    shared neurons, non-unit scales, differing output biases, leaky slope."""
    f, g, h = _shared_pair(slope)
    scale = np.array([2.0, 0.5, 4.0])
    beta = 1.5
    problem = _problem(f, g, beta=beta, scale=scale)
    lo, hi = _ball(h["Wu"], h["bu"], beta)
    assert lo[1] > 0  # the branches are all used
    assert hi[3] < 0
    assert lo[4] == -hi[4]
    want = _hand_linear(h["D"], h["e"], h["Wu"], h["bu"], lo, hi, slope, scale,
                        lambda grad: beta * np.linalg.norm(grad))
    iv = interval_bounds(problem)
    got = linear_relaxation_bounds(problem, iv)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=1e-8)  # margin 1e-10 |terms|
    # the interval bounds (both networks apart, and the difference network)
    want_iv = _hand_interval(h, lo, hi, scale, lambda z: _relu(z, slope))
    np.testing.assert_allclose(_pairs(iv.diff[0], iv.diff[1], np.ones(3)), want_iv,
                               rtol=RTOL, atol=1e-12)
    # the coefficients themselves: sign (f_i - g_i)/s_i = coef[p] . phi(z) + e[p]
    coef, e = difference_terms(problem)
    np.testing.assert_allclose(coef, np.vstack([h["D"], -h["D"]]) / np.tile(scale, 2)[:, None],
                               rtol=1e-15)
    np.testing.assert_allclose(e, np.concatenate([h["e"], -h["e"]]) / np.tile(scale, 2),
                               rtol=1e-15)
    # and the difference network they describe is f - g at sampled points
    x = np.random.default_rng(0).normal(size=(50, 3))
    with torch.no_grad():
        diff = (f(torch.as_tensor(x)) - g(torch.as_tensor(x))).numpy() / scale
    z = x @ h["Wu"].T + h["bu"]
    np.testing.assert_allclose(_relu(z, slope) @ coef[:3].T + e[:3], diff, rtol=1e-12,
                               atol=1e-12)


def test_relaxation_bounds_without_relaxation_are_the_elementwise_minimum():
    """``relax=False``: pair bounds are min(interval, linear) per pair, in (k, 2)
    order, stages interval then linear, and the bound is their maximum even when
    it is below 1."""
    f, g, h = _shared_pair(0.0)
    scale = np.array([16.0, 8.0, 32.0])
    beta = 1.5
    problem = _problem(f, g, beta=beta, scale=scale)
    lo, hi = _ball(h["Wu"], h["bu"], beta)
    interval = _hand_interval(h, lo, hi, scale, _relu)
    linear = _hand_linear(h["D"], h["e"], h["Wu"], h["bu"], lo, hi, 0.0, scale,
                          lambda grad: beta * np.linalg.norm(grad))
    want = np.minimum(interval, linear)
    assert 0 < want.max() < 1
    assert not np.allclose(interval, want, rtol=1e-3)
    out = relaxation_bounds(problem, relax=False)
    assert out.pair_bounds.shape == (3, 2)
    np.testing.assert_allclose(out.pair_bounds, want, rtol=RTOL, atol=1e-8)
    assert math.isclose(out.upper_bound, want.max(), rel_tol=RTOL)
    assert [s.name for s in out.stages] == ["bounds:interval", "bounds:linear"]
    assert out.points == []


# --- the triangle LP (section 4), against cvxpy ---------------------------------

def _lp_oracle(Wu, bu, D, e, scale, beta, slope=0.0):
    """max of sign (D phi(z) + e)_i / s_i over the triangle relaxation, per pair."""
    lo, hi = _ball(Wu, bu, beta)
    out = np.empty((D.shape[0], 2))
    for i in range(D.shape[0]):
        for s, sign in enumerate((1.0, -1.0)):
            x, hv = cp.Variable(Wu.shape[1]), cp.Variable(len(bu))
            z = Wu @ x + bu
            cons = [cp.norm(x) <= beta]
            for j in range(len(bu)):
                if lo[j] >= 0:
                    cons.append(hv[j] == z[j])
                elif hi[j] <= 0:
                    cons.append(hv[j] == slope * z[j])
                else:
                    su = (hi[j] - slope * lo[j]) / (hi[j] - lo[j])
                    cons += [hv[j] >= z[j], hv[j] >= slope * z[j],
                             hv[j] <= slope * lo[j] + su * (z[j] - lo[j])]
            obj = cp.Maximize(sign * (D[i] @ hv + e[i]) / scale[i])
            out[i, s] = cp.Problem(obj, cons).solve(solver=cp.CLARABEL)
    return out


def _lp_pair(tiny=False, power=0):
    """Five ReLU neurons on R^2, two outputs; the pruned network drops two neurons
    and shrinks the rest. Output 1 is offset by 1, so that g_1 - f_1 < 0 on the
    ball. ``tiny``: a sixth neuron ``2.5e-308 x_1 + 3``, output weight 0 in both
    networks (it changes no output). ``power``: the same pair with ``W 2**-p``,
    ``b 2**(p-200)``, output weights ``2**-p`` and biases ``2**-200``, on the ball
    of radius ``2**(2p-200)``: its objective is ``2**-200`` times the original one."""
    gen = np.random.default_rng(1)
    W, b = gen.normal(size=(5, 2)), 0.3 * gen.normal(size=5)
    A = gen.normal(size=(2, 5))
    B = A.copy()
    B[:, :2] = 0.0
    B[:, 2:] *= 0.3
    bf, bg = np.array([0.0, 1.0]), np.zeros(2)
    hand = {"W": W, "b": b, "D": A - B, "e": bf - bg}
    if tiny:
        W, b = np.vstack([W, [2.5e-308, 0.0]]), np.append(b, 3.0)
        A, B = np.hstack([A, np.zeros((2, 1))]), np.hstack([B, np.zeros((2, 1))])
    # x = 2**(2p - 200) u: z' = 2**(p - 200) z, outputs 2**-p 2**(p - 200) = 2**-200
    sw, sb, sc = (2.0**-power, 2.0 ** (power - 200), 2.0**-200) if power else (1.0, 1.0, 1.0)
    f = _seq((W * sw, b * sb), torch.nn.ReLU, (A * sw, bf * sc), d=W.shape[1])
    g = _seq((W * sw, b * sb), torch.nn.ReLU, (B * sw, bg * sc), d=W.shape[1])
    return f, g, hand


LP_SCALE = np.array([1.0, 4.0])


@pytest.fixture(scope="module")
def lp_truth():
    """The triangle LP's pair values (above the code's relaxation, which also
    bounds every output variable by its interval), the pair maxima over a dense
    grid of the disk (below every sound bound), and the bounds before the LP (hand)."""
    _, _, h = _lp_pair()
    lp = _lp_oracle(h["W"], h["b"], h["D"], h["e"], LP_SCALE, 1.0)
    r = np.sqrt(np.linspace(0, 1, 200))
    th = np.linspace(0, 2 * np.pi, 800, endpoint=False)
    X = (r[:, None, None] * np.stack([np.cos(th), np.sin(th)], -1)[None]).reshape(-1, 2)
    vals = (_relu(X @ h["W"].T + h["b"]) @ h["D"].T + h["e"]) / LP_SCALE
    sampled = np.stack([vals.max(0), (-vals).max(0)], axis=1)
    lo, hi = _ball(h["W"], h["b"], 1.0)
    plo, phi = _relu(lo), _relu(hi)
    # f and g share every neuron: the difference network's range is the tighter one
    jlo, jhi = _affine(h["D"], h["e"], plo, phi)
    interval = _pairs(jlo, jhi, LP_SCALE)
    linear = _hand_linear(h["D"], h["e"], h["W"], h["b"], lo, hi, 0.0, LP_SCALE,
                          lambda grad: np.linalg.norm(grad))
    return lp, sampled, np.minimum(interval, linear)


def _check_points(out, beta, d):
    assert out.points, "the relaxations' optima are returned"
    for x in out.points:
        assert x.shape == (d,)
        assert np.linalg.norm(x / beta) <= 1 + 1e-6


def test_triangle_relaxation_refines_every_pair_that_matters(lp_truth):
    """The bound is the largest LP value (cvxpy), below every bound before it and
    below 1; pairs are refined by decreasing bound, a negative pair is never
    reached, the (+) and (-) objectives have unit weight, the status is bounded
    and the optima returned lie in the ball."""
    lp, sampled, pre = lp_truth
    # the LP matters: it is below the bound before it on every positive pair,
    # the largest pair is not pair (0, 0), and pair (1, 1) is negative
    assert np.all(lp[pre > 0] < pre[pre > 0] - 0.03)
    assert np.argmax(pre) != 0
    assert pre[1, 1] < 0
    assert 0 < lp.max() < 1
    f, g, _ = _lp_pair()
    problem = _problem(f, g, scale=LP_SCALE)
    calls = []
    out = relaxation_bounds(problem, progress=lambda *a: calls.append(a))
    assert sampled.max() <= out.upper_bound <= lp.max() * (1 + 1e-6)
    assert np.all(sampled <= out.pair_bounds)
    for (i, s) in [(0, 0), (0, 1), (1, 0)]:
        assert out.pair_bounds[i, s] <= lp[i, s] * (1 + 1e-6) + 1e-9
    assert [(s.name, s.status) for s in out.stages] == [
        ("bounds:interval", "bounded"), ("bounds:linear", "bounded"),
        ("bounds:relaxation", "bounded")]
    assert [c[0] for c in calls] == ["bounds:relaxation"] * 3
    _check_points(out, 1.0, 2)


def test_relaxation_on_tiny_weights_is_the_rescaled_one(lp_truth):
    """Weights 2**-600 (products underflow): the linear and LP stages are those of
    the well-scaled pair times 2**-200, as the rescaled copy computes them."""
    lp, sampled, pre = lp_truth
    unit = 2.0**-200
    f, g, _ = _lp_pair(power=600)
    problem = _problem(f, g, beta=2.0**1000, scale=LP_SCALE)
    before = relaxation_bounds(problem, relax=False).pair_bounds  # the linear one is
    np.testing.assert_allclose(before, unit * pre, rtol=1e-8)  # tighter on (0, 0), (1, 1)
    out = relaxation_bounds(problem)
    stages = {s.name: s.upper_bound for s in out.stages}
    assert math.isclose(stages["bounds:linear"], unit * pre.max(), rel_tol=1e-8)
    assert unit * sampled.max() <= out.upper_bound <= unit * lp.max() * (1 + 1e-6)
    _check_points(out, 2.0**1000, 2)


def test_relaxation_without_a_rescaled_copy(lp_truth):
    """A first-layer weight of 2.5e-308 (odd last bit), in units halved by the
    rescaling (the union layer reaches 3 on the unit ball), would become subnormal
    and lose that bit: no rescaled copy is made, and the bounds, computed on the
    pair itself in units 1, are the same."""
    lp, sampled, pre = lp_truth
    f, g, _ = _lp_pair(tiny=True)
    assert np.ldexp(np.ldexp(2.5e-308, -1), 1) != 2.5e-308
    problem = _problem(f, g, scale=LP_SCALE)
    out = relaxation_bounds(problem)
    stages = {s.name: s.upper_bound for s in out.stages}
    assert math.isclose(stages["bounds:linear"], pre.max(), rel_tol=1e-8)
    assert sampled.max() <= out.upper_bound <= lp.max() * (1 + 1e-6)
    _check_points(out, 1.0, 2)


def test_relax_on_a_non_piecewise_linear_pair_is_not_applicable():
    """Sigmoid: interval bounds only; the relaxation stage says not_applicable;
    no difference terms (no linear stage) and the exact interval value."""
    W, b = np.array([[1.0, 2.0, 2.0]]), np.array([0.5])
    f = _seq((W, b), torch.nn.Sigmoid, ([[2.0]], [0.0]), d=3)
    g = _seq((W, b), torch.nn.Sigmoid, ([[0.5]], [0.0]), d=3)
    problem = _problem(f, g, scale=[0.25])
    assert difference_terms(problem) is None
    out = relaxation_bounds(problem)
    assert [(s.name, s.status) for s in out.stages] == [
        ("bounds:interval", "bounded"), ("bounds:relaxation", "not_applicable")]
    want = 1.5 * _sigmoid(3.5) / 0.25  # the shared neuron's range is exact
    assert want <= out.upper_bound <= want * (1 + RTOL)


# --- the first layer on a box; the closed-form bound there -----------------------

def test_box_domain_ranges_and_linear_bound():
    """Box only (no ball): first-layer ranges are the vertex formula, and the
    linear bound of stably active neurons is exact (vertex formula)."""
    W = np.array([[1.0, -2.0], [0.5, 1.0]])
    b = np.array([10.0, 8.0])  # active on the whole box
    lower, upper = np.array([-1.0, 0.0]), np.array([2.0, 1.5])
    f = _seq((W, b), torch.nn.ReLU, ([[1.0, -3.0]], [0.2]), d=2)
    g = _seq((W, b), torch.nn.ReLU, ([[0.5, 1.0]], [0.0]), d=2)
    problem = _problem(f, g, beta=None, lower=lower, upper=upper, scale=[2.0])
    iv = interval_bounds(problem)
    lo, hi = _box(W, b, lower, upper)
    np.testing.assert_allclose(iv.pre0[0], lo, rtol=RTOL)
    np.testing.assert_allclose(iv.pre0[1], hi, rtol=RTOL)
    grad, const = np.array([0.5, -4.0]) @ W / 2.0, (np.array([0.5, -4.0]) @ b + 0.2) / 2.0
    vertex = np.maximum(grad * lower, grad * upper).sum()
    vertex_neg = np.maximum(-grad * lower, -grad * upper).sum()
    want = np.array([[const + vertex, -const + vertex_neg]])
    np.testing.assert_allclose(linear_relaxation_bounds(problem, iv), want, rtol=RTOL)
    out = relaxation_bounds(problem, relax=False)
    assert math.isclose(out.upper_bound, want.max(), rel_tol=RTOL)


# --- networks whose difference terms do not exist --------------------------------

def _lin(W, b, d):
    return _seq((W, b), d=d)


W1, B1 = np.array([[3.0, 4.0]]), np.array([1.0])  # norm 5
W2, B2 = np.array([[0.0, 2.0]]), np.array([-0.5])  # norm 2


@pytest.mark.parametrize("shape", ["linear-linear", "linear-hidden", "hidden-linear"])
def test_single_linear_networks(shape):
    """A network that is one nn.Linear: its output range is the first layer's,
    ``b +- beta ||w||``; the other a ReLU network on one neuron. No difference
    terms; interval bound by hand with a non-unit scale."""
    beta, scale = 2.0, 1e4
    lin_f = _lin(W1, B1, 2)
    lin_g = _lin(W2, B2, 2)
    hid_f = _seq((W1, B1), torch.nn.ReLU, ([[2.0]], [0.5]), d=2)
    hid_g = _seq((W2, B2), torch.nn.ReLU, ([[-1.5]], [0.25]), d=2)
    f, g = {"linear-linear": (lin_f, lin_g), "linear-hidden": (lin_f, hid_g),
            "hidden-linear": (hid_f, lin_g)}[shape]
    problem = _problem(f, g, beta=beta, scale=scale)
    assert difference_terms(problem) is None
    lo1, hi1 = B1 - beta * 5, B1 + beta * 5
    lo2, hi2 = B2 - beta * 2, B2 + beta * 2
    fo = (lo1, hi1) if shape != "hidden-linear" else _affine(
        np.array([[2.0]]), np.array([0.5]), _relu(lo1), _relu(hi1))
    go = (lo2, hi2) if shape != "linear-hidden" else _affine(
        np.array([[-1.5]]), np.array([0.25]), _relu(lo2), _relu(hi2))
    want = _pairs(fo[0] - go[1], fo[1] - go[0], [scale])
    iv = interval_bounds(problem)
    np.testing.assert_allclose(_pairs(iv.diff[0], iv.diff[1], [1.0]), want, rtol=RTOL)
    out = relaxation_bounds(problem, relax=False)
    assert math.isclose(out.upper_bound, want.max(), rel_tol=RTOL)


def test_output_activation_and_depth_have_no_difference_terms():
    """Output activation on one side only, a deeper network, a hidden layer
    without activation, a sigmoid hidden layer: ``difference_terms`` is None and
    the interval bound goes through every activation."""
    W, b = np.array([[1.0, 2.0, 2.0]]), np.array([0.5])  # range [-2.5, 3.5] at beta 1
    plain = _seq((W, b), torch.nn.ReLU, ([[0.5]], [0.0]), d=3)
    # f has a sigmoid on its output
    f = _seq((W, b), torch.nn.ReLU, ([[2.0]], [-1.0]), torch.nn.Sigmoid, d=3)
    for first, second in ((f, plain), (plain, f)):
        problem = _problem(first, second)
        assert difference_terms(problem) is None
        fo = (_sigmoid(2 * 0 - 1.0), _sigmoid(2 * 3.5 - 1.0))
        go = (0.0, 0.5 * 3.5)
        if first is plain:
            fo, go = go, fo
        want = max(fo[1] - go[0], go[1] - fo[0])
        assert want <= interval_bounds(problem).bound <= want * (1 + RTOL)
    # a deeper f: Linear -> ReLU -> Linear (2 units) -> ReLU -> Linear
    deep_relu = _seq((W, b), torch.nn.ReLU, ([[1.0], [-1.0]], [0.0, 0.0]), torch.nn.ReLU,
                     ([[1.0, 1.0]], [0.0]), d=3)
    # h in [0, 3.5] -> (h, -h) -> ReLU: [0, 3.5] x [0, 0] -> [0, 3.5], against [0, 1.75]
    for pair in ((deep_relu, plain), (plain, deep_relu)):
        p = _problem(*pair)
        assert difference_terms(p) is None
        assert 3.5 <= interval_bounds(p).bound <= 3.5 * (1 + RTOL)
    # no hidden activation, and a sigmoid hidden layer
    nolin = _seq((W, b), ([[2.0]], [0.0]), d=3)
    assert difference_terms(_problem(nolin, _seq((W, b), ([[1.0]], [0.0]), d=3))) is None
    sig = _seq((W, b), torch.nn.Sigmoid, ([[2.0]], [0.0]), d=3)
    assert difference_terms(_problem(sig, _seq((W, b), torch.nn.Sigmoid, ([[1.0]], [0.0]),
                                                  d=3))) is None


def test_mixed_first_layer_activations():
    """f's neuron is a ReLU, g's the same row with a sigmoid (not shared): each
    union neuron gets its own activation's range."""
    W, b = np.array([[1.0, 2.0, 2.0]]), np.array([0.5])
    f = _seq((W, b), torch.nn.ReLU, ([[2.0]], [0.0]), d=3)
    g = _seq((W, b), torch.nn.Sigmoid, ([[1.5]], [0.0]), d=3)
    problem = _problem(f, g)
    assert difference_terms(problem) is None
    lo, hi = -2.5, 3.5
    fo = (2 * _relu(lo), 2 * _relu(hi))
    go = (1.5 * _sigmoid(lo), 1.5 * _sigmoid(hi))
    want = max(fo[1] - go[0], go[1] - fo[0])
    assert want <= interval_bounds(problem).bound <= want * (1 + RTOL)


# --- extreme magnitudes: NaN made inf, and the underflow margin --------------------

def test_overflowing_ranges_give_an_infinite_bound_not_nan():
    """Weights 1e200 on a ball of radius 1e200: the ranges overflow; the bound is
    inf (sound), never NaN."""
    W, b = np.array([[1e200, 1e200]]), np.array([0.0])
    f = _seq((W, b), torch.nn.ReLU, ([[1.0]], [0.0]), d=2)
    g = _seq((W, b), torch.nn.ReLU, ([[0.5]], [0.0]), d=2)
    out = relaxation_bounds(_problem(f, g, beta=1e200), relax=False)
    assert not np.any(np.isnan(out.pair_bounds))
    assert out.upper_bound == math.inf


def test_linear_bound_survives_underflow_of_the_gradient():
    """Output weight 2**-600 times first-layer weight 2**-600 underflows to 0 in
    the gradient, but the ball's radius 2**1000 makes that term 2**-200: the
    closed-form bound (called on the pair itself) must stay above the maximum."""
    a, w, beta, bias = 2.0**-600, 2.0**-600, 2.0**1000, 2.0**401  # stably active
    f = _seq(([[w]], [bias]), torch.nn.ReLU, ([[a]], [0.0]), d=1)
    g = _seq(([[w]], [bias]), torch.nn.ReLU, ([[0.0]], [0.0]), d=1)
    problem = _problem(f, g, beta=beta)
    exact = a * (bias + beta * w)  # 2**-199 + 2**-200, at x = beta
    bound = linear_relaxation_bounds(problem, interval_bounds(problem))
    assert bound[0, 0] >= exact


def test_linear_bound_margin_on_a_small_box():
    """Box [0, 0.5], a stably active neuron with output weight 2**-1000: the
    bound is the maximum plus at most the documented underflow margin
    (largest |x_j| = 0.5, times 2 terms, times 1e-300)."""
    a = 2.0**-1000
    f = _seq(([[1.0]], [1.0]), torch.nn.ReLU, ([[a]], [0.0]), d=1)
    g = _seq(([[1.0]], [1.0]), torch.nn.ReLU, ([[0.0]], [0.0]), d=1)
    problem = _problem(f, g, beta=None, lower=[0.0], upper=[0.5])
    exact = 1.5 * a
    bound = linear_relaxation_bounds(problem, interval_bounds(problem))[0, 0]
    assert exact <= bound <= exact * (1 + 1e-9) + 0.5 * 2 * 1e-300 * (1 + 1e-9)


def test_no_relaxation_is_solved_when_every_pair_bound_is_zero():
    """Identical networks on a one-point box: every pair bound is 0, which no
    relaxation can lower below the bound's floor 0, so none is solved."""
    W, b = np.array([[1.0, -1.0], [0.5, 2.0]]), np.array([0.3, -0.2])
    f = _seq((W, b), torch.nn.ReLU, ([[1.0, 2.0]], [0.5]), d=2)
    g = _seq((W, b), torch.nn.ReLU, ([[1.0, 2.0]], [0.5]), d=2)
    problem = _problem(f, g, beta=None, lower=[0.0, 0.0], upper=[0.0, 0.0])
    calls = []
    out = relaxation_bounds(problem, progress=lambda *a: calls.append(a))
    assert out.upper_bound == 0.0
    assert out.points == []
    assert calls == []


def test_interval_bound_divides_before_it_adds():
    # f = 1e308 x, g = 0 on the unit ball, scale 1e10: the difference's range is
    # +-1e308 and its objective +-1e298; adding |lo| + |hi| before dividing by the
    # scale overflowed to an infinite interval bound.
    f, g = torch.nn.Linear(1, 1).double(), torch.nn.Linear(1, 1).double()
    with torch.no_grad():
        f.weight.fill_(1e308), f.bias.zero_(), g.weight.zero_(), g.bias.zero_()
    problem = make_problem(f, g, beta=1.0, lower=None, upper=None, scale=1e10)
    bound = interval_bounds(problem).bound
    assert 1e298 <= bound <= 1e298 * (1 + 1e-9)


def test_a_zero_coefficient_neuron_with_an_infinite_range_adds_nothing():
    # Union neuron 0 has the same output weight in both networks (coefficient 0)
    # and a range of +-1e310 (infinite in float64); f - g = relu(1e-10 x2) -
    # 2 relu(-1e-10 x2) on the ball of radius 1e10: pair bounds 1 and 2.
    def net(out):
        m = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(),
                                torch.nn.Linear(3, 1)).double()
        with torch.no_grad():
            m[0].weight.copy_(torch.tensor([[1e300, 0.0], [0.0, 1e-10], [0.0, -1e-10]],
                                           dtype=torch.float64))
            m[0].bias.zero_(), m[2].bias.zero_()
            m[2].weight.copy_(torch.tensor([out], dtype=torch.float64))
        return m

    problem = make_problem(net([1.0, 1.0, -2.0]), net([1.0, 0.0, 0.0]), beta=1e10,
                           lower=None, upper=None, scale=None)
    with np.errstate(all="ignore"):
        linear = linear_relaxation_bounds(problem, interval_bounds(problem))
    assert np.all(np.isfinite(linear))
    assert np.all(linear >= np.array([[1.0, 2.0]]) * (1 - 1e-12))
