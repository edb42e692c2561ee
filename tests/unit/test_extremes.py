"""Extreme magnitudes, dtypes, limits: every returned bound is true or an error.

The metamorphic oracle is exact: for ReLU, multiplying ``W_in`` and ``b_in``
by ``2**a`` and ``W_out`` by ``2**c`` is exact in binary floating point (away
from the subnormal range) and leaves the coreset and its epsilon unchanged,
so at every magnitude the bound must equal the unscaled one or the toolkit
must refuse with InvalidArgumentError (proofs_notes/sensitivity.md,
"Magnitudes").
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from coreset_verify import (
    InvalidArgumentError,
    layer_coreset,
    layer_sensitivities,
    sample_size_for,
    theoretical_bound,
)
from coreset_verify.sensitivity import row_norms

RTOL = 1e-12
SEED = 3


def _base_layer(n=12, d=4, k=3):
    gen = np.random.default_rng(SEED)
    W_in = gen.normal(size=(n, d))
    b_in = gen.normal(size=n)
    W_out = gen.normal(size=(k, n))
    return W_in, b_in, W_out


def _exact(x, shift):
    return bool(np.array_equal(np.ldexp(np.ldexp(x, shift), -shift), x))


def _epsilon(W_in, b_in, W_out, *, kind, split_signs, beta=1.0):
    c = layer_coreset(W_in, b_in, W_out, sample_size=50, beta=beta, rng=SEED,
                      split_signs=split_signs)
    return theoretical_bound(c, delta=0.1, kind=kind).epsilon, c


@settings(max_examples=40, deadline=None, database=None)
@given(
    a=st.integers(-1100, 1100),
    c=st.integers(-1100, 1100),
    kind=st.sampled_from(["pointwise", "uniform"]),
    split_signs=st.booleans(),
)
def test_power_of_two_rescaling_keeps_epsilon_or_refuses(a, c, kind, split_signs):
    W_in, b_in, W_out = _base_layer()
    scaled = (np.ldexp(W_in, a), np.ldexp(b_in, a), np.ldexp(W_out, c))
    try:
        epsilon, coreset = _epsilon(*scaled, kind=kind, split_signs=split_signs)
    except InvalidArgumentError:
        return
    # Entries pushed into the subnormal range were rounded: the layer given is
    # the rounded one. Scaling it back up is exact, so its unscaled bound is the
    # reference (for an exact rescaling, that is the original layer's bound).
    back = (np.ldexp(scaled[0], -a), np.ldexp(scaled[1], -a), np.ldexp(scaled[2], -c))
    reference, ref_coreset = _epsilon(*back, kind=kind, split_signs=split_signs)
    np.testing.assert_allclose(epsilon, reference, rtol=RTOL, atol=0)
    np.testing.assert_array_equal(coreset.counts, ref_coreset.counts)


@settings(max_examples=30, deadline=None, database=None)
@given(
    e=st.integers(-1074, 1023),
    a=st.integers(-600, 600),
    kind=st.sampled_from(["pointwise", "uniform"]),
    split_signs=st.booleans(),
)
def test_radius_rescaling_keeps_epsilon_or_refuses(e, a, kind, split_signs):
    """beta -> 2**e beta with W_in -> 2**(a - e) W_in, b_in -> 2**a b_in: the same
    pre-activations on the ball, so the same coreset and epsilon (ReLU)."""
    W_in, b_in, W_out = _base_layer()
    # only exact rescalings (no entry pushed into the subnormal range or to 0,
    # which would change the layer itself)
    assume(_exact(W_in, a - e) and _exact(b_in, a))
    reference, ref_coreset = _epsilon(W_in, b_in, W_out, kind=kind, split_signs=split_signs)
    try:
        scaled, coreset = _epsilon(np.ldexp(W_in, a - e), np.ldexp(b_in, a), W_out,
                                   kind=kind, split_signs=split_signs, beta=math.ldexp(1.0, e))
    except InvalidArgumentError:
        return
    np.testing.assert_allclose(scaled, reference, rtol=RTOL, atol=0)
    np.testing.assert_array_equal(coreset.counts, ref_coreset.counts)


@pytest.mark.parametrize(("a", "c"), [(-1000, 0), (-1000, 1000), (-1030, 0), (0, -1060),
                                      (600, 600), (1000, -1000), (-540, -540)])
def test_named_extremes_keep_epsilon_or_refuse(a, c):
    W_in, b_in, W_out = _base_layer()
    reference, _ = _epsilon(W_in, b_in, W_out, kind="pointwise", split_signs=False)
    try:
        scaled, _ = _epsilon(np.ldexp(W_in, a), np.ldexp(b_in, a), np.ldexp(W_out, c),
                             kind="pointwise", split_signs=False)
    except InvalidArgumentError:
        return
    np.testing.assert_allclose(scaled, reference, rtol=RTOL, atol=0)


def test_weights_near_1e_minus_300_give_the_unscaled_bound():
    """The issue's case: squared norms of 1e-300 rows underflow to 0."""
    W_in, b_in, W_out = _base_layer()
    reference, _ = _epsilon(W_in, b_in, W_out, kind="uniform", split_signs=False)
    scaled, _ = _epsilon(np.ldexp(W_in, -997), np.ldexp(b_in, -997), W_out,
                         kind="uniform", split_signs=False)
    np.testing.assert_allclose(scaled, reference, rtol=RTOL, atol=0)


def test_weights_near_1e200_give_the_unscaled_bound():
    W_in, b_in, W_out = _base_layer()
    reference, _ = _epsilon(W_in, b_in, W_out, kind="pointwise", split_signs=True)
    scaled, _ = _epsilon(np.ldexp(W_in, 664), np.ldexp(b_in, 664), W_out,
                         kind="pointwise", split_signs=True)
    np.testing.assert_allclose(scaled, reference, rtol=RTOL, atol=0)


def test_float32_tiny_norms_are_scaled():
    """float32 squares of 2**-70 underflow; the scaled norms keep the bound
    (float32 sensitivities round differently, hence the float32 tolerance)."""
    W_in, b_in, W_out = (a.astype(np.float32) for a in _base_layer())
    reference, _ = _epsilon(W_in, b_in, W_out, kind="pointwise", split_signs=False)
    scaled, _ = _epsilon(np.ldexp(W_in, -70), np.ldexp(b_in, -70), W_out,
                         kind="pointwise", split_signs=False)
    np.testing.assert_allclose(scaled, reference, rtol=1e-5, atol=0)


def test_float32_underflowing_scale_falls_back_to_float64_exactly():
    """T_i ~ 2**-128 is subnormal in float32: the float64 path takes over."""
    W_in, b_in, W_out = (a.astype(np.float32) for a in _base_layer())
    b_in = np.abs(b_in)
    reference, _ = _epsilon(*(a.astype(np.float64) for a in (W_in, b_in, W_out)),
                            kind="pointwise", split_signs=False)
    tiny = [np.ldexp(a, -66) for a in (W_in, b_in, W_out)]
    assert all(t.dtype == np.float32 for t in tiny)
    scaled, _ = _epsilon(*tiny, kind="pointwise", split_signs=False)
    np.testing.assert_allclose(scaled, reference, rtol=RTOL, atol=0)


def test_huge_beta_is_refused_naming_the_reach():
    W_in, b_in, W_out = _base_layer()
    with pytest.raises(InvalidArgumentError, match="reach"):
        layer_sensitivities(W_in, b_in, W_out, beta=1e308)


def test_underflowed_scale_is_refused_not_called_zero():
    W_in, b_in, W_out = _base_layer()
    with pytest.raises(InvalidArgumentError, match="scale T_i"):
        layer_sensitivities(W_in, np.abs(b_in), np.ldexp(W_out, -1070), beta=1.0)


@pytest.mark.parametrize("xp_name", ["numpy", "torch"])
def test_row_norms_are_scaled(xp_name):
    W = np.array([[3e-300, 4e-300], [3e200, 4e200], [0.0, 0.0], [3.0, 4.0], [5e-320, 0.0]])
    if xp_name == "torch":
        torch = pytest.importorskip("torch")
        from array_api_compat import array_namespace

        t = torch.tensor(W)
        got = row_norms(array_namespace(t), t).numpy()
    else:
        got = row_norms(np, W)
    np.testing.assert_allclose(got, [5e-300, 5e200, 0.0, 5.0, 5e-320], rtol=1e-15, atol=0)


@pytest.mark.parametrize("delta", [1e-10, 1e-300, 1e-320, 5e-324])
def test_tiny_delta_is_handled_in_log_space(delta):
    W_in, b_in, W_out = _base_layer()
    m = sample_size_for(W_in, b_in, W_out, epsilon=0.5, delta=delta, beta=1.0,
                        kind="pointwise")
    c = layer_coreset(W_in, b_in, W_out, sample_size=m, beta=1.0, rng=0)
    b = theoretical_bound(c, delta=delta, kind="pointwise")
    assert b.epsilon <= 0.5
    assert math.isfinite(b.epsilon)
    assert b.delta == delta


# --------------------------------------------------------------------------
# Records that describe themselves: options stored, replay, Bound.delta
# --------------------------------------------------------------------------

REPLAY_OPTIONS = [
    pytest.param({"sample_size": 31, "split_signs": True}, id="split_signs"),
    pytest.param({"distinct": 7}, id="distinct"),
    pytest.param({"sample_size": 25, "reduction": "raw-max"}, id="raw-max"),
    pytest.param({"distinct": 5, "reduction": "raw-max", "activation": "sigmoid"},
                 id="distinct,raw-max,sigmoid"),
]


def _same(a, b):
    np.testing.assert_array_equal(a.counts, b.counts)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.weight_out, b.weight_out)
    assert a.sample_size == b.sample_size
    assert [p.sample_size for p in a.parts] == [p.sample_size for p in b.parts]


@pytest.mark.parametrize("options", REPLAY_OPTIONS)
@pytest.mark.parametrize("rng", [11, "generator"])
def test_replay_redraws_the_same_coreset(options, rng):
    W_in, b_in, W_out = _base_layer()
    given = np.random.default_rng(11) if rng == "generator" else rng
    c = layer_coreset(W_in, b_in, W_out, beta=0.9, rng=given, **options)
    _same(c.replay(), c)
    _same(c.replay(), layer_coreset(W_in, b_in, W_out, beta=0.9, rng=11, **options))
    assert c.rng_seed == (11 if rng == 11 else None)
    for key, value in options.items():
        got = c.options[key]
        assert (got.name if key == "activation" else got) == value
    other = c.replay(rng=12)
    _same(other, layer_coreset(W_in, b_in, W_out, beta=0.9, rng=12, **options))


def test_counts_and_probabilities_are_derived_from_parts():
    W_in, b_in, W_out = _base_layer()
    c = layer_coreset(W_in, b_in, W_out, sample_size=33, beta=1.0, rng=0, split_signs=True)
    np.testing.assert_array_equal(c.counts, sum(p.counts for p in c.parts))
    mixture = sum(p.sample_size * p.probabilities for p in c.parts) / c.sample_size
    np.testing.assert_allclose(c.probabilities, mixture, rtol=0, atol=0)


def test_bound_delta_is_the_delta_asked_for_in_distinct_mode():
    W_in, b_in, W_out = _base_layer()
    c = layer_coreset(W_in, b_in, W_out, distinct=6, beta=1.0, rng=0)
    b = theoretical_bound(c, delta=0.05, kind="pointwise")
    m = c.sample_size
    assert b.delta == 0.05
    np.testing.assert_allclose(b.log_event_delta, math.log(0.05 / (m * (m + 1))),
                               rtol=1e-14, atol=0)


# --------------------------------------------------------------------------
# Limits and escapes
# --------------------------------------------------------------------------


def test_lists_are_accepted_as_arrays():
    from coreset_verify import neuron_coreset

    W_in, _, W_out = _base_layer()
    a = neuron_coreset(W_in.tolist(), W_out[0].tolist(), sample_size=9, beta=1.0, rng=2)
    b = neuron_coreset(W_in, W_out[0], sample_size=9, beta=1.0, rng=2)
    _same(a, b)


def test_distinct_draws_in_bounded_chunks():
    """max_draws=2**25 used to keep every draw (268 MB); now O(n + 2**20)."""
    import tracemalloc

    from coreset_verify.sampling import draw_until_distinct

    pr = np.array([0.5, 0.5 - 1e-15, 1e-15])
    tracemalloc.start()
    try:
        with pytest.raises(InvalidArgumentError, match="distinct=3"):
            draw_until_distinct(pr, 3, np.random.default_rng(0), max_draws=2**24)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20, peak


def test_output_sensitivities_refuse_what_layer_sensitivities_refuse():
    """FUZZ F1/F1b: NaN or zero rows came back where the truth is ~[0.7, 0.3]."""
    from coreset_verify import output_sensitivities

    W_in, b, W = np.array([[1.0], [2.0]]), np.array([0.5, 0.1]), np.array([[1.0, -1.0]])
    for args in ((W_in * 1e200, b, W * 1e200), (W_in * 1e-300, b * 1e-300, W * 1e-300)):
        with pytest.raises(InvalidArgumentError, match="scale T_i"):
            output_sensitivities(*args, beta=0.5)
    scaled = output_sensitivities(np.ldexp(W_in, 600), np.ldexp(b, 600), np.ldexp(W, -600),
                                  beta=0.5)
    np.testing.assert_allclose(scaled, output_sensitivities(W_in, b, W, beta=0.5),
                               rtol=1e-14, atol=0)


@pytest.mark.parametrize("change", [
    pytest.param({"sample_size": 0}, id="sample_size=0"),
    pytest.param({"beta": -1.0}, id="beta=-1"),
    pytest.param({"weight_out": "nan"}, id="weight_out nan"),
])
def test_theoretical_bound_refuses_an_edited_record(change):
    """FUZZ F2: a record edited with dataclasses.replace got a finite bound."""
    import dataclasses

    c = layer_coreset(np.array([[1.0], [2.0]]), np.array([0.5, 0.1]), np.array([[1.0, -1.0]]),
                      sample_size=5, beta=1.0, rng=0)
    if change.get("weight_out") == "nan":
        change = {"weight_out": c.weight_out * np.nan}
    with pytest.raises(InvalidArgumentError, match="'coreset' parameter of theoretical_bound"):
        theoretical_bound(dataclasses.replace(c, **change), delta=0.1)


def test_subnormal_row_norm_is_refused_not_rounded_low():
    """FUZZ F12: ||w|| of a subnormal row has ~11 bits; phi_hi came out 6e-4 low."""
    from coreset_verify import phi_hi

    W_in = np.array([[5.53e-322, 4.12e-321]])
    with pytest.raises(InvalidArgumentError, match=r"phi_hi: the row norm"):
        phi_hi(W_in, np.zeros(1), beta=1e300)


def test_reach_underflowing_to_zero_is_refused():
    """FUZZ F12c: beta * ||w|| = 1e-300 * 1e-150 underflowed to 0: s came back 0."""
    from coreset_verify import output_sensitivities

    W_in, b = np.array([[1e-150], [2e-150]]), np.zeros(2)
    with pytest.raises(InvalidArgumentError, match=r"reach .* underflowed to 0"):
        output_sensitivities(W_in, b, np.array([[1.0, -1.0]]), beta=1e-300,
                             activation="leaky_relu")


def test_uniform_bound_keeps_its_promise_at_beta_1e308():
    """FUZZ F14: the nets overflowed at beta = 1e308 (statistical = inf) while
    sample_size_for promised epsilon 0.9; nets now work in fractions of beta."""
    W_in, b_in = np.array([[-0.02320646, -0.89797054]]), np.array([0.52301012])
    W_out = np.array([[7.84021961e-13]])
    m = sample_size_for(W_in, b_in, W_out, epsilon=0.9, delta=1e-6, beta=1e308, kind="uniform")
    c = layer_coreset(W_in, b_in, W_out, sample_size=m, beta=1e308, rng=0)
    b = theoretical_bound(c, delta=1e-6, kind="uniform")
    assert math.isfinite(b.statistical)
    assert b.epsilon <= 0.9


def test_float32_live_neuron_whose_score_underflows_retries_in_float64():
    """max_i |W_ij| / T_i = 1e-45 underflows in float32: the neuron would never
    be drawn although its sensitivity is positive; the float64 path takes over."""
    W_in, b_in = np.ones((3, 2), np.float32), np.ones(3, np.float32)
    W_out = np.array([[1e20, 1e20, 1e-25]], np.float32)
    c = layer_coreset(W_in, b_in, W_out, sample_size=5, beta=1.0, rng=0)
    assert c.parts[0].probabilities[2] > 0
    b = theoretical_bound(c, delta=0.1, kind="pointwise")
    assert math.isfinite(b.epsilon)


@pytest.mark.parametrize("activation", ["softplus", "sigmoid"])
def test_a_positive_activation_that_underflows_everywhere_is_refused(activation):
    # FUZZ F12d: phi > 0 on the whole ball, so T_i > 0 and every sensitivity is
    # positive (here exactly 1/2 each); float64 rounds phi(-1e6) to 0, which
    # made the layer look dead and output_sensitivities return zeros.
    from coreset_verify import MagnitudeError, layer_sensitivities, output_sensitivities

    W_in, b_in, W_out = np.array([[1e-5], [2e-5]]), np.full(2, -1e6), np.array([[1.0, -1.0]])
    for function in (output_sensitivities, layer_sensitivities):
        with pytest.raises(MagnitudeError, match="underflowed"):
            function(W_in, b_in, W_out, beta=0.5, activation=activation)
