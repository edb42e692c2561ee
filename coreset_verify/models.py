"""Small torch models and a seeded trainer for the experiments (CPU-friendly).

torch is imported here, not by the core. Seeds are applied inside
``torch.random.fork_rng`` so the caller's global torch RNG is left untouched.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from ._validation import check_int, check_positive, fail
from ._validation import import_torch as _torch
from .errors import InvalidArgumentError

__all__ = ["TrainResult", "accuracy", "correct", "mcnemar", "mlp", "train_classifier",
           "wilson_interval"]


def mlp(sizes: Sequence[int], *, activation: Any = "relu", seed: int = 0) -> Any:
    """``nn.Sequential`` of Linear layers with ``activation`` between them.

    ``mlp([784, 300, 100, 10])`` is LeNet-300-100. ``activation`` is anything
    :func:`~coreset_verify.get_activation` reads (``"elu(alpha=0.5)"`` too)
    that has a torch module.

    Examples
    --------
    >>> net = mlp([784, 300, 100, 10])
    >>> [tuple(p.shape) for p in net.parameters()][:2]
    [(300, 784), (300,)]
    """
    torch = _torch()
    from .activations import get_activation

    func = "mlp"
    act = get_activation(activation)
    if act.torch_module is None:
        raise fail(func, "activation", "an activation with a torch module", act.name)
    if isinstance(sizes, str | bytes) or not isinstance(sizes, Sequence) or len(sizes) < 2:
        raise fail(func, "sizes", "a sequence of at least two layer sizes", sizes)
    sizes = [check_int(s, "sizes", func) for s in sizes]
    seed = check_int(seed, "seed", func, minimum=0)
    layers: list[Any] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
            layers.append(torch.nn.Linear(fan_in, fan_out))
            if i < len(sizes) - 2:
                layers.append(act.torch_module())
    return torch.nn.Sequential(*layers)


@dataclass(frozen=True)
class TrainResult:
    """Loss per epoch and the final test accuracy."""

    losses: tuple[float, ...]
    test_accuracy: float


def correct(model: Any, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Boolean per example: does ``model`` classify it as ``y``?"""
    torch = _torch()
    with torch.no_grad():
        logits = model(torch.as_tensor(x, dtype=torch.float32))
    return logits.argmax(dim=1).numpy() == np.asarray(y)


def accuracy(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    """Fraction of ``x`` that ``model`` classifies as ``y``."""
    return float(correct(model, x, y).mean())


def wilson_interval(right: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for the accuracy behind the 0/1 outcomes ``right``
    (the test examples a binomial sample; the trained model held fixed)."""
    n = int(np.size(right))
    if n == 0:
        raise InvalidArgumentError("wilson_interval: right must hold at least one outcome")
    p = float(np.mean(right))
    z = NormalDist().inv_cdf(0.5 + level / 2)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar(right_a: np.ndarray, right_b: np.ndarray) -> tuple[int, int, float]:
    """Exact McNemar test of two classifiers on the same examples:
    ``(a only right, b only right, two-sided p)`` (scipy's exact binomial test)."""
    from scipy import stats

    right_a, right_b = np.asarray(right_a, dtype=bool), np.asarray(right_b, dtype=bool)
    a_only = int(np.sum(right_a & ~right_b))
    b_only = int(np.sum(~right_a & right_b))
    if a_only + b_only == 0:
        return 0, 0, 1.0
    return a_only, b_only, float(stats.binomtest(a_only, a_only + b_only, 0.5).pvalue)


def train_classifier(
    model: Any,
    data: Any,
    *,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    progress: Any = None,
) -> TrainResult:
    """Train with Adam and cross-entropy on ``data.x_train``; seeded shuffles.

    ``progress(epoch, loss)`` is called after each epoch when given.
    """
    torch = _torch()
    epochs = check_int(epochs, "epochs", "train_classifier")
    lr = check_positive(lr, "lr", "train_classifier")
    x = torch.as_tensor(data.x_train, dtype=torch.float32)
    y = torch.as_tensor(data.y_train, dtype=torch.int64)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    order_rng = np.random.default_rng(seed)
    losses = []
    model.train()
    for epoch in range(epochs):
        order = torch.as_tensor(order_rng.permutation(x.shape[0]))
        total = 0.0
        for start in range(0, x.shape[0], batch_size):
            batch = order[start : start + batch_size]
            loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * batch.shape[0]
        losses.append(total / x.shape[0])
        if progress is not None:
            progress(epoch, losses[-1])
    model.eval()
    return TrainResult(tuple(losses), accuracy(model, data.x_test, data.y_test))
