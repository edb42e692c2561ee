"""Joint branch and bound for deeper (leaky) ReLU pairs (search/deep.py,
proofs_notes/bab.md Lemmas B3 and B4) against oracles built here.

Every expected value is computed in the test by forward passes of the torch
modules themselves: a dense 2-D grid of the domain (601 x 601, plus the
circle for balls) or sampled inputs. Margins are fixed in advance; the
measured values they were fixed from are quoted beside them.
"""

from __future__ import annotations

import copy
import functools
import itertools
import math
import time

import numpy as np
import pytest
from _search_helpers import nn, torch
from hypothesis import given, settings
from hypothesis import strategies as st

from coreset_verify.search import BOUNDED, NOT_APPLICABLE, OPTIMAL, TIME_LIMIT, worst_case
from coreset_verify.search._intervals import interval_bounds
from coreset_verify.search._problem import make_problem
from coreset_verify.search.deep import deep_bounds, deep_branch_and_bound, deep_pair

#: ``(beta, lower, upper)`` of the three domains (d = 2 for the grids).
DOMAINS = {"ball": (1.5, None, None), "box": (None, -0.7, 0.4), "both": (1.0, -0.5, 0.8)}

#: Statuses a finished (or stopped) search may report.
STATUSES = {OPTIMAL, BOUNDED, TIME_LIMIT}


# ------------------------------------------------------------------ networks


def activation(name: str):
    return {"relu": nn.ReLU(), "leaky": nn.LeakyReLU(0.2),
            "leaky05": nn.LeakyReLU(0.05), "leaky5": nn.LeakyReLU(0.5)}[name]


def linear(rng: np.random.Generator, n_in: int, n_out: int, scale: float = 1.0):
    """A float64 ``nn.Linear`` with N(0, scale^2) weights and N(0, 0.25) biases."""
    lay = nn.Linear(n_in, n_out).double()
    with torch.no_grad():
        lay.weight.copy_(torch.as_tensor(scale * rng.standard_normal((n_out, n_in))))
        lay.bias.copy_(torch.as_tensor(0.5 * rng.standard_normal(n_out)))
    return lay


def mlp(rng: np.random.Generator, d: int, widths, k: int, act: str, scale: float = 1.0):
    """``Linear -> act -> ... -> Linear`` (linear output) in float64."""
    mods, n_in = [], d
    for w in widths:
        mods += [linear(rng, n_in, w, scale), activation(act)]
        n_in = w
    mods.append(linear(rng, n_in, k, scale))
    return nn.Sequential(*mods).double()


def deep_nets(seed: int, *, d: int = 2, wf=(5, 4), wg=(3, 3), k: int = 2, shared: int = 2,
              act: str = "relu", act_g: str | None = None, scale: float = 1.0) -> tuple:
    """A random pair whose pruned net ``g`` copies the first ``shared``
    first-layer rows of ``f`` exactly (so the union layer merges them)."""
    rng = np.random.default_rng(seed)
    f = mlp(rng, d, wf, k, act, scale)
    g = mlp(rng, d, wg, k, act_g or act, scale)
    with torch.no_grad():
        g[0].weight[:shared] = f[0].weight[:shared]
        g[0].bias[:shared] = f[0].bias[:shared]
    return f, g


def tight_nets(seed: int, act: str) -> tuple:
    """:func:`deep_nets` with every second-layer neuron stable on the domains
    (small weights, biases +-6 alternately): once every first-layer neuron is
    split, both networks are affine on each node, so the bound must close."""
    f, g = deep_nets(seed, act=act)
    with torch.no_grad():
        for net in (f, g):
            net[2].weight.mul_(0.3)
            signs = [6.0 if j % 2 == 0 else -6.0 for j in range(net[2].bias.shape[0])]
            net[2].bias.copy_(torch.as_tensor(signs))
    return f, g


def scaled_nets(f, g, exponent: int) -> tuple:
    """Copies with layer ``l``'s weights times ``c = 2^exponent`` and its bias
    times ``c^(l+1)``: (leaky) ReLU is positively homogeneous, so the outputs
    are exactly ``c^depth`` times the originals'."""
    c = 2.0 ** exponent
    out = []
    for net in (f, g):
        net = copy.deepcopy(net)
        with torch.no_grad():
            for depth, lay in enumerate(m for m in net if isinstance(m, nn.Linear)):
                lay.weight.mul_(c)
                lay.bias.mul_(c ** (depth + 1))
        out.append(net)
    return (*out, c ** 3)


# ------------------------------------------------------------------ oracles


def domain_kwargs(kind: str) -> dict:
    beta, lower, upper = DOMAINS[kind]
    return {"beta": beta, "lower": lower, "upper": upper}


def grid(kind: str, n: int = 601) -> np.ndarray:
    """A dense grid of the 2-D domain: n x n over its bounding box, plus 4001
    points of the circle (clipped to the box) for balls."""
    beta, lower, upper = DOMAINS[kind]
    t = np.linspace(-beta, beta, n) if lower is None else np.linspace(lower, upper, n)
    x = np.stack(np.meshgrid(t, t), -1).reshape(-1, 2)
    if beta is not None:
        ang = np.linspace(0, 2 * np.pi, 4001)
        circle = beta * np.stack([np.cos(ang), np.sin(ang)], 1)
        if lower is not None:  # the box holds 0: clipping keeps |x| <= beta
            circle = np.clip(circle, lower, upper)
        x = np.vstack([x, circle])
        x = x[np.linalg.norm(x, axis=1) <= beta]
    return x


def sample_domain(rng: np.random.Generator, kind: str, d: int, m: int) -> np.ndarray:
    """``m`` points of the domain: half on the ball's sphere or the box's
    vertices, half inside (uniform radii ``r^(1/d)``); for ball and box, box
    points scaled towards 0 into the ball and ball points clipped to the box."""
    beta, lower, upper = DOMAINS[kind]
    u = rng.standard_normal((m, d))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    r = np.ones(m)
    r[m // 2:] = rng.random(m - m // 2) ** (1 / d)
    if lower is None:
        return beta * r[:, None] * u
    x = lower + (upper - lower) * rng.random((m, d))
    x[: m // 2] = np.where(rng.random((m // 2, d)) < 0.5, lower, upper)
    if beta is not None:
        x[m // 4: 3 * m // 4] = np.clip(beta * r[m // 4: 3 * m // 4, None]
                                        * u[m // 4: 3 * m // 4], lower, upper)
        norm = np.linalg.norm(x, axis=1, keepdims=True)
        x *= np.minimum(1.0, beta / np.maximum(norm, 1e-300))
    return x


def spec_values(f, g, x: np.ndarray, scale=None) -> np.ndarray:
    """Every specification at ``x`` (m, 2k): ``(f_i - g_i)/scale_i`` then
    ``(g_i - f_i)/scale_i``, by the modules themselves in float64."""
    xt = torch.as_tensor(x, dtype=torch.float64)
    with torch.no_grad():
        diff = (f(xt) - g(xt)).numpy()
    if scale is not None:
        diff = diff / np.asarray(scale)
    return np.concatenate([diff, -diff], axis=1)


def problem_of(f, g, kind: str, scale=None) -> tuple:
    problem = make_problem(f, g, scale=scale, **domain_kwargs(kind))
    return problem, interval_bounds(problem).pre0


def in_domain(x: np.ndarray, kind: str) -> bool:
    beta, lower, upper = DOMAINS[kind]
    ok = beta is None or float(np.linalg.norm(x)) <= beta * (1 + 1e-12)
    return ok and (lower is None or bool(np.all((x >= lower - 1e-12) & (x <= upper + 1e-12))))


def in_region(problem, x: np.ndarray, splits) -> np.ndarray:
    """Which rows of ``x`` satisfy every split ``(j, side)`` of the union layer."""
    z = x @ problem.shared.weight.T + problem.shared.bias
    keep = np.ones(len(x), dtype=bool)
    for j, side in splits:
        keep &= side * z[:, j] >= 0
    return keep


# ------------------------------------------- soundness and tightness (grid)

#: (activation, seed, domain) of the grid tests: relu and leaky(0.2) pairs,
#: f 5-4, g 3-3 sharing two first-layer rows, k = 2.
GRID_CASES = [(act, seed, kind) for act in ("relu", "leaky") for seed in (0,)
              for kind in DOMAINS]


@functools.cache
def searched(act: str, seed: int, kind: str) -> tuple:
    """``(grid maximum per specification, root bounds, deep_branch_and_bound
    outcome)`` of one grid case (the search runs to completion: 20 s, 2000
    nodes; it takes about 1 s)."""
    f, g = deep_nets(seed, act=act)
    problem, pre0 = problem_of(f, g, kind)
    truth = spec_values(f, g, grid(kind)).max(0)
    root = deep_bounds(problem, pre0)
    out = deep_branch_and_bound(problem, pre0, deadline=time.perf_counter() + 20,
                                max_nodes=2000)
    return truth, root, out


def case_id(case) -> str:
    return "-".join(map(str, case))


@pytest.mark.parametrize("case", GRID_CASES, ids=case_id)
def test_root_bounds_are_above_the_grid_maximum_of_each_specification(case):
    """Lemmas B1, B3, B4: each root bound is above its specification's
    maximum on a dense grid of the domain."""
    truth, root, _ = searched(*case)
    assert root.shape == truth.shape
    assert np.all(root >= truth), (root, truth)


@pytest.mark.parametrize("case", GRID_CASES, ids=case_id)
def test_search_brackets_the_grid_maximum(case):
    """``upper_bound`` is above the grid maximum; ``error`` is the objective at
    ``x``, a point of the domain, so never above ``upper_bound``."""
    act, seed, kind = case
    truth, _, out = searched(*case)
    f, g = deep_nets(seed, act=act)
    assert out.status in (OPTIMAL, BOUNDED)
    assert out.upper_bound >= truth.max()
    assert out.x is not None
    assert in_domain(out.x, kind)
    at_x = float(spec_values(f, g, out.x[None]).max())
    assert out.error == pytest.approx(at_x, rel=1e-12, abs=1e-15)
    assert out.error <= out.upper_bound
    # The grid may sit below the true maximum (by up to 5e-4 relative on these
    # pairs), so error is not compared with it from above. From below: on these
    # seeds the relaxed maximisers land within 2 % (measured: 1.7 % worst, the
    # relu box case); an 'optimal' bracket guarantees 1e-4.
    assert out.error >= 0.98 * truth.max()
    if out.status == OPTIMAL:
        assert out.error >= truth.max() * (1 - 1e-4) - 1e-9


#: upper_bound / grid maximum after a completed search (first-layer and deeper
#: splits) on GRID_CASES. Measured 1.0004 worst here, 1.0025 worst over seeds
#: 0-5 of both activations and all three domains.
TIGHT_RATIO = 1.01


@pytest.mark.parametrize("case", GRID_CASES, ids=case_id)
def test_completed_search_is_close_to_the_grid_maximum(case):
    """A wrong constant that loosens a relaxation shows here: after the
    search ran out of neurons to split, upper_bound / grid max <= 1.01."""
    truth, _, out = searched(*case)
    assert out.upper_bound <= TIGHT_RATIO * truth.max()


#: (activation, seed, domain) of tight_nets; measured upper_bound / grid max
#: - 1: 2.8e-6, 2.3e-6, 1.8e-4, 2.2e-4 (at most the grid's own shortfall).
TIGHT_CASES = [("relu", 0, "ball"), ("leaky", 2, "both"),
               pytest.param(("leaky", 0, "box"), marks=pytest.mark.slow),
               pytest.param(("relu", 1, "both"), marks=pytest.mark.slow)]


@pytest.mark.parametrize("case", TIGHT_CASES, ids=case_id)
def test_search_closes_when_the_relaxations_are_exact(case):
    """With every second-layer neuron stable, splitting every first-layer
    neuron makes both nets affine per node: the bound closes on the grid
    maximum within 1e-3 relative (and never below it)."""
    act, seed, kind = case
    f, g = tight_nets(seed, act)
    x = grid(kind)
    # the instance is what it claims: second-layer signs fixed by the biases
    for net in (f, g):
        with torch.no_grad():
            z1 = net[2](net[1](net[0](torch.as_tensor(x)))).numpy()
        assert np.all(np.sign(z1) == np.sign(net[2].bias.detach().numpy()))
    truth = float(spec_values(f, g, x).max())
    problem, pre0 = problem_of(f, g, kind)
    out = deep_branch_and_bound(problem, pre0, deadline=time.perf_counter() + 20,
                                max_nodes=2000)
    assert out.status in (OPTIMAL, BOUNDED)
    assert out.upper_bound >= truth
    assert out.upper_bound <= truth * (1 + 1e-3)


#: measured (bound - region grid max) / largest |region max|: 5.4e-4 worst.
REGION_RTOL = 2e-3


@pytest.mark.parametrize("case", [("leaky", 0, "box"), pytest.param(
    ("relu", 0, "ball"), marks=pytest.mark.slow)], ids=case_id)
def test_bound_of_a_full_activation_region_is_its_maximum(case):
    """On tight_nets, splitting every first-layer neuron on the side of the
    largest grid region leaves an affine problem: every specification's bound
    (steps=300) is its region's grid maximum, within 2e-3 of the largest."""
    act, seed, kind = case
    f, g = tight_nets(seed, act)
    problem, pre0 = problem_of(f, g, kind)
    x = grid(kind)
    z = x @ problem.shared.weight.T + problem.shared.bias
    patterns, counts = np.unique(z >= 0, axis=0, return_counts=True)
    pattern = patterns[np.argmax(counts)]
    splits = [(j, 1 if on else -1) for j, on in enumerate(pattern)]
    keep = in_region(problem, x, splits)
    truth = spec_values(f, g, x[keep]).max(0)
    bound = deep_bounds(problem, pre0, splits=splits, steps=300)
    assert np.all(bound >= truth), (bound, truth)
    assert np.all(bound - truth <= REGION_RTOL * np.abs(truth).max()), (bound, truth)


# ----------------------------------------------- soundness (Hypothesis)

#: (f's hidden widths, g's hidden widths): equal depths, g shallower, f
#: shallower, three hidden layers.
SHAPES = [((4, 3), (3, 3)), ((4, 3), (3, 2)), ((4, 3), (3,)), ((3,), (3, 2)),
          ((4, 3, 3), (3,)), ((3, 3), (3, 2, 2))]

ACTIVATIONS = ("relu", "leaky", "leaky05")

PAIRS = st.tuples(st.integers(0, 10_000), st.sampled_from(SHAPES),
                  st.sampled_from(ACTIVATIONS), st.sampled_from(ACTIVATIONS),
                  st.integers(0, 3), st.sampled_from(tuple(DOMAINS)), st.integers(2, 3))


NODES = {"pair": PAIRS, "neurons": st.lists(st.integers(0, 30), max_size=3, unique=True),
         "sides": st.lists(st.sampled_from((1, -1)), min_size=3, max_size=3),
         "anchored": st.booleans(), "steps": st.sampled_from((0, 10, 50))}


def check_split_bound(pair, neurons, sides, anchored, steps) -> None:
    """No sampled input of the split region has a specification above its
    bound (20,000 points of the domain; anchored sides follow one sampled
    point, so the region is not empty)."""
    seed, (wf, wg), act_f, act_g, shared, kind, d = pair
    rng = np.random.default_rng(seed)
    f, g = deep_nets(seed, d=d, wf=wf, wg=wg, k=2, shared=min(shared, wf[0], wg[0]),
                     act=act_f, act_g=act_g)
    scale = rng.uniform(0.5, 2.0, 2)
    problem, pre0 = problem_of(f, g, kind, scale)
    n = len(problem.shared.bias)
    x = sample_domain(rng, kind, d, 20_000)
    z0 = x[0] @ problem.shared.weight.T + problem.shared.bias
    splits = sorted({j % n for j in neurons})
    splits = [(j, (1 if z0[j] >= 0 else -1) if anchored else s)
              for j, s in zip(splits, sides, strict=False)]
    bound = deep_bounds(problem, pre0, splits=splits, steps=steps)
    assert bound.shape == (4,)
    keep = in_region(problem, x, splits)
    if not keep.any():
        return  # an empty sample of the region: any bound (even -inf) is sound
    top = spec_values(f, g, x[keep], scale).max(0)
    assert np.all(top <= bound), (top, bound, splits)


@settings(max_examples=20, derandomize=True, deadline=None)
@given(**NODES)
def test_no_sampled_input_beats_a_split_bound(pair, neurons, sides, anchored, steps):
    """Lemma B3 on any node (first-layer splits) and at any iterate: sampled
    inputs of the region stay below every specification's bound."""
    check_split_bound(pair, neurons, sides, anchored, steps)


@pytest.mark.slow
@settings(max_examples=120, derandomize=True, deadline=None)
@given(**NODES)
def test_no_sampled_input_beats_a_split_bound_wide(pair, neurons, sides, anchored, steps):
    """The same property on 120 examples (about a minute)."""
    check_split_bound(pair, neurons, sides, anchored, steps)


def test_mixed_slopes_of_one_width_stay_sound():
    """Lemma B3 needs each neuron's alpha in [a_j, 1] with its own slope: f ReLU
    and g LeakyReLU(0.5), deeper layers both of width 3, bounds above the grid
    (matching slopes by layer width put spec 3 at 0.30 below a grid max of 3.02)."""
    f, g = deep_nets(10, wf=(4, 3), wg=(3, 3), shared=0, act="relu", act_g="leaky5")
    truth = spec_values(f, g, grid("ball")).max(0)
    bound = deep_bounds(*problem_of(f, g, "ball"))
    assert np.all(bound >= truth), (bound, truth)


def test_three_hidden_layers_are_bounded():
    """Deeper layers below deeper layers (f 4-3-3, g 3-2, leaky, ball and box):
    root bounds above the grid, the search above it and within 1.01 of it
    (measured 1.00006; 1.0077 worst over seeds 0-3 of three such shapes)."""
    f, g = deep_nets(0, wf=(4, 3, 3), wg=(3, 2), act="leaky")
    truth = spec_values(f, g, grid("both")).max(0)
    problem, pre0 = problem_of(f, g, "both")
    assert np.all(deep_bounds(problem, pre0) >= truth)
    out = deep_branch_and_bound(problem, pre0, deadline=time.perf_counter() + 20,
                                max_nodes=2000)
    assert truth.max() <= out.upper_bound <= TIGHT_RATIO * truth.max()


# ------------------------------------------------------------ the search


@pytest.mark.parametrize("case", GRID_CASES, ids=case_id)
def test_trace_is_monotone_and_below_the_root(case):
    """The reported upper bound never rises, error never falls, nodes count up,
    and the final bound is at most the root's (same 300 steps)."""
    _, root, out = searched(*case)
    uppers = [row[2] for row in out.trace]
    errors = [row[1] for row in out.trace]
    nodes = [row[3] for row in out.trace]
    assert all(b <= a for a, b in itertools.pairwise(uppers))
    assert all(b >= a for a, b in itertools.pairwise(errors))
    assert all(b >= a for a, b in itertools.pairwise(nodes))
    assert nodes[0] == len(root)  # the 2k roots
    assert out.nodes == nodes[-1]
    assert uppers[-1] == out.upper_bound
    assert out.upper_bound <= root.max() * (1 + 1e-12) + 1e-12
    assert out.status in STATUSES


@pytest.mark.parametrize("build", [
    pytest.param(lambda: deep_nets(0, wf=(5,), wg=(3,)), id="one-hidden-layer"),
    pytest.param(lambda: (nn.Sequential(nn.Linear(2, 4), nn.Sigmoid(), nn.Linear(4, 3),
                                        nn.Sigmoid(), nn.Linear(3, 2)).double(),
                          deep_nets(0)[1]), id="sigmoid"),
    pytest.param(lambda: (nn.Sequential(*deep_nets(0)[0], nn.ReLU()).double(),
                          nn.Sequential(*deep_nets(0)[1], nn.ReLU()).double()),
                 id="output-activation"),
])
def test_deep_pair_does_not_apply(build):
    """deep_pair is None (deep_bounds None, the search not_applicable) for a
    one-hidden-layer pair, a sigmoid net and an output activation."""
    f, g = build()
    problem, pre0 = problem_of(f, g, "ball")
    assert deep_pair(problem, pre0) is None
    assert deep_bounds(problem, pre0) is None
    out = deep_branch_and_bound(problem, pre0)
    assert out.status == NOT_APPLICABLE
    assert out.upper_bound == math.inf


def test_deep_pair_applies_to_different_depths():
    """A deeper f against a one-hidden-layer g is a deep pair (the union merges
    the shared rows: 5 + 3 - 2 neurons)."""
    f, g = deep_nets(0, wf=(5, 4), wg=(3,))
    problem, pre0 = problem_of(f, g, "ball")
    pair = deep_pair(problem, pre0)
    assert pair is not None
    assert pair.first.n == 6
    assert pair.k == 2


@pytest.mark.parametrize("method", ["bab", "auto"])
def test_worst_case_runs_the_joint_search(method):
    """worst_case's bab stage uses the deep search on a deep pair: it applies,
    and the reported bound is above the grid maximum."""
    f, g = deep_nets(2)
    truth = float(np.abs(spec_values(f, g, grid("ball"))).max())
    kwargs = {"time_limit": 20, "rng": 0} if method == "auto" else {}
    res = worst_case(f, g, beta=1.5, method=method, **kwargs)
    assert res.status != NOT_APPLICABLE
    assert res.upper_bound >= truth
    assert res.error <= res.upper_bound
    stages = [s for s in res.trace if s.name == "bab"]
    assert len(stages) == 1
    assert stages[0].status != NOT_APPLICABLE
    assert stages[0].upper_bound >= truth


def test_deadline_is_kept_on_a_moderate_pair():
    """A 3 s deadline on d = 100 (f 60-30, g 20-10 sharing 10 rows, k = 10,
    ball of radius 10) stops the search within 3 + 15 s (generous: no tight
    wall times here) with a bound above 5,000 sampled inputs."""
    rng = np.random.default_rng(7)
    f = mlp(rng, 100, (60, 30), 10, "relu", scale=0.1)
    g = mlp(rng, 100, (20, 10), 10, "relu", scale=0.1)
    with torch.no_grad():
        g[0].weight[:10] = f[0].weight[:10]
        g[0].bias[:10] = f[0].bias[:10]
    problem = make_problem(f, g, beta=10.0, lower=None, upper=None, scale=None)
    pre0 = interval_bounds(problem).pre0
    start = time.perf_counter()
    out = deep_branch_and_bound(problem, pre0, deadline=start + 3)
    assert time.perf_counter() - start < 3 + 15
    assert out.status in STATUSES
    u = rng.standard_normal((5000, 100))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    r = np.ones(5000)
    r[2500:] = rng.random(2500) ** (1 / 100)
    seen = float(np.abs(spec_values(f, g, 10.0 * r[:, None] * u)).max())
    assert out.upper_bound >= seen
    assert out.error <= out.upper_bound


@pytest.mark.parametrize("exponent", [-30, 30, pytest.param(-10, marks=pytest.mark.slow),
                                      pytest.param(10, marks=pytest.mark.slow)])
def test_bounds_stay_sound_at_extreme_magnitudes(exponent):
    """Weights times 2^e per layer (outputs exactly 2^(3e) times): every
    specification's bound is above the scaled networks' grid maximum."""
    f, g, factor = scaled_nets(*deep_nets(1, act="leaky"), exponent)
    x = grid("box")
    base = spec_values(*deep_nets(1, act="leaky"), x).max(0)
    truth = spec_values(f, g, x).max(0)
    np.testing.assert_array_equal(truth, factor * base)  # powers of two: exact
    bound = deep_bounds(*problem_of(f, g, "box"))
    assert np.all(np.isfinite(bound))
    assert np.all(bound >= truth), (bound / factor, base)


@pytest.mark.slow
@pytest.mark.parametrize("exponent", [-10, 10])
def test_worst_case_bound_scales_exactly(exponent):
    """worst_case works in units near 1 (exact powers of two), so its deep
    bound for outputs scaled by 2^(3e) is 2^(3e) times the unscaled one."""
    f0, g0 = deep_nets(0)
    f, g, factor = scaled_nets(f0, g0, exponent)
    ref = worst_case(f0, g0, beta=1.5, method="bab", time_limit=10, rng=0)
    res = worst_case(f, g, beta=1.5, method="bab", time_limit=10, rng=0)
    assert res.upper_bound / factor == pytest.approx(ref.upper_bound, rel=1e-9)


@pytest.mark.cuda
def test_deep_bounds_on_cuda_agree_with_the_cpu_and_the_grid():
    """The joint bounds on a CUDA device equal the CPU's, and the search on
    CUDA modules stays above the grid maximum (runs on a device machine only:
    benchmarks/device_check.sh)."""
    f, g = deep_nets(0)
    cpu = deep_bounds(*problem_of(f, g, "ball"), steps=50)
    problem, pre0 = problem_of(copy.deepcopy(f).cuda(), copy.deepcopy(g).cuda(), "ball")
    gpu = deep_bounds(problem, pre0, steps=50, device="cuda")
    np.testing.assert_allclose(gpu, cpu, rtol=1e-4, atol=1e-9)
    truth = spec_values(f, g, grid("ball")).max()
    res = worst_case(copy.deepcopy(f).cuda(), copy.deepcopy(g).cuda(),
                     **domain_kwargs("ball"), method="bab", time_limit=30, rng=0)
    assert res.upper_bound >= truth
