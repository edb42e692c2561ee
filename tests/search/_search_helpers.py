"""Helpers for the worst-case search tests: tiny networks and an oracle."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn


def set_linear(layer, weight: np.ndarray, bias: np.ndarray) -> None:
    """Copy numpy weights into an ``nn.Linear``."""
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(weight))
        layer.bias.copy_(torch.as_tensor(bias))


def one_hidden(w1, b1, w2, b2, act=None):
    """``nn.Sequential(Linear, act, Linear)`` in float64 with given weights."""
    net = nn.Sequential(nn.Linear(w1.shape[1], w1.shape[0]), act or nn.ReLU(),
                        nn.Linear(w2.shape[1], w2.shape[0])).double()
    set_linear(net[0], w1, b1)
    set_linear(net[2], w2, b2)
    return net


def tiny_pair(seed: int, *, d: int = 2, n_f: int = 4, n_g: int = 2, k: int = 1,
              shared: bool = False, act=None) -> tuple:
    """A random one-hidden-layer pair; with ``shared`` the pruned network keeps
    the first ``n_g`` neurons of the original, re-weighted."""
    rng = np.random.default_rng(seed)
    w1, b1 = rng.standard_normal((n_f, d)), 0.5 * rng.standard_normal(n_f)
    w2, b2 = rng.standard_normal((k, n_f)), 0.1 * rng.standard_normal(k)
    f = one_hidden(w1, b1, w2, b2, act)
    if shared:
        keep = np.sort(rng.choice(n_f, n_g, replace=False))
        u = w2[:, keep] * rng.uniform(0.5, 2.0, (k, n_g))
        g = one_hidden(w1[keep], b1[keep], u, b2, act)
    else:
        g = one_hidden(rng.standard_normal((n_g, d)), 0.5 * rng.standard_normal(n_g),
                       rng.standard_normal((k, n_g)), 0.1 * rng.standard_normal(k), act)
    return f, g


def _weights(net) -> tuple:
    return tuple(p.detach().double().numpy() for p in
                 (net[0].weight, net[0].bias, net[2].weight, net[2].bias))


def brute_force_max(f, g, beta: float) -> float:
    """Max of ``max_i |f_i - g_i|`` over the ball, one region at a time.

    Enumerates every activation pattern of the hidden ReLUs of both
    networks, maximises each signed output difference over the region's
    polyhedron intersected with the ball (cvxpy + CLARABEL), and takes the
    largest value. Independent of the package's own code.
    """
    cp = pytest.importorskip("cvxpy")
    wf, bf, vf, cf = _weights(f)
    wg, bg, vg, cg = _weights(g)
    w, b = np.vstack([wf, wg]), np.concatenate([bf, bg])
    n_f, d, k = len(bf), w.shape[1], len(cf)
    x, sigma, c = cp.Variable(d), cp.Parameter(len(b)), cp.Parameter(d)
    prob = cp.Problem(cp.Maximize(c @ x),
                      [cp.multiply(sigma, w @ x + b) >= 0, cp.norm(x) <= beta])
    best = 0.0
    for pattern in itertools.product((0.0, 1.0), repeat=len(b)):
        on = np.array(pattern)
        sigma.value = 2 * on - 1
        a_f, a_g = vf * on[:n_f], vg * on[n_f:]
        lin = a_f @ wf - a_g @ wg
        const = a_f @ bf + cf - a_g @ bg - cg
        for i, s in itertools.product(range(k), (1.0, -1.0)):
            c.value = s * lin[i]
            prob.solve(solver="CLARABEL")
            if prob.status in ("optimal", "optimal_inaccurate"):
                best = max(best, prob.value + s * const[i])
    return best


def sample_max(f, g, beta: float, n: int, seed: int) -> float:
    """Max of ``max_i |f_i - g_i|`` over ``n`` random points of the ball, half
    of them on its sphere."""
    rng = np.random.default_rng(seed)
    d = f[0].weight.shape[1]
    u = rng.standard_normal((n, d))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    r = np.ones(n)
    r[n // 2 :] = rng.random(n - n // 2) ** (1 / d)
    x = torch.as_tensor(u * r[:, None] * beta)
    with torch.no_grad():
        return float((f.double()(x) - g.double()(x)).abs().max())
