"""sample_size_for and theoretical_bound: reaching epsilon, minimality, monotonicity."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from _magnitudes import reject_magnitudes
from hypothesis import Phase, given, settings, target
from hypothesis import strategies as st

from coreset_verify import (
    InvalidArgumentError,
    get_activation,
    theoretical_bound,
)
from coreset_verify import (
    layer_coreset as _layer_coreset,
)
from coreset_verify import (
    sample_size_for as _sample_size_for,
)
from coreset_verify.strategies import activations, balls, layers, points_in_ball

layer_coreset = reject_magnitudes(_layer_coreset)
sample_size_for = reject_magnitudes(_sample_size_for)

KINDS = ["pointwise", "uniform", "paper"]


def prior_bound(coreset, **kwargs):
    """The bound known before sampling: the coreset with its counts forgotten.

    theoretical_bound reads the realised counts (the realised Lipschitz
    constant and deterministic cap); with ``counts=None`` in every part it
    computes the prior bound, the one sample_size_for minimises over m.
    """
    parts = tuple(dataclasses.replace(p, counts=None) for p in coreset.parts)
    return theoretical_bound(dataclasses.replace(coreset, parts=parts), **kwargs)


def _min_size(split):
    return 2 if split else 1


# Each example runs sample_size_for (a search over m); shrinking a failure
# would take minutes, so these tests report the first failing example as is.
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target)


@settings(max_examples=max(8, settings.default.max_examples // 2), phases=NO_SHRINK)
@given(layer=layers(max_n=6, max_d=3, max_k=2), activation=activations(), beta=balls(),
       epsilon=st.floats(0.2, 0.9), delta=st.floats(0.01, 0.5), seed=st.integers(0, 2**32 - 1))
@pytest.mark.parametrize("split", [False, True], ids=["joint", "split"])
@pytest.mark.parametrize("kind", KINDS)
def test_sample_size_for_reaches_epsilon_and_is_minimal(
    kind, split, layer, activation, beta, epsilon, delta, seed
):
    W_in, b_in, W_out = layer
    kw = {"beta": beta, "activation": activation}
    try:
        m = sample_size_for(W_in, b_in, W_out, epsilon=epsilon, delta=delta, kind=kind,
                            split_signs=split, **kw)
    except InvalidArgumentError as error:
        # Documented: no m reaches epsilon. Then even 2**40 draws must not.
        if "no sample size reaches" not in str(error):
            raise
        huge = layer_coreset(W_in, b_in, W_out, sample_size=2**40, rng=seed,
                             split_signs=split, **kw)
        assert prior_bound(huge, delta=delta, kind=kind).epsilon > epsilon
        return
    assert m >= _min_size(split)
    c = layer_coreset(W_in, b_in, W_out, sample_size=m, rng=seed, split_signs=split, **kw)
    realised = theoretical_bound(c, delta=delta, kind=kind)
    prior = prior_bound(c, delta=delta, kind=kind)
    assert realised.epsilon <= prior.epsilon * (1 + 1e-12)
    assert prior.epsilon <= epsilon
    assert realised.epsilon <= epsilon
    if m > _min_size(split):
        smaller = layer_coreset(W_in, b_in, W_out, sample_size=m - 1, rng=seed,
                                split_signs=split, **kw)
        assert prior_bound(smaller, delta=delta, kind=kind).epsilon > epsilon


@settings(max_examples=max(5, settings.default.max_examples // 3), phases=NO_SHRINK)
@given(layer=layers(max_n=6, max_d=3, max_k=2), activation=activations(positive=True),
       beta=balls(), epsilon=st.floats(0.2, 0.9), seed=st.integers(0, 2**32 - 1))
@pytest.mark.parametrize("kind", ["pointwise", "uniform"])
def test_sample_size_for_multiplicative(kind, layer, activation, beta, epsilon, seed):
    W_in, b_in, W_out = layer
    kw = {"beta": beta, "activation": activation}
    try:
        m = sample_size_for(W_in, b_in, W_out, epsilon=epsilon, delta=0.1, kind=kind,
                            form="multiplicative", **kw)
    except InvalidArgumentError as error:
        if "no sample size reaches" not in str(error):
            raise
        huge = layer_coreset(W_in, b_in, W_out, sample_size=2**40, rng=seed, **kw)
        assert prior_bound(huge, delta=0.1, kind=kind, form="multiplicative").epsilon > epsilon
        return
    c = layer_coreset(W_in, b_in, W_out, sample_size=m, rng=seed, **kw)
    b = theoretical_bound(c, delta=0.1, kind=kind, form="multiplicative")
    assert b.epsilon <= epsilon
    assert b.form == "multiplicative"
    if m > 1:
        smaller = layer_coreset(W_in, b_in, W_out, sample_size=m - 1, rng=seed, **kw)
        assert prior_bound(smaller, delta=0.1, kind=kind, form="multiplicative").epsilon > epsilon


def _fixed_layer():
    gen = np.random.default_rng(12)
    return gen.normal(size=(30, 4)), gen.normal(size=30), gen.normal(size=(3, 30))


@pytest.mark.parametrize("split", [False, True], ids=["joint", "split"])
def test_bounds_shrink_as_m_grows(split):
    W_in, b_in, W_out = _fixed_layer()
    sizes = [2, 4, 10, 30, 100, 300, 1000, 3000, 10_000, 100_000]
    coresets = [layer_coreset(W_in, b_in, W_out, sample_size=m, beta=1.0, rng=0,
                              split_signs=split) for m in sizes]
    pointwise = [prior_bound(c, delta=0.1, kind="pointwise").statistical for c in coresets]
    paper = [prior_bound(c, delta=0.1, kind="paper").statistical for c in coresets]
    uniform = [prior_bound(c, delta=0.1, kind="uniform") for c in coresets]
    assert all(np.diff(pointwise) < 0), pointwise
    assert all(np.diff(paper) < 0), paper
    assert all(np.diff([b.statistical for b in uniform]) <= 0)
    assert all(np.diff([b.epsilon for b in uniform]) <= 0)
    # The realised pointwise and paper statistical terms do not read the draws.
    for c, p in zip(coresets, pointwise, strict=True):
        np.testing.assert_allclose(theoretical_bound(c, delta=0.1, kind="pointwise").statistical,
                                   p, rtol=1e-12, atol=0)
    # Large m: the uniform bound is below the trivial deterministic bound.
    assert uniform[-1].epsilon < 1.0


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("split", [False, True], ids=["joint", "split"])
def test_bounds_shrink_as_delta_grows(kind, split):
    W_in, b_in, W_out = _fixed_layer()
    c = layer_coreset(W_in, b_in, W_out, sample_size=2000, beta=1.0, rng=1, split_signs=split)
    deltas = [1e-9, 1e-6, 1e-3, 0.01, 0.1, 0.5, 0.9]
    realised = [theoretical_bound(c, delta=d, kind=kind) for d in deltas]
    stat = [b.statistical for b in realised]
    if kind == "uniform":
        assert all(np.diff(stat) <= 0), stat
    else:
        assert all(np.diff(stat) < 0), stat
    assert all(np.diff([b.epsilon for b in realised]) <= 0)


def test_bounds_shrink_as_delta_grows_sample_size_for():
    W_in, b_in, W_out = _fixed_layer()
    for kind in KINDS:
        sizes = [sample_size_for(W_in, b_in, W_out, epsilon=0.3, delta=d, beta=1.0, kind=kind)
                 for d in (1e-6, 1e-3, 0.1, 0.5)]
        assert all(np.diff(sizes) <= 0), (kind, sizes)


@settings(max_examples=max(10, settings.default.max_examples), phases=NO_SHRINK)
@given(layer=layers(max_n=8, max_d=3, max_k=2), activation=activations(), beta=balls(),
       m=st.sampled_from([50, 500, 5000]), seed=st.integers(0, 2**32 - 1),
       split=st.booleans(), data=st.data())
def test_uniform_bound_at_adversarial_points(layer, activation, beta, m, seed, split, data):
    # The uniform claim covers every x of the ball at once, so x may be chosen
    # after the draws: Hypothesis steers x (and the layer) toward the largest
    # error relative to the bound. delta = 1e-9 per example: a correct bound
    # raises a false alarm with probability about (examples) * 1e-9.
    W_in, b_in, W_out = layer
    c = layer_coreset(W_in, b_in, W_out, sample_size=m, beta=beta, activation=activation,
                      rng=seed, split_signs=split)
    b = theoretical_bound(c, delta=1e-9, kind="uniform")
    X = np.array(data.draw(st.lists(points_in_ball(W_in.shape[1], beta, W_in=W_in),
                                    min_size=1, max_size=6), label="X"))
    act = get_activation(activation)
    F = act(X @ W_in.T + b_in) @ W_out.T
    Wr, br, U = c.pruned()
    G = act(X @ np.asarray(Wr).T + np.asarray(br)) @ np.asarray(U).T
    rows = b.scale > 0
    ratio = np.abs(F - G)[:, rows] / b.scale[rows]
    worst = float(ratio.max(initial=0.0))
    target(worst / b.epsilon, label="error / (epsilon T)")
    assert worst <= b.epsilon * (1 + 1e-9)
