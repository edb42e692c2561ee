"""Tightness of each theorem on its tight instance: observed error / bound.

The instances are those of tests/truth (imported from there, one definition
each); this script runs them with more seeds and prints the Markdown table of
proofs_notes/README.md: the (1 - delta) quantile of error / bound over the
seeds (1 for a bound that is exactly tight at its confidence), the worst
seen, and the failure rate next to delta.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tightness.py [--seeds 2000]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "truth"))

import test_cap_truth as cap
import test_multiplicative_truth as mult
import test_network_truth as net
import test_pointwise_truth as pw
import test_search_truth as search
import test_split_distinct_truth as sd
from _truth_reference import X_STAR, pruned_relu_forward, relu_forward

from coreset_verify import (
    composed_bound,
    layer_coreset,
    prune_network,
    theoretical_bound,
    worst_case,
)


def _layer_runs(layer, seeds, *, kind="pointwise", delta, X=X_STAR, forward=relu_forward,
                pruned=pruned_relu_forward, form="additive", **options):
    """error / epsilon at X (the worst over its rows and outputs), one per seed."""
    F = forward(*layer, X)
    ratios = []
    for seed in range(seeds):
        c = layer_coreset(*layer, beta=1.0, rng=seed, **options)
        b = theoretical_bound(c, delta=delta, kind=kind, form=form)
        ratios.append(float(np.max(np.abs(F - pruned(c, X)) / b.scale_at(X))) / b.epsilon)
    return np.array(ratios)


def _sigmoid_forward(W_in, b_in, W_out, X):
    return mult._sigmoid(X @ W_in.T + b_in) @ W_out.T


def _sigmoid_pruned(c, X):
    Wk, bk, U = (np.asarray(a, dtype=np.float64) for a in c.pruned())
    return mult._sigmoid(X @ Wk.T + bk) @ U.T


def rows(seeds: int):
    had, pair, pairs = pw._hadamard_layer(), pw._pair_layer(), pw._pairs_layer(8)
    sig = (mult.W_IN, mult.B_IN, mult.W_OUT)
    yield ("pointwise, Hoeffding, union over k = 64 outputs",
           "64 identical ReLU neurons, W_out = Hadamard(64), m = 400, x* = e_0", 0.05,
           _layer_runs(had, seeds, delta=0.05, sample_size=400))
    yield ("pointwise, Hoeffding, k = 1", "two identical neurons, weights +1 / -1, m = 100",
           0.01, _layer_runs(pair, seeds, delta=0.01, sample_size=100))
    yield ("pointwise, Bernstein (t = 8)", "8 disjoint +1/-1 pairs, one per output, m = 2000",
           0.05, _layer_runs(pairs, seeds, delta=0.05, sample_size=2000))
    yield ("deterministic cap", "two always-on neurons (biases 4, 1), weights +1 / -1, m = 1",
           0.01, _layer_runs((cap.W_IN, cap.B_IN, cap.W_OUT), seeds, delta=0.01,
                              X=np.zeros((1, 2)), sample_size=1))
    yield ("uniform (Theorems U, U'), exact supremum", "the Hadamard layer, m = 400", 0.05,
           _layer_runs(had, seeds, kind="uniform", delta=0.05, sample_size=400))
    for kind in ("pointwise", "uniform"):
        yield (f"multiplicative, {kind}",
               "sigmoid(20 x) and 49 x sigmoid(-20 x), weights 1, m = 50, x* = 1", 0.1,
               _layer_runs(sig, seeds, kind=kind, delta=0.1, X=mult.X_STAR,
                            forward=_sigmoid_forward, pruned=_sigmoid_pruned,
                            form="multiplicative", activation="sigmoid", sample_size=50))
    yield ("split_signs", "64 identical neurons, W_out = [P; -P], P = (1 + H_i)/2, m = 400",
           0.05, _layer_runs(sd._split_layer(), seeds, delta=0.05, sample_size=400,
                              split_signs=True))
    yield ("distinct (union over m)", "the Hadamard layer, distinct = 48", 0.05,
           _layer_runs(had, seeds, delta=0.05, distinct=48))
    yield ("network (Theorem N)", *_network(min(seeds, 200)))
    yield from _search()


def _network(seeds):
    import torch

    model = net._model()
    x = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    with torch.no_grad():
        f = float(model(x)[0, 0])
    ratios = []
    for seed in range(seeds):
        p = prune_network(model, keep=0.6, delta=0.1, beta=1.0, rng=seed, kind="pointwise")
        bound = float(composed_bound(p)[0])
        with torch.no_grad():
            err = abs(f - float(p.model.double()(x)[0, 0]))
        ratios.append(err / bound)
    return ("Linear-ReLU-Linear-ReLU-Linear, pair below, output weight 10, keep = 0.6", 0.1,
            np.array(ratios))


def _search():
    import torch

    W, b = np.array([[1.0, 2.0, 2.0]]), np.array([0.5])
    f, g = search._pair(W, b, [2.0], [0.5], torch.nn.Sigmoid)
    ub = worst_case(f, g, beta=1.0, method="bounds", rng=0).upper_bound
    yield ("search: interval", "one shared sigmoid neuron, output weights 2 vs 0.5", None,
           np.array([1.5 / (1 + np.exp(-3.5)) / ub]))
    gen = np.random.default_rng(4)
    W = gen.normal(size=(3, 4))
    b = 2.0 + np.linalg.norm(W, axis=1)
    D = np.array([1.0, -2.0, 0.5])
    f, g = search._pair(W, b, D, np.zeros(3), torch.nn.ReLU, bias_f=0.3)
    exact = np.linalg.norm(D @ W) + abs(D @ b + 0.3)
    ub = worst_case(f, g, beta=1.0, method="bounds", rng=0).upper_bound
    yield ("search: linear relaxation", "three stably active ReLU neurons, R^4", None,
           np.array([exact / ub]))
    for seed in (0, 1):
        gen = np.random.default_rng(seed)
        W, b, a = gen.normal(size=(6, 2)), 0.3 * gen.normal(size=6), gen.normal(size=6)
        keep = np.zeros(6)
        keep[:3] = a[:3] * 2
        f, g = search._pair(W, b, a, keep, torch.nn.ReLU)
        ub = worst_case(f, g, beta=1.0, method="bounds", rng=0).upper_bound
        yield (f"search: triangle LP (seed {seed})", "6 unstable ReLU neurons on R^2, half kept",
               None, np.array([search._grid_max(f, g, 1.0) / ub]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2000)
    args = parser.parse_args()
    print("| theorem | tight instance | delta | (1 - delta) quantile of error / bound "
          "| worst error / bound | failure rate |")
    print("|---|---|---|---|---|---|")
    for name, instance, delta, ratios in rows(args.seeds):
        if delta is None:  # one exact maximum against one sound bound
            print(f"| {name} | {instance} | - | {ratios.max():.3f} | {ratios.max():.3f} | - |")
            continue
        quantile = np.quantile(ratios, 1 - delta)
        print(f"| {name} | {instance} | {delta:g} | {quantile:.3f} | {ratios.max():.3f} "
              f"| {np.mean(ratios > 1):.4f} |", flush=True)


if __name__ == "__main__":
    main()
