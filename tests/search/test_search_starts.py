"""worst_case(starts=...): the search starts from given inputs (e.g. data)."""

import numpy as np
import pytest
from _search_helpers import tiny_pair

from coreset_verify import InvalidArgumentError
from coreset_verify.search import worst_case

torch = pytest.importorskip("torch")


def objective(f, g, x):
    with torch.no_grad():
        return (f(torch.as_tensor(x)) - g(torch.as_tensor(x))).abs().amax(dim=1).numpy()


@pytest.mark.parametrize("method", ["gradient", "bounds", "auto"])
def test_error_is_at_least_the_best_start(method):
    f, g = tiny_pair(3, d=3, n_f=6, n_g=2, k=2)
    gen = np.random.default_rng(0)
    starts = gen.normal(size=(50, 3))
    starts *= 0.9 / np.linalg.norm(starts, axis=1, keepdims=True)  # inside the unit ball
    res = worst_case(f, g, beta=1.0, method=method, time_limit=5, rng=0, starts=starts,
                     restarts=0)
    assert res.error >= objective(f, g, starts).max() * (1 - 1e-12)


def test_starts_outside_are_projected():
    f, g = tiny_pair(4, d=2, n_f=4, n_g=2)
    res = worst_case(f, g, beta=1.0, method="gradient", rng=0, starts=np.full((1, 2), 10.0))
    assert np.linalg.norm(res.x) <= 1.0 + 1e-12


@pytest.mark.parametrize("starts", [np.zeros((3, 5)), np.zeros(2), np.full((1, 2), np.nan)],
                         ids=["wrong-d", "1-d", "nan"])
def test_bad_starts(starts):
    f, g = tiny_pair(5, d=2, n_f=4, n_g=2)
    with pytest.raises(InvalidArgumentError, match="starts"):
        worst_case(f, g, beta=1.0, method="gradient", starts=starts)


def test_bounds_method_keeps_a_better_start():
    # On this pair the relaxation's own point reaches 1.31 while the optimum
    # (found by the exact MIP) is 2.01: only the given start can give 2.01.
    f, g = tiny_pair(7, d=3, n_f=6, n_g=2, k=2)
    best = worst_case(f, g, beta=1.0, method="exact", time_limit=10, rng=0)
    alone = worst_case(f, g, beta=1.0, method="bounds", rng=0)
    assert alone.error < 0.9 * best.error
    seeded = worst_case(f, g, beta=1.0, method="bounds", rng=0, starts=best.x[None])
    assert seeded.error == pytest.approx(best.error, rel=1e-9)
