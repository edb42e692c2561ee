"""Known answers that kill the surviving mutants of coreset_verify/guarantees.py.

The uniform bound is recomputed here from proofs_notes/uniform.md (ball net
``(1 + 2 beta / r)^d'`` at the 141 radii ``beta * logspace(-14, 0)``;
ellipsoid net ``2^(|B|/2) prod_B (1 + 2 a_k / rho)`` within ``hypot(rho, tau)``
on the 35 x 35 grid ``a_1 * logspace(-8, 0.5)``; a union over all candidates)
and from its "Floating point" paragraph: every Lipschitz constant carries the
underflow margin ``n u`` (graph terms) or ``2 n u + u / min_j pr_j`` (prior and
realised terms), ``u = 2^-1074``.

The layers are chosen so that those margins are the whole Lipschitz constant:
the live neurons have ``w_j = 0`` (their activation is constant on the ball)
and tiny outgoing weights, so ``T_i`` is near the smallest normal number and a
few ``u`` of margin move epsilon by a visible amount. Each test says which
mutants it kills (mutmut names, benchmarks/mutation_survivors.py).
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import replace

import numpy as np
import pytest
from _truth_reference import concentration

from coreset_verify import layer_coreset, sample_size_for
from coreset_verify.activations import Activation
from coreset_verify.coreset import SampledPart
from coreset_verify.errors import InvalidArgumentError, MagnitudeError
from coreset_verify.guarantees import theoretical_bound

U = 2.0**-1074  # the smallest subnormal number
BALL_RADII = np.logspace(-14, 0, 141)  # fractions of beta (uniform.md)
ELLIPSOID_GRID = np.logspace(-8, 0.5, 35)  # fractions of the longest semi-axis
SVD_MARGIN = 1e-10
RTOL = 1e-12


def _uniform_reference(*, m, t, delta, dim, beta, lip, unit, ellipse=None, graph=None):
    """``(epsilon, radius, net)`` of Theorems U and U' for one part and one output.

    ``lip`` is the ball Lipschitz constant of the error (in x), ``unit`` the
    divisor (``T_i``, or ``G_lo_i`` for the multiplicative form, which also
    passes ``graph = Lip_G_i``). ``ellipse = (axes, length, zlip, zgraph)``:
    the semi-axes of ``W_in B`` over the longest one, that longest one
    ``length``, and the constants in z; None for no ellipsoid net. Radii are
    fractions of ``beta`` or of ``length``, multiplied in before the constant
    (a constant of a few u times a radius would be subnormal).
    """
    log0 = math.log(2 / delta)  # k = 1 output
    candidates = [(log0 + dim * math.log1p(2 / f), f, beta, lip, graph, "ball")
                  for f in BALL_RADII]
    if ellipse is not None:
        axes, length, zlip, zgraph = ellipse
        for tau in ELLIPSOID_GRID:
            kept = axes[axes > tau]
            for rho in ELLIPSOID_GRID:
                log = log0 + kept.size * math.log(2) / 2 + sum(math.log1p(2 * a / rho)
                                                                for a in kept)
                candidates.append((log, math.hypot(rho, tau), length, zlip, zgraph,
                                   "ellipsoid"))
    union = math.log(len(candidates))
    best = (math.inf, None, None)
    for log, fraction, length, lipschitz, lip_g, net in candidates:
        e = concentration(m, t, log + union)
        growth = 0.0 if lip_g is None else e * (length * lip_g)
        value = e + fraction * (growth + length * lipschitz) / unit
        if value < best[0]:
            best = (value, fraction * length, net)
    return best


def _seeded(count, *args, **kwargs):
    """The first seed whose draws have exactly the counts ``count``."""
    for seed in range(1000):
        c = layer_coreset(*args, rng=seed, **kwargs)
        if np.array_equal(c.parts[0].counts, count):
            return c
    raise AssertionError("no seed drew the wanted counts")  # pragma: no cover


def test_realised_margins_set_the_uniform_bound():
    """Realised constants equal to their margin, ellipsoid net winning.

    Neurons 0, 1: ``w = 0``, ``b = 1`` (activation 1 on the ball), weights
    ``c, 3c`` with ``c = 2^-1020``: ``T = 4c``, ``pr = (1/4, 3/4)``. Neuron 2:
    ``w = (2^-10)``, weight 0: it sets the ellipsoid (one semi-axis
    ``beta 2^-10 (1 + 1e-10)``) and nothing else. With counts ``(100, 300)`` of
    400 draws, ``U = W`` exactly: ``Lip = zLip = 2 n u + u / min pr = 10 u``.

    Kills _layer_stats 121, 125, 128, 130, 131, 132 (the margin), 208
    (``lip_real - margin``), 217 (``zlip_real - margin``), _geometry 38 (a
    largest singular value of exactly 1 dropped the ellipsoid net) and
    _part_epsilon 101 (the radius reported as fraction / length).
    """
    c, beta = 2.0**-1020, 2.0**59
    W_in = np.array([[0.0], [0.0], [2.0**-10]])
    W_out = np.array([[c, 3 * c, 0.0]])
    coreset = _seeded([100, 300, 0], W_in, np.array([1.0, 1.0, 0.0]), W_out,
                      sample_size=400, beta=beta)
    assert np.array_equal(coreset.parts[0].probabilities, [0.25, 0.75, 0.0])
    bound = theoretical_bound(coreset, delta=0.1, kind="uniform")
    margin = 2 * 3 * U + U / 0.25
    length = beta * 2.0**-10 * (1 + SVD_MARGIN)
    eps, radius, net = _uniform_reference(
        m=400, t=1.0, delta=0.1, dim=1, beta=beta, lip=margin, unit=4 * c,
        ellipse=(np.array([1.0]), length, margin, None))
    assert net == "ellipsoid"
    assert bound.net == net
    assert bound.statistical == pytest.approx(eps, rel=RTOL)
    assert bound.net_radius == pytest.approx(radius, rel=RTOL)
    assert bound.epsilon == pytest.approx(eps, rel=RTOL)  # below the cap 2


def test_prior_margins_set_sample_size_for():
    """Prior constants dominated by the ``u / min pr`` margin.

    Neuron 0: ``w = 0``, ``b = 2^40``, weight ``c = 2^-1000``; neuron 1:
    ``w = 0``, ``b = 1``, weight ``u``; neuron 2: ``w = (1/32)``, weight 0.
    ``T = 2^-960``, ``s = (1, 2^-114, 0)``, ``t = 1``, ``pr = s``. So
    ``Lip_prior = 6u + u / 2^-114 = T`` (ball slope beta) and
    ``zLip_prior = c + 6u + T + max(c, u / 2^-114) = c + 2T``.

    Kills _layer_stats 152 (``lip_prior - margin``), 171 (``zlip_prior -
    margin``), and 121, 125, 128, 132 again, before the draws.
    """
    c, beta = 2.0**-1000, 1.0
    T = 2.0**-960
    W_in = np.array([[0.0], [0.0], [1 / 32]])
    b_in = np.array([2.0**40, 1.0, 0.0])
    W_out = np.array([[c, U, 0.0]])
    length = beta / 32 * (1 + SVD_MARGIN)
    zlip = c + 6 * U + 2 * T

    def reference(m):
        return _uniform_reference(m=m, t=1.0, delta=0.05, dim=1, beta=beta,
                                  lip=6 * U + T, unit=T,
                                  ellipse=(np.array([1.0]), length, zlip, None))[0]

    for target in (0.3, 0.15):
        low, high = 1, 2
        while reference(high) > target:
            low, high = high, 2 * high
        while high - low > 1:
            mid = (low + high) // 2
            low, high = (low, mid) if reference(mid) <= target else (mid, high)
        assert reference(high) < target * (1 - 1e-9) < target * (1 + 1e-9) < reference(low)
        got = sample_size_for(W_in, b_in, W_out, epsilon=target, delta=0.05, beta=beta)
        assert got == high


def test_multiplicative_graph_margin():
    """Multiplicative uniform bound whose graph constant is its margin ``n u``.

    ``W_in = 0`` (no ellipsoid net), softplus, ``b = 0``: every activation is
    ``log 2`` on the ball, ``G_lo = T = 4c log 2``, ``S = pr = (1/4, 3/4)``,
    ``Lip_G = 2u``, ``Lip = 2 n u + u / (1/4) = 8u``; the net term is
    ``r (E Lip_G + Lip) / G_lo``.

    Kills _layer_stats 145 (``lip_graph - n u``).
    """
    c, beta = 2.0**-1020, 2.0**50
    W_out = np.array([[c, 3 * c]])
    coreset = layer_coreset(np.zeros((2, 1)), np.zeros(2), W_out, sample_size=400,
                            beta=beta, rng=0, activation="softplus")
    bound = theoretical_bound(coreset, delta=0.1, kind="uniform", form="multiplicative")
    log2 = math.log(2)
    eps, radius, net = _uniform_reference(
        m=400, t=1.0, delta=0.1, dim=1, beta=beta, lip=8 * U, graph=2 * U,
        unit=c * log2 + 3 * c * log2)
    assert (bound.net, bound.net_radius) == (net, pytest.approx(radius, rel=RTOL))
    assert bound.statistical == pytest.approx(eps, rel=RTOL)


def test_multiplicative_graph_margin_in_z():
    """The ellipsoid net's graph constant ``zLip_G = ||W_i||_2 + n u`` at its
    smallest: ``||W_i|| = 2^-1022`` (one live neuron, ``w = 0``, ``b = 2``,
    softplus) among ``n = 2^20`` neurons, so ``n u`` is ``2^-32`` of it and moves
    epsilon by 5e-11 relative. Neuron 1 (``w = 2^-38``, weight 0) sets the
    ellipsoid, semi-axis ``beta 2^-38 (1 + 1e-10) = 1/4``; the others are zero.
    One live neuron drawn 400 times: ``U = W``, realised constants ``(2n + 1) u``.

    Kills _layer_stats 166 (``zlip_graph - n u``).
    """
    n, beta, w = 2**20, 2.0**36, 2.0**-1022
    W_in = np.zeros((n, 1))
    W_in[1, 0] = 2.0**-38
    b_in = np.zeros(n)
    b_in[0] = 2.0
    W_out = np.zeros((1, n))
    W_out[0, 0] = w
    coreset = layer_coreset(W_in, b_in, W_out, sample_size=400, beta=beta, rng=0,
                            activation="softplus")
    bound = theoretical_bound(coreset, delta=0.1, kind="uniform", form="multiplicative")
    realised = (2 * n + 1) * U
    eps, radius, net = _uniform_reference(
        m=400, t=1.0, delta=0.1, dim=1, beta=beta, lip=realised, graph=n * U,
        unit=w * math.log1p(math.exp(2.0)),
        ellipse=(np.array([1.0]), beta * 2.0**-38 * (1 + SVD_MARGIN), realised, w + n * U))
    assert (bound.net, bound.net_radius) == (net, pytest.approx(radius, rel=RTOL))
    assert bound.statistical == pytest.approx(eps, rel=RTOL)


def test_no_lower_envelope_gives_no_multiplicative_uniform_bound():
    """``G_lo_i = 0`` (softplus underflows to 0 at ``-800``): no net term is
    finite, the statistical bound is inf, no net or radius is reported, and
    epsilon is the deterministic cap ``1 + sum_j cnt_j S_j / (m pr_j)``, with
    the multiplicative ``S_j = |W_j| phi_hi_j / |W_j| phi_hi_j = 1``.

    Kills _net_terms 28 (an object-dtype inf) and _part_epsilon 93 (``<=``
    reports a net for an infinite bound).
    """
    coreset = layer_coreset(np.ones((2, 1)), np.zeros(2), np.array([[1.0, 2.0]]),
                            sample_size=50, beta=800.0, rng=0, activation="softplus")
    part = coreset.parts[0]
    assert np.allclose(part.probabilities, [1 / 3, 2 / 3], rtol=1e-15)
    bound = theoretical_bound(coreset, delta=0.1, kind="uniform", form="multiplicative")
    cap = 1 + float(np.sum(part.counts / (50 * part.probabilities)))
    assert bound.statistical == math.inf
    assert bound.net is None
    assert bound.net_radius is None
    assert bound.epsilon == bound.deterministic == pytest.approx(cap, rel=RTOL)


def test_overflowing_ellipsoid_with_a_constant_activation():
    """Activation 1 (Lipschitz 0) with ``beta = 1e308`` and four equal rows: the
    longest semi-axis ``2 beta`` overflows, so the ellipsoid net (``inf * 0``)
    is unusable and the ball net at ``r = beta`` wins with no Lipschitz term:
    ``epsilon = E(m, 1, log(2/delta) + log 3 + log 1366)``.

    Kills _part_epsilon 84 (NaN replaced by None).
    """
    one = Activation("one", lambda z, xp: xp.ones_like(z), is_nondecreasing=True,
                     is_nonnegative=True, is_positive=True, lipschitz=0.0)
    coreset = layer_coreset(np.ones((4, 1)), np.zeros(4), np.array([[1.0, 2.0, 3.0, 4.0]]),
                            sample_size=100, beta=1e308, rng=0, activation=one)
    with np.errstate(invalid="ignore"):  # inf * 0 in the unusable net
        bound = theoretical_bound(coreset, delta=0.1, kind="uniform")
    expected = concentration(100, 1.0, math.log(2 / 0.1) + math.log(3) + math.log(141 + 35**2))
    assert bound.statistical == pytest.approx(expected, rel=RTOL)
    assert (bound.net, bound.net_radius) == ("ball", pytest.approx(1e308, rel=RTOL))


def test_paper_bound_of_a_part_without_sensitivity():
    """A record whose negative part draws a neuron dead on the whole ball (its
    sensitivity and t are 0): that part's paper epsilon is 0, and the bound is
    the positive part's ``sqrt(C t (d' log t + log(2 / delta)) / m+)`` with
    ``t = 1`` (one live neuron), ``m+ = 4``. Whether the record is accepted or
    refused, it must not end in a math domain error.

    Kills _part_epsilon 22 and 29 (``log(0)`` for ``t = 0``).
    """
    coreset = layer_coreset(np.ones((2, 1)), np.array([0.0, -5.0]), np.array([[1.0, -1.0]]),
                            sample_size=5, beta=1.0, rng=0, split_signs=True)
    positive = coreset.parts[0]
    assert positive.sign == 1
    assert np.array_equal(positive.counts, [5, 0])
    edited = replace(coreset, parts=(
        SampledPart(1, positive.probabilities, np.array([4, 0]), 4),
        SampledPart(-1, np.array([0.0, 1.0]), np.array([0, 1]), 1),
    ))
    try:
        bound = theoretical_bound(edited, delta=0.1, kind="paper")
    except InvalidArgumentError:
        return
    assert bound.statistical == pytest.approx(math.sqrt(math.log(2 / 0.1) / 4), rel=RTOL)


def test_bounds_are_computed_without_warnings():
    """The public functions run silently on valid layers: a zero entry of W_out
    with split_signs, and a layer whose negative part is empty.

    Kills _layer_stats 96 (``np.finfo(None)`` is deprecated), _signed 15
    (``sign / W`` divides by the zero entry) and _plan 63, 65 (``0 / 0`` for
    the empty part's probabilities).
    """
    W_in = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    b_in = np.array([0.1, 0.2, 0.3])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        coreset = layer_coreset(W_in, b_in, np.array([[1.0, 0.0, -2.0]]), sample_size=50,
                                beta=1.0, rng=0, split_signs=True)
        assert theoretical_bound(coreset, delta=0.1, kind="pointwise").epsilon > 0
        m = sample_size_for(W_in, b_in, np.array([[1.0, 0.0, 2.0]]), epsilon=0.5, delta=0.1,
                            beta=1.0, kind="pointwise", split_signs=True)
    assert m > 0


@pytest.mark.parametrize(("W_out", "split"), [
    pytest.param(np.array([[1e-310, 0.0]]), False, id="whole"),
    pytest.param(np.array([[1e-310, -1.0]]), True, id="split_signs"),
])
def test_subnormal_row_norm_refused_by_name(W_out, split):
    """A row of W_out (or of its positive part) with norm 1e-310 is subnormal:
    ``T = 1e-310 * 1e10`` is carried, but the Lipschitz constants are not, so
    sample_size_for refuses it, naming itself and the remedy (DESIGN: every
    error names the function and what was expected).

    Kills _plan 28, 37, 38, 77, 86, 87 (another function name) and _layer_stats
    108, 117, 118, 119 (the remedy).
    """
    head = re.escape("sample_size_for: the row norm ||W_out[i]|| (of its sign part)")
    tail = re.escape(" Rescale the weights toward 1. No bound would be true otherwise.")
    with pytest.raises(MagnitudeError, match=f"^{head}.*{tail}$"):
        sample_size_for(np.ones((2, 1)), np.zeros(2), W_out, epsilon=0.5, delta=0.1,
                        beta=1e10, kind="pointwise", split_signs=split)
