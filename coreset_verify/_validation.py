"""Argument checks shared by every public function.

One template writes every message: "The 'beta' parameter of layer_coreset
must be a finite number > 0. Got -1.0 instead." Shape messages also say which
other argument fixed the expected size.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import numpy as np
from array_api_compat import array_namespace, is_torch_array

from .errors import InvalidArgumentError, MissingDependencyError

__all__ = [
    "check_bool",
    "check_exactly_one",
    "check_float_dtype",
    "check_int",
    "check_layer",
    "check_open_unit",
    "check_option",
    "check_positive",
    "check_rng",
    "check_unknown_options",
    "fail",
    "import_torch",
]


def fail(func: str, name: str, expected: str, got: Any) -> InvalidArgumentError:
    """Build the standard error; callers ``raise fail(...) from None``."""
    return InvalidArgumentError(
        f"The {name!r} parameter of {func} must be {expected}. Got {_short_repr(got)} instead."
    )


def _short_repr(value: Any, limit: int = 120) -> str:
    """``repr`` cut to ``limit`` characters (10**400 and big arrays stay readable)."""
    try:
        text = repr(value)
    except Exception:  # repr of a huge int raises ValueError (digit limit)
        text = f"<{type(value).__name__}>"
    if len(text) > limit:
        text = f"{text[: limit // 2]}...{text[-limit // 4:]} ({len(text)} characters)"
    return text


def _real_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _as_float(value: Any) -> float | None:
    """``float(value)`` for a real number, or None if it is no real number.

    Integers too large for a float (``10**400``) become ``inf`` instead of
    raising OverflowError, so the range checks refuse them with the standard
    message.
    """
    if not _real_number(value):
        return None
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf
    except (TypeError, ValueError):
        return None


def check_positive(value: Any, name: str, func: str) -> float:
    """A finite real number > 0, returned as float (NaN, inf, 10**400 refused)."""
    x = _as_float(value)
    if x is None or not (math.isfinite(x) and x > 0):
        raise fail(func, name, "a finite number > 0", value)
    return x


def check_open_unit(value: Any, name: str, func: str) -> float:
    """A real number strictly between 0 and 1 (epsilon, delta); NaN refused."""
    x = _as_float(value)
    if x is None or not (0 < x < 1):
        raise fail(func, name, "a number in the open interval (0, 1)", value)
    return x


def check_bool(value: Any, name: str, func: str) -> bool:
    """``True`` or ``False`` (numpy bools accepted; 0, 1 and strings are not)."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise fail(func, name, "True or False", value)


def check_option(value: Any, name: str, func: str, choices: Iterable[Any]) -> Any:
    """One of a fixed set of choices (compared with ``==``, type-checked first)."""
    choices = tuple(choices)
    try:
        ok = any(isinstance(value, type(c)) and isinstance(value, bool) == isinstance(c, bool)
                 and value == c for c in choices)
    except Exception:  # an object whose == raises is no valid choice
        ok = False
    if not ok:
        listed = ", ".join(repr(c) for c in choices)
        raise fail(func, name, f"one of {listed}", value)
    return value


def check_exactly_one(func: str, **given: tuple[Any, str]) -> str:
    """The name of the one option given (not None) out of two or more.

    ``given`` maps each option name to ``(value, meaning)``; the message names
    every option with its meaning and the values that came.
    """
    chosen = [name for name, (value, _) in given.items() if value is not None]
    if len(chosen) != 1:
        options = " and ".join(f"{name} ({meaning})" for name, (_, meaning) in given.items())
        got = ", ".join(f"{name}={value!r}" for name, (value, _) in given.items())
        raise InvalidArgumentError(f"{func} needs exactly one of {options}; got {got}.")
    return chosen[0]


def check_unknown_options(options: Mapping[str, Any], allowed: Iterable[str], func: str) -> None:
    """Refuse keys of ``options`` outside ``allowed`` (as SciPy's _check_unknown_options)."""
    if not isinstance(options, Mapping):
        raise fail(func, "options", "a mapping (dict) of option names to values", options)
    allowed = tuple(allowed)
    unknown = [k for k in options if k not in allowed]
    if unknown:
        raise InvalidArgumentError(
            f"{func} got unknown option(s) {', '.join(map(repr, unknown))}. "
            f"Known options: {', '.join(map(repr, allowed))}."
        )


_FLOAT_NAMES = ("float32", "float64")


def check_float_dtype(dtype: Any, name: str, func: str) -> None:
    """Accept exactly float32 and float64 (numpy or torch dtypes).

    float16, bfloat16, complex, integer, bool and object dtypes are refused:
    the theorems are proved over the reals and the float64 bounds are not
    valid for the rounding of half precision (a float16 ``weight_out``
    overflows to ``inf`` next to a finite bound).
    """
    text = str(dtype).removeprefix("torch.")
    if not text.startswith(("float", "bfloat", "complex", "int", "uint", "bool")):
        try:
            text = str(np.dtype(dtype))
        except TypeError:
            pass
    if text in _FLOAT_NAMES:
        return
    raise fail(
        func, name,
        "a float32 or float64 array (the theorems and the float64 bounds do not "
        "cover other dtypes; cast it with .astype(np.float64) or .double())",
        f"array of dtype {text}",
    )


def check_int(value: Any, name: str, func: str, *, minimum: int = 1) -> int:
    """An integer >= ``minimum`` (numpy integers accepted; bool is not)."""
    if not (isinstance(value, numbers.Integral) and not isinstance(value, bool)):
        raise fail(func, name, f"an integer >= {minimum}", value)
    if value < minimum:
        raise fail(func, name, f"an integer >= {minimum}", value)
    return int(value)


def check_rng(rng: Any, func: str) -> np.random.Generator:
    """Normalise ``rng`` (int, Generator or None) once, as SciPy does."""
    if rng is None or isinstance(rng, np.random.Generator):
        return np.random.default_rng(rng)
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool) and rng >= 0:
        return np.random.default_rng(int(rng))
    raise fail(
        func, "rng", "an int >= 0, a numpy.random.Generator or None", rng
    )


def _as_arrays(func: str, arrays: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """One namespace for all arrays; torch and numpy must not be mixed."""
    for name, a in arrays.items():
        if a is None:
            raise fail(func, name, "an array (numpy or torch)", None)
    torch_flags = {name: is_torch_array(a) for name, a in arrays.items()}
    if any(torch_flags.values()) and not all(torch_flags.values()):
        kinds = ", ".join(
            f"{n}={'torch' if t else type(arrays[n]).__name__}"
            for n, t in torch_flags.items()
        )
        raise InvalidArgumentError(
            f"{func} got a mix of torch tensors and other arrays ({kinds}). "
            "Pass all of them as torch tensors (same device) or all as numpy "
            "arrays."
        )
    arrays = {name: as_array(func, name, a) for name, a in arrays.items()}
    try:
        xp = array_namespace(*arrays.values())
    except TypeError as exc:
        raise InvalidArgumentError(f"{func}: {exc}") from None
    return xp, arrays


def as_array(func: str, name: str, a: Any) -> Any:
    """``a`` as a numpy array (lists accepted) or a checked dense torch tensor.

    Refuses None, ragged or non-numeric sequences, torch sparse and meta
    tensors with the standard message naming ``name``.
    """
    if a is None:
        raise fail(func, name, "an array (numpy or torch)", None)
    if is_torch_array(a):
        import torch

        if a.layout != torch.strided:
            raise fail(func, name, "a dense torch tensor (call .to_dense())",
                       f"a tensor with layout {a.layout}")
        if a.device.type == "meta":
            raise fail(func, name, "a tensor with data (not on the meta device)",
                       "a meta tensor")
        return a
    try:
        out = np.asarray(a)
    except (TypeError, ValueError) as exc:
        raise fail(func, name, "a rectangular array of numbers", f"{type(a).__name__} ({exc})") \
            from None
    return out


def _check_dtype(func: str, arrays: dict[str, Any], xp: Any) -> None:
    dtypes = {name: a.dtype for name, a in arrays.items()}
    for name, dtype in dtypes.items():
        check_float_dtype(dtype, name, func)
    if len(set(dtypes.values())) > 1:
        got = ", ".join(f"{n}: {d}" for n, d in dtypes.items())
        raise InvalidArgumentError(
            f"{func} needs one floating dtype for all weights; got {got}. "
            "Cast them to the same dtype."
        )
    if is_torch_array(next(iter(arrays.values()))):
        devices = {str(a.device) for a in arrays.values()}
        if len(devices) > 1:
            raise InvalidArgumentError(
                f"{func} needs all tensors on one device; got {sorted(devices)}."
            )


class CheckedLayer(NamedTuple):
    """A validated layer pair: its namespace and arrays (``W_out`` may be None)."""

    xp: Any
    W_in: Any
    b_in: Any
    W_out: Any


_NEURONS_ONLY: Any = object()


def check_layer(func: str, W_in: Any, b_in: Any, W_out: Any = _NEURONS_ONLY) -> CheckedLayer:
    """Validate a layer pair; return ``CheckedLayer(xp, W_in, b_in, W_out)``.

    Called without ``W_out``, checks the neurons alone (and returns ``None``
    for it); an explicit ``W_out=None`` is refused.

    Shapes: ``W_in`` (n, d), ``b_in`` (n,), ``W_out`` (k, n); dtypes float32
    or float64 (:func:`check_float_dtype`), one backend and device. Finiteness
    is checked later, on the reductions (see :func:`check_finite_rows`), so
    that validation does not read the weights a second time.
    """
    given = {"W_in": W_in, "b_in": b_in}
    if W_out is not _NEURONS_ONLY:
        given["W_out"] = W_out
    xp, arrays = _as_arrays(func, given)
    W_in, b_in, W_out = arrays["W_in"], arrays["b_in"], arrays.get("W_out")
    _check_dtype(func, arrays, xp)
    if W_in.ndim != 2 or W_in.shape[0] < 1 or W_in.shape[1] < 1:
        raise fail(func, "W_in", "a 2-D array of shape (n, d) with n, d >= 1",
                   f"shape {tuple(W_in.shape)}")
    n = W_in.shape[0]
    if tuple(b_in.shape) != (n,):
        raise fail(func, "b_in", f"of shape (n,) with n = {n} (rows of W_in)",
                   f"shape {tuple(b_in.shape)}")
    if W_out is not None and (W_out.ndim != 2 or W_out.shape[1] != n or W_out.shape[0] < 1):
        raise fail(func, "W_out", f"of shape (k, n) with n = {n} (rows of W_in)",
                   f"shape {tuple(W_out.shape)}")
    return CheckedLayer(xp, W_in, b_in, W_out)


def check_finite_rows(func: str, name: str, reduced: Any, full: Any, axis: int) -> None:
    """Raise if a reduction came out non-finite, naming the offending entry.

    ``reduced`` is a small array computed from ``full`` (row norms, row sums)
    in which any NaN or infinity of ``full`` shows up; only on failure is
    ``full`` searched again, to name the first bad row or column.
    """
    reduced = np.asarray(_to_numpy(reduced))
    if np.all(np.isfinite(reduced)):
        return
    check_finite_entries(func, name, full)
    index = int(np.argmax(~np.isfinite(reduced)))
    raise InvalidArgumentError(
        f"{func}: {name} is too large: a reduction along axis {axis} overflowed "
        f"at index {index}. Rescale the weights or use float64."
    )


def check_finite_entries(func: str, name: str, full: Any) -> None:
    """Raise naming the first NaN or infinite entry of ``full`` (reads it all)."""
    bad = np.asarray(_to_numpy(full))
    where = np.argwhere(~np.isfinite(bad))
    if where.size:
        position = tuple(int(v) for v in where[0])
        raise InvalidArgumentError(
            f"{func}: {name} must be finite; {name}[{', '.join(map(str, position))}] "
            f"= {bad[position]}. Replace NaN and infinite weights before pruning."
        )


def _to_numpy(a: Any) -> np.ndarray:
    if is_torch_array(a):
        return a.detach().cpu().numpy()
    return np.asarray(a)


to_numpy = _to_numpy


def import_torch():
    """The torch module, or a :class:`MissingDependencyError` saying how to get it."""
    try:
        import torch
    except ImportError:
        raise MissingDependencyError(
            "This function needs torch: pip install torch==2.13.0 (CPU) or "
            "'coreset-verify[torch]'"
        ) from None
    return torch
