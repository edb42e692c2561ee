"""Hand-derived answers that kill mutants of guarantees.py, sampling.py,
nets/intervals.py, search/_intervals.py and network/bounds.py that survived
mutation testing (issue 8).

Every expected value is worked out here from the documented formulas:
``Bound.scale_at`` keeps the batch shape of ``x``, ``split_sample_size`` splits
proportionally with at least one draw per part, ``affine_range`` makes exactly
the rows that touch an infinite input unbounded, the last widening of the
interval bound covers its own division, and the Softplus slack propagates as
``sum_q P_q |W_{q+1}| s 1`` (Lemma P).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from coreset_verify import layer_coreset, theoretical_bound  # noqa: E402
from coreset_verify.activations import softplus  # noqa: E402
from coreset_verify.guarantees import Geometry, _part_epsilon, _PartStats  # noqa: E402
from coreset_verify.nets.intervals import affine_range  # noqa: E402
from coreset_verify.network.bounds import module_slack  # noqa: E402
from coreset_verify.network.reading import Weights  # noqa: E402
from coreset_verify.sampling import split_sample_size  # noqa: E402
from coreset_verify.search._intervals import interval_bounds  # noqa: E402
from coreset_verify.search._problem import make_problem  # noqa: E402


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def test_additive_scale_at_keeps_the_batch_shape_of_x():
    """``scale_at`` of the additive form is ``T`` broadcast to ``x.shape[:-1] + (k,)``:
    (k,) for one input (d,), (a, b, k) for a stack (a, b, d)."""
    gen = np.random.default_rng(5)
    W_in, b_in, W_out = gen.normal(size=(6, 3)), gen.normal(size=6), gen.normal(size=(2, 6))
    c = layer_coreset(W_in, b_in, W_out, sample_size=40, beta=1.0, activation="sigmoid",
                      rng=0)
    T = np.abs(W_out) @ _sigmoid(b_in + np.linalg.norm(W_in, axis=1))
    b = theoretical_bound(c, delta=0.1, kind="pointwise")
    one = b.scale_at(np.array([0.1, 0.2, -0.3]))
    assert one.shape == (2,)
    np.testing.assert_allclose(one, T, rtol=1e-12)
    stack = b.scale_at(np.zeros((4, 5, 3)))
    assert stack.shape == (4, 5, 2)
    np.testing.assert_allclose(stack, np.broadcast_to(T, (4, 5, 2)), rtol=1e-12)


@pytest.mark.parametrize(("m", "totals", "want"), [
    (3, (1.0, 100.0), (1, 2)),  # round(3 / 101) = 0, raised to the minimum of 1
    (3, (100.0, 1.0), (2, 1)),  # round(300 / 101) = 3, lowered to m - 1
    (10, (1.0, 1.0), (5, 5)),
    (1, (1.0, 100.0), (0, 1)),  # m = 1: no minimum, round(1 / 101) = 0
])
def test_split_sample_size_by_hand(m, totals, want):
    assert tuple(split_sample_size(m, totals)) == want


def test_affine_range_with_half_infinite_inputs():
    """An input with one infinite end makes exactly the rows that use it
    unbounded; the other rows get their finite range (vertex formula)."""
    W = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, -1.0], [3.0, 0.0, 1.0]])
    b = np.array([0.5, 1.0, -1.0])
    lo = np.array([-np.inf, 0.0, -1.0])
    hi = np.array([1.0, 1.0, np.inf])
    box = affine_range(W, b, lo, hi)
    # rows 0 and 2 use input 0 or 2 (unbounded); row 1 uses input 2 as well
    for i in range(3):
        assert box.lo[i] == -np.inf
        assert box.hi[i] == np.inf
    W2 = np.array([[1.0, 0.0], [0.0, 2.0]])
    box = affine_range(W2, np.array([0.5, 1.0]), np.array([-np.inf, -1.0]),
                       np.array([2.0, 3.0]))
    assert (box.lo[0], box.hi[0]) == (-np.inf, np.inf)
    # row 1: 1 + 2 h, h in [-1, 3]: [-1, 7], widened by rounding only
    assert -1.0 - 1e-9 <= box.lo[1] <= -1.0
    assert 7.0 <= box.hi[1] <= 7.0 + 1e-9


def _deep(w_last):
    """x -> ReLU(x + 10) -> ReLU(h) -> w_last * h: two hidden layers (no joint range)."""
    mods = []
    for W, b in (([[1.0]], [10.0]), ([[1.0]], [0.0]), ([[w_last]], [0.0])):
        lin = torch.nn.Linear(1, 1).double()
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(W, dtype=torch.float64))
            lin.bias.copy_(torch.tensor(b, dtype=torch.float64))
        mods += [lin, torch.nn.ReLU()]
    return torch.nn.Sequential(*mods[:-1])


@pytest.mark.parametrize("scale", [1.0, 4.0])
def test_last_widening_covers_the_division(scale):
    """``diff`` widens ``[dlo/s, dhi/s]`` by at least the relative margin 1e-12
    times the sum of the magnitudes ``(|dlo| + |dhi|)/s`` (nets/intervals.widen).
    Here f - g lies in [9, 11] on the unit ball (dlo ~ 9, dhi ~ 11)."""
    problem = make_problem(_deep(1.0), _deep(0.0), beta=1.0, lower=None, upper=None,
                           scale=np.array([scale]))
    iv = interval_bounds(problem)
    fo, go = iv.f_post[-1], iv.g_post[-1]
    dlo, dhi = float(fo[0][0] - go[1][0]), float(fo[1][0] - go[0][0])
    assert 9 - 1e-9 <= dlo <= 9
    assert 11 <= dhi <= 11 + 1e-9
    margin = 1e-12 * (abs(dlo) + abs(dhi)) / scale
    assert float(iv.diff[1][0]) >= dhi / scale + 0.99 * margin
    assert float(iv.diff[0][0]) <= dlo / scale - 0.99 * margin


def test_module_slack_of_two_softplus_layers_by_hand():
    """Softplus(threshold 20) differs from log(1 + e^z) by at most
    s = log1p(e^-20). Slack of hidden layer 0 enters Linear 1 and goes through
    ReLU-like Lipschitz 1 and |W_2|; slack of hidden layer 1 enters Linear 2:
    total = s (|W_2| |W_1| 1 + |W_2| 1)."""
    gen = np.random.default_rng(11)
    shapes = [(3, 2), (4, 3), (2, 4)]
    weights = [Weights(gen.normal(size=s), gen.normal(size=s[0]), True) for s in shapes]
    acts = [softplus(), softplus()]
    s = math.log1p(math.exp(-20.0))
    W1, W2 = np.abs(weights[1].W), np.abs(weights[2].W)
    want = s * (W2 @ W1.sum(axis=1) + W2.sum(axis=1))
    got = module_slack(weights, acts)
    assert np.all(got >= want)
    np.testing.assert_allclose(got, want, rtol=1e-9)


def test_part_epsilon_ignores_radii_where_the_net_term_is_nan():
    """With ``t_eff = 3e307`` Hoeffding's ``t sqrt(2 L / m)`` overflows at the
    small radii (large L) only; there ``inf * 0`` (an output with zero graph
    Lipschitz constant) is NaN. The best radius is still r = 1 of the ball net:
    ``eps(1) (1 + 1e-10) + 1`` with ``L = log(2k / delta) + log(141) + log(3)``
    (one dimension, 141 ball radii, Bernstein overflowing)."""
    one = np.array([1.0, 1.0])
    stats = _PartStats(m=1, t_eff=3e307, scale=one, low=one,
                       lip_graph=np.array([0.0, 1e-10]), lip_prior=one, lip_real=None,
                       zlip_graph=one, zlip_prior=one, zlip_real=None, cap=one)
    with np.errstate(over="ignore", invalid="ignore"):
        eps, radius, net = _part_epsilon(
            stats, kind="uniform", form="multiplicative", log_delta=math.log(0.1), k=2,
            beta=1.0, geometry=Geometry(1, np.array([]), 1.0), paper=None)
    L = math.log(4 / 0.1) + math.log(141) + math.log(3)
    want = 3e307 * math.sqrt(2 * L) * (1 + 1e-10) + 1
    assert (radius, net) == (1.0, "ball")
    assert math.isclose(eps, want, rel_tol=1e-12)
