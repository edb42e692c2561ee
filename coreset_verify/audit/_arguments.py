"""Argument checks of the audit: claims, options, the ball and the activation.

Every message goes through :func:`coreset_verify._validation.fail` and names
the public function it was raised for.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

from .._validation import check_open_unit, check_positive, check_unknown_options, fail
from ..activations import Activation, get_activation
from ..errors import AssumptionError, InvalidArgumentError

__all__ = [
    "CLAIM_KEYS",
    "GUARANTEE_KEYS",
    "check_activation",
    "check_claims",
    "check_epsilon_value",
    "check_pruner_time_limit",
]

#: Known claim keys, with what each promises.
CLAIM_KEYS = {
    "unbiased": "E[F~(x)] = F(x) at every input x (required, bool)",
    "deterministic": "True: the result does not depend on rng; False: it does",
    "drops_dead": "neurons that are zero on the whole ball are never kept",
    "exact_at_full_size": "size = n reproduces F (default True)",
    "guarantee": "{'kind', 'delta', 'epsilon', 'beta'}: |F_i - F~_i| <= epsilon T_i",
}
#: Keys of ``claims["guarantee"]`` (``beta`` optional).
GUARANTEE_KEYS = ("kind", "delta", "epsilon", "beta")


def check_claims(claims: Any, func: str = "check_pruner") -> dict[str, Any]:
    """Validate a claims mapping; return a copy.

    Raises
    ------
    InvalidArgumentError
        Not a mapping, ``unbiased`` missing or not a bool, unknown keys, or a
        malformed guarantee (unknown keys, a kind other than pointwise or
        uniform, delta outside (0, 1), a numeric epsilon that is not a finite
        number >= 0).
    """
    if not isinstance(claims, Mapping):
        raise fail(func, "claims", "a mapping such as {'unbiased': True}", type(claims).__name__)
    check_unknown_options(claims, tuple(CLAIM_KEYS), func)
    if not isinstance(claims.get("unbiased"), bool):
        raise fail(func, "claims['unbiased']", "True or False", claims.get("unbiased"))
    for key in ("deterministic", "drops_dead", "exact_at_full_size"):
        if key in claims and not isinstance(claims[key], bool):
            raise fail(func, f"claims[{key!r}]", "True or False", claims[key])
    out = dict(claims)
    if "guarantee" in claims:
        out["guarantee"] = _check_guarantee_claim(claims["guarantee"], func)
    return out


def check_epsilon_value(eps: Any) -> bool:
    """Whether ``eps`` is a claimable epsilon: a finite real number >= 0 (not a bool)."""
    return (isinstance(eps, numbers.Real) and not isinstance(eps, bool)
            and math.isfinite(eps) and eps >= 0)


def _check_guarantee_claim(g: Any, func: str) -> dict[str, Any]:
    name = "claims['guarantee']"
    if not isinstance(g, Mapping):
        raise fail(func, name, "a mapping with kind, delta, epsilon", type(g).__name__)
    check_unknown_options(g, GUARANTEE_KEYS, func)
    if g.get("kind") not in ("pointwise", "uniform"):
        raise fail(func, f"{name}['kind']", "'pointwise' or 'uniform'", g.get("kind"))
    eps = g.get("epsilon")
    if not (callable(eps) or check_epsilon_value(eps)):
        raise fail(func, f"{name}['epsilon']",
                   "a finite number >= 0 or a callable epsilon(W_in, b_in, W_out, *, size, "
                   "rng) in units of T_i", eps if isinstance(eps, numbers.Number)
                   else type(eps).__name__)
    out = dict(g)
    out["delta"] = check_open_unit(g.get("delta"), f"{name}['delta']", func)
    if "beta" in g:
        out["beta"] = check_positive(g["beta"], f"{name}['beta']", func)
    return out


def check_pruner_time_limit(value: Any, func: str) -> float | None:
    """``None`` (calls in-process, no limit) or a finite number of seconds > 0."""
    if value is None:
        return None
    return check_positive(value, "pruner_time_limit", func)



def check_activation(activation: Any, func: str) -> Activation:
    """A registered, non-decreasing activation.

    Raises
    ------
    InvalidArgumentError
        Not a known activation.
    AssumptionError
        Not non-decreasing: the audit measures errors in units of ``T_i``
        (the largest ``|F_i|`` on the ball by the triangle inequality), which
        needs ``phi`` non-decreasing, as every theorem of the toolkit does.
    """
    try:
        act = get_activation(activation)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"{func}: {exc}") from None
    if not act.is_nondecreasing:
        raise AssumptionError(str(fail(
            func, "activation", "a non-decreasing activation (errors are measured in units "
            "of T_i, which needs one, as every bound of the toolkit does)", act.name)))
    return act
