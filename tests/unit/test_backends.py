"""numpy and torch give the same coreset for the same rng (DESIGN.md, Backends)."""

from __future__ import annotations

import numpy as np
import pytest

from coreset_verify import (
    envelope,
    layer_coreset,
    layer_sensitivities,
    phi_hi,
    phi_lo,
    sample_size_for,
    theoretical_bound,
)

torch = pytest.importorskip("torch")

RTOL = 1e-12

OPTIONS = [
    pytest.param({"sample_size": 40}, id="m=40"),
    pytest.param({"sample_size": 40, "reduction": "raw-max"}, id="m=40,raw-max"),
    pytest.param({"sample_size": 40, "split_signs": True}, id="m=40,split"),
    pytest.param({"distinct": 9}, id="distinct=9"),
    pytest.param({"sample_size": 3, "activation": "sigmoid"}, id="m=3,sigmoid"),
    pytest.param({"sample_size": 25, "activation": "tanh", "split_signs": True},
                 id="m=25,tanh,split"),
]


def _layer(seed, n=30, d=5, k=4):
    gen = np.random.default_rng(seed)
    W_in = gen.normal(size=(n, d)) * 10.0 ** gen.integers(-2, 3, size=(n, 1))
    b_in = gen.normal(size=n)
    b_in[:3] = -1e3  # dead on the ball
    W_out = gen.normal(size=(k, n))
    return W_in, b_in, W_out


def _torch_layer(layer, dtype=torch.float64, device="cpu"):
    return tuple(torch.as_tensor(a, dtype=dtype, device=device) for a in layer)


def _assert_same_coreset(c_np, c_t, *, dtype=torch.float64, device="cpu", rtol=RTOL):
    np.testing.assert_array_equal(c_t.indices.cpu().numpy(), c_np.indices)
    np.testing.assert_array_equal(c_t.counts.cpu().numpy(), c_np.counts)
    assert c_t.sample_size == c_np.sample_size
    for name in ("weight_out",):
        t = getattr(c_t, name)
        assert isinstance(t, torch.Tensor)
        assert t.dtype == dtype
        assert t.device.type == torch.device(device).type
    assert c_t.indices.dtype == torch.int64
    assert c_t.counts.dtype == torch.int64
    assert c_t.probabilities.dtype == torch.float64
    for tensor in (c_t.indices, c_t.counts, c_t.probabilities):
        assert tensor.device.type == torch.device(device).type
    np.testing.assert_allclose(c_t.weight_out.cpu().numpy(), c_np.weight_out, rtol=rtol, atol=0)
    np.testing.assert_allclose(c_t.probabilities.cpu().numpy(), c_np.probabilities,
                               rtol=rtol, atol=0)
    W_in_t, b_in_t, W_out_t = c_t.pruned()
    assert all(isinstance(a, torch.Tensor) and a.dtype == dtype for a in (W_in_t, b_in_t, W_out_t))
    assert W_out_t.shape == (c_np.weight_out.shape[0], c_np.n_kept)


@pytest.mark.parametrize("options", OPTIONS)
def test_same_rng_same_coreset_float64(options, seed):
    layer = _layer(seed)
    c_np = layer_coreset(*layer, beta=0.8, rng=seed, **options)
    c_t = layer_coreset(*_torch_layer(layer), beta=0.8, rng=seed, **options)
    _assert_same_coreset(c_np, c_t)
    for kind in ("pointwise", "uniform", "paper"):
        b_np = theoretical_bound(c_np, delta=0.05, kind=kind)
        b_t = theoretical_bound(c_t, delta=0.05, kind=kind)
        np.testing.assert_allclose(b_t.epsilon, b_np.epsilon, rtol=1e-10, atol=0)


@pytest.mark.parametrize("options", OPTIONS)
def test_same_rng_same_coreset_float32(options):
    # float32 inputs: the same draws as numpy float32 and float32 results.
    layer = tuple(a.astype(np.float32) for a in _layer(1))
    c_np = layer_coreset(*layer, beta=0.8, rng=4, **options)
    c_t = layer_coreset(*(torch.as_tensor(a) for a in layer), beta=0.8, rng=4, **options)
    assert c_np.weight_out.dtype == np.float32
    _assert_same_coreset(c_np, c_t, dtype=torch.float32, rtol=1e-6)


def test_generator_rng_is_consumed_identically():
    layer = _layer(2)
    c_np = layer_coreset(*layer, sample_size=30, beta=1.0, rng=np.random.default_rng(9))
    c_t = layer_coreset(*_torch_layer(layer), sample_size=30, beta=1.0,
                        rng=np.random.default_rng(9))
    _assert_same_coreset(c_np, c_t)


@pytest.mark.parametrize("fn", [phi_hi, phi_lo, envelope])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_neuron_functions_keep_backend_and_dtype(fn, dtype):
    W_in, b_in, _ = _layer(3)
    got = fn(torch.as_tensor(W_in, dtype=dtype), torch.as_tensor(b_in, dtype=dtype),
             beta=0.5, activation="softplus")
    assert isinstance(got, torch.Tensor)
    assert got.dtype == dtype
    want = fn(W_in, b_in, beta=0.5, activation="softplus")
    # float32 against float64: relative 1e-5, and below float32's subnormals
    # (softplus far below zero) an absolute 1e-44.
    rtol, atol = (RTOL, 0.0) if dtype == torch.float64 else (1e-5, 1e-44)
    np.testing.assert_allclose(got.numpy(), want, rtol=rtol, atol=atol)


def test_sensitivities_and_sample_size_agree():
    layer = _layer(4)
    s_np = layer_sensitivities(*layer, beta=2.0)
    s_t = layer_sensitivities(*_torch_layer(layer), beta=2.0)
    np.testing.assert_allclose(s_t.sensitivity, s_np.sensitivity, rtol=RTOL, atol=0)
    np.testing.assert_allclose(s_t.scale, s_np.scale, rtol=RTOL, atol=0)
    for kind in ("pointwise", "uniform"):
        kw = {"epsilon": 0.3, "delta": 0.1, "beta": 2.0, "kind": kind}
        assert sample_size_for(*_torch_layer(layer), **kw) == sample_size_for(*layer, **kw)


def test_mixed_devices_or_backends_rejected():
    from coreset_verify import InvalidArgumentError

    W_in, b_in, W_out = _layer(5)
    with pytest.raises(InvalidArgumentError, match="W_out="):
        layer_coreset(torch.as_tensor(W_in), torch.as_tensor(b_in), W_out,
                      sample_size=3, beta=1.0)


@pytest.mark.cuda
@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_same_coreset(options, dtype, cuda_backend):
    layer = _layer(6)
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    layer_np = tuple(a.astype(np_dtype) for a in layer)
    c_np = layer_coreset(*layer_np, beta=0.8, rng=6, **options)
    c_t = layer_coreset(*_torch_layer(layer, dtype=dtype, device="cuda"), beta=0.8, rng=6,
                        **options)
    rtol = RTOL if dtype == torch.float64 else 1e-5
    _assert_same_coreset(c_np, c_t, dtype=dtype, device="cuda", rtol=rtol)


def _tied_layer(seed):
    """Neurons in pairs with opposite outgoing weights: ``t+ = t-`` exactly in
    the reals, so an odd m puts ``m t+ / (t+ + t-)`` on a half-integer and a
    one-ulp difference between backends would flip its rounding."""
    gen = np.random.default_rng(seed)
    W_in = gen.normal(size=(5, 3))
    b_in = np.abs(gen.normal(size=5))
    w = gen.normal(size=(2, 5))
    return np.concatenate([W_in, W_in]), np.concatenate([b_in, b_in]), np.hstack([w, -w])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_split_signs_same_draws_on_every_backend_400_seeds(dtype):
    """Issue 8: numpy and torch disagreed on 15 of 400 seeds under split_signs."""
    differ = []
    for seed in range(400):
        layer = tuple(a.astype(dtype) for a in _tied_layer(seed % 20))
        m = 2 * (seed % 7) + 3  # odd
        c_np = layer_coreset(*layer, sample_size=m, beta=0.7, rng=seed, split_signs=True)
        c_t = layer_coreset(*(torch.as_tensor(a) for a in layer), sample_size=m, beta=0.7,
                            rng=seed, split_signs=True)
        sizes_np = [p.sample_size for p in c_np.parts]
        sizes_t = [p.sample_size for p in c_t.parts]
        if (sizes_np != sizes_t
                or not np.array_equal(c_t.counts.numpy(), c_np.counts)
                or not np.array_equal(c_t.indices.numpy(), c_np.indices)):
            differ.append(seed)
    assert differ == []


def test_split_signs_probabilities_identical_bits_across_backends():
    layer = _layer(5)
    c_np = layer_coreset(*layer, sample_size=41, beta=0.8, rng=1, split_signs=True)
    c_t = layer_coreset(*_torch_layer(layer, torch.float32), sample_size=41, beta=0.8, rng=1,
                        split_signs=True)
    c_32 = layer_coreset(*(a.astype(np.float32) for a in layer), sample_size=41, beta=0.8,
                         rng=1, split_signs=True)
    for p_t, p_32 in zip(c_t.parts, c_32.parts, strict=True):
        np.testing.assert_array_equal(p_t.probabilities, p_32.probabilities)
    assert [p.sample_size for p in c_np.parts] == [p.sample_size for p in c_t.parts]


def test_torch_float16_and_bfloat16_refused_everywhere():
    from coreset_verify import InvalidArgumentError

    layer = _layer(2)
    for dtype in (torch.float16, torch.bfloat16):
        t = _torch_layer(layer, dtype)
        with pytest.raises(InvalidArgumentError, match="float32 or float64"):
            layer_coreset(*t, sample_size=5, beta=1.0, rng=0)
        with pytest.raises(InvalidArgumentError, match="float32 or float64"):
            sample_size_for(*t, epsilon=0.5, delta=0.1, beta=1.0)
        with pytest.raises(InvalidArgumentError, match="float32 or float64"):
            phi_hi(t[0], t[1], beta=1.0)


@pytest.mark.parametrize("options", OPTIONS)
def test_torch_cpu_probabilities_are_bitwise_those_of_numpy(options):
    """Every draw-deciding number is computed by one code path on the CPU, so
    the same seed gives the same coreset bit for bit (float32 included, where
    torch's and numpy's reductions round differently)."""
    layer = tuple(a.astype(np.float32) for a in _layer(9, n=300, d=20, k=10))
    for seed in range(30):
        c_np = layer_coreset(*layer, beta=0.8, rng=seed, **options)
        c_t = layer_coreset(*_torch_layer(layer, torch.float32), beta=0.8, rng=seed, **options)
        np.testing.assert_array_equal(c_t.probabilities.numpy(), c_np.probabilities)
        np.testing.assert_array_equal(c_t.counts.numpy(), c_np.counts)
        np.testing.assert_array_equal(c_t.weight_out.numpy(), c_np.weight_out)
