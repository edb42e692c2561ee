"""``exact`` and ``auto`` against a brute-force enumeration of regions."""

from __future__ import annotations

import pytest
from _search_helpers import brute_force_max, tiny_pair

from coreset_verify.search import OPTIMAL, worst_case

# (seed, d, n_f, n_g, k, shared): at most 10 hidden neurons in total.
FAST = [(s, 2 + s % 2, 3 + s % 2, 2, 1 + s % 2, s % 3 == 0) for s in range(10)]
SLOW = [(s, 2 + s % 2, 5 + s % 2, 3 + s % 2, 1 + s % 2, s % 3 == 0)
        for s in range(10, 20)]
CASES = [pytest.param(*c, id=f"seed{c[0]}") for c in FAST] + [
    pytest.param(*c, id=f"seed{c[0]}", marks=pytest.mark.slow) for c in SLOW]


@pytest.mark.parametrize(("seed", "d", "n_f", "n_g", "k", "shared"), CASES)
def test_exact_and_auto_match_brute_force(seed, d, n_f, n_g, k, shared):
    f, g = tiny_pair(seed, d=d, n_f=n_f, n_g=n_g, k=k, shared=shared)
    truth = brute_force_max(f, g, 1.5)
    exact = worst_case(f, g, beta=1.5, method="exact", rng=seed)
    assert exact.status == OPTIMAL
    assert exact.error == pytest.approx(truth, rel=1e-4, abs=1e-7)
    assert exact.upper_bound >= truth * (1 - 1e-9)
    auto = worst_case(f, g, beta=1.5, method="auto", rng=seed)
    assert auto.error >= 0.98 * truth
    assert auto.upper_bound >= truth * (1 - 1e-9)
