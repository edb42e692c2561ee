"""An equivalent, well-scaled copy of a piecewise-linear search problem.

A (leaky) ReLU is positively homogeneous, ``phi(c z) = c phi(z)`` for ``c > 0``,
so the input may be measured in units of ``s_0`` and the hidden units of layer
``l`` in units of ``s_l`` without changing any output: with ``x = s_0 u`` and
``h_l = s_l h'_l``,

    W'_1 = W_1 s_0 / s_1,  b'_1 = b_1 / s_1,  W'_l = W_l s_{l-1} / s_l,
    b'_l = b_l / s_l,

with one unit ``s_L`` for the outputs of both networks, so ``f'(u) = f(s_0 u) /
s_L``. The scales become ``scale' = scale s_T / s_L``, so the copy's objective
is the original one divided by ``s_T`` (the unit of the objective: about its
interval bound, but never so small that a coefficient ``1 / scale'_i`` of the
objective exceeds 1). Every ``s`` is a power of two, so the copy's
weights are the original ones multiplied exactly (a copy that would under- or
overflow is not made). The linear and mixed-integer programs built on the
copy see magnitudes near 1 whatever the scale of the weights (1e-300 or
1e200), within the solvers' absolute tolerances.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ._domain import Domain
from ._intervals import Intervals, interval_bounds
from ._network import Layer
from ._problem import Problem

__all__ = ["Scaled", "scaled_problem"]


class Scaled(NamedTuple):
    """The copy, its interval bounds, ``x = input_scale * u`` and ``objective =
    objective_scale * objective'``."""

    problem: Problem
    intervals: Intervals
    input_scale: float
    objective_scale: float


def _exponent(magnitude: float) -> int:
    """``e`` with ``2**(e-1) <= magnitude < 2**e`` (0 for 0, inf or NaN), kept
    in ``[-1021, 1023]`` so that ``2**e`` is a normal float64."""
    if not (math.isfinite(magnitude) and magnitude > 0):
        return 0
    return min(max(math.frexp(magnitude)[1], -1021), 1023)


def _largest(box) -> float:
    lo, hi = np.asarray(box[0], float), np.asarray(box[1], float)
    return float(np.max(np.maximum(np.abs(lo), np.abs(hi)), initial=0.0))


def _rescale(layer: Layer, e_in: int, e_out: int) -> Layer | None:
    """``layer`` with inputs in units ``2**e_in`` and outputs in units ``2**e_out``;
    None when a weight would not be exactly representable."""
    with np.errstate(over="ignore", under="ignore"):
        w = np.ldexp(layer.weight, e_in - e_out)
        b = np.ldexp(layer.bias, -e_out)
    exact = (np.array_equal(np.ldexp(w, e_out - e_in), layer.weight)
             and np.array_equal(np.ldexp(b, e_out), layer.bias))
    return Layer(w, b, layer.activation) if exact else None


def _network(net: tuple[Layer, ...], e0: int, e1: int, pre: list, e_out: int,
             ) -> tuple | None:
    exps = [e1] + [_exponent(_largest(p)) for p in pre]
    exps[-1] = e_out  # one unit for the outputs of both networks
    layers, e_in = [], e0
    for layer, e_out in zip(net, exps, strict=True):
        scaled = _rescale(layer, e_in, e_out)
        if scaled is None:
            return None
        layers.append(scaled)
        e_in = e_out
    return tuple(layers)


def _output_exponent(intervals: Intervals) -> int:
    """The unit of both networks' outputs: their largest interval bound (the
    union first layer's when a network has no other layer)."""
    nets = (intervals.f_pre, intervals.g_pre)
    outs = [p[-1] if p else intervals.pre0 for p in nets]
    return _exponent(max(_largest(p) for p in outs))


def scaled_problem(problem: Problem, intervals: Intervals, top: float) -> Scaled | None:
    """The well-scaled copy of a piecewise-linear ``problem`` (see the module
    docstring), or None when it does not apply or would not be exact.

    ``top`` is an upper bound on the objective (the largest pair bound); it
    sets the objective's unit.
    """
    if not problem.piecewise_linear:
        return None
    e0, e_out = _exponent(problem.domain.radius), _output_exponent(intervals)
    last = len(problem.f) == 1 or len(problem.g) == 1
    e1 = e_out if last else _exponent(_largest(intervals.pre0))
    f = _network(problem.f, e0, e1, intervals.f_pre, e_out)
    g = _network(problem.g, e0, e1, intervals.g_pre, e_out)
    e_obj = max(_exponent(top), e_out - _exponent(float(np.min(problem.scale))) + 1)
    with np.errstate(over="ignore", under="ignore"):
        scale = np.ldexp(problem.scale, e_obj - e_out)
    dom = problem.domain
    if f is None or g is None or not np.array_equal(np.ldexp(scale, e_out - e_obj),
                                                    problem.scale):
        return None

    with np.errstate(over="ignore", under="ignore"):
        parts = [unit if unit is None else np.ldexp(unit, -e0)
                 for unit in (dom.lower, dom.upper, dom.anchor)]
    if dom.lower is not None and not (np.array_equal(np.ldexp(parts[0], e0), dom.lower)
                                      and np.array_equal(np.ldexp(parts[1], e0), dom.upper)):
        return None
    beta = None if dom.beta is None else math.ldexp(dom.beta, -e0)
    domain = Domain(dom.d, beta, *parts)
    copy = Problem(f, g, domain, scale, problem.dtype, problem.device)
    return Scaled(copy, interval_bounds(copy), math.ldexp(1.0, e0), math.ldexp(1.0, e_obj))
