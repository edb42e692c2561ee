"""Independent reference arithmetic for the fuzz oracle (nothing from the package).

Every value is recomputed with mpmath at 40 significant digits and an unbounded
exponent range, from the float values of the arrays the package returned, so
weights of 1e-320 or 1e300 and radii of 1e308 neither underflow nor overflow
here. The layer pair is ``F_i(x) = sum_j W_out[i, j] phi(W_in[j] . x + b_in[j])``
(DESIGN.md), written again below instead of imported.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np

DPS = 40


def _mp(v) -> mpmath.mpf:
    return mpmath.mpf(float(v))


def phi(name: str, z: mpmath.mpf) -> mpmath.mpf:
    """The activations fuzzed, with torch's default parameters."""
    if name == "relu":
        return z if z > 0 else mpmath.mpf(0)
    if name == "leaky_relu":
        return z if z >= 0 else z / 100
    if name == "sigmoid":
        return 1 / (1 + mpmath.exp(-z))
    if name == "softplus":
        return mpmath.log1p(mpmath.exp(z)) if z < 10**6 else z
    if name == "tanh":
        return mpmath.tanh(z)
    if name == "elu":
        return z if z > 0 else mpmath.expm1(z)
    raise KeyError(name)


def as_f64(a) -> np.ndarray:
    """A float64 numpy copy of a numpy array or CPU torch tensor."""
    if hasattr(a, "detach"):
        a = a.detach().to("cpu")
        if a.is_sparse:
            a = a.to_dense()
        a = a.double().numpy()
    return np.asarray(a, dtype=np.float64)


def mp_matrix(a) -> list:
    a = as_f64(a)
    if a.ndim == 1:
        return [_mp(v) for v in a]
    return [[_mp(v) for v in row] for row in a]


def mp_norm(row) -> mpmath.mpf:
    return mpmath.sqrt(mpmath.fsum(v * v for v in row))


class LayerPair:
    """A layer pair held in mpmath: evaluates F, |W_out| phi (for G) and T."""

    def __init__(self, W_in, b_in, W_out, act: str):
        with mpmath.workdps(DPS):
            self.W_in, self.b_in = mp_matrix(W_in), mp_matrix(b_in)
            self.W_out, self.act = mp_matrix(W_out), act

    def hidden(self, x: list) -> list:
        return [phi(self.act, mpmath.fsum(w * xi for w, xi in zip(row, x, strict=True)) + b)
                for row, b in zip(self.W_in, self.b_in, strict=True)]

    def outputs(self, x: list, W_out=None, rows=None) -> list:
        """``F(x)``; with ``W_out``/``rows`` the pruned pair sharing these neurons."""
        with mpmath.workdps(DPS):
            h = self.hidden(x)
            if rows is not None:
                h = [h[j] for j in rows]
            W = self.W_out if W_out is None else W_out
            return [mpmath.fsum(c * hj for c, hj in zip(r, h, strict=True)) for r in W]

    def magnitude(self, x: list) -> list:
        """``G_i(x) = sum_j |W_out[i, j]| phi(...)`` (the multiplicative scale)."""
        with mpmath.workdps(DPS):
            h = self.hidden(x)
            return [mpmath.fsum(abs(c) * hj for c, hj in zip(r, h, strict=True))
                    for r in self.W_out]

    def envelope(self, beta: mpmath.mpf) -> list:
        """``env_j = max(|phi(-beta ||w_j|| + b_j)|, |phi(beta ||w_j|| + b_j)|)``."""
        with mpmath.workdps(DPS):
            return [max(abs(phi(self.act, beta * mp_norm(r) + b)),
                        abs(phi(self.act, -beta * mp_norm(r) + b)))
                    for r, b in zip(self.W_in, self.b_in, strict=True)]

    def scale(self, beta: mpmath.mpf) -> list:
        """``T_i = sum_q |W_out[i, q]| env_q`` (``env = phi_hi`` when phi >= 0)."""
        with mpmath.workdps(DPS):
            top = self.envelope(beta)
            return [mpmath.fsum(abs(c) * t for c, t in zip(r, top, strict=True))
                    for r in self.W_out]


def ball_points(d: int, beta, rng: np.random.Generator, rows=(), count: int = 12) -> list:
    """Inputs of the ball ``||x|| <= beta`` in mpmath: the centre, random interior
    and boundary points, and the extreme points ``+-beta w/||w||`` of the rows."""
    with mpmath.workdps(DPS):
        beta = mpmath.mpf(beta) if not isinstance(beta, mpmath.mpf) else beta
        pts = [[mpmath.mpf(0)] * d]
        for i in range(count):
            u = rng.standard_normal(d)
            u = [mpmath.mpf(float(v)) for v in u]
            nu = mp_norm(u)
            if nu == 0:
                continue
            r = mpmath.mpf(1) if i % 2 else mpmath.mpf(float(rng.random())) ** (mpmath.mpf(1) / d)
            pts.append([beta * r * v / nu for v in u])
        for row in rows:
            nr = mp_norm(row)
            if nr > 0:
                pts.append([beta * v / nr * (1 - mpmath.mpf(2) ** -60) for v in row])
                pts.append([-beta * v / nr * (1 - mpmath.mpf(2) ** -60) for v in row])
        return pts


def to_float(v) -> float:
    """An mpf as a float, saturating at +-inf instead of raising."""
    try:
        return float(v)
    except OverflowError:  # pragma: no cover - mpmath returns inf already
        return math.inf if v > 0 else -math.inf


# --------------------------------------------------------------- torch models


def model_layers(model) -> list:
    """``[(kind, params)]`` of a Sequential of Linear and activations, in float64."""
    import torch.nn as nn

    names = {nn.ReLU: "relu", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.ELU: "elu",
             nn.LeakyReLU: "leaky_relu", nn.Softplus: "softplus", nn.Identity: None,
             nn.Flatten: None}
    out = []
    for m in model:
        if isinstance(m, nn.Linear):
            b = m.bias if m.bias is not None else np.zeros(m.out_features)
            out.append(("linear", (mp_matrix(m.weight), mp_matrix(b))))
        elif type(m) in names:
            if names[type(m)] is not None:
                if isinstance(m, nn.Softplus) and (m.beta != 1 or m.threshold != 20):
                    raise KeyError("softplus parameters")
                if isinstance(m, nn.LeakyReLU) and m.negative_slope != 0.01:
                    raise KeyError("leaky slope")
                if isinstance(m, nn.ELU) and m.alpha != 1.0:
                    raise KeyError("elu alpha")
                out.append(("act", names[type(m)]))
        else:
            raise KeyError(type(m).__name__)
    return out


def run_model(layers: list, x: list, magnitude: list | None = None) -> list:
    """The model's output at ``x`` in mpmath (Softplus as torch: identity above 20).

    With ``magnitude`` (a list), it receives ``sum_j |W_ij h_j| + |b_i|`` of the last
    Linear: the scale of the rounding a float evaluation of the output may carry."""
    with mpmath.workdps(DPS):
        h = list(x)
        for kind, p in layers:
            if kind == "linear":
                W, b = p
                if magnitude is not None:
                    magnitude[:] = [mpmath.fsum(abs(w * v) for w, v in zip(row, h, strict=True))
                                    + abs(bb) for row, bb in zip(W, b, strict=True)]
                h = [mpmath.fsum(w * v for w, v in zip(row, h, strict=True)) + bb
                     for row, bb in zip(W, b, strict=True)]
            elif p == "softplus":
                h = [v if v > 20 else phi("softplus", v) for v in h]
            else:
                h = [phi(p, v) for v in h]
        return h
