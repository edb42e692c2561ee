"""check_guarantee: the verdict never claims what the search did not prove."""

import math

import numpy as np
import pytest

from coreset_verify import InvalidArgumentError, layer_coreset
from coreset_verify.counterexamples import replay
from coreset_verify.verdict import HOLDS, NOT_REFUTED, VIOLATED, _verdict, check_guarantee


def tiny_layer(seed=0, n=8, d=3, k=2):
    gen = np.random.default_rng(seed)
    return gen.normal(size=(n, d)), 0.2 * gen.normal(size=n), gen.normal(size=(k, n))


@pytest.mark.parametrize(
    ("found", "certified", "epsilon", "expected"),
    [
        (0.5, 0.8, 1.0, HOLDS),
        (0.5, 1.0, 1.0, HOLDS),  # certified exactly at the claim: still proved
        (0.5, 1.2, 1.0, NOT_REFUTED),
        (0.5, math.inf, 1.0, NOT_REFUTED),
        (1.0 + 1e-12, 2.0, 1.0, NOT_REFUTED),  # within float slack: not a violation
        (1.1, 2.0, 1.0, VIOLATED),
    ],
)
def test_verdict_rules(found, certified, epsilon, expected):
    assert _verdict(found, certified, epsilon) == expected


def test_small_constant_is_violated_and_saved(tmp_path):
    layer = tiny_layer(1)
    coreset = layer_coreset(*layer, sample_size=4, beta=1.0, rng=3)
    result = check_guarantee(*layer, coreset, delta=0.1, kind="paper", paper_constant=1e-6,
                             time_limit=10, rng=0, counterexample_dir=tmp_path, name="tiny",
                             metadata={"seed": 3})
    assert result.verdict == VIOLATED
    assert result.found > result.epsilon
    assert result.tightness == pytest.approx(result.found / result.epsilon)
    replayed = replay(result.counterexample)
    assert replayed.reproduced
    assert replayed.same_coreset is True


def test_sound_bound_holds_on_tiny_layer():
    layer = tiny_layer(2)
    coreset = layer_coreset(*layer, sample_size=50, beta=1.0, rng=0)
    result = check_guarantee(*layer, coreset, delta=0.1, kind="uniform", time_limit=10, rng=0)
    # The exact search closes the bracket on 8 neurons; the theorem is far above it.
    assert result.worst_case.certified
    assert result.verdict == HOLDS
    assert result.found <= result.certified <= result.epsilon


def test_data_error_is_below_worst_case():
    layer = tiny_layer(3)
    coreset = layer_coreset(*layer, sample_size=6, beta=1.0, rng=1)
    gen = np.random.default_rng(0)
    data = gen.normal(size=(200, 3))
    data /= np.maximum(1.0, np.linalg.norm(data, axis=1))[:, None]  # inside the ball
    result = check_guarantee(*layer, coreset, delta=0.1, time_limit=10, rng=0, data=data)
    assert result.data_error <= result.found * (1 + 1e-9)


def test_search_result_is_reused_for_other_claims():
    layer = tiny_layer(4)
    coreset = layer_coreset(*layer, sample_size=6, beta=1.0, rng=1)
    first = check_guarantee(*layer, coreset, delta=0.1, kind="uniform", time_limit=10, rng=0)
    second = check_guarantee(*layer, coreset, delta=0.1, kind="pointwise",
                             search_result=first.worst_case)
    assert second.worst_case is first.worst_case
    assert second.found == first.found


def test_search_result_of_another_layer_is_refused():
    layer, other = tiny_layer(5), tiny_layer(6)
    c1 = layer_coreset(*layer, sample_size=6, beta=1.0, rng=1)
    c2 = layer_coreset(*other, sample_size=6, beta=1.0, rng=1)
    first = check_guarantee(*layer, c1, delta=0.1, time_limit=5, method="gradient", rng=0)
    with pytest.raises(InvalidArgumentError, match="search_result"):
        check_guarantee(*other, c2, delta=0.1, search_result=first.worst_case)


def test_coreset_of_another_layer_is_refused():
    layer, other = tiny_layer(7), tiny_layer(8)
    coreset = layer_coreset(*other, sample_size=6, beta=1.0, rng=1)
    with pytest.raises(InvalidArgumentError, match="coreset"):
        check_guarantee(*layer, coreset, delta=0.1, time_limit=5)


def exact_worst_1d(layer, pruned, beta):
    """``max_x |F_i(x) - F~_i(x)|`` per output over ``[-beta, beta]`` for a ReLU pair
    with d = 1, exactly: both are piecewise linear, so the maximum is at an end or a
    breakpoint ``-b_j / w_j`` (computed here, independently of the package)."""
    xs = [-beta, beta]
    for W, b in ((layer[0], layer[1]), (pruned[0], pruned[1])):
        xs += [-bj / wj for wj, bj in zip(W[:, 0], b, strict=True)
               if wj != 0 and abs(bj / wj) <= beta]
    x = np.array(xs)[:, None]

    def forward(W, b, V):
        return np.maximum(x @ W.T + b, 0.0) @ V.T

    return np.abs(forward(*layer) - forward(*pruned)).max(axis=0)


def test_all_zero_output_row_is_accepted():
    # Output 1 is 0 everywhere (T_1 = 0): theoretical_bound handles it and so must
    # check_guarantee; the row carries no error and the verdict is on output 0.
    W_in, b_in, W_out = tiny_layer(9)
    W_out[1] = 0.0
    coreset = layer_coreset(W_in, b_in, W_out, sample_size=4, beta=1.0, rng=0)
    result = check_guarantee(W_in, b_in, W_out, coreset, delta=0.1, time_limit=10, rng=0)
    assert result.bound.scale[1] == 0.0
    assert result.worst_case.certified
    assert result.found <= result.certified * (1 + 1e-9)


def test_dead_neuron_row_is_accepted():
    # Output 1 reads only a neuron that is 0 on the ball (ReLU, b + beta ||w|| < 0).
    W_in, b_in, W_out = tiny_layer(10)
    b_in[0] = -10.0 - np.linalg.norm(W_in[0])
    W_out[1] = 0.0
    W_out[1, 0] = 3.0
    coreset = layer_coreset(W_in, b_in, W_out, sample_size=4, beta=1.0, rng=0)
    result = check_guarantee(W_in, b_in, W_out, coreset, delta=0.1, time_limit=10, rng=0)
    assert result.bound.scale[1] == 0.0
    assert result.found <= result.certified * (1 + 1e-9)


@pytest.mark.parametrize("dtype", [np.float16], ids=["float16"])
def test_half_precision_layer_is_refused(dtype):
    layer = tiny_layer(11)
    coreset = layer_coreset(*layer, sample_size=4, beta=1.0, rng=0)
    half = tuple(a.astype(dtype) for a in layer)
    with pytest.raises(InvalidArgumentError, match=r"check_guarantee.*float32 or float64"):
        check_guarantee(*half, coreset, delta=0.1, time_limit=5)


@pytest.mark.parametrize("scale", [1.0, 1e-300, 2.0**-1000, 1e200],
                         ids=["1", "1e-300", "2^-1000", "1e200"])
def test_extreme_first_layer_bracket_holds_the_true_worst_error(scale):
    # A 1-D ReLU layer scaled by 1e-300: squared norms underflow. The worst error
    # in units of the bound's scale, computed exactly above, must lie in the
    # bracket [found, certified], or check_guarantee raises a documented error.
    # ReLU is positively homogeneous, so the scale changes neither T_i / scale
    # nor the worst error in units of T_i: the bracket must close at every scale
    # (the search's programs are solved on a copy rescaled by powers of two).
    gen = np.random.default_rng(1)
    W_in, b_in, W_out = gen.normal(size=(6, 1)), 0.3 * gen.normal(size=6), gen.normal(size=(2, 6))
    layer = (W_in * scale, b_in * scale, W_out)
    coreset = layer_coreset(*layer, sample_size=3, beta=1.0, rng=0)
    try:
        result = check_guarantee(*layer, coreset, delta=0.1, time_limit=10, rng=0)
    except InvalidArgumentError:
        return
    pruned = tuple(np.asarray(a, dtype=np.float64) for a in coreset.pruned())
    true = float(np.max(exact_worst_1d(layer, pruned, 1.0) / result.bound.scale))
    assert result.found <= true * (1 + 1e-9)
    assert true <= result.certified * (1 + 1e-9)
    true_scale = np.abs(W_out) @ np.maximum(np.abs(layer[0][:, 0]) + layer[1], 0.0)
    np.testing.assert_allclose(result.bound.scale, true_scale, rtol=1e-12, atol=0)
    assert result.worst_case.certified


LAYER = tiny_layer(12)
CORESET = layer_coreset(*LAYER, sample_size=4, beta=1.0, rng=0)


def arg(name: str) -> str:
    return f"The '{name}' parameter of check_guarantee must be"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"delta": 0.0}, arg("delta"), id="check_guarantee(delta=0)"),
        pytest.param({"delta": float("nan")}, arg("delta"), id="check_guarantee(delta=nan)"),
        pytest.param({"kind": "magic"}, arg("kind"), id="check_guarantee(kind=magic)"),
        pytest.param({"method": "magic"}, arg("method"), id="check_guarantee(method=magic)"),
        pytest.param({"time_limit": 0}, arg("time_limit"), id="check_guarantee(time_limit=0)"),
        pytest.param({"time_limit": 10**400}, arg("time_limit"),
                     id="check_guarantee(time_limit=10**400)"),
        pytest.param({"time_limit": float("inf")}, arg("time_limit"),
                     id="check_guarantee(time_limit=inf)"),
        pytest.param({"rng": -1}, arg("rng"), id="check_guarantee(rng=-1)"),
        pytest.param({"paper_constant": -1.0}, arg("paper_constant"),
                     id="check_guarantee(paper_constant=-1)"),
        pytest.param({"name": "../x"}, arg("name"), id="check_guarantee(name=../x)"),
        pytest.param({"progress": 3}, arg("progress"), id="check_guarantee(progress=3)"),
        pytest.param({"metadata": [1]}, arg("metadata"), id="check_guarantee(metadata=list)"),
        pytest.param({"data": np.zeros((2, 5))}, arg("data"), id="check_guarantee(data shape)"),
        pytest.param({"data": np.full((1, 3), np.nan)}, arg("data"),
                     id="check_guarantee(data=nan)"),
        pytest.param({"coreset": "c"}, arg("coreset"), id="check_guarantee(coreset=str)"),
        pytest.param({"search_result": 1}, arg("search_result"),
                     id="check_guarantee(search_result=1)"),
    ],
)
def test_bad_arguments_name_check_guarantee(kwargs, message):
    kwargs = {"delta": 0.1, "time_limit": 5, "method": "gradient", **kwargs}
    coreset = kwargs.pop("coreset", CORESET)
    with pytest.raises(InvalidArgumentError, match=message):
        check_guarantee(*LAYER, coreset, **kwargs)


def test_zero_scale_on_a_live_output_is_refused():
    # A scale T_1 = 0 (say from an underflow) on an output that is not 0 on the ball
    # would make the claim eps * T_1 = 0 and drop the row from the search: refused.
    from coreset_verify.counterexamples import LayerPair
    from coreset_verify.verdict import _live_outputs

    W_in, b_in, W_out = tiny_layer(13)
    layer = LayerPair(W_in, b_in, W_out)
    pruned = LayerPair(W_in[:3], b_in[:3], W_out[:, :3] * 2.0)
    relu = layer_coreset(W_in, b_in, W_out, sample_size=4, beta=1.0, rng=0).activation
    with pytest.raises(InvalidArgumentError, match=r"'W_in' parameter of check_guarantee.*T_1"):
        _live_outputs("check_guarantee", layer, pruned, np.array([1.0, 0.0]), 1.0, relu)
    zero = LayerPair(W_in, b_in, np.vstack([W_out[0], np.zeros(8)]))
    zero_pruned = LayerPair(W_in[:3], b_in[:3], np.vstack([W_out[0, :3], np.zeros(3)]))
    live = _live_outputs("check_guarantee", zero, zero_pruned, np.array([1.0, 0.0]), 1.0, relu)
    assert live.tolist() == [True, False]


hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies


@hypothesis.settings(max_examples=15, deadline=None, derandomize=True,
                     suppress_health_check=list(hypothesis.HealthCheck))
@hypothesis.given(seed=st.integers(0, 2**32 - 1), e_in=st.integers(-900, 900),
                  e_out=st.integers(-900, 900), e_beta=st.integers(-300, 300),
                  k=st.sampled_from([1, 2]), m=st.sampled_from([2, 5]))
def test_verdict_bracket_is_true_at_every_scale(seed, e_in, e_out, e_beta, k, m):
    # 1-D ReLU layers with W_in, b_in scaled by 2**e_in, W_out by 2**e_out and the
    # ball by 2**e_beta: check_guarantee either raises a documented error or returns
    # T and a bracket [found, certified] that hold the exact worst error (computed
    # in extended precision above).
    hypothesis.assume(abs(e_in + e_beta) < 1000)
    gen = np.random.default_rng(seed)
    W_in, b_in = gen.normal(size=(5, 1)), gen.normal(size=5)
    W_out = gen.normal(size=(k, 5))
    beta = 2.0**e_beta
    layer = (W_in * 2.0**e_in, b_in * 2.0**(e_in + e_beta), W_out * 2.0**e_out)
    try:
        coreset = layer_coreset(*layer, sample_size=m, beta=beta, rng=0)
        result = check_guarantee(*layer, coreset, delta=0.1, time_limit=5, rng=0)
    except InvalidArgumentError as exc:
        hypothesis.event(f"refused: {type(exc).__name__}")
        return
    hypothesis.event(f"verdict {result.verdict}, certified {result.worst_case.certified}")
    pruned = tuple(np.asarray(a, dtype=np.float64) for a in coreset.pruned())
    long = [tuple(np.asarray(a, dtype=np.longdouble) for a in p) for p in (layer, pruned)]
    worst = exact_worst_1d(*long, np.longdouble(beta))
    true_scale = np.abs(long[0][2]) @ np.maximum(beta * np.abs(long[0][0][:, 0]) + long[0][1], 0)
    np.testing.assert_allclose(result.bound.scale.astype(np.longdouble), true_scale,
                               rtol=1e-9, atol=0)
    live = true_scale > 0
    true = float(np.max(worst[live] / true_scale[live]))
    assert result.found <= true * (1 + 1e-9) + 1e-300
    assert true <= result.certified * (1 + 1e-9) + 1e-300
