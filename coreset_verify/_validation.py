"""Argument checks shared by every public function.

One template writes every message: "The 'beta' parameter of layer_coreset
must be a finite number > 0. Got -1.0 instead." Shape messages also say which
other argument fixed the expected size.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
from array_api_compat import array_namespace, is_torch_array

from .errors import InvalidArgumentError, MissingDependencyError

__all__ = [
    "check_int",
    "check_layer",
    "check_open_unit",
    "check_positive",
    "check_rng",
    "fail",
    "import_torch",
]


def fail(func: str, name: str, expected: str, got: Any) -> InvalidArgumentError:
    """Build the standard error; callers ``raise fail(...) from None``."""
    return InvalidArgumentError(
        f"The {name!r} parameter of {func} must be {expected}. Got {got!r} instead."
    )


def _real_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_positive(value: Any, name: str, func: str) -> float:
    """A finite real number > 0, returned as float."""
    if not (_real_number(value) and math.isfinite(value) and value > 0):
        raise fail(func, name, "a finite number > 0", value)
    return float(value)


def check_open_unit(value: Any, name: str, func: str) -> float:
    """A real number strictly between 0 and 1 (epsilon, delta)."""
    if not (_real_number(value) and 0 < value < 1):
        raise fail(func, name, "a number in the open interval (0, 1)", value)
    return float(value)


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
    if not any(torch_flags.values()):
        arrays = {name: np.asarray(a) for name, a in arrays.items()}
    try:
        xp = array_namespace(*arrays.values())
    except TypeError as exc:
        raise InvalidArgumentError(f"{func}: {exc}") from None
    return xp, arrays


def _check_dtype(func: str, arrays: dict[str, Any], xp: Any) -> None:
    dtypes = {name: a.dtype for name, a in arrays.items()}
    for name, dtype in dtypes.items():
        if not xp.isdtype(dtype, "real floating"):
            raise fail(
                func, name, "a real floating-point array (float32 or float64)",
                f"array of dtype {dtype}",
            )
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


def check_layer(
    func: str, W_in: Any, b_in: Any, W_out: Any = None
) -> tuple[Any, Any, Any, Any]:
    """Validate a layer pair; return ``(xp, W_in, b_in, W_out)``.

    ``W_out=None`` checks the neurons alone (and returns ``None`` for it).

    Shapes: ``W_in`` (n, d), ``b_in`` (n,), ``W_out`` (k, n). Finiteness is
    checked later, on the reductions (see :func:`check_finite_rows`), so that
    validation does not read the weights a second time.
    """
    given = {"W_in": W_in, "b_in": b_in}
    if W_out is not None:
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
    return xp, W_in, b_in, W_out


def check_finite_rows(func: str, name: str, reduced: Any, full: Any, axis: int) -> None:
    """Raise if a reduction came out non-finite, naming the offending entry.

    ``reduced`` is a small array computed from ``full`` (row norms, row sums)
    in which any NaN or infinity of ``full`` shows up; only on failure is
    ``full`` searched again, to name the first bad row or column.
    """
    reduced = np.asarray(_to_numpy(reduced))
    if np.all(np.isfinite(reduced)):
        return
    bad = np.asarray(_to_numpy(full))
    where = np.argwhere(~np.isfinite(bad))
    if where.size:
        position = tuple(int(v) for v in where[0])
        raise InvalidArgumentError(
            f"{func}: {name} must be finite; {name}[{', '.join(map(str, position))}] "
            f"= {bad[position]}. Replace NaN and infinite weights before pruning."
        )
    index = int(np.argmax(~np.isfinite(reduced)))
    raise InvalidArgumentError(
        f"{func}: {name} is too large: a reduction along axis {axis} overflowed "
        f"at index {index}. Rescale the weights or use float64."
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
