"""Bad arguments raise InvalidArgumentError naming the function and the argument."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from _search_helpers import nn, tiny_pair, torch

from coreset_verify.errors import InvalidArgumentError
from coreset_verify.search import MAX_RESTARTS, MAX_STARTS, verify, worst_case

F, G = tiny_pair(0, d=2, n_f=3, n_g=2, k=2)
WIDE = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 2))
NARROW_OUT = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
CONV = nn.Sequential(nn.Linear(2, 4), nn.Conv1d(1, 1, 1))
BROKEN = nn.Sequential(nn.Linear(2, 6), nn.ReLU(), nn.Linear(7, 2))  # widths do not chain
WIDE_INPUT = nn.Sequential(nn.Linear(2000, 2), nn.ReLU(), nn.Linear(2, 2)).double()


def arg(name: str, func: str = "worst_case") -> str:
    """The start of the standard message for argument ``name`` of ``func``."""
    return f"The '{name}' parameter of {func} must be"


BAD = [
    pytest.param({}, arg("beta"), id="worst_case(no domain)"),
    pytest.param({"beta": 0.0}, arg("beta"), id="worst_case(beta=0)"),
    pytest.param({"beta": -1.0}, arg("beta"), id="worst_case(beta=-1)"),
    pytest.param({"beta": float("nan")}, arg("beta"), id="worst_case(beta=nan)"),
    pytest.param({"beta": 10**400}, arg("beta"), id="worst_case(beta=10**400)"),
    pytest.param({"beta": "1"}, arg("beta"), id="worst_case(beta=str)"),
    pytest.param({"lower": 1.0, "upper": 0.0}, arg("lower"), id="worst_case(lower>upper)"),
    pytest.param({"lower": -1.0}, arg("upper"), id="worst_case(lower only)"),
    pytest.param({"lower": [0, 0, 0], "upper": 1.0}, arg("lower") + r".*shape \(2,\)",
                 id="worst_case(lower wrong length)"),
    pytest.param({"lower": -np.inf, "upper": 1.0}, arg("lower"), id="worst_case(lower=-inf)"),
    pytest.param({"beta": 0.1, "lower": 1.0, "upper": 2.0}, arg("beta") + ".*meets the box",
                 id="worst_case(empty ball and box)"),
    pytest.param({"beta": 1.0, "scale": [1.0, 0.0]}, arg("scale"), id="worst_case(scale=0)"),
    pytest.param({"beta": 1.0, "scale": [1.0, 1.0, 1.0]}, arg("scale"),
                 id="worst_case(scale wrong length)"),
    pytest.param({"beta": 1.0, "scale": [1.0, np.nan]}, arg("scale"),
                 id="worst_case(scale=nan)"),
    pytest.param({"beta": 1.0, "method": "magic"}, arg("method"), id="worst_case(method=magic)"),
    pytest.param({"beta": 1.0, "method": None}, arg("method"), id="worst_case(method=None)"),
    pytest.param({"beta": 1.0, "time_limit": 0}, arg("time_limit"),
                 id="worst_case(time_limit=0)"),
    pytest.param({"beta": 1.0, "time_limit": -1.0}, arg("time_limit"),
                 id="worst_case(time_limit=-1)"),
    pytest.param({"beta": 1.0, "time_limit": float("nan")}, arg("time_limit"),
                 id="worst_case(time_limit=nan)"),
    pytest.param({"beta": 1.0, "time_limit": float("inf")}, arg("time_limit"),
                 id="worst_case(time_limit=inf)"),
    pytest.param({"beta": 1.0, "time_limit": 10**400}, arg("time_limit"),
                 id="worst_case(time_limit=10**400)"),
    pytest.param({"beta": 1.0, "time_limit": True}, arg("time_limit"),
                 id="worst_case(time_limit=True)"),
    pytest.param({"beta": 1.0, "restarts": -1}, arg("restarts"), id="worst_case(restarts=-1)"),
    pytest.param({"beta": 1.0, "restarts": 2.5}, arg("restarts"), id="worst_case(restarts=2.5)"),
    pytest.param({"beta": 1.0, "restarts": MAX_RESTARTS + 1}, arg("restarts"),
                 id="worst_case(restarts=MAX+1)"),
    pytest.param({"beta": 1.0, "restarts": 10**12}, arg("restarts"),
                 id="worst_case(restarts=10**12)"),
    pytest.param({"beta": 1.0, "rng": -1}, arg("rng"), id="worst_case(rng=-1)"),
    pytest.param({"beta": 1.0, "rng": "seed"}, arg("rng"), id="worst_case(rng=str)"),
    pytest.param({"beta": 1.0, "progress": 5}, arg("progress"), id="worst_case(progress=5)"),
    pytest.param({"beta": 1.0, "starts": np.zeros((MAX_STARTS + 1, 2))}, arg("starts"),
                 id="worst_case(starts too many)"),
    pytest.param({"beta": 1.0, "starts": [["a", "b"]]}, arg("starts"),
                 id="worst_case(starts=str)"),
    pytest.param({"beta": 1.0, "pruned": WIDE}, "worst_case.*same input dimension",
                 id="worst_case(input mismatch)"),
    pytest.param({"beta": 1.0, "pruned": NARROW_OUT}, "worst_case.*same output dimension",
                 id="worst_case(output mismatch)"),
    pytest.param({"beta": 1.0, "pruned": CONV}, "worst_case.*Conv1d",
                 id="worst_case(Conv1d)"),
    pytest.param({"beta": 1.0, "pruned": BROKEN}, r"'pruned\[2\]' parameter of worst_case",
                 id="worst_case(widths do not chain)"),
    pytest.param({"beta": 1.0, "pruned": "net"}, arg("pruned"), id="worst_case(pruned=str)"),
    pytest.param({"beta": 1.0, "pruned": None}, arg("pruned"), id="worst_case(pruned=None)"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD)
def test_bad_arguments_raise(kwargs, message):
    kwargs = dict(kwargs)
    pruned = kwargs.pop("pruned", G)
    with pytest.raises(InvalidArgumentError, match=message):
        worst_case(F, pruned, **kwargs)


def test_batch_of_starts_is_bounded_before_allocation():
    # (directions + restarts) * d = (5 + 100_000) * 2000 > 2**26 entries: refused at
    # once, naming restarts, instead of allocating gigabytes.
    with pytest.raises(InvalidArgumentError, match=arg("restarts") + ".*restarts"):
        worst_case(WIDE_INPUT, WIDE_INPUT, beta=1.0, restarts=MAX_RESTARTS)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["float16", "bfloat16"])
@pytest.mark.parametrize("which", ["original", "pruned"])
def test_half_precision_models_are_refused(dtype, which):
    half = tiny_pair(0, d=2, n_f=3, n_g=2, k=2)[0].to(dtype)
    nets = {"original": F, "pruned": G, which: half}
    with pytest.raises(InvalidArgumentError, match=rf"'{which}\[0\]\.weight' parameter of "
                       "worst_case must be .*float32 or float64"):
        worst_case(nets["original"], nets["pruned"], beta=1.0, method="gradient")


@pytest.fixture(scope="module")
def result():
    return worst_case(F, G, beta=1.0, method="gradient", rng=0)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(lambda r: verify(r, None, None), arg("original", "verify"),
                     id="verify(nets=None)"),
        pytest.param(lambda r: verify(r, F, "net"), arg("pruned", "verify"),
                     id="verify(pruned=str)"),
        pytest.param(lambda r: verify(r, F, copy.deepcopy(G).to(torch.float16)),
                     r"'pruned\[0\]\.weight' parameter of verify",
                     id="verify(pruned=float16)"),
        pytest.param(lambda r: verify(r, F, BROKEN), r"'pruned\[2\]' parameter of verify",
                     id="verify(widths do not chain)"),
        pytest.param(lambda r: verify({"x": 0}, F, G), arg("result", "verify"),
                     id="verify(result=dict)"),
        pytest.param(lambda r: verify(r, F, G, rtol=-1.0), arg("rtol", "verify"),
                     id="verify(rtol=-1)"),
        pytest.param(lambda r: verify(r, F, G, atol=float("nan")), arg("atol", "verify"),
                     id="verify(atol=nan)"),
    ],
)
def test_verify_raises_only_for_bad_arguments(result, call, message):
    # verify documents exactly these errors; a wrong *result* gives False instead.
    with pytest.raises(InvalidArgumentError, match=message):
        call(result)
