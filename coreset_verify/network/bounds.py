"""Bounds of a pruned network: radii (Lemma R), propagation (Lemma P) and the
composed bound (Theorem N); proofs_notes/network.md.

Interval and error propagation are the kernel's
(:mod:`coreset_verify.nets.intervals`), shared with the search.
"""

from __future__ import annotations

import numpy as np

from .._validation import fail
from ..activations import Activation
from ..nets.intervals import (
    Box,
    activation_range,
    affine_range,
    ball_range,
    box_norm,
    error_propagation,
)
from .reading import Weights
from .records import PrunedNetwork

__all__ = ["boxes", "composed_bound", "input_radius", "module_slack", "propagation"]


def boxes(weights: list[Weights], acts: list[Activation], beta: float, upto: int) -> list[Box]:
    """Boxes holding each hidden layer's output for ``||x|| <= beta`` (Lemma R).

    Hidden layers ``0 .. upto-1``. The first pre-activation range is exact up
    to rounding (``b_j +- beta ||w_j||``); later ones by interval
    arithmetic. Each box holds the outputs of the torch modules and of the
    exact activations alike (they differ by ``module_slack``).
    """
    out: list[Box] = []
    pre = ball_range(weights[0].W, weights[0].b, beta)
    for q in range(upto):
        if q > 0:
            pre = affine_range(weights[q].W, weights[q].b, out[-1].lo, out[-1].hi)
        out.append(activation_range(acts[q], pre.lo, pre.hi))
    return out


def input_radius(weights: list[Weights], acts: list[Activation], beta: float,
                 layer: int) -> float:
    """Sound bound on ``||input of Linear layer||`` over the ball (Lemma R)."""
    if layer == 0:
        return beta
    return box_norm(boxes(weights, acts, beta, layer)[-1])


def propagation(weights: list[Weights], acts: list[Activation], layer: int) -> np.ndarray:
    """``P`` (k_out, n_{layer+1}), entrywise >= 0: an error ``|e| <= E`` at the
    output of Linear ``layer + 1`` gives ``|output error| <= P E`` (Lemma P)."""
    later = range(layer + 1, len(weights) - 1)
    return error_propagation(weights[layer + 1].W.shape[0],
                             [weights[q + 1].W for q in later],
                             [acts[q].lipschitz for q in later])


def module_slack(weights: list[Weights], acts: list[Activation]) -> np.ndarray:
    """Bound on ``|f(x) - f_exact(x)|`` (k_out,) for the modules' activations.

    ``f`` computes with the torch modules, ``f_exact`` with the activations
    the theorems use; they differ by at most ``s_q = acts[q].module_slack``
    per neuron of hidden layer q (Softplus's threshold), which enters Linear
    q+1 and propagates as in Lemma P: ``sum_q P_{q} |W_{q+1}| s_q 1``.
    Zero when every slack is zero.
    """
    total = np.zeros(weights[-1].W.shape[0])
    for q, act in enumerate(acts):
        if act.module_slack > 0:
            entering = np.abs(weights[q + 1].W).sum(axis=1) * act.module_slack
            total += propagation(weights, acts, q) @ entering
    return total * (1 + 1e-12)


def composed_bound(pruned: PrunedNetwork) -> np.ndarray:
    """Bound on ``|f_i(x) - g_i(x)|`` for every output i and every ``||x|| <= beta``.

    ``f`` is the original network, ``g = pruned.model``. The sum over pruned
    layers of ``P_l (epsilon_l T_l)`` (Theorem N of proofs_notes/network.md),
    plus ``pruned.module_slack`` (Softplus's threshold; zero otherwise).
    With ``kind="uniform"`` it holds for every x of the ball at once with
    probability ``>= 1 - delta`` over the draws; with ``"pointwise"`` for any
    one x fixed before the draws; ``"paper"`` is not a proof.

    Parameters
    ----------
    pruned : PrunedNetwork

    Returns
    -------
    ndarray of float64, shape (k_out,)
    """
    if not isinstance(pruned, PrunedNetwork):
        raise fail("composed_bound", "pruned", "a PrunedNetwork", type(pruned).__name__)
    total = np.zeros(pruned.layers[0].propagation.shape[0])
    for layer in pruned.layers:
        if layer.epsilon > 0:
            total += layer.propagation @ (layer.epsilon * layer.scale)
    if pruned.module_slack is not None:
        total = total + pruned.module_slack
    return total * (1 + 1e-12)
