"""Inputs of the ball at which the audit compares ``F`` and ``F~``."""

from __future__ import annotations

import numpy as np

from ._layers import Layer

__all__ = ["ball_inputs"]


def ball_inputs(layer: Layer, beta: float, count: int, rng: np.random.Generator,
                ) -> np.ndarray:
    """``count`` inputs of the ball (count, d): the neurons' directions at radius beta, then random.

    Up to ``count // 2`` points ``+- beta w_j / ||w_j||`` with ``w_j`` the
    rows of ``layer.directions`` (where neuron or channel j is largest or
    smallest), the rest uniform on the sphere and inside it.
    """
    directions = layer.directions
    norms = np.linalg.norm(directions, axis=1)
    rows = directions[norms > 0] / norms[norms > 0, None]
    rows = np.vstack([rows, -rows])[: count // 2] * beta
    rest = count - rows.shape[0]
    u = rng.standard_normal((rest, layer.d))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    radius = np.ones(rest)
    radius[rest // 2:] = rng.random(rest - rest // 2) ** (1.0 / layer.d)
    return np.vstack([rows, u * (beta * radius)[:, None]])
