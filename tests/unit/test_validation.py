"""One table of bad arguments for every public function (DESIGN.md, "Errors").

Each row calls a public function with one bad argument and expects the
documented exception class and a message that names the argument.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from coreset_verify import (
    Activation,
    AssumptionError,
    InvalidArgumentError,
    envelope,
    get_activation,
    layer_coreset,
    layer_sensitivities,
    neuron_coreset,
    output_sensitivities,
    phi_hi,
    phi_lo,
    register_activation,
    sample_size_for,
    theoretical_bound,
)

try:
    import torch
except ImportError:  # pragma: no cover - torch is optional
    torch = None

_gen = np.random.default_rng(20260101)
W_IN = _gen.normal(size=(6, 3))
B_IN = np.abs(_gen.normal(size=6)) + 0.1  # every neuron live on the ball
W_OUT = _gen.normal(size=(2, 6))
LAYER = {"W_in": W_IN, "b_in": B_IN, "W_out": W_OUT}
GOOD = {**LAYER, "sample_size": 5, "beta": 1.0, "rng": 0}
CORESET = layer_coreset(W_IN, B_IN, W_OUT, sample_size=50, beta=1.0, rng=0)
NEURON = {"points": W_IN, "weights": W_OUT[0], "sample_size": 5, "beta": 1.0}
SIZE = {**LAYER, "epsilon": 0.5, "delta": 0.1, "beta": 1.0}
SENS = {**LAYER, "beta": 1.0}
HI = {"W_in": W_IN, "b_in": B_IN, "beta": 1.0}


def _with(base, **changes):
    return {**base, **changes}


def _bad(a, index, value):
    a = np.array(a, dtype=np.float64, copy=True)
    a[index] = value
    return a


XFAIL: dict = {}  # id -> pytest.mark.xfail(strict=True, reason=...) for known bugs


def _rows():
    rows = []

    def add(fn, kwargs, exc, match, id):
        marks = [XFAIL[id]] if id in XFAIL else []
        rows.append(pytest.param(fn, kwargs, exc, match, id=id, marks=marks))

    IAE, AE = InvalidArgumentError, AssumptionError
    layer_fns = [
        (layer_coreset, GOOD),
        (layer_sensitivities, SENS),
        (output_sensitivities, SENS),
        (sample_size_for, SIZE),
    ]
    neuron_fns = [(phi_hi, HI), (phi_lo, HI), (envelope, HI)]
    # Non-finite weights, in each array, in each function.
    for fn, base in layer_fns + neuron_fns:
        for name, index in (("W_in", (1, 2)), ("b_in", (3,)), ("W_out", (1, 4))):
            if name not in base:
                continue
            for value, word in ((np.nan, "nan"), (np.inf, "inf"), (-np.inf, "-inf")):
                add(fn, _with(base, **{name: _bad(base[name], index, value)}), IAE,
                    name, f"{fn.__name__}({name}={word})")
    # Shapes.
    for fn, base in layer_fns + neuron_fns:
        add(fn, _with(base, b_in=B_IN[:-1]), IAE, "b_in", f"{fn.__name__}(b_in short)")
        add(fn, _with(base, W_in=W_IN[0]), IAE, "W_in", f"{fn.__name__}(W_in 1-D)")
        add(fn, _with(base, W_in=W_IN[:0]), IAE, "W_in", f"{fn.__name__}(W_in n=0)")
    for fn, base in layer_fns:
        add(fn, _with(base, W_out=W_OUT[:, :-1]), IAE, "W_out", f"{fn.__name__}(W_out n-1)")
        add(fn, _with(base, W_out=W_OUT[0]), IAE, "W_out", f"{fn.__name__}(W_out 1-D)")
    # Dtypes and backends.
    for fn, base in layer_fns + neuron_fns:
        add(fn, _with(base, W_in=W_IN.astype(np.int64)), IAE, "W_in",
            f"{fn.__name__}(W_in int64)")
        add(fn, _with(base, b_in=B_IN.astype(np.complex128)), IAE, "b_in",
            f"{fn.__name__}(b_in complex)")
        add(fn, _with(base, W_in=W_IN.astype(np.float32)), IAE, "W_in.*float32",
            f"{fn.__name__}(float32 W_in, float64 b_in)")
        if torch is not None:
            add(fn, _with(base, W_in=torch.as_tensor(W_IN)), IAE, "W_in=torch",
                f"{fn.__name__}(torch W_in, numpy rest)")
    # Radius, activation.
    for fn, base in layer_fns + neuron_fns:
        name = fn.__name__
        for beta, word in ((0.0, "0"), (-1.0, "-1"), (np.nan, "nan"), (np.inf, "inf"),
                           (True, "True"), ("1", "'1'")):
            add(fn, _with(base, beta=beta), IAE, "'beta'", f"{name}(beta={word})")
        add(fn, _with(base, activation="nope"), IAE, "activation", f"{name}(activation=nope)")
        add(fn, _with(base, activation="silu"), AE, "non-decreasing",
            f"{name}(activation=silu)")
    add(neuron_coreset, _with(NEURON, beta=0.0), IAE, "'beta'", "neuron_coreset(beta=0)")
    add(neuron_coreset, _with(NEURON, activation="silu"), AE, "non-decreasing",
        "neuron_coreset(activation=silu)")
    add(neuron_coreset, _with(NEURON, weights=W_OUT), IAE, "'weights'",
        "neuron_coreset(weights 2-D)")
    add(neuron_coreset, _with(NEURON, points=W_IN[0], weights=W_OUT[0, :3]), IAE, "'points'",
        "neuron_coreset(points 1-D)")
    add(neuron_coreset, _with(NEURON, weights=_bad(W_OUT[0], 2, np.nan)), IAE, "W_out",
        "neuron_coreset(weights=nan)")
    # sample_size, distinct, rng.
    for value, word in ((0, "0"), (-3, "-3"), (1.5, "1.5"), (True, "True"), ("5", "'5'"),
                        (np.float64(5.0), "np.float64(5)")):
        add(layer_coreset, _with(GOOD, sample_size=value), IAE, "'sample_size'",
            f"layer_coreset(sample_size={word})")
    add(neuron_coreset, _with(NEURON, sample_size=0), IAE, "'sample_size'",
        "neuron_coreset(sample_size=0)")
    add(layer_coreset, _with(GOOD, distinct=3), IAE, "sample_size.*distinct",
        "layer_coreset(sample_size and distinct)")
    add(layer_coreset, {k: v for k, v in GOOD.items() if k != "sample_size"}, IAE,
        "sample_size.*distinct", "layer_coreset(neither sample_size nor distinct)")
    no_m = {k: v for k, v in GOOD.items() if k != "sample_size"}
    for value in (0, 2.5, True):
        add(layer_coreset, _with(no_m, distinct=value), IAE, "'distinct'",
            f"layer_coreset(distinct={value})")
    add(layer_coreset, _with(no_m, distinct=7), IAE, "distinct=7", "layer_coreset(distinct>n)")
    add(layer_coreset, _with(no_m, distinct=2, split_signs=True), IAE, "distinct",
        "layer_coreset(distinct with split_signs)")
    add(layer_coreset, _with(GOOD, sample_size=1, split_signs=True), IAE, "'sample_size'",
        "layer_coreset(split_signs, sample_size=1)")
    add(layer_coreset, _with(GOOD, split_signs=1), IAE, "'split_signs'",
        "layer_coreset(split_signs=1)")
    add(layer_coreset, _with(GOOD, reduction="mean"), IAE, "'reduction'",
        "layer_coreset(reduction=mean)")
    add(layer_sensitivities, _with(SENS, reduction="mean"), IAE, "'reduction'",
        "layer_sensitivities(reduction=mean)")
    add(sample_size_for, _with(SIZE, reduction="mean"), IAE, "'reduction'",
        "sample_size_for(reduction=mean)")
    add(layer_coreset, _with(GOOD, max_draws=0), IAE, "'max_draws'",
        "layer_coreset(max_draws=0)")
    for rng, word in ((np.random.RandomState(0), "RandomState"), (-1, "-1"), (1.5, "1.5"),
                      ("0", "'0'"), (True, "True")):
        add(layer_coreset, _with(GOOD, rng=rng), IAE, "'rng'", f"layer_coreset(rng={word})")
    # All-zero layers: W_out zero, or every neuron dead on the ball.
    add(layer_coreset, _with(GOOD, W_out=np.zeros_like(W_OUT)), IAE, "all-zero",
        "layer_coreset(W_out=0)")
    add(layer_coreset, _with(GOOD, b_in=np.full(6, -100.0)), IAE, "all-zero",
        "layer_coreset(all dead)")
    add(layer_coreset, _with(GOOD, W_out=np.zeros_like(W_OUT), split_signs=True), IAE,
        "all-zero", "layer_coreset(W_out=0, split_signs)")
    add(layer_sensitivities, _with(SENS, W_out=np.zeros_like(W_OUT)), IAE, "all-zero",
        "layer_sensitivities(W_out=0)")
    add(sample_size_for, _with(SIZE, b_in=np.full(6, -100.0)), IAE, "all-zero",
        "sample_size_for(all dead)")
    # epsilon, delta, kind, form.
    for value, word in ((0.0, "0"), (1.0, "1"), (1.5, "1.5"), (-0.1, "-0.1"),
                        (np.nan, "nan"), (True, "True")):
        add(sample_size_for, _with(SIZE, epsilon=value), IAE, "'epsilon'",
            f"sample_size_for(epsilon={word})")
        add(sample_size_for, _with(SIZE, delta=value), IAE, "'delta'",
            f"sample_size_for(delta={word})")
        add(theoretical_bound, {"coreset": CORESET, "delta": value}, IAE, "'delta'",
            f"theoretical_bound(delta={word})")
    add(theoretical_bound, {"coreset": CORESET, "delta": 0.1, "kind": "worst"}, IAE,
        "'kind'", "theoretical_bound(kind=worst)")
    add(theoretical_bound, {"coreset": CORESET, "delta": 0.1, "form": "relative"}, IAE,
        "'form'", "theoretical_bound(form=relative)")
    add(theoretical_bound, {"coreset": (W_IN, B_IN, W_OUT), "delta": 0.1}, IAE,
        "'coreset'", "theoretical_bound(coreset=tuple)")
    add(theoretical_bound, {"coreset": CORESET, "delta": 0.1, "kind": "paper",
                            "paper_constant": 0.0}, IAE, "'paper_constant'",
        "theoretical_bound(paper_constant=0)")
    add(sample_size_for, _with(SIZE, kind="worst"), IAE, "'kind'", "sample_size_for(kind=worst)")
    add(sample_size_for, _with(SIZE, activation="silu"), AE, "non-decreasing",
        "sample_size_for(silu)")
    # The multiplicative uniform bound needs phi > 0: ReLU is not.
    add(theoretical_bound, {"coreset": CORESET, "delta": 0.1, "kind": "uniform",
                            "form": "multiplicative"}, AE, "positive",
        "theoretical_bound(relu, uniform multiplicative)")
    add(sample_size_for, _with(SIZE, kind="uniform", form="multiplicative"), AE, "positive",
        "sample_size_for(relu, uniform multiplicative)")
    add(sample_size_for, _with(SIZE, activation="tanh", kind="pointwise",
                               form="multiplicative"), AE, "non-negative",
        "sample_size_for(tanh, pointwise multiplicative)")
    _issue8_rows(add, layer_fns, neuron_fns)
    # Activations.
    add(get_activation, {"activation": "nope"}, IAE, "activation", "get_activation(nope)")
    add(get_activation, {"activation": 3}, IAE, "activation", "get_activation(3)")
    add(register_activation, {"activation": "relu"}, IAE, "Activation",
        "register_activation(str)")
    add(register_activation, {"activation": get_activation("relu")}, IAE,
        "already registered", "register_activation(duplicate)")
    add(Activation, {"name": "x", "function": lambda z, xp: z, "is_nondecreasing": True,
                     "is_nonnegative": True, "is_positive": True, "lipschitz": float("nan")},
        IAE, "lipschitz", "Activation(lipschitz=nan)")
    add(Activation, {"name": "x", "function": lambda z, xp: z, "is_nondecreasing": True,
                     "is_nonnegative": False, "is_positive": True, "lipschitz": 1.0},
        IAE, "is_positive", "Activation(positive, not nonnegative)")
    return rows


def _all_arrays(base, convert):
    return {k: convert(v) if k in ARRAY_NAMES else v for k, v in base.items()}


ARRAY_NAMES = ("W_in", "b_in", "W_out", "points", "weights")


def _issue8_rows(add, layer_fns, neuron_fns):
    """Rows of issue 8: dtypes, None, sparse/meta tensors, limits, huge numbers."""
    IAE = InvalidArgumentError
    for fn, base in layer_fns + neuron_fns:
        name = fn.__name__
        add(fn, _all_arrays(base, lambda a: a.astype(np.float16)), IAE, "W_in.*float64.*float16",
            f"{name}(float16)")
        add(fn, _with(base, W_in=W_IN.astype(bool)), IAE, "'W_in'.*bool", f"{name}(W_in bool)")
        add(fn, _with(base, b_in=B_IN.astype(object)), IAE, "'b_in'.*object",
            f"{name}(b_in object)")
        for array in ("W_in", "b_in", "W_out"):
            if array in base:
                add(fn, _with(base, **{array: None}), IAE, f"'{array}'.*None",
                    f"{name}({array}=None)")
        add(fn, _with(base, W_in=[[1.0, 2.0], [3.0]]), IAE, "'W_in'.*rectangular",
            f"{name}(W_in ragged list)")
        add(fn, _with(base, W_in=np.float64(1.0)), IAE, "'W_in'", f"{name}(W_in 0-d)")
        add(fn, _with(base, beta=10**400), IAE, "'beta'", f"{name}(beta=10**400)")
        add(fn, _with(base, beta=1e308), IAE, "reach", f"{name}(beta=1e308)")
        if torch is not None:
            for dtype in (torch.float16, torch.bfloat16):
                add(fn, _all_arrays(base, lambda a, d=dtype: torch.as_tensor(a, dtype=d)), IAE,
                    f"W_in.*{str(dtype)[6:]}", f"{name}(torch {dtype})")
            add(fn, _all_arrays(base, lambda a: torch.as_tensor(a).to_sparse()), IAE,
                "'W_in'.*dense", f"{name}(torch sparse)")
            add(fn, _all_arrays(base, lambda a: torch.empty(a.shape, device="meta")), IAE,
                "'W_in'.*meta", f"{name}(torch meta)")
    # NaN under split_signs: refused exactly as without it.
    for value, word in ((np.nan, "nan"), (np.inf, "inf")):
        add(layer_coreset, _with(GOOD, W_out=_bad(W_OUT, (1, 4), value), split_signs=True), IAE,
            r"layer_coreset: W_out must be finite; W_out\[1, 4\]",
            f"layer_coreset(split, W_out={word})")
    # Limits.
    for value, word in ((2**63, "2**63"), (2**53 + 1, "2**53+1")):
        add(layer_coreset, _with(GOOD, sample_size=value), IAE, "'sample_size'.*2\\*\\*53",
            f"layer_coreset(sample_size={word})")
        add(layer_coreset, _with(GOOD, sample_size=value, split_signs=True), IAE,
            "'sample_size'", f"layer_coreset(split, sample_size={word})")
    no_m = {k: v for k, v in GOOD.items() if k != "sample_size"}
    add(layer_coreset, _with(no_m, distinct=3, max_draws=2**60), IAE, "'max_draws'",
        "layer_coreset(max_draws=2**60)")
    add(sample_size_for, _with(SIZE, b_in=np.full(6, -100.0), split_signs=True), IAE,
        "all-zero", "sample_size_for(all dead, split_signs)")
    add(sample_size_for, _with(SIZE, split_signs=1), IAE, "'split_signs'.*sample_size_for",
        "sample_size_for(split_signs=1)")
    add(sample_size_for, _with(SIZE, kind=None), IAE, "'kind'.*sample_size_for",
        "sample_size_for(kind=None)")
    add(sample_size_for, _with(SIZE, delta=10**400), IAE, "'delta'",
        "sample_size_for(delta=10**400)")
    for arg in ("paper_constant", "paper_dimension"):
        add(theoretical_bound, {"coreset": CORESET, "delta": 0.1, "kind": "paper", arg: 10**400},
            IAE, f"'{arg}'", f"theoretical_bound({arg}=10**400)")
        add(sample_size_for, _with(SIZE, kind="paper", **{arg: float("nan")}), IAE, f"'{arg}'",
            f"sample_size_for({arg}=nan)")
    add(theoretical_bound, {"coreset": None, "delta": 0.1}, IAE, "'coreset'",
        "theoretical_bound(coreset=None)")
    add(neuron_coreset, _with(NEURON, weights=None), IAE, "'weights'.*None",
        "neuron_coreset(weights=None)")
    add(neuron_coreset, _with(NEURON, points=None), IAE, "'points'.*None",
        "neuron_coreset(points=None)")
    add(neuron_coreset, _with(NEURON, points=[[1.0], [2.0, 3.0]]), IAE, "'points'",
        "neuron_coreset(points ragged)")
    if torch is not None:
        add(neuron_coreset, _with(NEURON, points=torch.as_tensor(W_IN).to_sparse(),
                                  weights=torch.as_tensor(W_OUT[0])), IAE, "'points'.*dense",
            "neuron_coreset(points sparse)")
        add(neuron_coreset, _with(NEURON, points=torch.empty(6, 3, device="meta"),
                                  weights=torch.empty(6, device="meta")), IAE, "'points'.*meta",
            "neuron_coreset(points meta)")


ROWS = _rows()


@pytest.mark.parametrize(("fn", "kwargs", "exc", "match"), ROWS)
def test_bad_argument_raises_documented_error(fn, kwargs, exc, match):
    with pytest.raises(exc, match=match) as info:
        fn(**kwargs)
    # InvalidArgumentError is a ValueError; AssumptionError is one of those.
    assert isinstance(info.value, ValueError)
    if exc is InvalidArgumentError:
        assert not isinstance(info.value, AssumptionError), str(info.value)


def test_table_covers_every_public_function():
    called = {p.values[0].__name__ for p in ROWS}
    assert called >= {
        "layer_coreset", "neuron_coreset", "theoretical_bound", "sample_size_for",
        "layer_sensitivities", "phi_hi", "phi_lo", "envelope", "output_sensitivities",
        "get_activation", "register_activation",
    }


def test_distinct_above_live_neurons_fails_fast():
    # Two of six neurons are dead on the ball: distinct=5 cannot be reached.
    b_in = B_IN.copy()
    b_in[:2] = -100.0
    start = time.perf_counter()
    with pytest.raises(InvalidArgumentError, match="distinct=5"):
        layer_coreset(W_IN, b_in, W_OUT, distinct=5, beta=1.0, rng=0)
    assert time.perf_counter() - start < 1.0


def test_distinct_unreachable_by_max_draws_stops():
    # A live neuron of tiny probability: max_draws stops the loop with an error.
    W_out = W_OUT.copy()
    W_out[:, 0] = 1e-12
    start = time.perf_counter()
    with pytest.raises(InvalidArgumentError, match="distinct=6"):
        layer_coreset(W_IN, B_IN, W_out, distinct=6, beta=1.0, rng=0, max_draws=1000)
    assert time.perf_counter() - start < 1.0


# --------------------------------------------------------------------------
# The shared helpers themselves (issue 8, "one argument layer")
# --------------------------------------------------------------------------


def test_helpers_accept_what_they_should():
    from coreset_verify._validation import (
        check_bool,
        check_float_dtype,
        check_open_unit,
        check_option,
        check_positive,
        check_unknown_options,
    )

    assert check_option(np.str_("uniform"), "kind", "f", ("uniform", "pointwise")) == "uniform"
    assert check_bool(np.True_, "flag", "f") is True
    for dtype in (np.float32, np.dtype("float64"), "float32"):
        check_float_dtype(dtype, "W_in", "f")
    if torch is not None:
        check_float_dtype(torch.float32, "W_in", "f")
        check_float_dtype(torch.float64, "W_in", "f")
    assert check_positive(10**300, "beta", "f") == 1e300
    assert check_open_unit(5e-324, "delta", "f") == 5e-324
    check_unknown_options({"a": 1}, ("a", "b"), "f")


@pytest.mark.parametrize(("call", "match"), [
    pytest.param(lambda v: v.check_positive(10**400, "beta", "f"), "'beta' parameter of f",
                 id="check_positive(10**400)"),
    pytest.param(lambda v: v.check_positive(10**5000, "beta", "f"), "'beta' parameter of f",
                 id="check_positive(10**5000)"),
    pytest.param(lambda v: v.check_positive(-(10**400), "beta", "f"), "'beta'",
                 id="check_positive(-10**400)"),
    pytest.param(lambda v: v.check_open_unit(float("nan"), "delta", "f"), "'delta'",
                 id="check_open_unit(nan)"),
    pytest.param(lambda v: v.check_open_unit(10**400, "delta", "f"), "'delta'",
                 id="check_open_unit(10**400)"),
    pytest.param(lambda v: v.check_bool(1, "flag", "f"), "'flag' parameter of f must be True",
                 id="check_bool(1)"),
    pytest.param(lambda v: v.check_bool("yes", "flag", "f"), "'flag'", id="check_bool(yes)"),
    pytest.param(lambda v: v.check_option(True, "m", "f", (1, 2)), "one of 1, 2",
                 id="check_option(True)"),
    pytest.param(lambda v: v.check_option([1], "m", "f", (1, 2)), "'m'", id="check_option(list)"),
    pytest.param(lambda v: v.check_float_dtype(np.float16, "W_in", "f"),
                 "'W_in' parameter of f must be a float32 or float64", id="float16"),
    pytest.param(lambda v: v.check_float_dtype(np.complex64, "W_in", "f"), "complex64",
                 id="complex64"),
    pytest.param(lambda v: v.check_float_dtype(np.int32, "W_in", "f"), "int32", id="int32"),
    pytest.param(lambda v: v.check_float_dtype(object, "W_in", "f"), "object", id="object"),
    pytest.param(lambda v: v.check_unknown_options({"tim_limit": 1}, ("time_limit",), "f"),
                 "f got unknown option.*'tim_limit'.*'time_limit'", id="unknown option"),
    pytest.param(lambda v: v.check_unknown_options(["a"], ("a",), "f"), "'options'",
                 id="options not a mapping"),
])
def test_helpers_refuse_with_the_template(call, match):
    from coreset_verify import _validation

    with pytest.raises(InvalidArgumentError, match=match):
        call(_validation)
