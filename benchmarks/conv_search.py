"""Worst-case brackets of pruned conv networks, and how well the time limit holds.

Each pair is a conv network and its ``prune_network`` copy; ``worst_case(...,
time_limit=T)`` (method ``auto``) brackets ``max_i |f_i(x) - g_i(x)|`` over the
ball. Printed per pair: the dense maps' size (hidden units of both networks),
found, certified, their ratio, the status, the seconds taken against ``T``.

- 6x6: ``Unflatten(1, (1, 6, 6)), Conv2d(1, 4, 3), ReLU, Flatten, Linear(64, 3)``
  (the README's command-line example), half the channels kept, ball radius 1;
- 8x8 avg / max: ``Conv2d(1, 6, 3)`` on 8 x 8, ReLU, 2 x 2 average or max
  pooling, ``Linear(54, 3)``; half the channels, radius 1;
- LeNet-5: ``benchmarks/lenet5.py``'s network (6 and 16 channels, max pooling,
  784 inputs), trained 3 epochs on MNIST-5k, half its parameters kept, radius
  the largest digit norm.

Usage::

    python benchmarks/conv_search.py                  # 60 s per pair, about 6 minutes
    python benchmarks/conv_search.py --time-limit 10  # quicker
"""

from __future__ import annotations

import argparse
import time

import torch
from lenet5 import lenet5
from torch import nn

from coreset_verify import prune_network, worst_case
from coreset_verify.data import mnist_5k
from coreset_verify.models import train_classifier
from coreset_verify.search._problem import make_problem


def small(seed: int, side: int, channels: int, pool, outputs: int = 3) -> nn.Sequential:
    torch.manual_seed(seed)
    inner = side - 2
    layers = [nn.Unflatten(1, (1, side, side)), nn.Conv2d(1, channels, 3), nn.ReLU()]
    if pool is not None:
        layers.append(pool(2))
        inner //= 2
    layers += [nn.Flatten(), nn.Linear(channels * inner * inner, outputs)]
    return nn.Sequential(*layers).double().eval()


def pairs(seed: int):
    """``(name, original, pruned, beta)``, built lazily (LeNet-5 trains)."""
    for name, model in (("6x6, no pooling", small(seed, 6, 4, None)),
                        ("8x8, 2x2 average pooling", small(seed, 8, 6, nn.AvgPool2d)),
                        ("8x8, 2x2 max pooling", small(seed, 8, 6, nn.MaxPool2d))):
        yield name, model, prune_network(model, keep=0.5, beta=1.0, rng=seed).model, 1.0
    data = mnist_5k(rng=seed)
    model = lenet5(seed)
    train_classifier(model, data, epochs=3, seed=seed)
    model = model.double().eval()
    pruned = prune_network(model, keep={"params": 0.5}, beta=data.max_norm, rng=seed)
    yield "LeNet-5 (trained), 50% of parameters", model, pruned.model, data.max_norm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    limit = args.time_limit
    print(f"worst_case(original, pruned, beta=..., time_limit={limit:g}), method auto")
    print(f"{'pair':38s} {'units':>6s} {'found':>10s} {'certified':>10s} {'ratio':>9s} "
          f"{'status':>11s} {'seconds':>8s}")
    for name, f, g, beta in pairs(args.seed):
        problem = make_problem(f, g, beta=beta, lower=None, upper=None, scale=None)
        units = sum(len(lay.bias) for net in (problem.f, problem.g) for lay in net[:-1])
        t0 = time.perf_counter()
        res = worst_case(f, g, beta=beta, time_limit=limit, rng=args.seed)
        wall = time.perf_counter() - t0
        print(f"{name:38s} {units:6d} {res.error:10.4g} {res.upper_bound:10.4g} "
              f"{res.upper_bound / res.error:9.3g} {res.status:>11s} {wall:8.1f}",
              flush=True)


if __name__ == "__main__":
    main()
