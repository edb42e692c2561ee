"""The accuracy statistics the demo and the benchmarks report (coreset_verify.models):
Wilson intervals and McNemar's exact test, against answers worked out here."""

import math

import numpy as np
import pytest

from coreset_verify import InvalidArgumentError
from coreset_verify.models import mcnemar, wilson_interval


def outcomes(right: int, n: int) -> np.ndarray:
    return np.arange(n) < right


def test_mcnemar_known_answer():
    # 8 digits only a got right, 2 only b, 5 both, 5 neither:
    # p = 2 * P(Bin(10, 1/2) <= 2) = 2 * (1 + 10 + 45) / 1024.
    a = np.array([True] * 8 + [False] * 2 + [True] * 5 + [False] * 5)
    b = np.array([False] * 8 + [True] * 2 + [True] * 5 + [False] * 5)
    assert mcnemar(a, b) == (8, 2, pytest.approx(112 / 1024, rel=1e-12))
    assert mcnemar(b, a) == (2, 8, pytest.approx(112 / 1024, rel=1e-12))
    assert mcnemar(a, a) == (0, 0, 1.0)


@pytest.mark.parametrize(("right", "n"), [(90, 100), (921, 1000), (1, 7), (0, 20), (20, 20)])
def test_wilson_interval_known_answers(right, n):
    # the Wilson score interval written out, z = Phi^-1(0.975) = 1.959963984540054
    z, p = 1.959963984540054, right / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    low, high = wilson_interval(outcomes(right, n))
    assert low == pytest.approx(max(0.0, centre - half), abs=1e-12)
    assert high == pytest.approx(min(1.0, centre + half), abs=1e-12)
    assert low <= p <= high


@pytest.mark.parametrize(("right", "n"), [(90, 100), (851, 1000), (3, 11)])
def test_wilson_interval_matches_scipy(right, n):
    stats = pytest.importorskip("scipy.stats")
    ci = stats.binomtest(right, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert wilson_interval(outcomes(right, n)) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_wilson_interval_narrows_with_the_level():
    r = outcomes(80, 100)
    lo90, hi90 = wilson_interval(r, level=0.90)
    lo99, hi99 = wilson_interval(r, level=0.99)
    assert lo99 < lo90 < 0.8 < hi90 < hi99


def test_wilson_interval_needs_outcomes():
    with pytest.raises(InvalidArgumentError, match="at least one"):
        wilson_interval(np.array([], dtype=bool))


def _demo(dense, tuned, counts):
    from types import SimpleNamespace

    return SimpleNamespace(dense_accuracy=dense, finetuned_accuracy=tuned,
                           finetuned_vs_dense=counts, target_params=0.1, finetune_epochs=10)


@pytest.mark.parametrize(("dense", "tuned", "counts", "words"), [
    (0.921, 0.906, [40, 25, 0.08], "kept its accuracy within 1.5 points"),
    (0.921, 0.875, [60, 14, 1e-8], "lost 4.6 points"),
    (0.900, 0.920, [5, 25, 1e-4], "gained 2.0 points"),
])
def test_demo_accuracy_sentence_follows_the_measurement(dense, tuned, counts, words):
    from coreset_verify.demo import accuracy_sentence

    text = accuracy_sentence(_demo(dense, tuned, counts))
    assert words in text
    assert f"{counts[0]} held-out digits only the dense" in text
