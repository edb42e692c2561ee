"""Adversarial worst-case search between two torch networks.

``worst_case(original, pruned, beta=...)`` looks for the input where the two
networks' outputs differ most and brackets the maximum between the error
found (a lower bound) and a sound upper bound. It knows nothing of coresets.
"""

from ._result import (
    BOUNDED,
    CERTIFY_ATOL,
    CERTIFY_RTOL,
    NOT_APPLICABLE,
    OPTIMAL,
    SOLVER_FAILED,
    STATUS_LOCAL,
    TIME_LIMIT,
    Stage,
    WorstCase,
)
from .worst_case import (
    MAX_BATCH_ELEMENTS,
    MAX_RESTARTS,
    MAX_STARTS,
    METHODS,
    verify,
    worst_case,
)

__all__ = [
    "BOUNDED",
    "CERTIFY_ATOL",
    "CERTIFY_RTOL",
    "MAX_BATCH_ELEMENTS",
    "MAX_RESTARTS",
    "MAX_STARTS",
    "METHODS",
    "NOT_APPLICABLE",
    "OPTIMAL",
    "SOLVER_FAILED",
    "STATUS_LOCAL",
    "TIME_LIMIT",
    "Stage",
    "WorstCase",
    "verify",
    "worst_case",
]
