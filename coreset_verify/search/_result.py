"""Result objects and status constants of the worst-case search."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "BOUNDED",
    "CERTIFY_ATOL",
    "CERTIFY_RTOL",
    "NOT_APPLICABLE",
    "OPTIMAL",
    "SOLVER_FAILED",
    "STATUS_LOCAL",
    "TIME_LIMIT",
    "Stage",
    "WorstCase",
    "is_certified",
]

#: The program was solved: ``upper_bound`` and ``error`` agree within tolerance.
OPTIMAL = "optimal"
#: A time limit stopped the search; ``upper_bound`` is the solver's dual bound.
TIME_LIMIT = "time_limit"
#: A local optimum (gradient or region search); no bound was attempted.
STATUS_LOCAL = "local"
#: A solver failed; whatever was proved before the failure is kept.
SOLVER_FAILED = "solver_failed"
#: The method does not apply to these networks (e.g. sigmoid in ``exact``).
NOT_APPLICABLE = "not_applicable"
#: A bound computation finished (interval or relaxation), gap left open.
BOUNDED = "bounded"

#: ``certified`` holds when ``upper_bound - error <= CERTIFY_RTOL * upper_bound
#: + CERTIFY_ATOL``.
CERTIFY_RTOL = 1e-4
CERTIFY_ATOL = 1e-9


def is_certified(error: float, upper_bound: float) -> bool:
    """Whether the bracket ``[error, upper_bound]`` is closed within tolerance.

    Parameters
    ----------
    error : float
        The value found (a lower bound on the maximum).
    upper_bound : float
        A sound upper bound on the maximum.

    Returns
    -------
    bool
        ``upper_bound - error <= CERTIFY_RTOL * |upper_bound| + CERTIFY_ATOL``.

    Examples
    --------
    >>> is_certified(1.0, 1.00001)
    True
    >>> is_certified(1.0, math.inf)
    False
    """
    if not math.isfinite(upper_bound):
        return False
    slack = CERTIFY_RTOL * abs(upper_bound) + CERTIFY_ATOL
    return upper_bound - error <= slack


@dataclass(frozen=True)
class Stage:
    """What one stage of the search contributed.

    Attributes
    ----------
    name : str
        ``"gradient"``, ``"region"``, ``"bounds:interval"``,
        ``"bounds:linear"``, ``"bounds:relaxation"``, ``"exact"`` or ``"bab"``.
    error : float
        Best objective value this stage found (``-inf`` when it found none).
    upper_bound : float
        Sound upper bound this stage proved (``inf`` when none).
    seconds : float
        Wall-clock time of the stage.
    status : str
        One of the status constants of this module.
    history : tuple of tuple
        The bracket over time, ``(seconds, error, upper_bound, nodes)`` rows
        (branch and bound; empty for the other stages).
    """

    name: str
    error: float
    upper_bound: float
    seconds: float
    status: str
    history: tuple = ()


@dataclass(frozen=True)
class WorstCase:
    """The worst input found, with a sound bound on how bad it can get.

    The record stores what was found and the options that made it; what can
    be derived from those (``certified``, ``gap``) is derived, never stored,
    so a result cannot contradict itself.

    Attributes
    ----------
    x : numpy.ndarray, shape (d,)
        The input attaining ``error`` (float64, inside the domain).
    error : float
        ``max_i |f_i(x) - g_i(x)| / scale[i]`` re-evaluated at ``x`` in torch
        float64: a lower bound on the true maximum over the domain.
    upper_bound : float
        A sound upper bound on the maximum (``math.inf`` when none).
    status : str
        ``"optimal"``, ``"time_limit"``, ``"local"``, ``"bounded"``,
        ``"solver_failed"`` or ``"not_applicable"``.
    seconds : float
        Total wall-clock time.
    output : int
        The output index ``i`` attaining the maximum at ``x``.
    trace : tuple of Stage
        One record per stage run, in order.
    method : str
        The method asked for.
    beta, lower, upper : float or None, numpy.ndarray or None
        The domain searched (kept so that :func:`verify` can check ``x``).
    scale : numpy.ndarray, shape (k,)
        The output scales of the objective.
    time_limit : float or None
        The time limit asked for.
    restarts : int
        The random restarts asked for.
    rng_state : dict or None
        ``bit_generator.state`` of the random generator before the search
        (see :meth:`replay_options`).
    """

    x: np.ndarray
    error: float
    upper_bound: float
    status: str
    seconds: float
    output: int
    trace: tuple[Stage, ...]
    method: str
    beta: float | None = None
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    scale: np.ndarray | None = None
    time_limit: float | None = None
    restarts: int = 64
    rng_state: dict | None = None

    @property
    def certified(self) -> bool:
        """Whether the bracket is closed: :func:`is_certified` of ``(error,
        upper_bound)``, i.e. ``upper_bound - error <= CERTIFY_RTOL *
        |upper_bound| + CERTIFY_ATOL`` (derived, never stored)."""
        return is_certified(self.error, self.upper_bound)

    @property
    def gap(self) -> float:
        """``upper_bound - error`` (``inf`` when there is no bound)."""
        return self.upper_bound - self.error

    def replay_options(self) -> dict:
        """The keyword arguments of ``worst_case`` that made this result.

        ``worst_case(original, pruned, **result.replay_options())`` runs the
        same search again: same domain, scales, method, restarts and random
        starts (a time limit may still end a stage at another point). The
        ``starts`` given to the first run, if any, are not stored; pass them
        again.
        """
        rng = None
        if self.rng_state is not None:
            bit_generator = getattr(np.random, self.rng_state["bit_generator"])()
            bit_generator.state = self.rng_state
            rng = np.random.Generator(bit_generator)
        return {"beta": self.beta, "lower": self.lower, "upper": self.upper,
                "scale": self.scale, "method": self.method,
                "time_limit": self.time_limit, "restarts": self.restarts, "rng": rng}
