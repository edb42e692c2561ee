"""Time limits on networks too large for one evaluation (conv networks read as
dense maps), and the chunked range bounds that keep them (deep.py's
``CHUNK_WORK``, gradient.py's ``STEP_WORK``, exact.py's ``BUILD_ROWS``).

The truth for the small pairs is test_deep.py's dense grid of the 2-D domain,
evaluated with the torch modules themselves; for the conv pair it is sampled
inputs of the ball.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from _search_helpers import torch
from test_deep import deep_nets, domain_kwargs, grid
from test_deep_certificate import grid_max, write
from torch import nn

from coreset_verify import InvalidArgumentError, prune_network, worst_case
from coreset_verify.certificate import check
from coreset_verify.search import deep
from coreset_verify.search._intervals import interval_bounds
from coreset_verify.search._problem import make_problem
from coreset_verify.search._result import TIME_LIMIT


def test_ranges_bounded_a_neuron_at_a_time_give_a_certificate_the_checker_accepts(
        tmp_path, monkeypatch):
    """Chunks of one neuron: the cached range multipliers are assembled from
    every chunk, so the certificate's range proofs must still check (ball and
    box: every kind of multiplier)."""
    f, g = deep_nets(2, wf=(4, 4, 3), wg=(3, 3))
    monkeypatch.setattr(deep, "CHUNK_WORK", 1)
    monkeypatch.setattr(deep, "ROOT_STEPS", 30)  # ten chunks of 300 steps: slow
    problem = make_problem(f, g, **domain_kwargs("both"), scale=None)
    tt = deep._Torch(deep.deep_pair(problem, interval_bounds(problem).pre0), "cpu")
    assert len(deep._chunks(tt, 0, 2, 1)) == 3  # really one neuron per chunk
    path, out = write(tmp_path, f, g, "both", max_nodes=16)
    result = check(path, f, g, **{k: v for k, v in domain_kwargs("both").items()
                                   if v is not None})
    assert result.upper_bound == out.upper_bound >= grid_max(f, g, "both")


def _expired(f, g, kind: str, keep_leaves: bool):
    problem = make_problem(f, g, **domain_kwargs(kind), scale=None)
    return deep.deep_branch_and_bound(problem, interval_bounds(problem).pre0,
                                      deadline=time.perf_counter() - 1.0,
                                      keep_leaves=keep_leaves)


@pytest.mark.parametrize("kind", ["ball", "box", "both"])
def test_a_root_out_of_time_falls_back_to_sound_interval_ranges(monkeypatch, kind):
    f, g = deep_nets(1, wf=(6, 4), wg=(3, 2), act="leaky")
    monkeypatch.setattr(deep, "CHUNK_WORK", 1)
    out = _expired(f, g, kind, keep_leaves=False)
    assert out.status == TIME_LIMIT
    assert math.isfinite(out.upper_bound)
    assert out.upper_bound >= grid_max(f, g, kind)
    x = torch.as_tensor(grid(kind, 101))
    with torch.no_grad():
        assert float((f(x) - g(x)).abs().max()) <= out.upper_bound


def test_a_certificate_needs_its_root_bounded_in_time(tmp_path, monkeypatch):
    f, g = deep_nets(1, wf=(6, 4), wg=(3, 2))
    monkeypatch.setattr(deep, "CHUNK_WORK", 1)
    out = _expired(f, g, "ball", keep_leaves=True)
    assert out.status == TIME_LIMIT
    assert out.upper_bound == math.inf
    assert out.leaves is None
    path = tmp_path / "c.npz"
    with pytest.raises(InvalidArgumentError, match=r"time_limit.*root"):
        worst_case(f, g, beta=1.5, method="bab", time_limit=1e-3, rng=0, certificate=path)
    assert not path.exists()


def lenet5(seed: int) -> nn.Sequential:
    """LeNet-5 on flat 784-vectors: one of its maxpool layers, read as a dense
    ReLU layer, is 5184 x 3456, so its root ranges come in about 400 chunks."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)), nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(256, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10)).double().eval()


def test_a_lenet5_pair_keeps_its_time_limit_and_its_bracket_is_true():
    """Before the chunks, a 20 s limit took 270 s to 500 s here (the first
    evaluation of each stage on the dense conv maps was not interruptible)."""
    f = lenet5(0)
    g = prune_network(f, beta=15.0, keep={"params": 0.5}, rng=0).model
    limit = 8.0
    res = worst_case(f, g, beta=15.0, time_limit=limit, rng=0)
    assert res.seconds <= limit + 15.0  # generous: a limit, not a speed test
    assert res.status == TIME_LIMIT
    assert [st.name for st in res.trace][:2] == ["gradient", "region"]
    assert res.error <= res.upper_bound < math.inf
    rng = np.random.default_rng(1)
    x = rng.standard_normal((256, 784))
    x *= 15.0 * rng.random((256, 1)) ** (1 / 784) / np.linalg.norm(x, axis=1, keepdims=True)
    with torch.no_grad():
        gap = (f(torch.as_tensor(x)) - g(torch.as_tensor(x))).abs().max()
    assert float(gap) <= res.upper_bound
