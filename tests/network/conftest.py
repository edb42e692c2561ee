"""Small float64 MLPs and inputs in the ball for the network tests."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")


def make_net(sizes, activation=torch.nn.ReLU, seed=0, *, flatten=False, dropout=False):
    """A float64 ``nn.Sequential`` with ``activation()`` between its Linears."""
    gen = torch.Generator().manual_seed(seed)
    layers = [torch.nn.Flatten()] if flatten else []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        lin = torch.nn.Linear(a, b, dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(b, a, generator=gen, dtype=torch.float64) / a**0.5)
            lin.bias.copy_(0.3 * torch.randn(b, generator=gen, dtype=torch.float64))
        layers.append(lin)
        if i < len(sizes) - 2:
            layers.append(activation())
            if dropout:
                layers.append(torch.nn.Dropout(0.5))
    return torch.nn.Sequential(*layers).eval()


def ball_inputs(model, beta, n, seed):
    """Inputs with ``||x|| <= beta``: interior, boundary, and the extreme
    points ``+-beta w_j / ||w_j||`` of the first layer, float64 (n', d)."""
    first = next(m for m in model if isinstance(m, torch.nn.Linear)).weight.detach().numpy()
    gen = np.random.default_rng(seed)
    d = first.shape[1]
    direction = gen.normal(size=(2 * n, d))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    radius = np.concatenate([beta * gen.uniform(size=n) ** (1 / d), np.full(n, beta)])
    first = first / np.abs(first).max(axis=1, keepdims=True)  # scaled: 1e-300 rows too
    extreme = beta * first / np.linalg.norm(first, axis=1, keepdims=True)
    x = np.concatenate([direction * radius[:, None], extreme, -extreme])
    return torch.as_tensor(x, dtype=torch.float64)


def inputs_to(model, x, position):
    """The input of ``model[position]`` at inputs x."""
    with torch.no_grad():
        for module in list(model)[:position]:
            x = module(x)
    return x


@pytest.fixture(name="make_net")
def _make_net():
    return make_net


@pytest.fixture(name="ball_inputs")
def _ball_inputs():
    return ball_inputs


@pytest.fixture(name="inputs_to")
def _inputs_to():
    return inputs_to
