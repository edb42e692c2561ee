"""Projected gradient ascent with many restarts batched in one tensor."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from .._validation import check_int
from ..nets.intervals import row_norms
from ._problem import Problem

__all__ = ["GradientOutcome", "gradient_search", "starting_points"]

#: Most first-layer directions used as starts (each with its negative).
MAX_DIRECTION_STARTS = 1024


@dataclass(frozen=True)
class GradientOutcome:
    """Best points of a gradient search, best first.

    ``points`` (m, d) and ``values`` (m,) are re-evaluated in float64;
    ``steps`` is the number of ascent steps taken.
    """

    points: np.ndarray
    values: np.ndarray
    steps: int


def starting_points(problem: Problem, restarts: int, rng: np.random.Generator,
                    extra: np.ndarray | None = None) -> np.ndarray:
    """Directions of the first layer's rows (both signs) plus random points.

    Returns
    -------
    numpy.ndarray, shape (m, d)
        ``center +- radius * w_j / ||w_j||`` for rows ``w_j`` of the first
        ``nn.Linear`` of the original (at most ``MAX_DIRECTION_STARTS`` rows,
        chosen at random), then ``restarts`` points drawn from the domain,
        then the ``extra`` points (e.g. data) when given. Not yet projected
        onto the domain.
    """
    dom = problem.domain
    w = problem.f[0].weight
    norms = row_norms(w)
    w = w[norms > 0] / norms[norms > 0, None]
    if len(w) > MAX_DIRECTION_STARTS:
        w = w[rng.choice(len(w), MAX_DIRECTION_STARTS, replace=False)]
    dirs = dom.center + dom.radius * np.vstack([w, -w])
    points = [dirs, dom.center[None], dom.sample(restarts, rng)]
    if extra is not None:
        points.append(np.asarray(extra, dtype=float))
    return np.vstack(points)


#: Most multiply-adds of one forward pass of the ascent's batch (about 0.05 s on
#: one core): a network so large that every start would take more ascends
#: the best ``STEP_WORK // (weights of both networks)`` starts, chosen by their
#: value in half the stage's time, so that it takes steps within its time.
STEP_WORK = 2**30

#: Magnitudes (inputs, weights, activations) a float32 ascent may meet: beyond
#: them (or below their inverse) the ascent runs in float64 instead.
FLOAT32_SAFE = 1e30


def _ascent_dtype(problem: Problem):
    """The model's dtype, or float64 when a float32 ascent could overflow or
    underflow: a crude bound on every magnitude the forward pass meets."""
    import torch

    if problem.dtype not in (None, torch.float32):
        return problem.dtype
    reach = problem.domain.radius + float(np.max(np.abs(problem.domain.center), initial=0.0))
    sizes = [reach]
    for net in (problem.f, problem.g):
        m = reach
        for layer in net:
            with np.errstate(over="ignore"):
                m = float(np.max(np.abs(layer.weight) @ np.full(layer.weight.shape[1], m)
                                 + np.abs(layer.bias), initial=0.0))
            sizes.append(m)
    top = max(sizes)
    small = min(v for v in sizes if v > 0) if any(v > 0 for v in sizes) else 1.0
    if top > FLOAT32_SAFE or small < 1 / FLOAT32_SAFE:
        return torch.float64
    return problem.dtype


def gradient_search(problem: Problem, *, restarts: int = 64, steps: int = 200,
                    rng: np.random.Generator, deadline: float = math.inf,
                    keep: int = 8, extra: np.ndarray | None = None) -> GradientOutcome:
    """Projected Adam ascent on ``max_i |f_i - g_i| / scale_i`` from many starts.

    Parameters
    ----------
    problem : Problem
        The networks, domain and scales.
    restarts : int
        Random starts (>= 0), on top of the first-layer directions;
        ``worst_case`` bounds it (``MAX_RESTARTS``, ``MAX_BATCH_ELEMENTS``).
    steps : int
        Ascent steps (>= 1); the learning rate decays from ``0.05 * radius`` to
        ``0.0005 * radius`` on a cosine schedule.
    rng : numpy.random.Generator
        Source of the random starts.
    deadline : float
        ``time.perf_counter()`` value after which to stop early.
    keep : int
        How many of the best points (over all starts and steps) to return (>= 1).
    extra : numpy.ndarray, shape (m, d), optional
        More starting points (``worst_case(starts=...)``).

    Returns
    -------
    GradientOutcome

    Notes
    -----
    Every start is ascended unless one forward pass of them all would exceed
    :data:`STEP_WORK` multiply-adds (conv networks read as dense maps): then
    the starts, in random order, are evaluated until half the time to
    ``deadline`` and the best ``STEP_WORK // (weights of both networks)`` of
    them are ascended.
    """
    import torch

    func = "gradient_search"
    restarts = check_int(restarts, "restarts", func, minimum=0)
    steps, keep = check_int(steps, "steps", func), check_int(keep, "keep", func)
    layers = problem.torch_layers(_ascent_dtype(problem))
    dtype, device = layers[0][0][0].dtype, layers[0][0][0].device
    x0 = torch.as_tensor(starting_points(problem, restarts, rng, extra), dtype=dtype,
                         device=device)
    x0 = problem.domain.project(x0)
    batch = max(1, STEP_WORK // sum(lay[0].numel() for net in layers for lay in net))
    if len(x0) > batch:  # a large network: ascend the best starts only
        x0 = _best_starts(problem, layers, x0[rng.permutation(len(x0))], batch,
                          time.perf_counter() / 2 + deadline / 2)
    x = x0.detach().clone().requires_grad_(True)
    lr0 = 0.05 * problem.domain.radius
    adam = _Adam(x)
    best_val = torch.full((len(x),), -math.inf, dtype=dtype, device=device)
    best_x = x.detach().clone()
    taken = 0
    for step in range(steps + 1):
        val = problem.signed_differences(x, layers).abs().amax(dim=1)
        better = val.detach() > best_val
        best_val = torch.where(better, val.detach(), best_val)
        best_x[better] = x.detach()[better]
        if step == steps or time.perf_counter() > deadline:
            break
        (grad,) = torch.autograd.grad(-val.sum(), x)
        lr = lr0 * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        with torch.no_grad():
            adam.step(grad, lr)
            x.copy_(problem.domain.project(x))
        taken += 1
    return _finish(problem, best_x, best_val, keep, taken)


def _best_starts(problem: Problem, layers, starts, batch: int, deadline: float):
    """The ``batch`` best of ``starts``, evaluated ``batch`` at a time until
    ``deadline`` (the first batch always)."""
    import torch

    values = []
    with torch.no_grad():
        for i in range(0, len(starts), batch):
            if values and time.perf_counter() > deadline:
                break
            chunk = problem.signed_differences(starts[i:i + batch], layers)
            values.append(chunk.abs().amax(dim=1))
    values = torch.cat(values)
    return starts[values.argsort(descending=True)[:batch]]


class _Adam:
    """Adam (Kingma and Ba; torch's defaults: betas 0.9, 0.999, eps 1e-8) on one
    tensor, written out: ``torch.optim.Adam`` imports ``torch._dynamo`` on its first
    use, 3-4 s that no time limit could honour."""

    def __init__(self, x, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        import torch

        self.x, self.beta1, self.beta2, self.eps, self.t = x, beta1, beta2, eps, 0
        self.m, self.v = torch.zeros_like(x), torch.zeros_like(x)

    def step(self, grad, lr: float) -> None:
        """One descent step on ``x`` along ``grad`` (call under ``torch.no_grad``)."""
        self.t += 1
        self.m.mul_(self.beta1).add_(grad, alpha=1 - self.beta1)
        self.v.mul_(self.beta2).addcmul_(grad, grad, value=1 - self.beta2)
        correction1 = 1 - self.beta1**self.t
        correction2 = 1 - self.beta2**self.t
        denom = (self.v.sqrt() / math.sqrt(correction2)).add_(self.eps)
        self.x.addcdiv_(self.m, denom, value=-lr / correction1)


def _finish(problem: Problem, best_x, best_val, keep: int, taken: int,
            ) -> GradientOutcome:
    order = best_val.argsort(descending=True).cpu().numpy()
    pts = best_x.detach().cpu().double().numpy()[order]
    chosen: list[np.ndarray] = []
    tol = 1e-6 * problem.domain.radius
    for p in pts:
        if all(row_norms((p / 2 - q / 2)[None])[0] > tol / 2 for q in chosen):
            chosen.append(p)
        if len(chosen) == keep:
            break
    values = np.array([problem.evaluate(p)[0] for p in chosen])
    order = np.argsort(-values)
    return GradientOutcome(np.array(chosen)[order], values[order], taken)
