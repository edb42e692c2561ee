"""Bad arguments raise InvalidArgumentError naming the argument."""

from __future__ import annotations

import pytest
from _search_helpers import nn, tiny_pair

from coreset_verify.errors import InvalidArgumentError
from coreset_verify.search import worst_case

F, G = tiny_pair(0, d=2, n_f=3, n_g=2, k=2)
WIDE = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 2))
NARROW_OUT = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
CONV = nn.Sequential(nn.Linear(2, 4), nn.Conv1d(1, 1, 1))
BAD = [
    pytest.param({}, "needs a domain", id="worst_case(no domain)"),
    pytest.param({"beta": 0.0}, "beta must be a positive", id="worst_case(beta=0)"),
    pytest.param({"beta": -1.0}, "beta must be a positive", id="worst_case(beta=-1)"),
    pytest.param({"beta": float("nan")}, "beta", id="worst_case(beta=nan)"),
    pytest.param({"lower": 1.0, "upper": 0.0}, "lower must be <= upper",
                 id="worst_case(lower>upper)"),
    pytest.param({"lower": -1.0}, "given together", id="worst_case(lower only)"),
    pytest.param({"lower": [0, 0, 0], "upper": 1.0}, r"shape \(2,\)",
                 id="worst_case(lower wrong length)"),
    pytest.param({"beta": 0.1, "lower": 1.0, "upper": 2.0}, "does not meet",
                 id="worst_case(empty ball and box)"),
    pytest.param({"beta": 1.0, "scale": [1.0, 0.0]}, "scale must be positive",
                 id="worst_case(scale=0)"),
    pytest.param({"beta": 1.0, "scale": [1.0, 1.0, 1.0]}, r"scale must have shape",
                 id="worst_case(scale wrong length)"),
    pytest.param({"beta": 1.0, "method": "magic"}, "method must be one of",
                 id="worst_case(method=magic)"),
    pytest.param({"beta": 1.0, "time_limit": 0}, "time_limit",
                 id="worst_case(time_limit=0)"),
    pytest.param({"beta": 1.0, "restarts": -1}, "restarts",
                 id="worst_case(restarts=-1)"),
    pytest.param({"beta": 1.0, "pruned": WIDE}, "same input dimension",
                 id="worst_case(input mismatch)"),
    pytest.param({"beta": 1.0, "pruned": NARROW_OUT}, "same output dimension",
                 id="worst_case(output mismatch)"),
    pytest.param({"beta": 1.0, "pruned": CONV}, "unsupported layer .* Conv1d",
                 id="worst_case(Conv1d)"),
    pytest.param({"beta": 1.0, "pruned": "net"}, "pruned must be a torch.nn.Module",
                 id="worst_case(pruned=str)"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD)
def test_bad_arguments_raise(kwargs, message):
    kwargs = dict(kwargs)
    pruned = kwargs.pop("pruned", G)
    with pytest.raises(InvalidArgumentError, match=message):
        worst_case(F, pruned, **kwargs)
