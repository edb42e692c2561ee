"""The library against a naive loop implementation of DESIGN.md's formulas.

The oracle below is written from the formulas alone, with Python for-loops
over float64 scalars: phi_hi, phi_lo, the envelope, T_i, the per-output
sensitivities s_i[j], s, t, pr, and the re-weighting U given counts. Every
library result must agree with it to rtol 1e-12 (float64).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, note
from hypothesis import strategies as st

from coreset_verify import (
    MagnitudeError,
    envelope,
    get_activation,
    layer_coreset,
    layer_sensitivities,
    neuron_coreset,
    output_sensitivities,
    phi_hi,
    phi_lo,
)
from coreset_verify.strategies import activations, balls, layers

RTOL = 1e-12
ATOL = 0.0
# The candidate nets of the uniform bound, as documented in
# proofs_notes/uniform.md ("All candidates at once"): 141 ball radii
# beta * logspace(-14, 0) and a 35 x 35 ellipsoid grid a_1 * logspace(-8, 0.5).
# Written here, not imported, so that a change in the code shows up as a
# difference from the note.
NET_RADII = np.logspace(-14, 0, 141)
ELLIPSOID_GRID = np.logspace(-8, 0.5, 35)


# --------------------------------------------------------------------------
# The oracle
# --------------------------------------------------------------------------


def naive_phi(activation, z):
    """phi at one float64 scalar."""
    return float(get_activation(activation)(np.array([z], dtype=np.float64))[0])


def naive_layer(W_in, b_in, W_out, beta, activation, reduction="per-output"):
    """Every quantity of DESIGN.md, "The mathematics in one page", by loops."""
    n, d = len(W_in), len(W_in[0])
    k = len(W_out)
    hi, lo, env = [], [], []
    for j in range(n):
        norm = math.sqrt(sum(float(W_in[j][c]) ** 2 for c in range(d)))
        hi.append(naive_phi(activation, float(b_in[j]) + beta * norm))
        lo.append(naive_phi(activation, float(b_in[j]) - beta * norm))
        env.append(max(abs(lo[j]), abs(hi[j])))
    T = [sum(abs(float(W_out[i][j])) * env[j] for j in range(n)) for i in range(k)]
    s_out = [
        [abs(float(W_out[i][j])) * env[j] / T[i] if T[i] > 0 else 0.0 for j in range(n)]
        for i in range(k)
    ]
    s = []
    for j in range(n):
        if reduction == "per-output":
            s.append(max(s_out[i][j] for i in range(k)))
        else:  # "raw-max": max_i |W_out[i, j]| env[j], no normalisation
            s.append(max(abs(float(W_out[i][j])) * env[j] for i in range(k)))
    t = sum(s)
    pr = [s[j] / t if t > 0 else 0.0 for j in range(n)]
    return {"hi": hi, "lo": lo, "env": env, "T": T, "s_out": s_out, "s": s, "t": t, "pr": pr}


def naive_reweight(W_out, counts, pr, m):
    """U[i, j] = W_out[i, j] cnt[j] / (m pr[j]), zero where cnt[j] = 0; (k, n)."""
    k, n = len(W_out), len(W_out[0])
    U = [[0.0] * n for _ in range(k)]
    for i in range(k):
        for j in range(n):
            if counts[j] > 0:
                U[i][j] = float(W_out[i][j]) * int(counts[j]) / (m * pr[j])
    return np.array(U)


def naive_split(W_out):
    """Positive part max(W, 0) and negative part max(-W, 0), both >= 0."""
    pos = [[max(float(w), 0.0) for w in row] for row in W_out]
    neg = [[max(-float(w), 0.0) for w in row] for row in W_out]
    return pos, neg


def scatter(coreset, n):
    """weight_out scattered back to (k, n) (zero columns for pruned neurons)."""
    idx = np.asarray(coreset.indices)
    W = np.asarray(coreset.weight_out, dtype=np.float64)
    full = np.zeros((W.shape[0], n))
    full[:, idx] = W
    return full


def assert_close(got, want, what):
    np.testing.assert_allclose(
        np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64),
        rtol=RTOL, atol=ATOL, err_msg=what,
    )


# --------------------------------------------------------------------------
# Sensitivities
# --------------------------------------------------------------------------


@given(
    layer=layers(),
    activation=activations(),
    beta=balls(),
    reduction=st.sampled_from(["per-output", "raw-max"]),
)
@example(layer=(np.array([[1e-4, 0.99999]]), np.array([1.0]), np.array([[1.0]])),
         activation="elu", beta=1.0, reduction="per-output")  # phi_lo(-1e-5): cancellation
def test_sensitivities_match_oracle(layer, activation, beta, reduction):
    W_in, b_in, W_out = layer
    want = naive_layer(W_in, b_in, W_out, beta, activation, reduction)
    note(f"oracle t={want['t']}")
    kw = {"beta": beta, "activation": activation}
    # phi at b_j +- beta ||w_j||: its argument is known to a few ulps of
    # beta ||w_j|| + |b_j|, and every activation here is 1-Lipschitz, so a phi
    # value near 0 (cancellation in the argument) carries that absolute error.
    reach = beta * np.sqrt(np.sum(np.asarray(W_in, float) ** 2, axis=1)) + np.abs(b_in)
    for name, fn, key in (("phi_hi", phi_hi, "hi"), ("phi_lo", phi_lo, "lo"),
                          ("envelope", envelope, "env")):
        got = np.asarray(fn(W_in, b_in, **kw), dtype=np.float64)
        slack = RTOL * np.abs(want[key]) + ATOL + 8 * np.finfo(float).eps * reach
        assert np.all(np.abs(got - want[key]) <= slack), (name, got, want[key])
    assert_close(output_sensitivities(W_in, b_in, W_out, **kw), want["s_out"], "s_i[j]")
    sens = layer_sensitivities(W_in, b_in, W_out, reduction=reduction, **kw)
    assert_close(sens.envelope, want["env"], "Sensitivities.envelope")
    assert_close(sens.scale, want["T"], "T")
    assert_close(sens.sensitivity, want["s"], "s")
    assert_close(sens.total, want["t"], "t")
    assert_close(sens.probabilities, want["pr"], "pr")


@pytest.mark.parametrize("n", [300, 1000, 8200])
@pytest.mark.parametrize("order", ["C", "F"])
def test_wide_layer_sensitivities_match_oracle(n, order):
    """Widths where the host pass shrinks numpy's ufunc buffer (256 <= n < 8192)
    and one above; C order takes that pass, F order the generic loop. Two rows
    of W_out are zero (T_i = 0: they carry no error) and one is tiny."""
    rng = np.random.default_rng(n)
    d, k = 3, 5
    W_in = rng.standard_normal((n, d))
    b_in = rng.standard_normal(n)
    W_out = rng.standard_normal((k, n))
    W_out[1] = 0.0
    W_out[3] = 0.0
    W_out[4] *= 1e-300
    want = naive_layer(W_in, b_in, W_out, 1.5, "relu")
    before = np.getbufsize()
    for dtype in (np.float64, np.float32):
        W = np.asarray(W_out, dtype=dtype, order=order)
        sens = layer_sensitivities(W_in.astype(dtype), b_in.astype(dtype), W, beta=1.5)
        assert np.getbufsize() == before  # the pass restores numpy's buffer size
        if dtype is np.float64:
            assert_close(sens.scale, want["T"], "T")
            assert_close(sens.sensitivity, want["s"], "s")
        else:  # row 4 underflows to 0 in float32: the oracle on the cast weights
            cast = naive_layer(W_in.astype(dtype), b_in.astype(dtype), W.astype(np.float64),
                               1.5, "relu")
            # float32 sums of n terms: relative error at most about n eps_32
            np.testing.assert_allclose(sens.sensitivity, cast["s"], rtol=n * 2.0**-24)


def test_relu_phi_hi_is_the_design_formula_not_the_lower_end():
    # phi_hi = phi(b + beta ||w||), phi_lo = phi(b - beta ||w||): pinned on a
    # neuron where the two differ and the lower end is zero.
    W_in, b_in = np.array([[3.0, 4.0]]), np.array([1.0])
    np.testing.assert_allclose(phi_hi(W_in, b_in, beta=1.0), [6.0], rtol=RTOL, atol=0)
    np.testing.assert_allclose(phi_lo(W_in, b_in, beta=1.0), [0.0], rtol=RTOL, atol=0)


# --------------------------------------------------------------------------
# Re-weighting
# --------------------------------------------------------------------------


@given(
    layer=layers(),
    activation=activations(),
    beta=balls(),
    reduction=st.sampled_from(["per-output", "raw-max"]),
    m=st.integers(1, 60),
    seed=st.integers(0, 2**32 - 1),
)
def test_coreset_matches_oracle(layer, activation, beta, reduction, m, seed):
    W_in, b_in, W_out = layer
    n = W_in.shape[0]
    want = naive_layer(W_in, b_in, W_out, beta, activation, reduction)
    c = layer_coreset(W_in, b_in, W_out, sample_size=m, beta=beta,
                      activation=activation, reduction=reduction, rng=seed)
    assert_close(c.probabilities, want["pr"], "probabilities")
    assert_close(c.total_sensitivity, want["t"], "total_sensitivity")
    assert_close(c.scale, want["T"], "scale")
    assert c.sample_size == m
    assert int(np.sum(c.counts)) == m
    U = naive_reweight(W_out, np.asarray(c.counts), want["pr"], m)
    assert_close(scatter(c, n), U, "weight_out vs naive U")
    np.testing.assert_array_equal(np.asarray(c.indices), np.flatnonzero(np.asarray(c.counts)))


@given(
    layer=layers(min_k=1, max_k=3),
    activation=activations(),
    beta=balls(),
    reduction=st.sampled_from(["per-output", "raw-max"]),
    m=st.integers(2, 60),
    seed=st.integers(0, 2**32 - 1),
)
@example(layer=(np.zeros((7, 1)), np.array([0.5, 0, 0, 0, 0, 0, -1000.0]),
                np.eye(7)[[0, 6]]), activation="sigmoid", beta=1.0,
         reduction="per-output", m=2, seed=0)  # sigmoid(-1000) underflows: refused
def test_split_signs_matches_oracle(layer, activation, beta, reduction, m, seed):
    # Re-derived from the docstrings of layer_coreset and split_sample_size:
    # the positive part max(W, 0) and the negative part max(-W, 0) are each a
    # layer of their own with probabilities pr+ and pr-; m is split in
    # proportion to t+ and t- (each non-empty part at least one draw); an
    # entry W_ij > 0 is re-weighted by its part +, W_ij < 0 by its part -.
    W_in, b_in, W_out = layer
    n = W_in.shape[0]
    pos, neg = naive_split(W_out)
    wp = naive_layer(W_in, b_in, pos, beta, activation, reduction)
    wn = naive_layer(W_in, b_in, neg, beta, activation, reduction)
    try:
        c = layer_coreset(W_in, b_in, W_out, sample_size=m, beta=beta, activation=activation,
                          reduction=reduction, rng=seed, split_signs=True)
    except MagnitudeError:
        # documented refusal: a positive activation whose value underflows float64
        # (e.g. sigmoid(-1000)), so a T_i is 0 although its true value is not
        assert 0.0 in wp["env"] + wn["env"]
        return
    by_sign = {p.sign: p for p in c.parts}
    assert set(by_sign) == {1, -1}
    p_pos, p_neg = by_sign[1], by_sign[-1]
    assert_close(p_pos.probabilities, wp["pr"], "pr+")
    assert_close(p_neg.probabilities, wn["pr"], "pr-")
    assert p_pos.sample_size + p_neg.sample_size == m
    total = wp["t"] + wn["t"]
    assert abs(p_pos.sample_size - m * wp["t"] / total) <= 1.0
    for part, t in ((p_pos, wp["t"]), (p_neg, wn["t"])):
        assert (part.sample_size >= 1) == (t > 0)
        assert int(np.sum(part.counts)) == part.sample_size
    assert_close(c.total_sensitivity, total, "t+ + t-")
    assert_close(c.scale, np.add(wp["T"], wn["T"]), "T+ + T-")
    mixture = (p_pos.sample_size * np.array(wp["pr"]) + p_neg.sample_size * np.array(wn["pr"])) / m
    assert_close(c.probabilities, mixture, "mixture probabilities")
    np.testing.assert_array_equal(np.asarray(c.counts), p_pos.counts + p_neg.counts)
    U_pos = naive_reweight(pos, p_pos.counts, wp["pr"], max(p_pos.sample_size, 1))
    U_neg = naive_reweight(neg, p_neg.counts, wn["pr"], max(p_neg.sample_size, 1))
    assert_close(scatter(c, n), U_pos - U_neg, "weight_out vs naive U+ - U-")


@pytest.mark.parametrize("reduction", ["per-output", "raw-max"])
def test_distinct_matches_oracle(reduction):
    gen = np.random.default_rng(7)
    W_in, b_in, W_out = gen.normal(size=(12, 3)), gen.normal(size=12), gen.normal(size=(2, 12))
    want = naive_layer(W_in, b_in, W_out, 1.5, "relu", reduction)
    c = layer_coreset(W_in, b_in, W_out, distinct=5, beta=1.5, rng=3, reduction=reduction)
    m = c.sample_size
    U = naive_reweight(W_out, np.asarray(c.counts), want["pr"], m)
    assert_close(scatter(c, 12), U, "weight_out (distinct)")
    assert_close(c.probabilities, want["pr"], "probabilities (distinct)")


def test_neuron_coreset_is_layer_coreset_with_k_1():
    gen = np.random.default_rng(11)
    pts, w, b = gen.normal(size=(9, 4)), gen.normal(size=9), gen.normal(size=9)
    c = neuron_coreset(pts, w, biases=b, sample_size=7, beta=0.7, rng=5, activation="softplus")
    want = naive_layer(pts, b, w[None, :], 0.7, "softplus")
    assert_close(c.probabilities, want["pr"], "pr")
    U = naive_reweight(w[None, :], np.asarray(c.counts), want["pr"], 7)
    assert_close(scatter(c, 9), U, "U")
    assert np.asarray(c.weight_out).shape == (1, c.n_kept)
    c0 = neuron_coreset(pts, w, sample_size=7, beta=0.7, rng=5)
    want0 = naive_layer(pts, np.zeros(9), w[None, :], 0.7, "relu")
    assert_close(c0.probabilities, want0["pr"], "pr (biases default to zero)")


# --------------------------------------------------------------------------
# The uniform bound, recomputed from the docstrings of guarantees.py
# --------------------------------------------------------------------------


def naive_uniform(W_in, b_in, W_part, pr, counts, m, *, beta, activation, delta, k):
    """(statistical, deterministic) of one sampled part, additive form, by loops.

    A net of radius r over the ball (dimension D = min(n, d)) has at most
    (1 + 2 beta / r)^D points; the union over them and the k outputs costs
    L = log(2 k / delta) + D log(1 + 2 beta / r). Between net points the error
    moves by at most r * Lip_i, Lip_i = Lphi sum_j |1 - c_j| |W_ij| ||w_j||,
    c_j = cnt_j / (m pr_j).

    The ellipsoid net covers z = W_in x instead: semi-axes a_k = beta sigma_k
    (each raised by 1e-10 sigma_1); axes longer than tau are netted at rho with
    2^(|B|/2) prod_B (1 + 2 a_k / rho) points, the others dropped, so every z
    is within hypot(rho, tau) of a net point; the Lipschitz constant in z is
    Lphi ||W_i - U_i||_2.

    Every candidate (net, radii) holds at once at the price of log(C) more in
    L, C = the number of candidates; the smallest bound is taken.
    """
    n, d = len(W_in), len(W_in[0])
    lip = get_activation(activation).lipschitz
    o = naive_layer(W_in, b_in, W_part, beta, activation)
    norms = [math.sqrt(sum(float(v) ** 2 for v in row)) for row in W_in]
    used = [any(o["s_out"][i][j] > 0 for i in range(k)) for j in range(n)]
    t_eff = max((max(o["s_out"][i][j] for i in range(k)) / pr[j] for j in range(n) if used[j]),
                default=0.0)
    c = [counts[j] / (m * pr[j]) if used[j] else 0.0 for j in range(n)]
    real, zreal = [], []
    for i in range(k):
        a = [abs(float(W_part[i][j])) * norms[j] for j in range(n)]
        w = [abs(float(W_part[i][j])) for j in range(n)]
        real.append(lip * sum(abs(1 - c[j]) * a[j] for j in range(n)))
        zreal.append(lip * math.sqrt(sum(((1 - c[j]) * w[j]) ** 2 for j in range(n))))

    def slope(values):
        return max(values[i] / o["T"][i] for i in range(k) if o["T"][i] > 0)

    L0 = math.log(2 * k / delta)
    D = min(n, d)
    candidates = [(L0 + D * math.log1p(2 * beta / r), r, "ball") for r in beta * NET_RADII]
    sigma = np.linalg.svd(np.asarray(W_in, dtype=float), compute_uv=False)
    axes = [beta * (s + 1e-10 * sigma[0]) for s in sigma]
    for tau in axes[0] * ELLIPSOID_GRID:
        big = [ax for ax in axes if ax > tau]
        for rho in axes[0] * ELLIPSOID_GRID:
            L = L0 + len(big) * math.log(2) / 2 + sum(math.log1p(2 * ax / rho) for ax in big)
            candidates.append((L, math.hypot(rho, tau), "ellipsoid"))
    lips = {"ball": slope(real), "ellipsoid": slope(zreal)}
    union = math.log(len(candidates))
    statistical, net = math.inf, None
    for L, r, kind in candidates:
        value = naive_concentration(m, t_eff, L + union) + r * lips[kind]
        if value < statistical:
            statistical, net = value, kind
    deterministic = max(1 + sum(o["s_out"][i][j] * c[j] for j in range(n)) for i in range(k))
    return statistical, deterministic, net


def naive_concentration(m, t, L):
    """Theorem P (proofs_notes/pointwise.md), from the derivation: the smaller of
    Hoeffding ``t sqrt(2 L / m)`` (draws in ``[-t, t]``) and Bernstein, the
    positive root of ``m e^2 = L (2 t + 2 (t + 1) e / 3)`` (variance <= t,
    deviation <= t + 1)."""
    hoeffding = t * math.sqrt(2 * L / m)
    a = 2 * (t + 1) * L / 3
    bernstein = (a + math.sqrt(a * a + 8 * m * t * L)) / (2 * m)
    return min(hoeffding, bernstein)


def uniform_test_layer(shape):
    """"gaussian": a 9 x 3 layer (the ball net wins); "decaying": 20 x 12 with
    singular values 10^(-q/2) (the ellipsoid net wins)."""
    gen = np.random.default_rng(5)
    if shape == "gaussian":
        return gen.normal(size=(9, 3)), gen.normal(size=9), gen.normal(size=(2, 9))
    left, _ = np.linalg.qr(gen.normal(size=(20, 12)))
    right, _ = np.linalg.qr(gen.normal(size=(12, 12)))
    W_in = 3 * left @ np.diag(10.0 ** (-np.arange(12) / 2)) @ right.T
    return W_in, 0.1 * gen.normal(size=20), gen.normal(size=(2, 20))


@pytest.mark.parametrize("shape", ["gaussian", "decaying"])
@pytest.mark.parametrize("split", [False, True], ids=["joint", "split"])
@pytest.mark.parametrize(("activation", "m", "beta"), [("relu", 50, 1.0), ("softplus", 2000, 0.3),
                                                       ("tanh", 7, 2.0)])
def test_uniform_bound_matches_its_formula(activation, m, beta, split, shape):
    W_in, b_in, W_out = uniform_test_layer(shape)
    k = W_out.shape[0]
    c = layer_coreset(W_in, b_in, W_out, sample_size=m, beta=beta, activation=activation,
                      rng=1, split_signs=split)
    from coreset_verify import theoretical_bound

    b = theoretical_bound(c, delta=0.05, kind="uniform")
    parts = [p for p in c.parts if p.sample_size > 0]
    results = []
    for p in parts:
        W_part = {0: W_out, 1: np.maximum(W_out, 0), -1: np.maximum(-W_out, 0)}[p.sign]
        results.append(naive_uniform(W_in, b_in, W_part, p.probabilities, p.counts,
                                     p.sample_size, beta=beta, activation=activation,
                                     delta=0.05 / len(parts), k=k))
    statistical = max(r[0] for r in results)
    deterministic = max(r[1] for r in results)
    assert b.net == max(results, key=lambda r: r[0])[2]
    assert_close(b.statistical, statistical, "uniform statistical")
    assert_close(b.deterministic, deterministic, "deterministic")
    assert_close(b.epsilon, min(statistical, deterministic), "epsilon")


def test_the_ellipsoid_net_is_exercised():
    # Guards the parametrised test above against comparing only ball nets.
    W_in, b_in, W_out = uniform_test_layer("decaying")
    c = layer_coreset(W_in, b_in, W_out, sample_size=2000, beta=0.3, activation="softplus",
                      rng=1)
    from coreset_verify import theoretical_bound

    assert theoretical_bound(c, delta=0.05, kind="uniform").net == "ellipsoid"
