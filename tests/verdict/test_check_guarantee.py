"""check_guarantee: the verdict never claims what the search did not prove."""

import math

import numpy as np
import pytest

from coreset_verify import InvalidArgumentError, layer_coreset
from coreset_verify.counterexamples import replay
from coreset_verify.verdict import HOLDS, NOT_REFUTED, VIOLATED, _verdict, check_guarantee


def tiny_layer(seed=0, n=8, d=3, k=2):
    gen = np.random.default_rng(seed)
    return gen.normal(size=(n, d)), 0.2 * gen.normal(size=n), gen.normal(size=(k, n))


@pytest.mark.parametrize(
    ("found", "certified", "epsilon", "expected"),
    [
        (0.5, 0.8, 1.0, HOLDS),
        (0.5, 1.0, 1.0, HOLDS),  # certified exactly at the claim: still proved
        (0.5, 1.2, 1.0, NOT_REFUTED),
        (0.5, math.inf, 1.0, NOT_REFUTED),
        (1.0 + 1e-12, 2.0, 1.0, NOT_REFUTED),  # within float slack: not a violation
        (1.1, 2.0, 1.0, VIOLATED),
    ],
)
def test_verdict_rules(found, certified, epsilon, expected):
    assert _verdict(found, certified, epsilon) == expected


def test_small_constant_is_violated_and_saved(tmp_path):
    layer = tiny_layer(1)
    coreset = layer_coreset(*layer, sample_size=4, beta=1.0, rng=3)
    result = check_guarantee(*layer, coreset, delta=0.1, kind="paper", paper_constant=1e-6,
                             time_limit=10, rng=0, counterexample_dir=tmp_path, name="tiny",
                             metadata={"seed": 3})
    assert result.verdict == VIOLATED
    assert result.found > result.epsilon
    assert result.tightness == pytest.approx(result.found / result.epsilon)
    replayed = replay(result.counterexample)
    assert replayed.reproduced
    assert replayed.same_coreset is True


def test_sound_bound_holds_on_tiny_layer():
    layer = tiny_layer(2)
    coreset = layer_coreset(*layer, sample_size=50, beta=1.0, rng=0)
    result = check_guarantee(*layer, coreset, delta=0.1, kind="uniform", time_limit=10, rng=0)
    # The exact search closes the bracket on 8 neurons; the theorem is far above it.
    assert result.worst_case.certified
    assert result.verdict == HOLDS
    assert result.found <= result.certified <= result.epsilon


def test_data_error_is_below_worst_case():
    layer = tiny_layer(3)
    coreset = layer_coreset(*layer, sample_size=6, beta=1.0, rng=1)
    gen = np.random.default_rng(0)
    data = gen.normal(size=(200, 3))
    data /= np.maximum(1.0, np.linalg.norm(data, axis=1))[:, None]  # inside the ball
    result = check_guarantee(*layer, coreset, delta=0.1, time_limit=10, rng=0, data=data)
    assert result.data_error <= result.found * (1 + 1e-9)


def test_search_result_is_reused_for_other_claims():
    layer = tiny_layer(4)
    coreset = layer_coreset(*layer, sample_size=6, beta=1.0, rng=1)
    first = check_guarantee(*layer, coreset, delta=0.1, kind="uniform", time_limit=10, rng=0)
    second = check_guarantee(*layer, coreset, delta=0.1, kind="pointwise",
                             search_result=first.worst_case)
    assert second.worst_case is first.worst_case
    assert second.found == first.found


def test_search_result_of_another_layer_is_refused():
    layer, other = tiny_layer(5), tiny_layer(6)
    c1 = layer_coreset(*layer, sample_size=6, beta=1.0, rng=1)
    c2 = layer_coreset(*other, sample_size=6, beta=1.0, rng=1)
    first = check_guarantee(*layer, c1, delta=0.1, time_limit=5, method="gradient", rng=0)
    with pytest.raises(InvalidArgumentError, match="search_result"):
        check_guarantee(*other, c2, delta=0.1, search_result=first.worst_case)


def test_coreset_of_another_layer_is_refused():
    layer, other = tiny_layer(7), tiny_layer(8)
    coreset = layer_coreset(*other, sample_size=6, beta=1.0, rng=1)
    with pytest.raises(InvalidArgumentError, match="coreset"):
        check_guarantee(*layer, coreset, delta=0.1, time_limit=5)
