"""Edge cases of the sensitivities: tiny scales, duplicates, zero neurons."""

from __future__ import annotations

import numpy as np
import pytest

from coreset_verify import layer_coreset, layer_sensitivities
from coreset_verify.errors import MagnitudeError

RTOL = 1e-12


def test_subnormal_scale_is_refused_not_an_overflow():
    # T = 3e-310 is subnormal: it has lost relative precision, so it is refused
    # with the documented MagnitudeError (proofs_notes/sensitivity.md,
    # "Magnitudes"), naming the scale, not reported as an overflow.
    W_in, b_in = np.zeros((2, 1)), np.ones(2)
    W_out = np.array([[1e-310, 2e-310]])
    with pytest.raises(MagnitudeError, match="scale T_i"):
        layer_sensitivities(W_in, b_in, W_out, beta=1.0)


def test_small_normal_scale_is_fine():
    W_in, b_in = np.zeros((2, 1)), np.ones(2)
    W_out = np.array([[1e-300, 2e-300]])
    s = layer_sensitivities(W_in, b_in, W_out, beta=1.0)
    np.testing.assert_allclose(s.probabilities, [1 / 3, 2 / 3], rtol=RTOL, atol=0)


def test_duplicate_neurons_share_probability():
    gen = np.random.default_rng(0)
    W_in, b_in, W_out = gen.normal(size=(5, 3)), np.abs(gen.normal(size=5)), gen.normal(size=(2, 5))
    W_in[4], b_in[4], W_out[:, 4] = W_in[1], b_in[1], W_out[:, 1]
    s = layer_sensitivities(W_in, b_in, W_out, beta=1.0)
    np.testing.assert_allclose(s.probabilities[4], s.probabilities[1], rtol=RTOL, atol=0)


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_zero_column_of_w_out_is_never_kept(activation):
    gen = np.random.default_rng(1)
    W_in, b_in, W_out = gen.normal(size=(6, 2)), gen.normal(size=6), gen.normal(size=(3, 6))
    W_out[:, 2] = 0.0
    for seed in range(20):
        c = layer_coreset(W_in, b_in, W_out, sample_size=50, beta=1.0, rng=seed,
                          activation=activation)
        assert 2 not in set(np.asarray(c.indices).tolist())
        assert c.probabilities[2] == 0.0
