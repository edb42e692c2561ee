"""Known answers that kill the mutants of sensitivity.py, nets/intervals.py and
network/bounds.py that survived mutation testing (issue 8, part "small").

Every expected value is derived here by hand: an exact range of a one-neuron
layer, a norm summed in exact rationals, Softplus's threshold gap
``log1p(exp(-20))`` computed with :mod:`math`, Theorem N's sum over records
built by hand. Each test names the mutants it kills.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from coreset_verify.activations import get_activation, leaky_relu, softplus
from coreset_verify.errors import MagnitudeError
from coreset_verify.nets.intervals import activation_range, ball_range
from coreset_verify.network.bounds import boxes, composed_bound, input_radius, module_slack
from coreset_verify.network.reading import Weights
from coreset_verify.network.records import PrunedLayer, PrunedNetwork
from coreset_verify.sensitivity import envelope, output_sensitivities, phi_lo

RELU = get_activation("relu")
TOL = 1e-9  # every widening of the kernel is far below this


def _weights(*layers: tuple[list[list[float]], list[float]]) -> list[Weights]:
    return [Weights(np.array(W, dtype=np.float64), np.array(b, dtype=np.float64), True)
            for W, b in layers]


# ---------------------------------------------------------------- sensitivity.py


@pytest.mark.parametrize(("func", "name"), [(phi_lo, "phi_lo"), (envelope, "envelope")])
def test_magnitude_refusal_names_the_function(func, name):
    """beta * ||W_in[0]|| = 1e300 * 1e10 overflows: refused, and the message
    starts with the public function's name (quality bar of the toolkit).
    Kills phi_lo 30, 36, 37, 38 and envelope 31, 37, 38, 39."""
    with pytest.raises(MagnitudeError, match=rf"^{name}: the reach beta \* \|\|W_in\[j\]\|\|"):
        func(np.array([[1e10]]), np.array([0.0]), beta=1e300)


def test_output_sensitivities_refuses_a_lost_per_output_score():
    """Neuron 1 is live (envelope 1) with |W_out[0, 1]| = 1e-300 next to
    T_0 = 1e100: its per-output score 1e-400 underflows to 0, which
    output_sensitivities refuses like every other function (the raw-max score
    1e-300 would not underflow). Kills output_sensitivities 34, 46."""
    W_in, b_in = np.eye(2), np.zeros(2)
    W_out = np.array([[1e100, 1e-300]])
    with pytest.raises(MagnitudeError, match=r"^output_sensitivities: the score"):
        output_sensitivities(W_in, b_in, W_out, beta=1.0)
    # the same layer without the tiny weight: exact answer [[1, 0]]
    got = output_sensitivities(W_in, b_in, np.array([[1e100, 0.0]]), beta=1.0)
    np.testing.assert_array_equal(got, [[1.0, 0.0]])


# ---------------------------------------------------------------- nets/intervals.py


def test_ball_range_contains_a_far_centre_with_a_tiny_reach():
    """W x + b with W = [[1e-20]], b = 1 over |x| <= 1 ranges over
    [1 - 1e-20, 1 + 1e-20]; neither end is a float, so the box must be
    strictly wider than {1}. Kills ball_range 15 (margin of |b| dropped)."""
    box = ball_range(np.array([[1e-20]]), np.array([1.0]), 1.0)
    assert box.lo[0] < 1.0 < box.hi[0]
    assert box.hi[0] - box.lo[0] <= TOL


def test_ball_range_covers_the_rounding_of_a_long_norm():
    """A row of 64 ones then 3e6 entries s with s^2 = 0.45 eps: a left-to-right
    (or lane-wise) sum of squares loses every s^2 next to an accumulator >= 1,
    so the computed norm is 8 while the true one is 8 (1 + 2.3e-12). The box
    must contain +-||w|| (checked in exact rationals), which the margin
    gamma_d = (d + 4) eps gives and a margin of 1e-12 (n = 1) does not.
    Kills ball_range 14 (where numpy's dot product sums in order, as here)."""
    m = 3_000_000
    s = math.sqrt(0.45 * float(np.finfo(np.float64).eps))
    w = np.concatenate([np.ones(64), np.full(m, s)])
    box = ball_range(w[None, :], np.array([0.0]), 1.0)
    true_sq = 64 + m * Fraction(s) ** 2  # ||w||^2 exactly
    assert Fraction(float(box.hi[0])) ** 2 >= true_sq
    assert Fraction(float(box.lo[0])) ** 2 >= true_sq
    assert box.lo[0] < 0 < box.hi[0]
    assert box.hi[0] <= 8 * (1 + 1e-6)


def test_activation_range_of_a_negative_interval_is_tight():
    """tanh on [-2, -1] ranges over [tanh(-2), tanh(-1)]: the upper end is
    tanh(-1), not tanh(0) = 0. Kills activation_range 13 (clip to [lo, inf))."""
    box = activation_range(get_activation("tanh"), np.array([-2.0]), np.array([-1.0]))
    assert box.lo[0] <= math.tanh(-2.0) <= box.lo[0] + TOL
    assert box.hi[0] - TOL <= math.tanh(-1.0) <= box.hi[0]


def test_activation_range_of_a_v_shape_reaches_zero():
    """LeakyReLU(-1) is |z|, decreasing then increasing: on [-1, 2] its range
    is [0, 2], the minimum at z = 0 (not at the ends, nor at z = 1).
    Kills activation_range 17 (the inner point taken nearest to 1)."""
    box = activation_range(leaky_relu(-1.0), np.array([-1.0]), np.array([2.0]))
    assert box.lo[0] <= 0.0 <= box.lo[0] + TOL
    assert box.hi[0] - TOL <= 2.0 <= box.hi[0]


# ---------------------------------------------------------------- network/bounds.py


def test_boxes_of_the_second_hidden_layer():
    """x in [-1, 1]; h0 = relu(x + 2) in [1, 3]; h1 = relu([2 h0, -h0]) in
    [2, 6] x {0}. Every end is attained, so each box is exact up to the
    widening. Kills boxes 13 (layer 1 read from the first layer's ball range)
    and 16 (lower ends dropped: relu(NaN) = 0 would give h0 >= 0 only)."""
    weights = _weights(([[1.0]], [2.0]), ([[2.0], [-1.0]], [0.0, 0.0]), ([[1.0, 1.0]], [0.0]))
    out = boxes(weights, [RELU, RELU], 1.0, 2)
    assert len(out) == 2
    assert out[0].lo.shape == (1,)
    assert out[1].lo.shape == (2,)
    np.testing.assert_allclose(out[0].lo, [1.0], rtol=0, atol=TOL)
    np.testing.assert_allclose(out[0].hi, [3.0], rtol=0, atol=TOL)
    np.testing.assert_allclose(out[1].lo, [2.0, 0.0], rtol=0, atol=TOL)
    np.testing.assert_allclose(out[1].hi, [6.0, 0.0], rtol=0, atol=TOL)
    assert np.all(out[0].lo <= 1.0)
    assert np.all(out[0].hi >= 3.0)
    assert np.all(out[1].lo <= [2.0, 0.0])
    assert np.all(out[1].hi >= [6.0, 0.0])
    # the norm of h1 is at most 6, attained at x = 1
    assert 6.0 <= input_radius(weights, [RELU, RELU], 1.0, 2) <= 6.0 + TOL
    # a tanh first layer: tanh(x + 2) in [tanh(1), tanh(3)]
    tanh = get_activation("tanh")
    (box,) = boxes(weights, [tanh, tanh], 1.0, 1)
    assert box.lo[0] <= math.tanh(1.0) <= box.lo[0] + TOL
    assert box.hi[0] - TOL <= math.tanh(3.0) <= box.hi[0]


def test_module_slack_is_zero_for_exact_activations_even_with_huge_weights():
    """ReLU modules compute ReLU exactly: the slack is 0 whatever the weights,
    here 1e200 twice above the first layer (their propagation overflows to
    inf, which must not be multiplied by the zero slack into NaN).
    Kills module_slack 7 (slack >= 0 taken as positive)."""
    weights = _weights(([[1.0]], [0.0]), ([[1.0]], [0.0]), ([[1e200]], [0.0]),
                       ([[1e200]], [0.0]))
    got = module_slack(weights, [RELU, RELU, RELU])
    np.testing.assert_array_equal(got, [0.0])


def test_module_slack_covers_softplus_threshold_gap():
    """torch's Softplus returns z for z > 20, where the exact softplus is
    z + log1p(exp(-z)): just above 20 the hidden neuron differs by
    log1p(exp(-20)) ~ 2.1e-9 and the output (weight 3) by 3 times that.
    The bound must cover it. Kills module_slack 8 (slacks <= 1 dropped)."""
    gap = 3.0 * math.log1p(math.exp(-20.0 - 1e-9))
    weights = _weights(([[1.0]], [0.0]), ([[3.0]], [0.0]))
    got = module_slack(weights, [softplus()])
    assert got.shape == (1,)
    assert gap <= got[0] <= 3.0 * math.log1p(math.exp(-20.0)) * (1 + 1e-9)


def _layer(epsilon: float, propagation: list[list[float]], scale: list[float]) -> PrunedLayer:
    n = len(scale)
    return PrunedLayer(
        position=0, activation=RELU, n_before=n, n_after=n, kept=np.arange(n),
        radius=1.0, coreset=None, bound=None, epsilon=epsilon,
        scale=np.array(scale), propagation=np.array(propagation), delta=0.1, step=0)


def _network(layers, module_slack_=None) -> PrunedNetwork:
    return PrunedNetwork(model=None, layers=tuple(layers), params_before=10, params_after=5,
                         beta=1.0, delta=0.1, order="bottom-up", kind="uniform",
                         target="keep=0.5", module_slack=module_slack_)


def test_composed_bound_of_one_layer_with_small_epsilon_and_slack():
    """One pruned layer, epsilon 0.5, T = (2, 4), P = [[1, 3], [0, 2]],
    module slack (0.25, 0.5): Theorem N gives P (eps T) + slack =
    (0.5*(2 + 12) + 0.25, 0.5*8 + 0.5) = (7.25, 4.5). Kills composed_bound
    4 (reads a second layer), 7 (epsilon <= 1 dropped), 11 (slack test
    inverted) and 13 (slack subtracted)."""
    net = _network([_layer(0.5, [[1.0, 3.0], [0.0, 2.0]], [2.0, 4.0])],
                   np.array([0.25, 0.5]))
    np.testing.assert_allclose(composed_bound(net), [7.25, 4.5], rtol=1e-9)
    # without module slack (None): the sum alone
    net = _network([_layer(0.5, [[1.0, 3.0], [0.0, 2.0]], [2.0, 4.0])])
    np.testing.assert_allclose(composed_bound(net), [7.0, 4.0], rtol=1e-9)


def test_composed_bound_sums_layers_and_skips_exact_ones():
    """Two layers: an exact one (epsilon 0) and one with epsilon 0.25,
    P = [[2]], T = (8,): the bound is 0.25 * 8 * 2 = 4."""
    net = _network([_layer(0.0, [[5.0]], [7.0]), _layer(0.25, [[2.0]], [8.0])])
    np.testing.assert_allclose(composed_bound(net), [4.0], rtol=1e-9)
