"""Known answers that kill the mutants of sensitivity.py's magnitude guards that
survived mutation testing (issue 8, part "sens").

The inputs are built from powers of two so that every scale ``T_i``, every
"hidden" underflowed contribution ``|W_out[i, j]| (env_j + 16 ulps)`` and every
threshold ``max(eps T_i, tiny)`` is exact: the expected accept/refuse decision
and the expected sensitivities are derived here by hand (``softplus(64) =
64 + log1p(exp(-64))`` rounds to 64, and ``softplus(-1000) = 0`` in float64).
Each test names the mutants it kills.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from array_api_compat import array_namespace

from coreset_verify.errors import InvalidArgumentError, MagnitudeError
from coreset_verify.sensitivity import layer_sensitivities, phi_hi, row_norms

SP = "softplus"


def _zero_rows(n: int, dtype=np.float64) -> np.ndarray:
    return np.zeros((n, 1), dtype=dtype)


def test_underflow_accepted_exactly_at_the_rounding_threshold():
    """env = [64, 0], W_out = [[2^-6, 2^1018]]: T = 1 and the hidden part
    2^1018 * 16 * 2^-1074 = 2^-52 = eps * T, accepted (not above the threshold).
    Kills check_scale 57 (17 ulps), 61 and 64 (float32 ulps), 85 (>= 0)."""
    W_out = np.array([[2.0**-6, 2.0**1018]])
    s = layer_sensitivities(_zero_rows(2), np.array([64.0, -1000.0]), W_out, beta=1.0,
                            activation=SP)
    np.testing.assert_allclose(s.scale, [1.0], rtol=1e-15)
    np.testing.assert_allclose(s.sensitivity, [1.0, 0.0], rtol=1e-15, atol=1e-300)


def test_underflow_refused_just_above_the_rounding_threshold():
    """Same layer with 2^1019: the hidden part 2^-51 exceeds eps * T = 2^-52
    (float64 is not retried). Kills check_scale 67 (env - ulps), 72 and 75 (float32
    eps), 84, 86."""
    W_out = np.array([[2.0**-6, 2.0**1019]])
    with pytest.raises(MagnitudeError, match="phi underflowed for 1 neuron"):
        layer_sensitivities(_zero_rows(2), np.array([64.0, -1000.0]), W_out, beta=1.0,
                            activation=SP)


def _retry_truth() -> tuple[float, float]:
    d = 2.0**124 * math.log1p(math.exp(-106.0))  # the part float32 loses, ~2e-9
    return d, 1.0 + d


def test_float32_underflow_refused_then_recomputed_in_float64():
    """float32, W_out = [[2^-6, 2^124]], b = [64, -106]: softplus(-106) is 0 in
    float32 and 16 float32 ulps give 2^-21 > eps32 * T = 2^-23, so the float32
    pass is refused and the float64 one returns T = 1 + 2^124 softplus(-106).
    Kills check_scale 59, 60, 62, 63, 64, 65 (float64 ulps on float32 accept)."""
    W_out = np.array([[2.0**-6, 2.0**124]], dtype=np.float32)
    s = layer_sensitivities(_zero_rows(2, np.float32), np.array([64.0, -106.0], np.float32),
                            W_out, beta=1.0, activation=SP)
    d, T = _retry_truth()
    np.testing.assert_allclose(s.scale, [T], rtol=1e-13)
    np.testing.assert_allclose(s.sensitivity, [1.0 / T, d / T], rtol=1e-9, atol=0)


def test_float32_retry_with_torch_weights():
    """The float64 retry of torch float32 weights casts to float64.
    Kills _sensitivities 26 (astype(None) keeps float32 and is refused again)."""
    s = layer_sensitivities(torch.zeros((2, 1)), torch.tensor([64.0, -106.0]),
                            torch.tensor([[2.0**-6, 2.0**124]]), beta=1.0, activation=SP)
    d, T = _retry_truth()
    np.testing.assert_allclose(s.sensitivity, [1.0 / T, d / T], rtol=1e-9, atol=0)


def test_float32_underflow_below_eps32_stays_in_float32():
    """float32, W_out = [[1, 2^110]], b = [1, -106]: the hidden part
    2^110 * 16 * 2^-149 = 2^-35 is below eps32 * T (T = softplus(1) > 1), so the
    float32 arithmetic carries the layer and the result is the float32 one
    (documented: sensitivities in the dtype of the weights): the envelope is
    float32 softplus(1). Kills check_scale 70, 71, 73, 74, 76 (float64 eps)."""
    W_out = np.array([[1.0, 2.0**110]], dtype=np.float32)
    s = layer_sensitivities(_zero_rows(2, np.float32), np.array([1.0, -106.0], np.float32),
                            W_out, beta=1.0, activation=SP)
    sp1 = math.log1p(math.e)
    assert float(np.float32(s.envelope[0])) == s.envelope[0]  # a float32 value
    np.testing.assert_allclose(s.envelope, [sp1, 0.0], rtol=1e-6, atol=0)
    np.testing.assert_allclose(s.sensitivity, [1.0, 0.0], rtol=1e-6, atol=1e-12)


def test_overflowing_score_names_w_out_and_axis_0():
    """env = [64, 0], W_out = [[2^-1006, 2^47]]: T = 2^-1000, the hidden part
    2^47 * 16 * 2^-1074 = 2^-1023 <= tiny is accepted, and the score
    2^47 / 2^-1000 = 2^1047 overflows: refused naming W_out, axis 0.
    Kills _sensitivities_in 71 ("w_out") and 73 (axis 1)."""
    W_out = np.array([[2.0**-1006, 2.0**47]])
    with pytest.raises(InvalidArgumentError,
                       match="W_out is too large: a reduction along axis 0 overflowed at index 1"):
        layer_sensitivities(_zero_rows(2), np.array([64.0, -1000.0]), W_out, beta=1.0,
                            activation=SP)


def test_reach_underflow_names_the_neuron():
    """beta = 5e-324 and ||W_in[0]|| = 0.1: the reach underflows to 0 from a
    non-zero row, refused at index 0. Kills _activation_range 82 (lost[1])."""
    with pytest.raises(MagnitudeError, match="at index 0 underflowed to 0"):
        layer_sensitivities(np.array([[0.1]]), np.zeros(1), np.ones((1, 1)), beta=5e-324)


def test_float32_magnitude_message_suggests_float64():
    """A float32 row norm 1e-40 is subnormal: refused with both remedies.
    Kills check_magnitudes 20, 21, 23, 24, 26, 27, 28."""
    with pytest.raises(MagnitudeError) as info:
        phi_hi(np.array([[1e-40]], dtype=np.float32), np.zeros(1, np.float32), beta=1.0)
    msg = str(info.value)
    assert "Rescale the weights toward 1" in msg
    assert "reduce beta. Or cast the weights to float64. No bound" in msg


def test_lost_column_found_below_the_first_row():
    """ReLU, env = [1, 1], W_out = [[1e10, 0], [1e10, 5e-324]]: the score of
    neuron 1, 5e-324 / 1e10, underflows to 0 although W_out[1, 1] != 0: refused.
    Kills _check_lost_columns 15 and 18 (take without axis reads W_out[0, 1])."""
    W_out = np.array([[1e10, 0.0], [1e10, 5e-324]])
    with pytest.raises(MagnitudeError, match=r"W_out\[i, 1\]\| / T_i of a live neuron"):
        layer_sensitivities(np.ones((2, 1)), np.zeros(2), W_out, beta=1.0)


def test_lost_column_named_after_a_zero_column():
    """Columns 0 (all zero) and 1 (underflowed score) both have score 0; only
    column 1 is lost. Kills _check_lost_columns 30, 32, 35, 37."""
    W_out = np.array([[0.0, 5e-324, 1e10], [0.0, 0.0, 1e10]])
    with pytest.raises(MagnitudeError, match=r"W_out\[i, 1\]\| / T_i of a live neuron"):
        layer_sensitivities(np.ones((3, 1)), np.zeros(3), W_out, beta=1.0)


def test_underflowed_scale_named_after_a_zero_row():
    """ReLU, env = [0.1, 0.1], W_out = [[0, 0], [5e-324, 0]]: T_0 = 0 truly,
    T_1 = 5e-324 * 0.1 underflows to 0: refused at index 1. Kills check_scale 109."""
    W_out = np.array([[0.0, 0.0], [5e-324, 0.0]])
    with pytest.raises(MagnitudeError, match="the scale T_i at index 1 "):
        layer_sensitivities(np.ones((2, 1)), np.zeros(2), W_out, beta=0.1)


@pytest.mark.parametrize(
    ("ks", "power"),
    [
        # (the lower end of the fast path is 2 d times the smallest normal number:
        # a row there is recomputed scaled, correct to an ulp either way)
        # sum k^2 = 2^52 - 1: the norm rounds to math.sqrt(float64 max)
        ([28018837, 5572374, 29417043, 53122901, 296680], 486),
    ],
)
def test_row_norm_on_the_boundary_of_the_fast_path(ks, power):
    """Entries k * 2^power with k < 2^26: every square and their sum are exact
    in float64, so the correctly rounded norm is sqrt(float(sum k^2)) * 2^power.
    The fast path returns it; the scaled recomputation is one ulp off here.
    Kills row_norms 38 (< sqrt(high))."""
    S = sum(k * k for k in ks)
    assert S < 2**53
    truth = math.sqrt(float(S)) * 2.0**power
    W = np.array([ks], dtype=np.float64) * 2.0**power
    assert row_norms(np, W)[0] == truth


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_rescaled_rows_and_lost_columns_on_the_device():
    """On a CUDA tensor the recomputed rows and the suspect columns are indexed
    on W's device. Only a non-CPU device tells apart row_norms 45 and
    _check_lost_columns 21 (index built on the default device)."""
    W = torch.tensor([[3e-300, 4e-300], [3.0, 4.0]], dtype=torch.float64, device="cuda")
    norms = row_norms(array_namespace(W), W).cpu().numpy()
    np.testing.assert_allclose(norms, [5e-300, 5.0], rtol=1e-15)
    W_out = torch.tensor([[1e10, 0.0], [1e10, 5e-324]], dtype=torch.float64, device="cuda")
    with pytest.raises(MagnitudeError, match=r"W_out\[i, 1\]\| / T_i of a live neuron"):
        layer_sensitivities(torch.ones((2, 1), dtype=torch.float64, device="cuda"),
                            torch.zeros(2, dtype=torch.float64, device="cuda"), W_out, beta=1.0)


def test_a_norm_made_of_subnormal_squares_is_not_trusted():
    """2^20 entries of v ~ 2^-521: every square is subnormal, their float64 sum
    loses about 2^20 half-ulps of the smallest normal number, and the fast path
    gave a norm 1.2e-11 below the exact 1024 v, so phi_hi fell below the true
    maximum. Such rows are recomputed scaled (2 d times the smallest normal)."""
    v = float.fromhex("0x1.6a0db2912d6e0p-521")
    W = np.full((1, 2**20), v)
    assert row_norms(np, W)[0] == 1024 * v  # exact: 2^20 equal entries, scaled
