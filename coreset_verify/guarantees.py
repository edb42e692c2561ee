"""The guarantees as code: the epsilon a coreset meets, and the m an epsilon needs.

Every bound has the form ``|F_i(x) - F~_i(x)| <= epsilon * scale_i`` for all
outputs i, with probability at least ``1 - delta`` over the draws:

* ``kind="pointwise"``: one input x, fixed before sampling
  (proofs_notes/pointwise.md);
* ``kind="uniform"``: every x of the ball at once (proofs_notes/uniform.md);
* ``kind="paper"``: the paper's ``t/eps^2 (d' log t + log 1/delta)`` with its
  unnamed constant made an argument. Not a proof (proofs_notes/paper.md).

``form="additive"`` has ``scale_i = T_i``; ``form="multiplicative"`` (for
``phi >= 0``) has ``scale_i = G_i(x) = sum_j |W_out[i, j]| phi(W_in[j].x + b_in[j])``,
which is at most ``T_i`` (proofs_notes/multiplicative.md).

The work is split as einops does: :func:`_layer_stats` reads the weights once
(float64, on the host), and the epsilon for any m is then scalar arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import numpy as np

from ._validation import (
    check_bool,
    check_layer,
    check_open_unit,
    check_option,
    check_positive,
    fail,
    to_numpy,
)
from .activations import Activation, get_activation, require
from .coreset import LayerCoreset, host_split
from .errors import InvalidArgumentError
from .sampling import MAX_SAMPLE_SIZE, split_sample_size
from .sensitivity import (
    REDUCTIONS,
    _activation_range,
    _sensitivities,
    check_magnitudes,
    check_scale,
    row_norms,
)

__all__ = [
    "FORMS",
    "KINDS",
    "Bound",
    "concentration_epsilon",
    "sample_size_for",
    "theoretical_bound",
]

KINDS = ("pointwise", "uniform", "paper")
FORMS = ("additive", "multiplicative")

# Net radii tried by the uniform bound, as fractions of beta (the ball net) and
# of the longest semi-axis (the ellipsoid net): log-spaced and fixed in advance.
# The bound holds for all of them at once (a union over the candidates, which
# costs log(number of candidates) in the log term), so the best one may be
# picked after the draws (proofs_notes/uniform.md).
_NET_RADII = np.logspace(-14, 0, 141)
_ELLIPSOID_GRID = np.logspace(-8, 0.5, 35)
# Added to every computed singular value, relative to the largest: a backward
# stable SVD errs by a small multiple of 1e-16 of it (Weyl), so the semi-axes
# used are never below the true ones.
_SVD_MARGIN = 1e-10


@dataclass(frozen=True)
class Bound:
    """A guarantee ``|F_i(x) - F~_i(x)| <= epsilon * scale_i`` w.p. ``>= 1 - delta``.

    Attributes
    ----------
    epsilon : float
        ``min(statistical, deterministic)``.
    scale : ndarray, shape (k,)
        ``T_i``. For the multiplicative form the claim is relative to
        ``G_i(x) <= T_i`` (see :meth:`scale_at`) and implies the additive one.
    kind, form : str
    delta : float
        The failure probability the caller asked for.
    sample_size : int
    statistical : float
        The concentration bound (holds with probability ``>= 1 - delta``).
    deterministic : float
        ``max_i (|F_i| + |F~_i|) / scale_i`` bounded from the weights alone;
        holds with probability one.
    sensitivity : float
        ``t_eff = max_j max_i s_i[j] / pr[j]`` (the total sensitivity ``t``
        when ``pr = s / t``), the largest over sign parts.
    net_radius : float or None
        The radius of the net (uniform kind).
    net : {"ball", "ellipsoid"} or None
        Which net the uniform kind chose (proofs_notes/uniform.md).
    assumptions : tuple of str
        Activation properties the theorem used.
    log_event_delta : float
        ``log`` of the failure probability spent on the realised sample size:
        ``log(delta)``, or ``log(delta / (m (m + 1)))`` for a ``distinct``
        coreset (a union over every m, proofs_notes/sampling.md). Kept as a
        log so that it never underflows.
    """

    epsilon: float
    scale: np.ndarray = field(repr=False)
    kind: str
    form: str
    delta: float
    sample_size: int
    statistical: float
    deterministic: float
    sensitivity: float
    net_radius: float | None
    net: str | None
    assumptions: tuple[str, ...]
    layer: tuple[Any, Any, Any, Activation] = field(repr=False, compare=False)
    log_event_delta: float = field(default=math.nan, repr=False)

    def scale_at(self, x: Any) -> np.ndarray:
        """The scale at inputs ``x`` (d,) or (b, d): ``T`` or ``G(x)``, float64.

        Returns shape (k,) or (b, k).
        """
        x = np.asarray(to_numpy(x), dtype=np.float64)
        if self.form == "additive":
            return np.broadcast_to(self.scale, (*x.shape[:-1], self.scale.shape[0]))
        W_in, b_in, W_out, act = self.layer
        return act(x @ W_in.T + b_in) @ np.abs(W_out).T


@dataclass(frozen=True)
class _PartStats:
    """What the bound of one sampled part needs, float64 (k outputs, m draws)."""

    m: int
    t_eff: float
    scale: np.ndarray  # T_i of the part (additive unit)
    low: np.ndarray  # sum_j |W_ij| phi_lo[j]: lower bound of G_i on the ball
    # Lipschitz constants, in x for the ball net ("ball") and in z = W_in x for
    # the ellipsoid net ("z"): of G_i, and of F_i - F~_i before (prior) and
    # after (real, when the draws are known) sampling.
    lip_graph: np.ndarray  # Lphi sum_j |W_ij| ||w_j||
    lip_prior: np.ndarray  # Lphi (sum_j |W_ij| ||w_j|| + max_j |W_ij| ||w_j|| / pr_j)
    lip_real: np.ndarray | None  # Lphi sum_j |W_ij - U_ij| ||w_j||
    zlip_graph: np.ndarray  # Lphi ||W_i||_2
    zlip_prior: np.ndarray  # Lphi (||W_i||_2 + max_j |W_ij| / pr_j)
    zlip_real: np.ndarray | None  # Lphi ||W_i - U_i||_2
    cap: np.ndarray  # deterministic bound on |F_i - F~_i| / unit_i


def concentration_epsilon(m: int, t: float, log_term: float) -> float:
    """Smallest epsilon that Hoeffding or Bernstein gives for the mean of m draws.

    Each draw lies in ``[-t, t]`` (unit scale), has variance at most ``t``,
    and deviates from the mean by at most ``t + 1``. ``log_term`` is
    ``log(2 N / delta)`` for a union over N events. Returns the smaller of

    * Hoeffding: ``t * sqrt(2 L / m)``;
    * Bernstein: the root of ``m e^2 = L (2 t + 2 (t + 1) e / 3)``.

    Examples
    --------
    >>> round(concentration_epsilon(100, 1.0, math.log(2 / 0.1)), 6)
    0.244775
    """
    return float(_concentration(m, t, np.asarray(log_term, dtype=np.float64)))


def _concentration(m: int, t: float, L: np.ndarray) -> np.ndarray:
    """:func:`concentration_epsilon` for an array of log terms."""
    if m <= 0:
        return np.full_like(L, math.inf)
    hoeffding = t * np.sqrt(2 * L / m)
    a = 2 * (t + 1) * L / 3
    bernstein = (a + np.sqrt(a * a + 8 * m * t * L)) / (2 * m)
    return np.minimum(hoeffding, bernstein)


def _layer_stats(W_in, b_in, W_out_part, act, beta, form, pr, counts, m,
                 func="theoretical_bound") -> _PartStats:
    """Float64 statistics of one part (``W_out_part >= 0`` or signed).

    Norms are computed scaled and every magnitude the float64 arithmetic
    cannot carry is refused (proofs_notes/sensitivity.md, "Magnitudes").
    """
    W_in, b_in = (np.asarray(to_numpy(a), dtype=np.float64) for a in (W_in, b_in))
    A = np.abs(np.asarray(to_numpy(W_out_part), dtype=np.float64))
    lo, hi, norms = _activation_range(np, W_in, b_in, beta, act, func)
    env = np.maximum(np.abs(lo), np.abs(hi))
    with np.errstate(over="ignore", under="ignore"):
        scale = A @ env
    check_scale(func, scale, A, env, act)
    low = A @ lo if act.is_nonnegative else np.zeros_like(scale)
    S = _per_output_sensitivities(A, env, lo, hi, scale, low, form)
    used = S.max(axis=0) > 0
    if np.any(used & (pr <= 0)):
        raise InvalidArgumentError(
            "A neuron with positive sensitivity has sampling probability 0: "
            "the estimate would be biased and no bound holds."
        )
    # Divide by pr (never multiply by 1/pr: a subnormal pr would overflow).
    t_eff = float(np.max(S.max(axis=0)[used] / pr[used])) if np.any(used) else 0.0
    lip = act.lipschitz
    # Products and sums below the smallest normal number may have underflowed
    # (each by at most u = 2^-1074): the Lipschitz constants get that margin,
    # so they stay upper bounds (proofs_notes/sensitivity.md, "Magnitudes").
    u = float(np.finfo(np.float64).smallest_subnormal)
    n = A.shape[1]
    a_norms = row_norms(np, A)  # a subnormal one has lost precision: refused
    check_magnitudes(func, "the row norm ||W_out[i]|| (of its sign part)", a_norms,
                     np.float64, "Rescale the weights toward 1.")
    min_pr = float(np.min(pr[used])) if np.any(used) else 1.0
    margin = 2 * n * u + u / min_pr
    with np.errstate(under="ignore", over="ignore"):
        weighted = A * norms  # |W_ij| ||w_j||
        lip_graph = lip * (weighted.sum(axis=1) + n * u)
        lip_prior = lip * (weighted.sum(axis=1) + margin
                           + np.max(weighted[:, used] / pr[used], axis=1, initial=0.0))
        zlip_graph = lip * (a_norms + n * u)
        zlip_prior = lip * (a_norms + margin
                            + np.max(A[:, used] / pr[used], axis=1, initial=0.0))
    if counts is None:
        lip_real = zlip_real = None
        cap = np.full(scale.shape, 1 + t_eff)
    else:
        draws = np.zeros_like(pr)  # cnt_j / (m pr_j); zero where never drawn
        drawn = counts > 0
        draws[drawn] = counts[drawn] / (m * pr[drawn])
        with np.errstate(under="ignore", over="ignore"):
            lip_real = lip * ((np.abs(1 - draws) * weighted).sum(axis=1) + margin)
            zlip_real = lip * (row_norms(np, A * np.abs(1 - draws)) + margin)
        cap = 1 + S @ draws
    return _PartStats(m, t_eff, scale, low, lip_graph, lip_prior, lip_real,
                      zlip_graph, zlip_prior, zlip_real, cap)


def _per_output_sensitivities(A, env, lo, hi, scale, low, form):
    """``S[i, j]``, (k, n): additive ``|W_ij| env_j / T_i``; multiplicative
    ``|W_ij| hi_j / (|W_ij| hi_j + G_lo_i - |W_ij| lo_j)``."""
    if form == "additive":
        num, den = A * env, scale[:, None]
    else:
        num = A * hi
        den = num + (low[:, None] - A * lo)
    return np.divide(num, den, out=np.zeros_like(num), where=num > 0)


def _net_terms(stats: _PartStats, form: str, graph: np.ndarray, lipschitz: np.ndarray,
               eps_net: np.ndarray):
    """Worst over outputs of the Lipschitz term per unit of net radius.

    Additive: ``L_i / T_i``. Multiplicative: ``(eps L_G_i + L_i) / G_lo_i``.
    Rows with a zero unit carry no error (F_i = F~_i = 0 on the ball).
    """
    if form == "additive":
        unit = stats.scale
        slope = np.divide(lipschitz, unit, out=np.zeros_like(unit), where=unit > 0)
        return np.max(slope) * np.ones_like(eps_net)
    unit = stats.low
    live = stats.scale > 0
    if np.any(live & (unit <= 0)):
        return np.full_like(eps_net, math.inf)
    num = eps_net[:, None] * graph[live] + lipschitz[live]
    return np.max(num / unit[live], axis=1, initial=0.0)


class Geometry(NamedTuple):
    """What the uniform kind's nets need: ``dim = min(n, d)``, the semi-axes
    of ``W_in B`` divided by the longest (``axes[0] = 1``), and that longest
    semi-axis ``length`` (may be inf: the ellipsoid net is then unusable)."""

    dim: int
    axes: np.ndarray
    length: float


def _nets(log0: float, beta: float, geometry: Geometry):
    """Every net: ``(kind, log terms, radii / length, length)``.

    Ball: ``(1 + 2 beta / r)^dim`` points. Ellipsoid ``W_in B`` with semi-axes
    ``axes``: the axes longer than ``tau`` netted at ``rho``, the others
    dropped, ``2^(|B|/2) prod_B (1 + 2 a_k / rho)`` points within
    ``hypot(rho, tau)`` (proofs_notes/uniform.md). Radii are kept as fractions
    of a length (``beta``, or the longest semi-axis) so that nothing overflows
    at ``beta = 1e308``; only ratios enter the log terms.
    """
    ball = log0 + geometry.dim * np.log1p(2 / _NET_RADII)
    nets = [("ball", ball, _NET_RADII, beta)]
    axes = geometry.axes
    if axes.size == 0 or not axes[0] > 0:
        return nets
    grid = _ELLIPSOID_GRID  # fractions of the longest semi-axis
    kept = axes[None, :] > grid[:, None]  # (tau, axis)
    per_axis = np.log1p(2 * axes[None, :] / grid[:, None])  # (rho, axis)
    ell = log0 + kept.sum(axis=1)[:, None] * math.log(2) / 2 + kept @ per_axis.T
    reach = np.hypot(grid[:, None], grid[None, :])  # (tau, rho)
    nets.append(("ellipsoid", ell.ravel(), reach.ravel(), geometry.length))
    return nets


def _part_epsilon(stats, *, kind, form, log_delta, k, beta, geometry, paper):
    """``(statistical, net_radius, net)`` for one part at confidence ``1 - delta``.

    ``log_delta = log(delta)``: every log term is a difference of logs, so any
    delta in (0, 1), 5e-324 included, is handled.
    """
    m, t = stats.m, stats.t_eff
    log0 = math.log(2 * k) - log_delta
    if kind == "pointwise":
        return concentration_epsilon(m, t, log0), None, None
    if kind == "paper":
        constant, dimension = paper
        # log t is clamped at 0: the paper's t >= 1 (per-output sensitivities
        # sum to 1 per output), but one sign part of split_signs can have t < 1,
        # where d' log t would make the radicand negative (proofs_notes/paper.md)
        log_t = max(math.log(t), 0.0) if t > 0 else 0.0
        eps = math.sqrt(constant * t * (dimension * log_t - log_delta) / m)
        return eps, None, None
    real = stats.lip_real is not None  # draws known: use the realised constants
    lips = {"ball": (stats.lip_graph, stats.lip_real if real else stats.lip_prior),
            "ellipsoid": (stats.zlip_graph, stats.zlip_real if real else stats.zlip_prior)}
    nets = _nets(log0, beta, geometry)
    union = math.log(sum(len(logs) for _, logs, _, _ in nets))
    best = (math.inf, None, None)
    for net, logs, fractions, length in nets:
        eps_net = _concentration(m, t, logs + union)
        with np.errstate(over="ignore", invalid="ignore"):  # inf length: net unusable
            graph, lipschitz = (length * a for a in lips[net])
            value = eps_net + fractions * _net_terms(stats, form, graph, lipschitz, eps_net)
        value = np.where(np.isnan(value), math.inf, value)
        i = int(np.argmin(value))
        if value[i] < best[0]:
            with np.errstate(over="ignore"):
                best = (float(value[i]), float(fractions[i] * length), net)
    return best


def _check_kind_form(func, act, kind, form, delta):
    delta = check_open_unit(delta, "delta", func)
    check_option(kind, "kind", func, KINDS)
    check_option(form, "form", func, FORMS)
    needs = ["is_nondecreasing"]
    if form == "multiplicative":
        needs.append("is_positive" if kind == "uniform" else "is_nonnegative")
    require(act, *needs, theorem=f"{kind} {form}")
    return delta, tuple(needs)


def _paper_args(func, constant, dimension, d):
    constant = check_positive(constant, "paper_constant", func)
    dimension = d + 1 if dimension is None else check_positive(dimension, "paper_dimension", func)
    return constant, dimension


def _combine(parts, *, kind, form, log_delta, k, beta, geometry, paper):
    """Union over sign parts: each gets ``delta / len(parts)``; the worst wins."""
    share = log_delta - math.log(len(parts))
    results = [
        _part_epsilon(p, kind=kind, form=form, log_delta=share, k=k, beta=beta,
                      geometry=geometry, paper=paper)
        for p in parts
    ]
    worst = max(results, key=lambda r: r[0])
    deterministic = max(float(np.max(p.cap)) for p in parts)
    return worst[0], deterministic, worst[1], worst[2]


def _geometry(W_in, beta: float, kind: str) -> Geometry:
    """:class:`Geometry` of ``W_in B`` for the uniform kind's nets.

    The semi-axes are ``beta`` times the singular values of ``W_in``, each
    raised by ``_SVD_MARGIN`` times the largest so that they are never
    underestimated; computed (scaled by the largest entry, so that the SVD
    neither overflows nor underflows) only for the uniform kind.
    """
    W = np.asarray(to_numpy(W_in), dtype=np.float64)
    dim = min(W.shape)
    top = float(np.max(np.abs(W)))
    if kind != "uniform" or top == 0:
        return Geometry(dim, np.zeros(0), 0.0)
    sigma = np.linalg.svd(W / top, compute_uv=False)
    if not sigma[0] > 0:
        return Geometry(dim, np.zeros(0), 0.0)
    raised = sigma + _SVD_MARGIN * sigma[0]
    with np.errstate(over="ignore", under="ignore"):
        length = beta * top * raised[0]
    return Geometry(dim, raised / raised[0], float(length))


def theoretical_bound(
    coreset: LayerCoreset,
    *,
    delta: float,
    kind: str = "uniform",
    form: str = "additive",
    paper_constant: float = 1.0,
    paper_dimension: float | None = None,
) -> Bound:
    """The epsilon this coreset provably meets, with probability ``>= 1 - delta``.

    Parameters
    ----------
    coreset : LayerCoreset
        From :func:`~coreset_verify.layer_coreset`.
    delta : float in (0, 1)
        Failure probability of the draws.
    kind : {"pointwise", "uniform", "paper"}
        See the module docstring.
    form : {"additive", "multiplicative"}
        The multiplicative form needs ``phi >= 0`` (and ``phi > 0`` for the
        uniform kind).
    paper_constant, paper_dimension : float
        The paper form's constant C and dimension d' (default ``d + 1``):
        ``epsilon = sqrt(C t (d' log t + log(1/delta)) / m)``. Not a proof.

    Returns
    -------
    Bound

    Notes
    -----
    A coreset drawn with ``distinct=r`` has a random number of draws m; its
    bound spends ``delta / (m (m + 1))`` (a union over every m,
    proofs_notes/sampling.md). Sign parts share delta equally
    (proofs_notes/split_signs.md).

    Examples
    --------
    >>> import numpy as np
    >>> from coreset_verify import layer_coreset
    >>> gen = np.random.default_rng(0)
    >>> W_in, b_in, W_out = gen.normal(size=(40, 5)), gen.normal(size=40), gen.normal(size=(2, 40))
    >>> c = layer_coreset(W_in, b_in, W_out, sample_size=400, beta=1.0, rng=0)
    >>> b = theoretical_bound(c, delta=0.1, kind="pointwise")
    >>> 0 < b.epsilon < 1
    True
    """
    func = "theoretical_bound"
    if not isinstance(coreset, LayerCoreset):
        raise fail(func, "coreset", "a LayerCoreset", type(coreset).__name__)
    _check_record(func, coreset)
    act = coreset.activation
    delta, needs = _check_kind_form(func, act, kind, form, delta)
    W_in, b_in, W_out = coreset.layer
    paper = _paper_args(func, paper_constant, paper_dimension, W_in.shape[1])
    log_delta = math.log(delta)
    if coreset.distinct is not None:  # a union over every realised m
        m = coreset.sample_size
        log_delta -= math.log(m) + math.log(m + 1)
    parts = [
        _layer_stats(W_in, b_in, _signed(W_out, p.sign), act, coreset.beta, form,
                     p.probabilities, p.counts, p.sample_size)
        for p in coreset.parts
        if p.sample_size > 0
    ]
    return _bound(parts, coreset.layer, act, coreset.beta, kind, form, delta, log_delta,
                  coreset.sample_size, needs, paper, coreset.scale,
                  _geometry(W_in, coreset.beta, kind))


def _check_record(func: str, coreset: LayerCoreset) -> None:
    """Refuse a LayerCoreset record that no draw of layer_coreset can produce
    (edited with dataclasses.replace): the bound describes the record."""
    beta = coreset.beta
    if not (isinstance(beta, float) and math.isfinite(beta) and beta > 0):
        raise fail(func, "coreset", "a LayerCoreset with a finite beta > 0", f"beta={beta!r}")
    m = coreset.sample_size
    sizes = [p.sample_size for p in coreset.parts]
    if not (isinstance(m, int) and m >= 1 and sum(sizes) == m):
        raise fail(func, "coreset", "a LayerCoreset whose parts' sample sizes sum to "
                   "sample_size >= 1", f"sample_size={m!r}, parts {sizes}")
    for p in coreset.parts:
        pr, counts = p.probabilities, p.counts
        if not (np.all(np.isfinite(pr)) and np.all(pr >= 0)) or (
                counts is not None and int(np.sum(counts)) != p.sample_size):
            raise fail(func, "coreset", "a LayerCoreset whose parts have finite probabilities "
                       ">= 0 and counts summing to their sample size", f"part {p.sign}")
    w = to_numpy(coreset.weight_out)
    if not np.all(np.isfinite(w)):
        raise fail(func, "coreset", "a LayerCoreset with a finite weight_out",
                   "NaN or infinite entries in weight_out")


def _bound(parts, layer, act, beta, kind, form, delta, log_delta, m, needs, paper, scale,
           geometry) -> Bound:
    W_in, b_in, W_out = (np.asarray(to_numpy(a), dtype=np.float64) for a in layer)
    statistical, deterministic, radius, net = _combine(
        parts, kind=kind, form=form, log_delta=log_delta, k=W_out.shape[0], beta=beta,
        geometry=geometry, paper=paper,
    )
    return Bound(
        epsilon=min(statistical, deterministic),
        scale=sum(p.scale for p in parts),  # float64 on the host, whatever the backend
        kind=kind, form=form, delta=delta, sample_size=m,
        statistical=statistical, deterministic=deterministic,
        sensitivity=max(p.t_eff for p in parts),
        net_radius=radius, net=net, assumptions=needs,
        layer=(W_in, b_in, W_out, act), log_event_delta=log_delta,
    )


def _signed(W_out, sign: int):
    """The part of W_out a sampled part covers, as float64 numpy (absolute values)."""
    W = np.asarray(to_numpy(W_out), dtype=np.float64)
    if sign == 0:
        return W
    return np.where(sign * W > 0, W, 0.0)


def sample_size_for(
    W_in: Any,
    b_in: Any,
    W_out: Any,
    *,
    epsilon: float,
    delta: float,
    activation: str | Activation = "relu",
    beta: float,
    kind: str = "uniform",
    form: str = "additive",
    split_signs: bool = False,
    reduction: str = "per-output",
    paper_constant: float = 1.0,
    paper_dimension: float | None = None,
) -> int:
    """Smallest m (fixed draws) whose bound, known before sampling, is ``<= epsilon``.

    A coreset of this ``sample_size`` then has
    ``theoretical_bound(...).epsilon <= epsilon``: the realised bound never
    exceeds the one computed here (proofs_notes/uniform.md).

    Examples
    --------
    >>> import numpy as np
    >>> gen = np.random.default_rng(0)
    >>> W_in, b_in, W_out = gen.normal(size=(40, 5)), gen.normal(size=40), gen.normal(size=(2, 40))
    >>> m = sample_size_for(W_in, b_in, W_out, epsilon=0.5, delta=0.1, beta=1.0,
    ...                     kind="pointwise")
    >>> m > 0
    True
    """
    func = "sample_size_for"
    act = get_activation(activation)
    delta, needs = _check_kind_form(func, act, kind, form, delta)
    epsilon = check_open_unit(epsilon, "epsilon", func)
    beta = check_positive(beta, "beta", func)
    check_option(reduction, "reduction", func, REDUCTIONS)
    split_signs = check_bool(split_signs, "split_signs", func)
    xp, W_in, b_in, W_out = check_layer(func, W_in, b_in, W_out)
    paper = _paper_args(func, paper_constant, paper_dimension, W_in.shape[1])
    plan = _plan(func, xp, W_in, b_in, W_out, act, beta, form, split_signs, reduction)
    geometry = _geometry(W_in, beta, kind)

    def eps(m: int) -> float:
        sizes = plan[1](m)
        parts = [_with_m(stats, size) for stats, size in zip(plan[0], sizes, strict=True) if size]
        return _bound(parts, (W_in, b_in, W_out), act, beta, kind, form, delta,
                      math.log(delta), m,
                      needs, paper, plan[2], geometry).epsilon

    low, high = (1, 2) if not split_signs else (2, 4)
    while eps(high) > epsilon:
        low, high = high, 2 * high
        if high > MAX_SAMPLE_SIZE:
            raise InvalidArgumentError(
                f"{func}: no sample size reaches epsilon={epsilon} (tried up to "
                "MAX_SAMPLE_SIZE = 2**53). Ask for a larger epsilon or delta."
            )
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if eps(mid) <= epsilon else (mid, high)
    return low if eps(low) <= epsilon else high


def _with_m(stats: _PartStats, m: int) -> _PartStats:
    return replace(stats, m=m, lip_real=None, zlip_real=None)


def _plan(func, xp, W_in, b_in, W_out, act, beta, form, split_signs, reduction):
    """Prior statistics of each part and the rule splitting m between parts."""
    if not split_signs:
        sens = _sensitivities(func, xp, W_in, b_in, W_out, beta, act, reduction)
        stats = _layer_stats(W_in, b_in, W_out, act, beta, form, sens.probabilities, None, 1,
                             func)
        return [stats], lambda m: [m], sens.scale
    sens = host_split(func, W_in, b_in, W_out, beta, act, reduction)  # as layer_coreset
    stats = []
    for sign in (1, -1):
        s = sens[sign]
        pr = s.sensitivity / s.total if s.total > 0 else np.zeros_like(s.sensitivity)
        stats.append(_layer_stats(W_in, b_in, _signed(W_out, sign), act, beta, form, pr,
                                  None, 1, func))
    totals = (sens[1].total, sens[-1].total)
    return stats, lambda m: list(split_sample_size(m, totals)), sens[1].scale + sens[-1].scale
