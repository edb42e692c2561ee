"""Exceptions raised by coreset-verify.

Every error the toolkit raises derives from :class:`CoresetVerifyError`, so a
caller can catch them all at once. Bad arguments raise
:class:`InvalidArgumentError`, which is also a :class:`ValueError`.
"""

from __future__ import annotations

__all__ = [
    "AssumptionError",
    "CertificateError",
    "CoresetVerifyError",
    "InvalidArgumentError",
    "MagnitudeError",
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


class MagnitudeError(InvalidArgumentError):
    """A weight magnitude the floating-point arithmetic cannot carry.

    Raised where a row norm, a reach ``beta ||w_j||``, an envelope or a
    scale ``T_i`` would be infinite or subnormal (below the smallest normal
    number), or where ``T_i`` underflowed to 0: no bound computed from it
    would be true (proofs_notes/sensitivity.md, "Magnitudes"). Rescale the
    weights; for ReLU layers the bound is invariant under
    ``(W_in, b_in, W_out) -> (c W_in, c b_in, W_out / c)``.
    """


class CertificateError(CoresetVerifyError, ValueError):
    """A certificate file is malformed, does not match the models, or does not
    prove its claim (:func:`coreset_verify.certificate.check`)."""


class MissingDependencyError(CoresetVerifyError, ImportError):
    """An optional dependency needed by this function is not installed."""


class SolverError(CoresetVerifyError, RuntimeError):
    """A solver could not be run at all (not: it ran and did not prove)."""
