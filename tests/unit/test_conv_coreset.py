"""Channel coresets of a Conv2d against oracles written here (proofs_notes/conv.md).

Every reference (sensitivities, ranges, the pruned forward, the expectation
over the draws) is computed in this file with loops or torch.nn.functional,
never with the code under test.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np
import pytest

from coreset_verify import (
    AssumptionError,
    ChannelCoreset,
    InvalidArgumentError,
    MagnitudeError,
    channel_bound,
    channel_coreset,
    fold_batchnorm,
)

torch = pytest.importorskip("torch")
Fn = torch.nn.functional

ACTS = {"relu": lambda z: max(z, 0.0), "tanh": math.tanh,
        "sigmoid": lambda z: 1 / (1 + math.exp(-z))}
TORCH_ACTS = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}


def _pair(seed, C=6, C_in=2, kernel=3, k=4, next_kernel=2, linear=None):
    """Random conv weights (C, C_in, kernel, kernel), biases, next weights."""
    gen = np.random.default_rng(seed)
    w = gen.normal(size=(C, C_in, kernel, kernel))
    b = gen.normal(size=C)
    if linear is not None:
        V = gen.normal(size=(k, C * linear[0] * linear[1]))
    else:
        V = gen.normal(size=(k, C, next_kernel, next_kernel))
    return w, b, V


def _oracle(w, b, V, beta, activation):
    """Loop oracle of Definition C: (s, T, env)."""
    C, k = w.shape[0], V.shape[0]
    blocks = V.reshape(k, C, -1)
    phi = ACTS[activation]
    env = []
    for c in range(C):
        norm = math.sqrt(sum(float(v) ** 2 for v in w[c].ravel()))
        env.append(max(abs(phi(b[c] - beta * norm)), abs(phi(b[c] + beta * norm))))
    A = [[sum(abs(float(v)) for v in blocks[i, c]) for c in range(C)] for i in range(k)]
    T = [sum(A[i][c] * env[c] for c in range(C)) for i in range(k)]
    s = [max(A[i][c] * env[c] / T[i] for i in range(k)) for c in range(C)]
    return np.array(s), np.array(T), np.array(env)


def _forward(x, w, b, V, activation="relu", pool=None, linear=False, conv_args=None):
    """Conv -> phi -> pool -> next conv (or Flatten -> Linear), float64 torch."""
    t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64))  # noqa: E731
    a = TORCH_ACTS[activation](Fn.conv2d(t(x), t(w), t(b), **(conv_args or {})))
    if pool == "max":
        a = Fn.max_pool2d(a, 2)
    elif pool == "avg":
        a = Fn.avg_pool2d(a, 2, padding=1, count_include_pad=True)
    if linear:
        return (a.flatten(1) @ t(V).T).numpy()
    return Fn.conv2d(a, t(V), padding=1).numpy()


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("linear", [None, (3, 2)], ids=["conv", "linear"])
def test_sensitivities_match_a_loop(activation, linear):
    w, b, V = _pair(1, linear=linear)
    c = channel_coreset(w, b, V, sample_size=50, beta=1.7, activation=activation, rng=0,
                        channel_shape=linear)
    s, T, env = _oracle(w, b, V, 1.7, activation)
    np.testing.assert_allclose(c.sensitivity, s, rtol=1e-12)
    np.testing.assert_allclose(c.scale, T, rtol=1e-12)
    np.testing.assert_allclose(c.envelope, env, rtol=1e-12)
    np.testing.assert_allclose(c.probabilities, s / s.sum(), rtol=1e-12)
    assert c.total_sensitivity == pytest.approx(s.sum(), rel=1e-12)
    assert int(c.counts.sum()) == 50


CONV_ARGS = {"stride": 2, "padding": 1, "dilation": 2}


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_phi_hi_is_attained_at_one_patch(activation):
    """beta w_c / ||w_c|| on the patch of output position (2, 2) (rows and
    columns 3, 5, 7 of a 9 x 9 input: no padding read) reaches env[c]."""
    w, b, V = _pair(2, C=5, C_in=2, kernel=3)
    beta = 1.3
    c = channel_coreset(w, b, V, sample_size=10, beta=beta, activation=activation, rng=0)
    for ch in range(5):
        best = 0.0
        for sign in (1.0, -1.0):
            x = np.zeros((1, 2, 9, 9))
            x[0, :, 3:8:2, 3:8:2] = sign * beta * w[ch] / np.linalg.norm(w[ch])
            assert np.linalg.norm(x) == pytest.approx(beta, rel=1e-14)
            z = Fn.conv2d(torch.as_tensor(x), torch.as_tensor(w), torch.as_tensor(b), **CONV_ARGS)
            best = max(best, abs(float(TORCH_ACTS[activation](z[0, ch, 2, 2]))))
        assert best == pytest.approx(c.envelope[ch], rel=1e-12)


@pytest.mark.parametrize("pool", [None, "max", "avg"])
def test_phi_hi_bounds_many_inputs(pool):
    """No input of the ball exceeds env at any position, pooled or not:
    random points of the sphere, points concentrated on one patch, and
    projected gradient ascent on each channel's largest activation."""
    w, b, V = _pair(3, C=4, C_in=2, kernel=3)
    beta = 2.0
    c = channel_coreset(w, b, V, sample_size=10, beta=beta, activation="tanh", rng=0)
    env = torch.as_tensor(c.envelope)
    gen = np.random.default_rng(4)
    X = gen.normal(size=(120, 2, 9, 9))
    X[:60, :, 4:, :] = 0.0  # concentrated on the top rows
    X[:60, :, :, 4:] = 0.0
    X = torch.as_tensor(beta * X / np.linalg.norm(X.reshape(120, -1), axis=1)[:, None, None, None])
    X.requires_grad_(True)
    opt = torch.optim.Adam([X], lr=0.05)
    worst = torch.zeros(4, dtype=torch.float64)
    for _ in range(40):
        a = torch.tanh(Fn.conv2d(X, torch.as_tensor(w), torch.as_tensor(b), **CONV_ARGS))
        if pool == "max":
            a = Fn.max_pool2d(a, 2, ceil_mode=True)
        elif pool == "avg":
            a = Fn.avg_pool2d(a, 2, padding=1, count_include_pad=True)
        per_channel = a.abs().amax(dim=(2, 3))  # (120, C)
        worst = torch.maximum(worst, per_channel.detach().amax(dim=0))
        opt.zero_grad()
        (-per_channel.sum()).backward()
        opt.step()
        with torch.no_grad():
            norms = X.flatten(1).norm(dim=1).clamp(min=beta)
            X.mul_((beta / norms)[:, None, None, None])
    assert torch.all(worst <= env * (1 + 1e-12))
    assert torch.all(worst >= 0.9 * env)  # the search got near: the check has teeth


def test_reflect_padding_breaks_the_patch_bound_and_the_factor_restores_it():
    """Why padding_mode must be zeros: with reflect padding the corner patch of
    a 3 x 3 input holds the centre entry four times, so an all-ones filter
    reaches 4 beta > beta ||w|| = 3 beta; the factor sqrt(M_h M_w) = 3 covers it."""
    w = np.ones((1, 1, 3, 3))
    beta = 1.0
    x = torch.zeros(1, 1, 3, 3, dtype=torch.float64)
    x[0, 0, 1, 1] = beta
    z = Fn.conv2d(Fn.pad(x, (1, 1, 1, 1), mode="reflect"), torch.as_tensor(w))
    assert float(z.max()) == pytest.approx(4 * beta)
    assert float(z.max()) > beta * np.linalg.norm(w)
    assert float(z.max()) <= 3 * beta * np.linalg.norm(w)
    with pytest.raises(InvalidArgumentError, match=r"padding_mode.*sqrt"):
        channel_coreset(w, np.zeros(1), np.ones((1, 1, 1, 1)), sample_size=1, beta=beta,
                        padding_mode="reflect")


def _expected_next(c, C, m):
    """The next weights on all C channels from the counts and probabilities."""
    V = c.layer[2]
    factor = np.where(c.counts > 0, c.counts / (m * c.probabilities), 0.0)
    return V.reshape(V.shape[0], C, -1) * factor[None, :, None]


@pytest.mark.parametrize(("linear", "pool"), [(None, None), (None, "max"), ((4, 4), "max"),
                                              ((5, 5), "avg")])
def test_pruned_pair_is_the_sum_over_kept_channels(linear, pool):
    C, m = 7, 9
    w, b, V = _pair(5, C=C, C_in=3, kernel=3, k=4, next_kernel=3, linear=linear)
    c = channel_coreset(w, b, V, sample_size=m, beta=1.0, rng=11, channel_shape=linear)
    full = _expected_next(c, C, m)
    kept = np.flatnonzero(c.counts)
    np.testing.assert_array_equal(np.asarray(c.indices), kept)
    w_small, b_small, U = c.pruned()
    assert w_small.shape == (kept.size, 3, 3, 3)
    assert b_small.shape == (kept.size,)
    width = (kept.size, 3, 3) if linear is None else (kept.size * math.prod(linear),)
    assert U.shape == (4, *width)
    x = np.random.default_rng(6).normal(size=(2, 3, 10, 10))
    got = _forward(x, w_small, b_small, U, pool=pool, linear=linear is not None)
    total = 0.0
    for ch in kept:  # one channel at a time, the oracle's re-weighting
        Vc = full[:, ch].reshape(4, -1) if linear else full[:, ch].reshape(4, 1, 3, 3)
        total = total + _forward(x, w[ch:ch + 1], b[ch:ch + 1], Vc, pool=pool,
                                 linear=linear is not None)
    np.testing.assert_allclose(got, total, rtol=1e-12, atol=1e-12)


class _FixedCounts(np.random.Generator):
    """A Generator whose multinomial returns given counts (to enumerate outcomes)."""

    def __init__(self, counts):
        super().__init__(np.random.PCG64(0))
        self._counts = np.asarray(counts)

    def multinomial(self, n, pvals, size=None):
        return self._counts.copy()


@pytest.mark.parametrize("linear", [None, (2, 2)], ids=["conv", "linear"])
def test_unbiased_by_enumeration(linear):
    """E[U] = V and E[F~(x)] = F(x) exactly: a sum over every multinomial outcome
    of m = 3 draws from C = 3 channels, each weighted by its probability."""
    C, m = 3, 3
    w, b, V = _pair(7, C=C, C_in=2, kernel=2, k=2, next_kernel=2, linear=linear)
    pr = channel_coreset(w, b, V, sample_size=m, beta=1.0, rng=0,
                         channel_shape=linear).probabilities
    x = np.random.default_rng(8).normal(size=(1, 2, 3, 3))
    expected_U, expected_F, mass = 0.0, 0.0, 0.0
    for counts in itertools.product(range(m + 1), repeat=C):
        if sum(counts) != m:
            continue
        p = math.factorial(m) * math.prod(pr[j] ** n / math.factorial(n)
                                          for j, n in enumerate(counts))
        c = channel_coreset(w, b, V, sample_size=m, beta=1.0, rng=_FixedCounts(counts),
                            channel_shape=linear)
        full = np.zeros_like(V.reshape(2, C, -1))
        full[:, np.asarray(c.indices)] = c.weight_next.reshape(2, c.n_kept, -1)
        expected_U = expected_U + p * full
        expected_F = expected_F + p * _forward(x, *c.pruned(), linear=linear is not None)
        mass += p
    assert mass == pytest.approx(1.0, abs=1e-14)
    np.testing.assert_allclose(expected_U, V.reshape(2, C, -1), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(expected_F, _forward(x, w, b, V, linear=linear is not None),
                               rtol=1e-11, atol=1e-12)


def test_distinct_keeps_that_many_channels():
    w, b, V = _pair(9, C=12)
    c = channel_coreset(w, b, V, distinct=5, beta=1.0, rng=3)
    assert c.n_kept == 5
    assert int(c.counts.sum()) == c.sample_size


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_torch_gives_torch_and_the_same_draws(dtype):
    w, b, V = (a.astype(dtype) for a in _pair(10, linear=(2, 2)))
    c_np = channel_coreset(w, b, V, sample_size=20, beta=1.0, rng=5, channel_shape=(2, 2))
    tw, tb, tV = (torch.as_tensor(a) for a in (w, b, V))
    c_t = channel_coreset(tw, tb, tV, sample_size=20, beta=1.0, rng=5, channel_shape=(2, 2))
    np.testing.assert_array_equal(c_np.counts, c_t.counts)
    w_s, b_s, U = c_t.pruned()
    assert all(isinstance(a, torch.Tensor) and a.dtype == getattr(torch, dtype)
               for a in (w_s, b_s, U))
    assert c_t.indices.dtype == torch.int64
    np.testing.assert_allclose(U.numpy(), c_np.weight_next, rtol=1e-6)


@pytest.mark.parametrize("size", [{"sample_size": 9}, {"distinct": 4}])
def test_replay_redraws_the_same_coreset(size):
    w, b, V = _pair(16, C=8, linear=(2, 2))
    c = channel_coreset(w, b, V, **size, beta=1.0, rng=4, channel_shape=(2, 2))
    again = c.replay()
    np.testing.assert_array_equal(again.counts, c.counts)
    np.testing.assert_array_equal(again.weight_next, c.weight_next)
    assert again.sample_size == c.sample_size


def test_bias_none_is_zeros():
    w, _, V = _pair(12)
    a = channel_coreset(w, None, V, sample_size=8, beta=1.0, rng=1)
    b = channel_coreset(w, np.zeros(w.shape[0]), V, sample_size=8, beta=1.0, rng=1)
    np.testing.assert_array_equal(a.counts, b.counts)
    np.testing.assert_array_equal(a.pruned()[1], np.zeros(a.n_kept))


def test_fold_batchnorm_matches_torch_eval_mode():
    w, b, _ = _pair(13, C=4, C_in=3)
    bn = torch.nn.BatchNorm2d(4, eps=1e-3).double().eval()
    gen = np.random.default_rng(14)
    with torch.no_grad():
        for p in (bn.weight, bn.bias, bn.running_mean):
            p.copy_(torch.as_tensor(gen.normal(size=4)))
        bn.running_var.copy_(torch.as_tensor(gen.uniform(0.5, 2.0, size=4)))
    wf, bf = fold_batchnorm(w, b, weight=bn.weight.detach().numpy(), bias=bn.bias.detach().numpy(),
                            running_mean=bn.running_mean.numpy(),
                            running_var=bn.running_var.numpy(), eps=1e-3)
    x = torch.as_tensor(gen.normal(size=(2, 3, 6, 6)))
    want = bn(Fn.conv2d(x, torch.as_tensor(w), torch.as_tensor(b))).detach().numpy()
    got = Fn.conv2d(x, torch.as_tensor(wf), torch.as_tensor(bf)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_bound_method_is_channel_bound():
    w, b, V = _pair(15)
    c = channel_coreset(w, b, V, sample_size=100, beta=1.0, rng=2)
    a = c.bound(delta=0.1, kind="pointwise", output_positions=9)
    b = channel_bound(c, delta=0.1, kind="pointwise", output_positions=9)
    assert (a.epsilon, a.statistical, a.deterministic) == (b.epsilon, b.statistical,
                                                           b.deterministic)
    assert "kept" in repr(c)


# ---------------------------------------------------------------------------
# Bad arguments: one table (as tests/unit/test_validation.py).

_W, _B, _V = _pair(20, C=4, C_in=2, kernel=3, k=3)
_VL = np.random.default_rng(21).normal(size=(3, 4 * 2 * 2))
GOOD = {"conv_weight": _W, "conv_bias": _B, "next_weight": _V, "sample_size": 5, "beta": 1.0}
LIN = {**GOOD, "next_weight": _VL, "channel_shape": (2, 2)}
CORESET = channel_coreset(**GOOD)
LIN_CORESET = channel_coreset(**LIN)
DISTINCT = channel_coreset(**{**GOOD, "sample_size": None, "distinct": 2})
BOUND = {"coreset": CORESET, "delta": 0.1, "kind": "uniform", "output_positions": 4,
         "input_size": 50}
BN = {"conv_weight": _W, "conv_bias": _B, "weight": np.ones(4), "bias": np.zeros(4),
      "running_mean": np.zeros(4), "running_var": np.ones(4)}


def _bad(a, index, value):
    a = np.array(a, dtype=np.float64, copy=True)
    a[index] = value
    return a


def _rows():
    IAE = InvalidArgumentError
    rows = [
        (channel_coreset, {**GOOD, "padding_mode": "reflect"}, IAE, "padding_mode",
         "reflect"),
        (channel_coreset, {**GOOD, "padding_mode": "replicate"}, IAE, "padding_mode",
         "replicate"),
        (channel_coreset, {**GOOD, "padding_mode": "same"}, IAE, "padding_mode", "same"),
        (channel_coreset, {**GOOD, "next_weight": _V[:, :3]}, IAE, "next_weight.*C = 4",
         "next C mismatch"),
        (channel_coreset, {**LIN, "next_weight": _VL[:, :-1]}, IAE, "next_weight.*16",
         "linear width mismatch"),
        (channel_coreset, {**LIN, "channel_shape": None}, IAE, "channel_shape",
         "linear without channel_shape"),
        (channel_coreset, {**LIN, "channel_shape": (2, 0)}, IAE, "channel_shape",
         "channel_shape 0"),
        (channel_coreset, {**GOOD, "channel_shape": (2, 2)}, IAE, "channel_shape",
         "channel_shape with a conv"),
        (channel_coreset, {**GOOD, "next_weight": _V[0]}, IAE, "next_weight", "next 3-D"),
        (channel_coreset, {**GOOD, "conv_weight": _W[0]}, IAE, "conv_weight", "conv 3-D"),
        (channel_coreset, {**GOOD, "conv_bias": _B[:-1]}, IAE, "conv_bias", "bias short"),
        (channel_coreset, {**GOOD, "conv_weight": _W.astype(np.float16)}, IAE,
         "conv_weight.*float16", "float16"),
        (channel_coreset, {**GOOD, "next_weight": _V.astype(np.float32)}, IAE,
         "float32", "mixed dtypes"),
        (channel_coreset, {**GOOD, "conv_weight": _W.astype(np.int64)}, IAE, "conv_weight",
         "int64"),
        (channel_coreset, {**GOOD, "conv_weight": _bad(_W, (1, 0, 2, 2), np.nan)}, IAE,
         "conv_weight", "conv nan"),
        (channel_coreset, {**GOOD, "conv_bias": _bad(_B, 2, np.inf)}, IAE, "conv_bias",
         "bias inf"),
        (channel_coreset, {**GOOD, "next_weight": _bad(_V, (0, 1, 0, 0), np.nan)}, IAE,
         "next_weight", "next nan"),
        (channel_coreset, {**GOOD, "next_weight": np.zeros_like(_V)}, IAE, "all-zero",
         "all-zero"),
        (channel_coreset, {**GOOD, "beta": 0.0}, IAE, "'beta'", "beta 0"),
        (channel_coreset, {**GOOD, "sample_size": 0}, IAE, "'sample_size'", "m 0"),
        (channel_coreset, {**GOOD, "distinct": 2}, IAE, "sample_size.*distinct",
         "m and distinct"),
        (channel_coreset, {**GOOD, "rng": -1}, IAE, "'rng'", "rng -1"),
        (channel_coreset, {**GOOD, "activation": "silu"}, AssumptionError, "non-decreasing",
         "silu"),
        (channel_bound, {**BOUND, "delta": 0.0}, IAE, "'delta'", "delta 0"),
        (channel_bound, {**BOUND, "kind": "paper"}, IAE, "'kind'", "kind paper"),
        (channel_bound, {**BOUND, "output_positions": 0}, IAE, "output_positions", "Q 0"),
        (channel_bound, {**BOUND, "input_size": None}, IAE, "input_size", "D missing"),
        (channel_bound, {**BOUND, "input_size": 2.5}, IAE, "input_size", "D 2.5"),
        (channel_bound, {**BOUND, "coreset": LIN_CORESET}, IAE, "output_positions",
         "Q > 1 after a Linear"),
        (channel_bound, {**BOUND, "coreset": "no"}, IAE, "'coreset'", "not a coreset"),
        (fold_batchnorm, {**BN, "running_var": np.ones(3)}, IAE, "running_var", "bn short"),
        (fold_batchnorm, {**BN, "eps": -1.0}, IAE, "'eps'", "eps -1"),
        (fold_batchnorm, {**BN, "weight": np.ones(4, dtype=np.float16)}, IAE, "float16",
         "bn float16"),
        (fold_batchnorm, {**BN, "eps": 10**400}, IAE, "'eps'", "eps 10**400"),
        (fold_batchnorm, {**BN, "running_var": _bad(np.ones(4), 1, np.nan)}, IAE,
         "running_var", "var nan"),
        (fold_batchnorm, {**BN, "weight": _bad(np.ones(4), 2, np.inf)}, IAE, "weight",
         "bn weight inf"),
        (fold_batchnorm, {**BN, "running_var": _bad(np.ones(4), 0, -1.0)}, IAE,
         "running_var", "var -1"),
        (fold_batchnorm, {**BN, "running_var": np.zeros(4), "eps": 0.0}, IAE,
         "running_var", "var + eps = 0"),
        (channel_bound, {**BOUND, "coreset": replace(CORESET, beta=-1.0)}, IAE, "beta",
         "record beta -1"),
        (channel_bound, {**BOUND, "coreset": replace(CORESET, sample_size=0)}, IAE,
         "sample_size", "record m 0"),
        (channel_bound, {**BOUND, "coreset": replace(DISTINCT, sample_size=0)}, IAE,
         "sample_size", "distinct record m 0"),
        (channel_bound, {**BOUND, "coreset": replace(
            CORESET, weight_next=_bad(CORESET.weight_next, (0, 0, 0, 0), np.nan))}, IAE,
         "weight_next", "record nan weight_next"),
        (channel_bound, {**BOUND, "coreset": replace(
            CORESET, probabilities=-CORESET.probabilities)}, IAE, "probabilities",
         "record negative probabilities"),
        (channel_bound, {**BOUND, "input_size": 10**400}, IAE, "input_size.*2\\*\\*53",
         "D 10**400"),
        (channel_bound, {**BOUND, "input_size": 2**53 + 1}, IAE, "input_size", "D 2**53+1"),
    ]
    tw = torch.as_tensor(_W)
    rows.append((channel_coreset, {**GOOD, "conv_weight": tw}, IAE, "torch", "mixed backends"))
    rows.append((channel_coreset, {**GOOD, "conv_weight": tw.half(), "conv_bias":
                                   torch.as_tensor(_B).half(), "next_weight":
                                   torch.as_tensor(_V).half()}, IAE, "float16",
                 "torch float16"))
    return [pytest.param(fn, kw, exc, match, id=f"{fn.__name__}({name})")
            for fn, kw, exc, match, name in rows]


@pytest.mark.parametrize(("fn", "kwargs", "exc", "match"), _rows())
def test_bad_arguments_are_refused(fn, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fn(**kwargs)


def _fold(w, b, weight, bias, mean, var, eps=0.0):
    out = fold_batchnorm(np.asarray(w, dtype=float), np.asarray(b, dtype=float),
                         weight=np.array([weight]), bias=np.array([bias]),
                         running_mean=np.array([mean]), running_var=np.array([var]), eps=eps)
    return float(out[0].ravel()[0]), float(out[1][0])


def test_fold_batchnorm_has_no_intermediate_overflow_or_underflow():
    """Powers of two, so the folds are exact: s = 2**996 / sqrt(2**-996) = 2**1494
    overflows, yet the filter 2**-996 folds to 2**498 (and the bias, conv_bias =
    running_mean, to the BatchNorm's bias); s = 2**-996 / sqrt(2**996) = 2**-1494
    underflows, yet 2**996 folds to 2**-498 and (2**1000 - 0) s + 0 to 2**-494."""
    big, small = 2.0**996, 2.0**-996
    assert _fold([[[[small]]]], [3.0], big, 0.5, 3.0, small) == (2.0**498, 0.5)
    assert _fold([[[[big]]]], [2.0**1000], small, 0.0, 0.0, big) == (2.0**-498, 2.0**-494)
    # var + eps = 2**1024 overflows as a sum: sqrt is 2**512, so 2**600 folds to 2**88
    assert _fold([[[[2.0**600]]]], [0.0], 1.0, 0.0, 0.0, 2.0**1023, eps=2.0**1023) == (
        2.0**88, 0.0)


def test_fold_batchnorm_refuses_a_folded_value_past_the_dtype():
    """2**1494 (float64), 2**150 (float32 only): not representable, refused."""
    with pytest.raises(MagnitudeError, match=r"folded weight\[0, 0, 0, 0\].*float64"):
        _fold([[[[1.0]]]], [0.0], 2.0**996, 0.0, 0.0, 2.0**-996)
    with pytest.raises(MagnitudeError, match=r"folded bias\[0\]"):
        _fold([[[[2.0**-996]]]], [1.0], 2.0**996, 0.0, 0.0, 2.0**-996)
    f32 = {n: np.array([v], dtype=np.float32) for n, v in
           (("weight", 2.0**100), ("bias", 0.0), ("running_mean", 0.0),
            ("running_var", 2.0**-100))}
    with pytest.raises(MagnitudeError, match="float32"):
        fold_batchnorm(np.full((1, 1, 1, 1), 1.0, dtype=np.float32), None, **f32, eps=0.0)
    w, b = fold_batchnorm(np.full((1, 1, 1, 1), 2.0**-100, dtype=np.float32), None, **f32,
                          eps=0.0)
    assert w.dtype == np.float32
    assert (float(w.ravel()[0]), float(b[0])) == (2.0**50, 0.0)


def test_fold_batchnorm_keeps_the_torch_backend():
    t = {n: torch.tensor([v], dtype=torch.float64) for n, v in
         (("weight", 2.0), ("bias", 1.0), ("running_mean", 3.0), ("running_var", 4.0))}
    w, b = fold_batchnorm(torch.ones(1, 1, 1, 1, dtype=torch.float64), None, **t, eps=0.0)
    assert isinstance(w, torch.Tensor)
    assert w.dtype == torch.float64
    assert (float(w.ravel()[0]), float(b[0])) == (1.0, -2.0)


def test_result_is_frozen():
    with pytest.raises(AttributeError):
        CORESET.sample_size = 3  # type: ignore[misc]
    assert isinstance(CORESET, ChannelCoreset)
