"""Hypothesis strategies for layer pairs, activations, balls and inputs.

Public strategies that any pruning implementation's test suite can use:

* :func:`layers` -- ``(W_in, b_in, W_out)`` float64 numpy arrays of varied
  sizes and scales, with dead, duplicate and zero neurons;
* :func:`activations` -- names of registered activations;
* :func:`balls` -- radii ``beta`` of the input ball;
* :func:`points_in_ball` -- inputs ``x`` with ``||x|| <= beta``, including
  boundary points and the extreme points ``beta * W_in[j] / ||W_in[j]||``.

This module imports :mod:`hypothesis`, a test dependency; the rest of the
package does not import it.

Examples
--------
>>> from hypothesis import given, settings
>>> from coreset_verify.strategies import layers
>>> @settings(max_examples=5, deadline=None, database=None)
... @given(layers(max_n=4))
... def check(layer):
...     W_in, b_in, W_out = layer
...     assert W_in.shape[0] == b_in.shape[0] == W_out.shape[1]
>>> check()
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ._validation import check_bool, check_int, check_positive, fail
from .activations import available_activations, get_activation
from .errors import InvalidArgumentError

__all__ = ["NEURON_KINDS", "activations", "balls", "layers", "points_in_ball"]

#: What :func:`layers` may make of each neuron.
NEURON_KINDS = ("normal", "dead", "duplicate", "zero_in", "zero_out")

_UNIT = st.floats(-1.0, 1.0, allow_nan=False, allow_infinity=False, allow_subnormal=False)
# Entries below this magnitude are flushed to zero, so that products of
# scaled weights stay far from underflow (zeros are drawn on purpose).
_TINY = 2.0**-20


def _check_bounds(name: str, low: int, high: int, minimum: int) -> None:
    low = check_int(low, f"min_{name}", "layers", minimum=minimum)
    high = check_int(high, f"max_{name}", "layers", minimum=minimum)
    if low > high:
        raise InvalidArgumentError(f"min_{name}={low} is larger than max_{name}={high}.")


def _flush(a: np.ndarray) -> np.ndarray:
    return np.where(np.abs(a) < _TINY, 0.0, a)


def _unit_array(shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    return arrays(np.float64, shape, elements=_UNIT).map(_flush)


@st.composite
def _layers(
    draw: Any,
    *,
    n_range: tuple[int, int],
    d_range: tuple[int, int],
    k_range: tuple[int, int],
    max_exponent: int,
    kinds: tuple[str, ...],
    beta: float,
    allow_all_zero: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = draw(st.integers(*n_range), label="n")
    d = draw(st.integers(*d_range), label="d")
    k = draw(st.integers(*k_range), label="k")
    W_in = draw(_unit_array((n, d)), label="W_in")
    b_in = draw(_unit_array((n,)), label="b_in")
    W_out = draw(_unit_array((k, n)), label="W_out")
    # Scales spanning several orders of magnitude: a power of ten per neuron
    # (rows of W_in with b_in) and per neuron into the next layer (W_out).
    exponents = st.integers(-max_exponent, max_exponent)
    scale_in = 10.0 ** np.array(draw(st.lists(exponents, min_size=n, max_size=n)))
    scale_out = 10.0 ** np.array(draw(st.lists(exponents, min_size=n, max_size=n)))
    W_in = W_in * scale_in[:, None]
    b_in = b_in * scale_in
    W_out = W_out * scale_out[None, :]
    chosen = draw(st.lists(st.sampled_from(kinds), min_size=n, max_size=n), label="kinds")
    for j, kind in enumerate(chosen):
        if kind == "dead":
            # relu(W_in[j] . x + b_in[j]) = 0 for every ||x|| <= beta.
            reach = beta * float(np.linalg.norm(W_in[j]))
            b_in[j] = -(reach + abs(b_in[j]) + scale_in[j])
        elif kind == "duplicate" and j > 0:
            source = draw(st.integers(0, j - 1), label="duplicate of")
            W_in[j], b_in[j] = W_in[source], b_in[source]
        elif kind == "zero_in":
            W_in[j], b_in[j] = 0.0, 0.0
        elif kind == "zero_out":
            W_out[:, j] = 0.0
    if not allow_all_zero:
        _ensure_live(draw, W_in, b_in, W_out)
    return W_in, b_in, W_out


def _live(b_in: np.ndarray, W_out: np.ndarray) -> np.ndarray:
    return (b_in > 0) & np.any(W_out != 0, axis=0)


def _ensure_live(draw: Any, W_in: np.ndarray, b_in: np.ndarray, W_out: np.ndarray) -> None:
    """Make one neuron positive at the centre, with a non-zero outgoing weight.

    ``b_in[j] > 0`` makes ``phi(b_in[j] + beta ||W_in[j]||) > 0`` for every
    radius and every registered non-decreasing activation, so some
    sensitivity is positive whatever ``beta`` and ``activation`` a test uses.
    """
    if np.any(_live(b_in, W_out)):
        return
    j = draw(st.integers(0, b_in.shape[0] - 1), label="live neuron")
    b_in[j] = abs(b_in[j]) + 0.5
    if not np.any(W_out[:, j] != 0):
        W_out[0, j] = 1.0


def layers(
    *,
    min_n: int = 1,
    max_n: int = 8,
    min_d: int = 1,
    max_d: int = 4,
    min_k: int = 1,
    max_k: int = 3,
    max_exponent: int = 3,
    dead: bool = True,
    duplicates: bool = True,
    zeros: bool = True,
    beta: float = 1.0,
    allow_all_zero: bool = False,
) -> st.SearchStrategy[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Layer pairs ``(W_in, b_in, W_out)``: float64 numpy, shapes (n, d), (n,), (k, n).

    Parameters
    ----------
    min_n, max_n : int
        Bounds on the number of neurons n.
    min_d, max_d : int
        Bounds on the input dimension d.
    min_k, max_k : int
        Bounds on the number of next-layer outputs k.
    max_exponent : int, default 3
        Each neuron's incoming row (with its bias) and outgoing column are
        scaled by ``10**e`` with ``e`` in ``[-max_exponent, max_exponent]``.
    dead : bool, default True
        Include dead neurons: ``b_in[j] < -beta * ||W_in[j]||``, so ReLU is 0
        on the whole ball of radius ``beta`` (and every smaller one).
    duplicates : bool, default True
        Include neurons whose ``W_in`` row and bias repeat an earlier one.
    zeros : bool, default True
        Include zero neurons: zero row of ``W_in`` and zero bias, or zero
        column of ``W_out``.
    beta : float, default 1.0
        The radius for which dead neurons are dead.
    allow_all_zero : bool, default False
        If False, some neuron has ``b_in[j] > 0`` and a non-zero column of
        ``W_out``: its sensitivity is positive for every radius and every
        registered non-decreasing activation, so the layer is never all-zero.

    Returns
    -------
    SearchStrategy of tuple of ndarray
    """
    _check_bounds("n", min_n, max_n, 1)
    _check_bounds("d", min_d, max_d, 1)
    _check_bounds("k", min_k, max_k, 1)
    if check_int(max_exponent, "max_exponent", "layers", minimum=0) > 100:
        raise fail("layers", "max_exponent", "an integer in [0, 100]", max_exponent)
    beta = check_positive(beta, "beta", "layers")
    for flag, value in (("dead", dead), ("duplicates", duplicates), ("zeros", zeros),
                        ("allow_all_zero", allow_all_zero)):
        check_bool(value, flag, "layers")
    wanted = {"dead": dead, "duplicate": duplicates, "zero_in": zeros, "zero_out": zeros}
    kinds = ("normal", *(kind for kind, keep in wanted.items() if keep))
    return _layers(
        n_range=(min_n, max_n),
        d_range=(min_d, max_d),
        k_range=(min_k, max_k),
        max_exponent=max_exponent,
        kinds=kinds,
        beta=float(beta),
        allow_all_zero=allow_all_zero,
    )


def activations(
    *, monotone_only: bool = True, nonnegative: bool = False, positive: bool = False
) -> st.SearchStrategy[str]:
    """Names of registered activations.

    Parameters
    ----------
    monotone_only : bool, default True
        Only non-decreasing activations (what the pruner accepts); False
        includes non-monotone ones such as ``"silu"``.
    nonnegative : bool, default False
        Only activations with ``phi >= 0``.
    positive : bool, default False
        Only activations with ``phi > 0`` (the multiplicative uniform bound).
    """
    for flag, value in (("monotone_only", monotone_only), ("nonnegative", nonnegative),
                        ("positive", positive)):
        check_bool(value, flag, "activations")
    names = [
        name
        for name in available_activations()
        if (get_activation(name).is_nondecreasing or not monotone_only)
        and (get_activation(name).is_nonnegative or not nonnegative)
        and (get_activation(name).is_positive or not positive)
    ]
    if not names:
        raise InvalidArgumentError("No registered activation has the requested properties.")
    return st.sampled_from(names)


def balls(*, min_exponent: int = -2, max_exponent: int = 2) -> st.SearchStrategy[float]:
    """Radii ``beta > 0``: ``m * 10**e`` with ``m`` in [1, 10) and ``e`` bounded."""
    check_int(min_exponent, "min_exponent", "balls", minimum=-300)
    check_int(max_exponent, "max_exponent", "balls", minimum=-300)
    if min_exponent > max_exponent:
        raise InvalidArgumentError(
            f"min_exponent={min_exponent} is larger than max_exponent={max_exponent}."
        )
    mantissa = st.floats(1.0, 10.0, exclude_max=True, allow_nan=False)
    exponent = st.integers(min_exponent, max_exponent)
    return st.builds(lambda a, e: float(a * 10.0**e), mantissa, exponent)


@st.composite
def _points(draw: Any, d: int, beta: float, W_in: np.ndarray | None) -> np.ndarray:
    options = ["interior", "boundary", "centre"]
    if W_in is not None and np.any(np.linalg.norm(W_in, axis=1) > 0):
        options += ["extreme", "anti-extreme"]
    where = draw(st.sampled_from(options), label="where")
    if where == "centre":
        return np.zeros(d)
    if where in ("extreme", "anti-extreme"):
        norms = np.linalg.norm(W_in, axis=1)
        live = np.flatnonzero(norms > 0)
        j = int(live[draw(st.integers(0, live.size - 1), label="neuron")])
        sign = 1.0 if where == "extreme" else -1.0
        return _inside(sign * beta * W_in[j] / norms[j], beta)
    direction = draw(_unit_array((d,)), label="direction")
    norm = float(np.linalg.norm(direction))
    if norm < 1e-3:
        direction, norm = np.eye(d)[0], 1.0
    radius = 1.0 if where == "boundary" else draw(st.floats(0.0, 1.0), label="radius")
    return _inside(beta * radius * (direction / norm), beta)


def _inside(x: np.ndarray, beta: float) -> np.ndarray:
    """Pull ``x`` back into the closed ball if rounding put it outside."""
    while float(np.linalg.norm(x)) > beta:
        x = x * (1 - 2**-52)
    return x


def points_in_ball(
    d: int, beta: float, *, W_in: np.ndarray | None = None
) -> st.SearchStrategy[np.ndarray]:
    """Inputs ``x`` of shape (d,) with ``||x||_2 <= beta`` (float64).

    Draws interior points, points on the boundary sphere (norm ``beta`` up to
    rounding, never above), the centre and, given ``W_in`` (n, d), the extreme
    points ``+- beta * W_in[j] / ||W_in[j]||`` where neuron j is largest or
    smallest on the ball.
    """
    d = check_int(d, "d", "points_in_ball")
    beta = check_positive(beta, "beta", "points_in_ball")
    if W_in is not None and np.shape(W_in)[-1] != d:
        raise fail("points_in_ball", "W_in", f"an array with d={d} columns",
                   f"shape {np.shape(W_in)}")
    return _points(int(d), float(beta), None if W_in is None else np.asarray(W_in, np.float64))
