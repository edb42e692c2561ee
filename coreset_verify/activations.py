"""Activations and the properties the theorems need.

Each activation is an :class:`Activation`: an elementwise function that works
on numpy and torch arrays alike, plus named facts about it
(``is_nondecreasing``, ``is_nonnegative``, ``is_positive``, ``lipschitz``).
A theorem states which facts it needs and :func:`require` raises an
:class:`~coreset_verify.errors.AssumptionError` that names the missing one.

Users add their own with :func:`register_activation`. The parameterised
families of torch (``LeakyReLU(negative_slope)``, ``Softplus(beta, threshold)``,
``ELU(alpha)``) are built, validated, without registration, by
:func:`leaky_relu`, :func:`softplus` and :func:`elu`, or by name:
``get_activation("elu(alpha=0.5)")``.

Each activation also evaluates as its torch module does: :meth:`Activation.numpy`
(float64) and :meth:`Activation.torch`. They differ from ``phi`` only for
Softplus, which torch replaces by the identity above its threshold;
:attr:`Activation.module_slack` bounds that difference.
"""

from __future__ import annotations

import functools
import math
import numbers
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from ._validation import check_bool, fail
from .errors import AssumptionError, InvalidArgumentError

__all__ = [
    "Activation",
    "available_activations",
    "elu",
    "get_activation",
    "leaky_relu",
    "register_activation",
    "require",
    "softplus",
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
    params : tuple of (str, float)
        The parameters of a parameterised family, e.g.
        ``(("negative_slope", 0.2),)``. Two activations are equal when their
        names and parameters are (the functions are not compared).
    is_piecewise_linear : bool
        ``phi(z) = z`` for ``z >= 0`` and ``slope * z`` below, with
        ``0 <= slope < 1`` (ReLU, LeakyReLU): convex, two linear pieces. The
        search's exact methods (MIP, region, branch and bound) need it.
    module_function : callable or None
        ``module_function(z, xp)``: what the torch module computes when it is
        not exactly ``phi`` (Softplus above its threshold); None when it is.
    module_slack : float
        ``|module(z) - phi(z)| <= module_slack`` for every z, and the module is
        non-decreasing up to it (``a <= b`` implies ``module(a) <= module(b) +
        module_slack``). 0 except for Softplus: ``log1p(exp(-threshold)) / beta``.
    """

    name: str
    function: Callable[[Any, Any], Any] = field(repr=False, compare=False)
    is_nondecreasing: bool
    is_nonnegative: bool
    is_positive: bool
    lipschitz: float
    torch_module: Callable[[], Any] | None = field(default=None, repr=False, compare=False)
    params: tuple[tuple[str, float], ...] = ()
    is_piecewise_linear: bool = field(default=False, repr=False)
    module_function: Callable[[Any, Any], Any] | None = field(
        default=None, repr=False, compare=False)
    module_slack: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        func = "Activation"
        if not (isinstance(self.name, str) and self.name.strip()):
            raise fail(func, "name", "a non-empty string", self.name)
        if not callable(self.function):
            raise fail(func, "function", "a callable function(z, xp)", self.function)
        for name in ("torch_module", "module_function"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise fail(func, name, "a callable or None", value)
        for name in ("is_nondecreasing", "is_nonnegative", "is_positive", "is_piecewise_linear"):
            object.__setattr__(self, name, check_bool(getattr(self, name), name, func))
        if self.is_positive and not self.is_nonnegative:
            raise InvalidArgumentError(
                f"Activation {self.name!r}: is_positive=True requires "
                "is_nonnegative=True."
            )
        for name in ("lipschitz", "module_slack"):
            value = getattr(self, name)
            if not (_real(value) and math.isfinite(value) and value >= 0):
                raise fail(func, name, "a finite number >= 0", value)
            object.__setattr__(self, name, float(value))
        params = self.params
        if not (isinstance(params, tuple) and all(
                isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) and _real(p[1])
                for p in params)):
            raise fail(func, "params", "a tuple of (name, number) pairs", params)

    def __call__(self, z: Any) -> Any:
        """Apply ``phi`` elementwise to a numpy or torch array."""
        return self.function(z, array_namespace(z))

    @property
    def slope(self) -> float:
        """Slope left of 0 of a piecewise-linear activation (0 for ReLU)."""
        return float(dict(self.params).get("negative_slope", 0.0))

    def numpy(self, z: Any) -> np.ndarray:
        """The torch module's function on a float64 numpy array (search, intervals)."""
        z = np.asarray(z, dtype=np.float64)
        with np.errstate(over="ignore", under="ignore"):
            return (self.module_function or self.function)(z, np)

    def torch(self, z: Any) -> Any:
        """Apply to a torch tensor exactly as the torch module does."""
        if self.torch_module is None:
            return (self.module_function or self.function)(z, array_namespace(z))
        module = self.__dict__.get("_module")
        if module is None:
            module = self.torch_module()
            object.__setattr__(self, "_module", module)
        return module(z)


def _real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _zeros(z, xp):
    return xp.zeros_like(z)


def _relu(z, xp):
    return xp.where(z > 0, z, _zeros(z, xp))


def _leaky_relu(z, xp, slope=0.01):
    return xp.where(z >= 0, z, slope * z)


def _sigmoid(z, xp):
    e = xp.exp(-xp.abs(z))  # in (0, 1]: no overflow on either side
    return xp.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _softplus(z, xp, beta=1.0):
    bz = beta * z
    return (_relu(bz, xp) + xp.log1p(xp.exp(-xp.abs(bz)))) / beta


def _softplus_module(z, xp, beta=1.0, threshold=20.0):
    """torch's Softplus: the identity where ``beta * z > threshold``."""
    return xp.where(beta * z > threshold, z, _softplus(z, xp, beta))


def _tanh(z, xp):
    return xp.tanh(z)


def _elu(z, xp, alpha=1.0):
    return xp.where(z > 0, z, alpha * xp.expm1(xp.minimum(z, _zeros(z, xp))))


def _silu(z, xp):
    return z * _sigmoid(z, xp)


def _torch(name: str, **kwargs: Any) -> Callable[[], Any]:
    return functools.partial(_build_torch, name, tuple(kwargs.items()))


def _build_torch(name: str, kwargs: tuple[tuple[str, Any], ...]) -> Any:
    import torch.nn

    return getattr(torch.nn, name)(**dict(kwargs))


# --------------------------------------------------------------------------
# Parameterised families (torch's LeakyReLU, Softplus, ELU), not registered


def _parameter(value: Any, family: str, name: str, expected: str, ok) -> float:
    """A real parameter of an activation family, checked by ``ok``."""
    good = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if good:
        value = float(value)
        good = not math.isnan(value) and ok(value)
    if not good:
        raise InvalidArgumentError(
            f"The {name!r} parameter of {family} must be {expected}. Got {value!r} instead."
        )
    return value


def _family_name(family: str, params: tuple[tuple[str, float], ...]) -> str:
    return f"{family}(" + ", ".join(f"{k}={v!r}" for k, v in params) + ")"


def leaky_relu(negative_slope: float = 0.01) -> Activation:
    """torch's ``LeakyReLU(negative_slope)`` as an :class:`Activation`.

    Non-decreasing for ``negative_slope >= 0`` (the theorems need it; the
    search takes any finite slope); Lipschitz ``max(1, |slope|)``. The
    default slope gives the registered ``"leaky_relu"``.
    """
    s = _parameter(negative_slope, "leaky_relu", "negative_slope", "a finite number",
                   math.isfinite)
    if s == 0.01 and "leaky_relu" in _REGISTRY:
        return _REGISTRY["leaky_relu"]
    params = (("negative_slope", s),)
    return Activation(
        "leaky_relu" if s == 0.01 else _family_name("leaky_relu", params),
        functools.partial(_leaky_relu, slope=s), is_nondecreasing=s >= 0,
        is_nonnegative=s <= 0, is_positive=False, lipschitz=max(1.0, abs(s)),
        torch_module=_torch("LeakyReLU", negative_slope=s), params=params,
        is_piecewise_linear=0 <= s < 1,
    )


def softplus(beta: float = 1.0, threshold: float = 20.0) -> Activation:
    """torch's ``Softplus(beta, threshold)`` as an :class:`Activation`.

    ``phi(z) = log(1 + exp(beta z)) / beta``: positive, non-decreasing,
    Lipschitz 1 for every ``beta > 0``. The torch module returns ``z`` where
    ``beta z > threshold``, within ``module_slack = log1p(exp(-threshold)) /
    beta`` of ``phi``. ``beta`` must be finite and > 0, ``threshold`` >= 0
    (``inf`` allowed).
    """
    b = _parameter(beta, "softplus", "beta", "a finite number > 0",
                   lambda v: math.isfinite(v) and v > 0)
    t = _parameter(threshold, "softplus", "threshold", "a number >= 0 (inf allowed)",
                   lambda v: v >= 0)
    if (b, t) == (1.0, 20.0) and "softplus" in _REGISTRY:
        return _REGISTRY["softplus"]
    params = (("beta", b), ("threshold", t))
    return Activation(
        "softplus" if (b, t) == (1.0, 20.0) else _family_name("softplus", params),
        functools.partial(_softplus, beta=b), is_nondecreasing=True, is_nonnegative=True,
        is_positive=True, lipschitz=1.0,
        torch_module=_torch("Softplus", beta=b, threshold=t), params=params,
        module_function=functools.partial(_softplus_module, beta=b, threshold=t),
        module_slack=math.log1p(math.exp(-t)) / b if math.isfinite(t) else 0.0,
    )


def elu(alpha: float = 1.0) -> Activation:
    """torch's ``ELU(alpha)`` as an :class:`Activation`.

    Non-decreasing for ``alpha >= 0`` (the theorems need it; the search
    takes any finite alpha); Lipschitz ``max(1, |alpha|)``.
    """
    a = _parameter(alpha, "elu", "alpha", "a finite number", math.isfinite)
    if a == 1.0 and "elu" in _REGISTRY:
        return _REGISTRY["elu"]
    params = (("alpha", a),)
    return Activation(
        "elu" if a == 1.0 else _family_name("elu", params),
        functools.partial(_elu, alpha=a), is_nondecreasing=a >= 0, is_nonnegative=a <= 0,
        is_positive=False, lipschitz=max(1.0, abs(a)),
        torch_module=_torch("ELU", alpha=a), params=params,
    )


_FAMILIES: dict[str, Callable[..., Activation]] = {
    "leaky_relu": leaky_relu, "softplus": softplus, "elu": elu,
}
_FAMILY_NAME = re.compile(r"^\s*(\w+)\s*\((.*)\)\s*$")


def _from_family_name(text: str) -> Activation | None:
    """``"elu(alpha=0.5)"`` -> ``elu(0.5)``; None if ``text`` is not of that form."""
    match = _FAMILY_NAME.match(text)
    if match is None or match.group(1) not in _FAMILIES:
        return None
    kwargs = {}
    for item in filter(None, (p.strip() for p in match.group(2).split(","))):
        key, sep, value = item.partition("=")
        try:
            kwargs[key.strip()] = float(value)
        except ValueError:
            return None
        if not sep:
            return None
    try:
        return _FAMILIES[match.group(1)](**kwargs)
    except TypeError:
        return None


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
    overwrite = check_bool(overwrite, "overwrite", "register_activation")
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
    """Return the :class:`Activation` for a name (or pass one through).

    Registered names, the parameterised names of :func:`leaky_relu`,
    :func:`softplus` and :func:`elu` (``"elu(alpha=0.5)"``), and the torch
    activation modules read by :mod:`coreset_verify.nets.model`
    (``torch.nn.Softplus(beta=2)``; invalid parameters such as ``beta=0`` are
    refused with an :class:`InvalidArgumentError`).
    """
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, str) and activation in _REGISTRY:
        return _REGISTRY[activation]
    if isinstance(activation, str) and (built := _from_family_name(activation)) is not None:
        return built
    if type(activation).__module__.startswith("torch.nn"):
        from .nets.model import activation_of  # torch modules: read as the models are

        built = activation_of(activation, func="get_activation", where="activation")
        if built is not None:
            return built
    raise InvalidArgumentError(
        f"activation must be one of {list(available_activations())}, a parameterised "
        f"name such as 'leaky_relu(negative_slope=0.2)', 'softplus(beta=2.0, "
        f"threshold=20.0)' or 'elu(alpha=0.5)', or an Activation instance; got "
        f"{activation!r}. Register a new one with coreset_verify.register_activation."
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
    Activation("relu", _relu, True, True, False, 1.0, _torch("ReLU"),
               is_piecewise_linear=True),
    leaky_relu(0.01),
    Activation("sigmoid", _sigmoid, True, True, True, 0.25, _torch("Sigmoid")),
    softplus(1.0, 20.0),
    Activation("tanh", _tanh, True, False, False, 1.0, _torch("Tanh")),
    elu(1.0),
    Activation("silu", _silu, False, False, False, 1.1, _torch("SiLU")),
):
    register_activation(_act)
del _act
