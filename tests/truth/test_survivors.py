"""Known answers for the statistics behind every bound, derived here from the
formulas of proofs_notes/sensitivity.md, uniform.md and multiplicative.md.

Each test recomputes, in plain numpy, a quantity the package computes
(the per-part statistics of ``_layer_stats``, the net term of
``_net_terms``, the concentration epsilon, ``reweight``) on a small layer
chosen so that every branch and every axis matters: rows differ in their
maxima, probabilities differ from 1, some values lie below 1, and some
neurons or outputs are dead. They were written to kill the mutants that
survived mutation testing (benchmarks/mutation_survivors.txt).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import replace

import numpy as np
import pytest

from coreset_verify.activations import get_activation
from coreset_verify.errors import InvalidArgumentError
from coreset_verify.guarantees import _concentration, _layer_stats, _net_terms, _PartStats
from coreset_verify.sampling import (
    MAX_DRAWS,
    draw_counts,
    draw_until_distinct,
    reweight,
    split_sample_size,
)

RTOL = 1e-12

# Three neurons in R^2 and two outputs; row norms 5, 1, 2.
W_IN = np.array([[3.0, 4.0], [0.0, 1.0], [2.0, 0.0]])
B_IN = np.array([0.5, -0.25, 1.0])
W_OUT = np.array([[0.2, 0.1, 0.05], [0.01, 0.2, 0.02]])
PR = np.array([0.5, 0.3, 0.2])
BETA = 0.5


def _reference(phi, lipschitz, nonnegative, form, counts=None, m=4):
    """The statistics of proofs_notes/sensitivity.md, from scratch."""
    norms = np.sqrt((W_IN**2).sum(axis=1))
    lo, hi = phi(B_IN - BETA * norms), phi(B_IN + BETA * norms)
    env = np.maximum(np.abs(lo), np.abs(hi))
    A = np.abs(W_OUT)
    scale = A @ env
    low = A @ lo if nonnegative else np.zeros(A.shape[0])
    if form == "additive":
        S = A * env / scale[:, None]
    else:
        S = A * hi / (A * hi + low[:, None] - A * lo)
    t = max(S[i, j] / PR[j] for i in range(A.shape[0]) for j in range(A.shape[1]))
    weighted = A * norms
    ref = {
        "scale": scale,
        "low": low,
        "t_eff": t,
        "lip_graph": lipschitz * weighted.sum(axis=1),
        "lip_prior": lipschitz * (weighted.sum(axis=1) + (weighted / PR).max(axis=1)),
        "zlip_graph": lipschitz * np.sqrt((A**2).sum(axis=1)),
        "zlip_prior": lipschitz * (np.sqrt((A**2).sum(axis=1)) + (A / PR).max(axis=1)),
    }
    if counts is None:
        ref["cap"] = np.full(A.shape[0], 1 + t)
    else:
        draws = counts / (m * PR)
        ref["cap"] = 1 + S @ draws
        ref["lip_real"] = lipschitz * (np.abs(1 - draws) * weighted).sum(axis=1)
        ref["zlip_real"] = lipschitz * np.sqrt(((A * np.abs(1 - draws)) ** 2).sum(axis=1))
    return ref


def _relu(z):
    return np.maximum(z, 0.0)


_CASES = [
    pytest.param("relu", _relu, 1.0, True, "additive", id="relu-additive"),
    pytest.param("relu", _relu, 1.0, True, "multiplicative", id="relu-multiplicative"),
    pytest.param("tanh", np.tanh, 1.0, False, "additive", id="tanh-additive"),
    pytest.param("sigmoid", lambda z: 1 / (1 + np.exp(-z)), 0.25, True, "multiplicative",
                 id="sigmoid-multiplicative"),
]


@pytest.mark.parametrize(("name", "phi", "lipschitz", "nonnegative", "form"), _CASES)
def test_layer_stats_prior_matches_formulas(name, phi, lipschitz, nonnegative, form):
    """Before the draws: T_i, G_lo_i, t, the prior Lipschitz constants and cap 1 + t."""
    ref = _reference(phi, lipschitz, nonnegative, form)
    # sanity of the instance: the per-row maxima differ, and some lie below 1
    assert (W_OUT * np.sqrt((W_IN**2).sum(axis=1)) / PR).max(axis=1).min() < 1
    assert (W_OUT / PR).max(axis=1).min() < 1
    st = _layer_stats(W_IN, B_IN, W_OUT, get_activation(name), BETA, form, PR, None, 4)
    assert st.m == 4
    assert st.lip_real is None
    assert st.zlip_real is None
    assert st.t_eff == pytest.approx(ref["t_eff"], rel=RTOL)
    for key in ("scale", "low", "lip_graph", "lip_prior", "zlip_graph", "zlip_prior", "cap"):
        got = getattr(st, key)
        assert got.shape == (2,), key
        np.testing.assert_allclose(got, ref[key], rtol=RTOL, atol=0, err_msg=key)


@pytest.mark.parametrize("form", ["additive", "multiplicative"])
def test_layer_stats_real_matches_formulas(form):
    """After the draws: cap 1 + sum_j S_ij cnt_j / (m pr_j) and the realised constants."""
    counts = np.array([2, 0, 2])
    ref = _reference(_relu, 1.0, True, form, counts=counts, m=4)
    st = _layer_stats(W_IN, B_IN, W_OUT, get_activation("relu"), BETA, form, PR, counts, 4)
    for key in ("cap", "lip_real", "zlip_real"):
        np.testing.assert_allclose(getattr(st, key), ref[key], rtol=RTOL, atol=0, err_msg=key)


def test_layer_stats_all_neurons_dead():
    """No neuron has positive sensitivity: t = 0, cap = 1, no prior term."""
    b_dead = np.array([-10.0, -10.0, -10.0])  # relu(b + beta ||w||) = 0 for every j
    st = _layer_stats(W_IN, b_dead, W_OUT, get_activation("relu"), BETA, "additive", PR,
                      None, 4)
    assert st.t_eff == 0.0
    np.testing.assert_array_equal(st.cap, [1.0, 1.0])
    np.testing.assert_array_equal(st.scale, [0.0, 0.0])
    # the graph constants do not depend on the draws; the prior adds nothing
    weighted = np.abs(W_OUT) * np.sqrt((W_IN**2).sum(axis=1))
    np.testing.assert_allclose(st.lip_graph, weighted.sum(axis=1), rtol=RTOL)
    np.testing.assert_allclose(st.lip_prior, weighted.sum(axis=1), rtol=RTOL)
    rows = np.sqrt((W_OUT**2).sum(axis=1))
    np.testing.assert_allclose(st.zlip_graph, rows, rtol=RTOL)
    np.testing.assert_allclose(st.zlip_prior, rows, rtol=RTOL)


@pytest.mark.parametrize("bad", [0.0, -0.1])
def test_layer_stats_refuses_zero_probability_on_a_used_neuron(bad):
    pr = np.array([0.5, bad, 0.5])
    with pytest.raises(InvalidArgumentError, match="sampling probability 0"):
        _layer_stats(W_IN, B_IN, W_OUT, get_activation("relu"), BETA, "additive", pr, None, 4)


def test_layer_stats_errors_name_theoretical_bound():
    W_bad = W_IN.copy()
    W_bad[1, 0] = np.inf
    with pytest.raises(Exception, match="theoretical_bound"):
        _layer_stats(W_bad, B_IN, W_OUT, get_activation("relu"), BETA, "additive", PR, None, 4)


def _stats(scale, low):
    k = len(scale)
    z = np.zeros(k)
    return _PartStats(4, 1.0, np.asarray(scale, float), np.asarray(low, float), z, z, None,
                      z, z, None, z + 2)


def test_net_terms_additive_is_worst_lipschitz_over_scale():
    """max_i L_i / T_i over rows with T_i > 0, broadcast to every radius."""
    eps = np.array([0.1, 0.2, 0.3])
    lip = np.array([0.3, 5.0, 0.06])
    st = _stats([0.5, 0.0, 2.0], [0.0, 0.0, 0.0])  # row 1 is dead: no error
    got = _net_terms(st, "additive", np.zeros(3), lip, eps)
    assert got.shape == eps.shape
    np.testing.assert_allclose(got, np.full(3, max(0.3 / 0.5, 0.06 / 2.0)), rtol=RTOL)


def test_net_terms_multiplicative_is_worst_over_live_rows():
    """max over rows with T_i > 0 of (eps L_G_i + L_i) / G_lo_i, per radius."""
    eps = np.array([0.1, 0.5])
    graph = np.array([1.0, 7.0, 0.2])
    lip = np.array([0.1, 9.0, 0.05])
    st = _stats([0.5, 0.0, 3.0], [0.4, 0.0, 2.0])  # row 1 dead (T = G_lo = 0)
    got = _net_terms(st, "multiplicative", graph, lip, eps)
    want = [max((e * 1.0 + 0.1) / 0.4, (e * 0.2 + 0.05) / 2.0) for e in eps]
    assert got.shape == eps.shape
    np.testing.assert_allclose(got, want, rtol=RTOL)


def test_net_terms_multiplicative_all_dead_is_zero():
    eps = np.array([0.1, 0.5])
    st = _stats([0.0, 0.0], [0.0, 0.0])
    got = _net_terms(st, "multiplicative", np.ones(2), np.ones(2), eps)
    np.testing.assert_array_equal(got, [0.0, 0.0])


@pytest.mark.parametrize("low", [0.0, -1.0])
def test_net_terms_multiplicative_live_row_without_lower_bound_is_inf(low):
    """A live row with G_lo_i <= 0 admits no multiplicative bound."""
    eps = np.array([0.1, 0.5])
    st = _stats([1.0, 1.0], [low, 1.0])
    with np.errstate(divide="ignore", invalid="ignore"):
        got = _net_terms(st, "multiplicative", np.zeros(2), np.zeros(2), eps)
    np.testing.assert_array_equal(got, [math.inf, math.inf])


def _concentration_reference(m, t, L):
    hoeffding = t * math.sqrt(2 * L / m)
    a = 2 * (t + 1) * L / 3
    bernstein = (a + math.sqrt(a * a + 8 * m * t * L)) / (2 * m)
    return min(hoeffding, bernstein)


def test_concentration_at_m_zero_and_one():
    L = np.array([0.0, 1.0, 3.0])
    with np.errstate(divide="ignore", invalid="ignore"):
        none = _concentration(0, 1.0, L)
    assert none.shape == (3,)
    np.testing.assert_array_equal(none, [math.inf] * 3)
    one = _concentration(1, 0.5, L)
    np.testing.assert_allclose(one, [_concentration_reference(1, 0.5, x) for x in L],
                               rtol=RTOL)
    assert np.all(np.isfinite(one))


class _Recording:
    """A namespace wrapping numpy that records what asarray was asked for."""

    def __init__(self):
        self.calls = []

    def asarray(self, x, dtype=None, device=None):
        self.calls.append((dtype, device))
        return np.asarray(x, dtype=dtype)

    def take(self, a, indices, axis):
        return np.take(a, indices, axis=axis)


class _OnDevice(np.ndarray):
    device = "accelerator:3"


def test_reweight_keeps_dtype_and_device():
    W = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=np.float32).view(_OnDevice)
    xp = _Recording()
    out = reweight(xp, W, np.array([2, 0]), np.array([0.5, 3.0]))
    assert xp.calls == [(np.float32, "accelerator:3")]
    np.testing.assert_array_equal(np.asarray(out), [[1.5, 3.0], [3.0, 12.0]])


class _NoDevice:
    """An array-like with a dtype and no ``device`` attribute."""

    def __init__(self, a):
        self.a = a
        self.dtype = a.dtype

    def __array__(self, dtype=None, copy=None):
        return self.a


def test_reweight_without_device_attribute():
    xp = _Recording()
    out = reweight(xp, _NoDevice(np.array([[2.0, 4.0]])), np.array([1]), np.array([0.25]))
    assert xp.calls == [(np.float64, None)]
    np.testing.assert_array_equal(out, [[1.0]])


def test_net_terms_additive_dead_row_never_read():
    """The dead row's slope is 0 whatever memory the result was allocated from."""
    eps = np.array([0.1, 0.2, 0.3])
    lip = np.array([0.3, 5.0, 0.06])
    st = _stats([0.5, 0.0, 2.0], [0.0, 0.0, 0.0])
    for junk_value in (1e300, 7.0, np.inf):
        junk = [np.full(3, junk_value) for _ in range(8)]  # freed: reused by numpy
        del junk
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # numpy warns of a `where` without `out`
            got = _net_terms(st, "additive", np.zeros(3), lip, eps)
        np.testing.assert_array_equal(got, np.full(3, 0.3 / 0.5))


def test_draw_counts_are_int64_and_sum_to_m():
    counts = draw_counts(np.array([0.25, 0.75, 0.0]), 10, np.random.default_rng(0))
    assert counts.dtype == np.int64
    assert counts.sum() == 10
    assert counts[2] == 0


@pytest.mark.parametrize(("m", "totals", "want"), [
    (1, (3.0, 1.0), (1, 0)),  # round(0.75) = 1; no clamp below m = 2
    (1, (1.0, 3.0), (0, 1)),
    (2, (100.0, 1.0), (1, 1)),  # round(1.98) = 2, clamped to m - 1
    (10, (1.0, 3.0), (2, 8)),  # round(2.5) = 2 (half to even)
])
def test_split_sample_size_known_answers(m, totals, want):
    """m_+ = round(m t_+ / (t_+ + t_-)), clamped to [1, m - 1] for m >= 2 only
    (proofs_notes/split_signs.md)."""
    assert tuple(split_sample_size(m, totals)) == want


def test_draw_until_distinct_accepts_max_draws_at_the_limit():
    draws = draw_until_distinct(np.array([0.5, 0.5]), 1, np.random.default_rng(0),
                                max_draws=MAX_DRAWS)
    assert draws.sample_size == 1
    assert draws.counts.sum() == 1


def test_draw_until_distinct_counts_only_positive_probabilities_as_live():
    with pytest.raises(InvalidArgumentError, match=r"live ones \(2 with"):
        draw_until_distinct(np.array([0.5, 0.5, 0.0]), 3, np.random.default_rng(0),
                            max_draws=100)


def test_draw_until_distinct_stops_at_max_draws():
    with pytest.raises(InvalidArgumentError, match="10 draws found only 1"):
        draw_until_distinct(np.array([1.0 - 1e-15, 1e-15]), 2, np.random.default_rng(0),
                            max_draws=10)


def _pair_coreset(W_out, activation="relu", m=64, split_signs=True):
    """Two identical neurons relu(x_0) (the pair of test_pointwise_truth)."""
    from coreset_verify import layer_coreset

    W_in = np.array([[1.0, 0.0], [1.0, 0.0]])
    return layer_coreset(W_in, np.zeros(2), np.asarray(W_out, float), sample_size=m,
                         activation=activation, beta=1.0, rng=0, split_signs=split_signs)


def test_pointwise_split_pair_known_answer():
    """W_out = [1, -1]: each sign part has one live neuron, t = 1, m / 2 draws
    and delta / 2; statistical = min(Hoeffding, Bernstein) at L = log(2 k / (delta / 2))."""
    from coreset_verify import theoretical_bound

    b = theoretical_bound(_pair_coreset([[1.0, -1.0]]), delta=0.1, kind="pointwise")
    want = _concentration_reference(32, 1.0, math.log(2 / 0.05))
    assert b.statistical == pytest.approx(want, rel=RTOL)
    assert b.net_radius is None
    assert b.net is None


def test_split_with_an_empty_part_ignores_it():
    """All of W_out positive: the negative part gets no draws and no delta share."""
    from coreset_verify import theoretical_bound

    b = theoretical_bound(_pair_coreset([[1.0, 1.0]]), delta=0.1, kind="pointwise")
    # both neurons are identical: per-output sensitivities 1/2 each, t = 1
    want = _concentration_reference(64, 1.0, math.log(2 / 0.1))
    assert b.statistical == pytest.approx(want, rel=RTOL)


def test_uniform_is_the_default_kind_and_reports_its_net():
    from coreset_verify import theoretical_bound

    c = _pair_coreset([[1.0, -1.0]])
    default = theoretical_bound(c, delta=0.1)
    uniform = theoretical_bound(c, delta=0.1, kind="uniform")
    assert default.kind == "uniform"
    assert default.epsilon == uniform.epsilon
    assert isinstance(default.net_radius, float)
    assert default.net_radius > 0
    assert default.net in ("ball", "ellipsoid")


@pytest.mark.parametrize(("activation", "kind", "ok", "needs"), [
    ("relu", "pointwise", True, ("is_nondecreasing", "is_nonnegative")),
    ("relu", "uniform", False, None),  # uniform multiplicative needs phi > 0
    ("sigmoid", "uniform", True, ("is_nondecreasing", "is_positive")),
    ("tanh", "pointwise", False, None),  # multiplicative needs phi >= 0
])
def test_multiplicative_assumptions(activation, kind, ok, needs):
    """proofs_notes/multiplicative.md: phi >= 0 for the pointwise kind, phi > 0
    for the uniform kind."""
    from coreset_verify import theoretical_bound

    c = _pair_coreset([[1.0, 0.5]], activation=activation, split_signs=False)
    if ok:
        b = theoretical_bound(c, delta=0.1, kind=kind, form="multiplicative")
        assert tuple(b.assumptions) == needs
    else:
        with pytest.raises(Exception, match=kind):
            theoretical_bound(c, delta=0.1, kind=kind, form="multiplicative")


@pytest.mark.parametrize(("dtype", "want"), [
    (np.float64, (2.0**-1022, (2 - 2.0**-52) * 2.0**1023)),
    (np.dtype(np.float32), (2.0**-126, (2 - 2.0**-23) * 2.0**127)),
    ("float32", (2.0**-126, (2 - 2.0**-23) * 2.0**127)),
    ("torch.float64", (2.0**-1022, (2 - 2.0**-52) * 2.0**1023)),
])
def test_safe_range_is_smallest_normal_to_largest_finite(dtype, want):
    from coreset_verify.sensitivity import safe_range

    assert safe_range(dtype) == want


def test_unsafe_marks_nonfinite_subnormal_and_nothing_else():
    from coreset_verify.sensitivity import _unsafe

    tiny, big = 2.0**-1022, np.finfo(np.float64).max
    v = np.array([0.0, tiny, -tiny, big, -big, 1.0, tiny / 2, np.inf, np.nan, -np.inf])
    want = [False] * 6 + [True] * 4
    np.testing.assert_array_equal(_unsafe(v, np.float64), want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_check_magnitudes_refuses_a_subnormal_of_the_dtype(dtype):
    from coreset_verify.errors import MagnitudeError
    from coreset_verify.sensitivity import check_magnitudes

    sub = float(np.finfo(dtype).tiny) / 4
    check_magnitudes("f", "x", np.array([1.0, 0.0]), dtype, "")
    with pytest.raises(MagnitudeError, match="at index 1"):
        check_magnitudes("f", "x", np.array([1.0, sub]), dtype, "")


@pytest.mark.parametrize(("W", "want"), [
    # one row out of range: the scaled path, s sqrt(sum (w / s)^2)
    ([[3e-300, 4e-300], [3.0, 4.0]], [5e-300, 5.0]),
    ([[3.0, 4.0], [3e200, 4e200]], [5.0, 5e200]),
    # several rows out of range with different norms, a zero row and a fine row
    ([[3e-300, 4e-300], [0.0, 0.0], [6e200, 8e200], [1.0, 0.0], [5e-310, 12e-310]],
     [5e-300, 0.0, 1e201, 1.0, 13e-310]),
])
def test_row_norms_without_underflow_or_overflow(W, want):
    from coreset_verify.sensitivity import row_norms

    W = np.array(W)
    got = row_norms(np, W)
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=0)
    assert got is not W


def _eye_coreset():
    """Two identical neurons relu(x_0), W_out = I: s = (1, 1), t = 2, pr = 1/2."""
    from coreset_verify import layer_coreset

    return layer_coreset(np.array([[1.0, 0.0], [1.0, 0.0]]), np.zeros(2), np.eye(2),
                         sample_size=64, beta=1.0, rng=0)


@pytest.mark.parametrize(("dimension", "used"), [(None, 3), (5.0, 5.0), (0.5, 0.5)])
def test_paper_form_known_answer(dimension, used):
    """epsilon = sqrt(C t (d' log t + log(1/delta)) / m), d' = d + 1 by default
    (proofs_notes/paper.md)."""
    from coreset_verify import theoretical_bound

    b = theoretical_bound(_eye_coreset(), delta=0.1, kind="paper", paper_constant=1.5,
                          paper_dimension=dimension)
    want = math.sqrt(1.5 * 2 * (used * math.log(2) - math.log(0.1)) / 64)
    assert b.statistical == pytest.approx(want, rel=RTOL)


def test_paper_dimension_is_validated():
    from coreset_verify import theoretical_bound

    with pytest.raises(InvalidArgumentError, match="'paper_dimension' parameter of "
                       "theoretical_bound"):
        theoretical_bound(_eye_coreset(), delta=0.1, kind="paper", paper_dimension=-1.0)


def _edit_part(c, **changes):
    return replace(c, parts=(replace(c.parts[0], **changes),))


@pytest.mark.parametrize("edit", [
    pytest.param(lambda c: replace(c, beta=0.0), id="beta=0"),
    pytest.param(lambda c: replace(c, beta=math.inf), id="beta=inf"),
    pytest.param(lambda c: replace(c, beta=1), id="beta=int"),
    pytest.param(lambda c: replace(c, sample_size=65), id="m!=sum"),
    pytest.param(lambda c: replace(c, sample_size=64.0),
                 id="m=float"),
    pytest.param(lambda c: _edit_part(c, probabilities=np.array([np.nan, 0.5])), id="pr=nan"),
    pytest.param(lambda c: _edit_part(c, probabilities=np.array([-0.5, 1.5])), id="pr<0"),
    pytest.param(lambda c: _edit_part(c, counts=c.parts[0].counts + 1), id="counts!=m"),
])
def test_edited_records_are_refused(edit):
    from coreset_verify import theoretical_bound

    c = _eye_coreset()
    theoretical_bound(c, delta=0.1, kind="pointwise")
    with pytest.raises(InvalidArgumentError, match="'coreset' parameter of theoretical_bound"):
        theoretical_bound(edit(c), delta=0.1, kind="pointwise")


def test_activation_range_refuses_a_subnormal_relu_envelope():
    """relu(b + beta ||w||) = 2**-1040 is subnormal: refused (proofs_notes/sensitivity.md,
    "Magnitudes"); a positive activation's tiny envelope is left to check_scale."""
    from coreset_verify.errors import MagnitudeError
    from coreset_verify.sensitivity import _activation_range

    r = 2.0**-1000
    b = -(r - 2.0**-1040)
    assert b + r == 2.0**-1040
    with pytest.raises(MagnitudeError, match=r"envelope.*Rescale the weights toward 1"):
        _activation_range(np, np.array([[r]]), np.array([b]), 1.0, get_activation("relu"))
    # float32: 2**-130 is subnormal there (though normal in float64)
    r32, b32 = np.float32(2.0**-120), np.float32(-(2.0**-120 - 2.0**-130))
    assert float(r32) + float(b32) == 2.0**-130
    with pytest.raises(MagnitudeError, match=r"envelope.*in float32"):
        _activation_range(np, np.array([[r32]]), np.array([b32]), 1.0, get_activation("relu"))
    lo, hi, norms = _activation_range(np, np.array([[1.0]]), np.array([-720.0]), 1.0,
                                      get_activation("sigmoid"))
    # sigmoid(z) ~ e^z here (subnormal: loose factors)
    assert 0 < lo[0] <= 2 * math.exp(-721.0)
    assert hi[0] >= 0.5 * math.exp(-719.0)
    assert norms[0] == 1.0


@pytest.mark.parametrize("name", ["phi_lo", "phi_hi", "envelope"])
def test_public_ranges_need_a_nondecreasing_activation(name):
    import coreset_verify.sensitivity as sensitivity
    from coreset_verify.errors import AssumptionError

    fn = getattr(sensitivity, name)
    with pytest.raises(InvalidArgumentError, match=f"'beta' parameter of {name} "):
        fn(np.array([[1.0]]), np.array([0.0]), beta=-1.0, activation="relu")
    with pytest.raises(AssumptionError, match="coreset bound assumes"):
        fn(np.array([[1.0]]), np.array([0.0]), beta=1.0, activation="silu")
    # relu: phi_lo = relu(b - beta ||w||), phi_hi = relu(b + beta ||w||)
    got = fn(np.array([[3.0, 4.0]]), np.array([1.0]), beta=0.5, activation="relu")
    want = {"phi_lo": 0.0, "phi_hi": 3.5, "envelope": 3.5}[name]
    np.testing.assert_allclose(got, [want], rtol=RTOL)


def test_bound_records_its_arguments():
    from coreset_verify import theoretical_bound

    b = theoretical_bound(_eye_coreset(), delta=0.1, kind="pointwise")
    assert b.delta == 0.1
    assert b.sample_size == 64
    assert tuple(b.assumptions) == ("is_nondecreasing",)
    assert b.log_event_delta == pytest.approx(math.log(0.1), rel=RTOL)
    # W_out = I: t = 2, m = 64 draws, a union over k = 2 outputs
    assert b.statistical == pytest.approx(
        _concentration_reference(64, 2.0, math.log(4 / 0.1)), rel=RTOL)


@pytest.mark.parametrize("split_signs", [False, True])
def test_sample_size_for_known_answer_with_an_empty_sign_part(split_signs):
    """W_out = [1, 1] on two identical relu neurons: t = 1, one part (the negative
    one is empty and gets no draws, nor a share of delta); the answer is the
    smallest m whose pointwise bound min(Hoeffding, Bernstein) at L = log(2 / delta)
    is at most epsilon."""
    from coreset_verify import sample_size_for

    m = sample_size_for(np.array([[1.0, 0.0], [1.0, 0.0]]), np.zeros(2),
                        np.array([[1.0, 1.0]]), epsilon=0.5, delta=0.1, beta=1.0,
                        kind="pointwise", split_signs=split_signs)
    want = next(n for n in range(1, 10_000)
                if _concentration_reference(n, 1.0, math.log(2 / 0.1)) <= 0.5)
    assert m == want


# Two neurons: relu(x_0) with envelope 1 on the unit ball, and a dead one.
_W_IN2 = np.array([[1.0, 0.0], [0.0, 1.0]])
_B_IN2 = np.array([0.0, -5.0])
_W_OUT2 = np.array([[1.0, 2.0], [0.0, 3.0]])


def test_output_and_layer_sensitivities_known_answer():
    """s_i[j] = |W_ij| env_j / T_i (0 where T_i = 0); s_j = max_i s_i[j]."""
    from coreset_verify.sensitivity import layer_sensitivities, output_sensitivities

    np.testing.assert_array_equal(
        output_sensitivities(_W_IN2, _B_IN2, _W_OUT2, beta=1.0), [[1.0, 0.0], [0.0, 0.0]])
    s = layer_sensitivities(_W_IN2, _B_IN2, _W_OUT2, beta=1.0)
    np.testing.assert_array_equal(s.sensitivity, [1.0, 0.0])
    assert s.total == 1.0
    np.testing.assert_array_equal(s.scale, [1.0, 0.0])
    np.testing.assert_array_equal(s.envelope, [1.0, 0.0])
    assert s.reduction == "per-output"


def test_all_dead_layer_inspected_but_not_sampled():
    from coreset_verify.sensitivity import layer_sensitivities, output_sensitivities

    dead = np.array([-5.0, -5.0])
    np.testing.assert_array_equal(output_sensitivities(_W_IN2, dead, _W_OUT2, beta=1.0),
                                  np.zeros((2, 2)))
    with pytest.raises(InvalidArgumentError, match="every neuron has sensitivity 0"):
        layer_sensitivities(_W_IN2, dead, _W_OUT2, beta=1.0)


def test_check_scale_names_nonfinite_weights():
    from coreset_verify.sensitivity import check_scale

    with pytest.raises(InvalidArgumentError, match=r"W_out must be finite; W_out\[0, 0\]"):
        check_scale("f", np.array([np.nan, 1.0]), np.array([[np.nan], [1.0]]),
                    np.array([1.0]), get_activation("relu"))


def test_check_scale_refuses_an_underflowed_zero_scale_only():
    """T_i = 0 is accepted when every |W_ij| env_j is truly 0, refused when the
    products underflowed (1e-200 * 1e-200)."""
    from coreset_verify.errors import MagnitudeError
    from coreset_verify.sensitivity import check_scale

    relu = get_activation("relu")
    W = np.array([[1e-200, 0.0], [0.0, 1.0], [0.0, 0.0]])
    env = np.array([1e-200, 0.0])
    scale = W @ env
    assert scale.tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(MagnitudeError, match="T_i at index 0"):
        check_scale("f", scale, W, env, relu)
    with pytest.raises(MagnitudeError, match="T_i at index 0"):
        check_scale("f", scale[:1], W[:1], env, relu)  # a single zero T_i
    check_scale("f", scale[1:], W[1:], env, relu)  # truly zero: accepted


def test_overflowing_row_norm_of_w_in_is_named():
    from coreset_verify.sensitivity import layer_sensitivities, phi_hi

    W_in = np.array([[1.0, 0.0], [1.5e308, 1.5e308]])
    with pytest.raises(InvalidArgumentError,
                       match="W_in is too large: a reduction along axis 1 overflowed at index 1"):
        phi_hi(W_in, np.zeros(2), beta=1.0)
    with pytest.raises(InvalidArgumentError, match=r"^layer_sensitivities: W_in is too large"):
        layer_sensitivities(W_in, np.zeros(2), np.ones((1, 2)), beta=1.0)


@pytest.mark.parametrize(("dimension", "want"), [(None, 36), (5.0, 47)])
def test_sample_size_for_paper_form_known_answer(dimension, want):
    """W_out = I on two identical relu neurons: t = 2, so the paper form needs
    m >= C t (d' log t + log(1/delta)) / epsilon^2 (d = 2, default d' = 3):
    35.06 -> 36 and 46.14 -> 47."""
    from coreset_verify import sample_size_for

    m = sample_size_for(np.array([[1.0, 0.0], [1.0, 0.0]]), np.zeros(2), np.eye(2),
                        epsilon=0.5, delta=0.1, beta=1.0, kind="paper",
                        paper_dimension=dimension)
    d = 3 if dimension is None else dimension
    assert m == math.ceil(2 * (d * math.log(2) - math.log(0.1)) / 0.25) == want
