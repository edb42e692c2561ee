"""The cross-validated pruning protocol of benchmarks/lenet300.py, in its quick
form: every method is scored on every held-out digit, the tables have their
shape, the intervals hold their means and the paired tests give p-values in
[0, 1]; the statistics are checked against answers worked out by hand.

Seeds are fixed; nothing here is a statistical test of the methods.
"""

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
pytest.importorskip("torch_pruning")

from coreset_verify.models import mcnemar  # noqa: E402

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _module(name):
    """benchmarks/<name>.py, imported as lenet300.py imports protocol.py."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(name)


P = _module("protocol")
L = _module("lenet300")
FRACTIONS = (0.5, 0.1)


@pytest.fixture(scope="module")
def quick():
    """The digits protocol on 2 folds of 5 and 2 fractions (a few seconds)."""
    torch.set_num_threads(1)
    cfg = P.Config(dataset="digits", run_folds=2, fractions=FRACTIONS,
                   dense=P.Recipe(epochs=4, batch_size=32),
                   finetune=P.Recipe(epochs=1, batch_size=32, from_start=True))
    return P.run(cfg)


def test_every_method_scored_on_the_same_digits(quick):
    n = sum(f.size for f in P.folds(quick.digits.y.size, 5, 0)[:2])
    assert quick.right[("dense", None, False)].shape == (n,)
    for name in P.METHODS:
        for f in FRACTIONS:
            for tuned in (False, True):
                assert quick.right[(name, f, tuned)].shape == (n,)
                assert len(quick.fold_acc[(name, f, tuned)]) == 2


def test_tables_have_their_shape(quick):
    table = L.accuracy_table(quick)
    # header, rule, dense, two rows per method, parameters
    assert len(table) == 3 + 2 * len(P.METHODS) + 1
    assert all(row.count("|") == len(FRACTIONS) + 3 for row in table)
    for tuned in (False, True):
        pairs = L.pairs_table(quick, tuned)
        assert len(pairs) == 2 + len(P.BASELINES)
        assert all(row.count("|") == len(FRACTIONS) + 2 for row in pairs)
    assert "Targets" in L.section(quick, "test")


def test_p_values_and_intervals(quick):
    dense = quick.right[("dense", None, False)]
    for name in P.METHODS:
        for f in FRACTIONS:
            for tuned in (False, True):
                key = (name, f, tuned)
                _, _, p = mcnemar(quick.right[("coreset", f, tuned)], quick.right[key])
                assert 0.0 <= p <= 1.0
                mean, low, high = P.t_interval(quick.fold_acc[key])
                assert low <= mean <= high
                b_low, b_high = P.paired_bootstrap(dense, quick.right[key],
                                                   np.random.default_rng(0), n_boot=200)
                diff = dense.mean() - quick.right[key].mean()
                assert b_low <= diff + 1e-12
                assert diff <= b_high + 1e-12


def test_parameter_counts_match_the_budget(quick):
    total = quick.dense_params
    for f in FRACTIONS:
        (core,) = quick.params[("coreset", f)]
        assert core <= f * total
        assert all(quick.params[(name, f)] == {core} for name in P.BASELINES[1:])
        assert max(quick.params[("coreset, eps-split", f)]) <= f * total


def test_t_interval_known_answer():
    # mean 2, sd 1, n 3: half-width t_{0.975, 2} / sqrt(3), t_{0.975, 2} = 4.302653
    mean, low, high = P.t_interval([1.0, 2.0, 3.0])
    assert mean == pytest.approx(2.0, abs=1e-12)
    assert (high - low) / 2 == pytest.approx(4.302653 / np.sqrt(3), rel=1e-6)


def test_folds_partition_the_digits():
    parts = P.folds(1797, 5, 0)
    assert sorted(np.concatenate(parts).tolist()) == list(range(1797))
    assert [p.size for p in parts] == [360, 360, 359, 359, 359]


def test_bottom_up_coreset_reproduces_prune_network():
    from coreset_verify.models import mlp
    from coreset_verify.network import prune_network

    net = mlp([64, 40, 20, 10], seed=3)
    core = prune_network(net, keep={"params": 0.3}, beta=4.0, delta=0.1, rng=11)
    widths = [la.n_after for la in core.layers]
    mine = P.coreset_bottom_up(net, widths, beta=4.0, rng=11)
    for a, b in zip(core.model.state_dict().values(), mine.state_dict().values(),
                    strict=True):
        # prune_network keeps the re-weighted W_out in float64 between layers;
        # here it passes through a float32 model: a rounding apart at most.
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_ln_structured_masks_the_rows_it_is_asked_to():
    from coreset_verify.models import mlp

    net = mlp([64, 40, 20, 10], seed=3)
    masked = P.ln_structured(net, [7, 5])
    kept = [int(lin.weight_mask.any(dim=1).sum()) for lin in P.hidden_linears(masked)]
    assert kept == [7, 5]
    top = P.top_k(net, [7, 5])
    assert [lin.out_features for lin in P.hidden_linears(top)] == [7, 5]


def test_shifts_move_pixels_without_losing_them():
    rng = np.random.default_rng(0)
    img = torch.zeros(4, 8, 8)
    img[:, 3:5, 3:5] = torch.rand(4, 2, 2)  # a 2-pixel zero border at least
    flat = img.reshape(4, -1)
    moved = P.shifted(flat, 8, 1, rng)
    torch.testing.assert_close(moved.sum(dim=1), flat.sum(dim=1), rtol=1e-6, atol=1e-6)
    assert P.shifted(flat, 8, 0, rng) is flat
