"""Activations and the properties the theorems need.

Each activation is an :class:`Activation`: an elementwise function that works
on numpy and torch arrays alike, plus named facts about it
(``is_nondecreasing``, ``is_nonnegative``, ``is_positive``, ``lipschitz``).
A theorem states which facts it needs and :func:`require` raises an
:class:`~coreset_verify.errors.AssumptionError` that names the missing one.

Users add their own with :func:`register_activation`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from array_api_compat import array_namespace

from .errors import AssumptionError, InvalidArgumentError

__all__ = [
    "Activation",
    "available_activations",
    "get_activation",
    "register_activation",
    "require",
]


@dataclass(frozen=True)
class Activation:
    """An elementwise activation and the facts the theorems rely on.

    Parameters
    ----------
    name : str
        Registry key, e.g. ``"relu"``.
    function : callable
        ``function(z, xp)`` returns ``phi(z)`` elementwise for an array ``z``
        of namespace ``xp`` (numpy or torch through array-api-compat).
    is_nondecreasing : bool
        ``phi(a) <= phi(b)`` whenever ``a <= b``. Every bound in this toolkit
        needs it: it makes ``phi(beta*||w|| + b)`` the largest value of a
        neuron on the ball.
    is_nonnegative : bool
        ``phi(z) >= 0`` for all ``z``.
    is_positive : bool
        ``phi(z) > 0`` for all ``z`` (implies ``is_nonnegative``).
    lipschitz : float
        A Lipschitz constant of ``phi`` (``|phi(a) - phi(b)| <= L |a - b|``).
    torch_module : callable or None
        Builds the matching ``torch.nn`` module; used when networks are built.
    """

    name: str
    function: Callable[[Any, Any], Any] = field(repr=False)
    is_nondecreasing: bool
    is_nonnegative: bool
    is_positive: bool
    lipschitz: float
    torch_module: Callable[[], Any] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.is_positive and not self.is_nonnegative:
            raise InvalidArgumentError(
                f"Activation {self.name!r}: is_positive=True requires "
                "is_nonnegative=True."
            )
        if not (math.isfinite(self.lipschitz) and self.lipschitz >= 0):
            raise InvalidArgumentError(
                f"Activation {self.name!r}: lipschitz must be a finite number "
                f">= 0; got {self.lipschitz!r}."
            )

    def __call__(self, z: Any) -> Any:
        """Apply ``phi`` elementwise to a numpy or torch array."""
        return self.function(z, array_namespace(z))


def _zeros(z, xp):
    return xp.zeros_like(z)


def _relu(z, xp):
    return xp.where(z > 0, z, _zeros(z, xp))


def _leaky_relu(z, xp, slope=0.01):
    return xp.where(z >= 0, z, slope * z)


def _sigmoid(z, xp):
    e = xp.exp(-xp.abs(z))  # in (0, 1]: no overflow on either side
    return xp.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _softplus(z, xp):
    return _relu(z, xp) + xp.log1p(xp.exp(-xp.abs(z)))


def _tanh(z, xp):
    return xp.tanh(z)


def _elu(z, xp, alpha=1.0):
    return xp.where(z > 0, z, alpha * xp.expm1(xp.minimum(z, _zeros(z, xp))))


def _silu(z, xp):
    return z * _sigmoid(z, xp)


def _torch(name: str, **kwargs: Any) -> Callable[[], Any]:
    def build():
        import torch.nn

        return getattr(torch.nn, name)(**kwargs)

    return build


_REGISTRY: dict[str, Activation] = {}


def register_activation(activation: Activation, *, overwrite: bool = False) -> None:
    """Add an activation to the registry, so it can be named by string.

    Parameters
    ----------
    activation : Activation
        The activation with its properties. Claim only what is true: the
        bounds trust ``is_nondecreasing``, ``is_nonnegative`` and ``lipschitz``.
    overwrite : bool, default False
        Replace an activation of the same name.

    Examples
    --------
    >>> import numpy as np
    >>> from coreset_verify.activations import Activation, register_activation
    >>> relu6 = Activation("relu6", lambda z, xp: xp.clip(z, 0.0, 6.0),
    ...                    is_nondecreasing=True, is_nonnegative=True,
    ...                    is_positive=False, lipschitz=1.0)
    >>> register_activation(relu6, overwrite=True)
    >>> get_activation("relu6")(np.array([-1.0, 3.0, 9.0]))
    array([0., 3., 6.])
    """
    if not isinstance(activation, Activation):
        raise InvalidArgumentError(
            "register_activation expects an Activation instance; got "
            f"{type(activation).__name__}."
        )
    if activation.name in _REGISTRY and not overwrite:
        raise InvalidArgumentError(
            f"An activation named {activation.name!r} is already registered; "
            "pass overwrite=True to replace it."
        )
    _REGISTRY[activation.name] = activation


def available_activations() -> tuple[str, ...]:
    """Names of the registered activations, sorted."""
    return tuple(sorted(_REGISTRY))


def get_activation(activation: str | Activation) -> Activation:
    """Return the :class:`Activation` for a registered name (or pass one through)."""
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, str) and activation in _REGISTRY:
        return _REGISTRY[activation]
    raise InvalidArgumentError(
        f"activation must be one of {list(available_activations())} or an "
        f"Activation instance; got {activation!r}. Register a new one with "
        "coreset_verify.register_activation."
    )


_WORDS = {
    "is_nondecreasing": "non-decreasing",
    "is_nonnegative": "non-negative (phi >= 0)",
    "is_positive": "positive (phi > 0)",
}


def require(activation: Activation, *properties: str, theorem: str) -> None:
    """Raise :class:`AssumptionError` unless ``activation`` has every property.

    Examples
    --------
    >>> require(get_activation("relu"), "is_nondecreasing", theorem="additive")
    >>> require(get_activation("silu"), "is_nondecreasing", theorem="additive")
    Traceback (most recent call last):
    ...
    coreset_verify.errors.AssumptionError: The additive bound assumes the \
activation is non-decreasing (is_nondecreasing); 'silu' is not. ...
    """
    for prop in properties:
        if not getattr(activation, prop):
            words = _WORDS.get(prop, prop)
            raise AssumptionError(
                f"The {theorem} bound assumes the activation is {words} "
                f"({prop}); {activation.name!r} is not. Choose an activation "
                f"with {prop}=True, or a theorem that does not need it "
                "(see proofs_notes/README.md)."
            )


for _act in (
    Activation("relu", _relu, True, True, False, 1.0, _torch("ReLU")),
    Activation(
        "leaky_relu", _leaky_relu, True, False, False, 1.0, _torch("LeakyReLU", negative_slope=0.01)
    ),
    Activation("sigmoid", _sigmoid, True, True, True, 0.25, _torch("Sigmoid")),
    Activation("softplus", _softplus, True, True, True, 1.0, _torch("Softplus")),
    Activation("tanh", _tanh, True, False, False, 1.0, _torch("Tanh")),
    Activation("elu", _elu, True, False, False, 1.0, _torch("ELU", alpha=1.0)),
    Activation("silu", _silu, False, False, False, 1.1, _torch("SiLU")),
):
    register_activation(_act)
del _act
