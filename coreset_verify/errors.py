"""Exceptions raised by coreset-verify.

Every error the toolkit raises derives from :class:`CoresetVerifyError`, so a
caller can catch them all at once. Bad arguments raise
:class:`InvalidArgumentError`, which is also a :class:`ValueError`.
"""

from __future__ import annotations

__all__ = [
    "AssumptionError",
    "CoresetVerifyError",
    "InvalidArgumentError",
    "MissingDependencyError",
    "SolverError",
]


class CoresetVerifyError(Exception):
    """Base class of every error raised by coreset-verify."""


class InvalidArgumentError(CoresetVerifyError, ValueError):
    """An argument has the wrong type, shape, value or backend."""


class AssumptionError(InvalidArgumentError):
    """A theorem was asked for where its assumption does not hold.

    For example a non-monotone activation, for which ``phi(beta * ||w|| + b)``
    is not the largest value a neuron takes on the ball.
    """


class MissingDependencyError(CoresetVerifyError, ImportError):
    """An optional dependency needed by this function is not installed."""


class SolverError(CoresetVerifyError, RuntimeError):
    """A solver could not be run at all (not: it ran and did not prove)."""
