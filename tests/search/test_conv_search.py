"""The worst-case search, its bounds and certificates through Conv2d, pooling and
BatchNorm (read as the maps they are, coreset_verify/nets/conv.py).

Oracles built here: a dense grid of a 2-D input (a 1 x 1 x 2 image, so the
convolution, its channels and a max-pooling over the two positions are real)
evaluated with the torch modules, and sampled inputs of larger images.
"""

from __future__ import annotations

import numpy as np
import pytest
from _search_helpers import nn, torch
from hypothesis import given, settings
from hypothesis import strategies as st

from coreset_verify import InvalidArgumentError, worst_case
from coreset_verify.certificate import check


def pair_of_channels(seed: int, *, c: int = 4, kept: int = 2, pool: str = "max",
                     shape=(1, 1, 2), kernel=(1, 1), act=nn.ReLU):
    """``f``: Unflatten, Conv2d(c), act, pool, Flatten, Linear; ``g`` keeps the
    first ``kept`` channels of the conv and re-weights them (a channel
    pruning as a coreset makes one)."""
    torch.manual_seed(seed)

    def net(channels):
        conv = nn.Conv2d(shape[0], channels, kernel)
        with torch.no_grad():
            out = conv(torch.zeros(1, *shape))
        window = tuple(out.shape[2:])
        pooling = nn.MaxPool2d(window) if pool == "max" else nn.AvgPool2d(window)
        return nn.Sequential(nn.Unflatten(1, shape), conv, act(), pooling, nn.Flatten(),
                             nn.Linear(channels, 3)).double()

    f, g = net(c), net(kept)
    with torch.no_grad():
        g[1].weight.copy_(f[1].weight[:kept])
        g[1].bias.copy_(f[1].bias[:kept])
        g[5].weight.copy_(f[5].weight[:, :kept] * c / kept)
        g[5].bias.copy_(f[5].bias)
    return f, g


def grid_max(f, g, beta: float) -> float:
    t = np.linspace(-beta, beta, 801)
    x = np.stack(np.meshgrid(t, t), -1).reshape(-1, 2)
    ang = np.linspace(0, 2 * np.pi, 4001)
    x = np.vstack([x[np.linalg.norm(x, axis=1) <= beta],
                   beta * np.stack([np.cos(ang), np.sin(ang)], 1)])
    with torch.no_grad():
        xt = torch.as_tensor(x)
        return float((f(xt) - g(xt)).abs().max())


def sampled_max(f, g, d: int, beta: float, seed: int = 0, count: int = 20000) -> float:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((count, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x[count // 2:] *= rng.random((count - count // 2, 1)) ** (1 / d)
    with torch.no_grad():
        xt = torch.as_tensor(beta * x)
        return float((f(xt) - g(xt)).abs().max())


@pytest.mark.parametrize("pool", ["max", "avg"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_bracket_closes_on_the_truth_of_a_2d_conv_pair(seed, pool):
    f, g = pair_of_channels(seed, pool=pool)
    truth = grid_max(f, g, 1.0)
    res = worst_case(f, g, beta=1.0, time_limit=20, rng=0)
    assert res.upper_bound >= truth - 1e-9
    assert res.error >= 0.999 * truth  # the grid's maximum is a lower bound too
    assert res.upper_bound <= 1.01 * truth + 1e-6  # closed (grid spacing 2.5e-3)


def test_a_conv_certificate_round_trips_and_is_true(tmp_path):
    f, g = pair_of_channels(3, c=3, kept=2, shape=(1, 3, 3), kernel=(2, 2))
    res = worst_case(f, g, beta=1.0, time_limit=8, rng=0, certificate=tmp_path / "c.npz")
    proved = check(tmp_path / "c.npz", f, g, beta=1.0)
    assert proved.upper_bound == res.upper_bound
    assert proved.upper_bound >= sampled_max(f, g, 9, 1.0)


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 1000), pool=st.sampled_from(["max", "avg"]),
       c=st.integers(2, 4), side=st.integers(2, 3))
def test_no_sampled_input_beats_the_bounds_through_conv_and_pooling(seed, pool, c, side):
    f, g = pair_of_channels(seed, c=c, kept=c - 1, pool=pool, shape=(1, side, side),
                            kernel=(2, 2))
    d = side * side
    seen = sampled_max(f, g, d, 1.5, seed, 4000)
    for method in ("bounds", "bab"):
        res = worst_case(f, g, beta=1.5, method=method, time_limit=2, rng=0)
        assert res.upper_bound >= seen - 1e-9, method


def test_batchnorm_and_a_second_conv_are_searched_soundly():
    torch.manual_seed(5)
    norm = nn.BatchNorm2d(3)
    with torch.no_grad():
        norm.running_var.uniform_(0.5, 2.0)
        norm.running_mean.normal_()

    def net(head):
        return nn.Sequential(nn.Unflatten(1, (1, 4, 4)), nn.Conv2d(1, 3, 2), norm, nn.ReLU(),
                             nn.Conv2d(3, 2, 2), nn.ReLU(), nn.Flatten(), head).double().eval()

    f = net(nn.Linear(8, 2))
    g = net(nn.Linear(8, 2))
    res = worst_case(f, g, beta=1.0, time_limit=6, rng=0)
    assert res.upper_bound >= sampled_max(f, g, 16, 1.0) - 1e-9
    assert res.error <= res.upper_bound


def test_a_smooth_conv_pair_is_bounded_but_gets_no_certificate(tmp_path):
    f, g = pair_of_channels(4, act=nn.Tanh, shape=(1, 2, 2), kernel=(2, 2))
    res = worst_case(f, g, beta=1.0, time_limit=4, rng=0)
    assert res.upper_bound >= sampled_max(f, g, 4, 1.0) - 1e-9
    with pytest.raises(InvalidArgumentError, match="certificate"):
        worst_case(f, g, beta=1.0, time_limit=4, rng=0, certificate=tmp_path / "c.npz")
