"""The search problem: two read networks, a domain and output scales."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from .._validation import fail, import_torch
from ..activations import Activation
from ._domain import Domain, make_domain
from ._network import Layer, SharedFirstLayer, read_network, share_first_layer

__all__ = ["Evaluation", "Problem", "TorchLayer", "make_problem"]

_FUNC = "worst_case"


class TorchLayer(NamedTuple):
    """One read layer as torch tensors: ``activation(h @ weight.T + bias)``."""

    weight: Any
    bias: Any
    activation: Activation | None


class Evaluation(NamedTuple):
    """The objective at one point and the output that attains it."""

    value: float
    output: int


@dataclass(frozen=True)
class Problem:
    """``max_{x in domain} max_i |f_i(x) - g_i(x)| / scale[i]``."""

    f: tuple[Layer, ...]
    g: tuple[Layer, ...]
    domain: Domain
    scale: np.ndarray
    dtype: object = None
    device: object = None
    shared: SharedFirstLayer = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "shared", share_first_layer(self.f, self.g))

    @property
    def d(self) -> int:
        """Input dimension."""
        return self.f[0].weight.shape[1]

    @property
    def k(self) -> int:
        """Output dimension."""
        return self.f[-1].weight.shape[0]

    @property
    def piecewise_linear(self) -> bool:
        """Whether every activation of both networks is a (leaky) ReLU."""
        layers = self.f + self.g
        return all(a.activation is None or a.activation.is_piecewise_linear
                   for a in layers)

    @property
    def input_basis(self) -> np.ndarray | None:
        """Orthonormal basis ``Q`` (d, r) of the first layers' row space, when
        ``r < d`` and the domain is a ball (no box); else ``None``.

        Both networks see ``x`` only through ``W0 x`` (``W0``: the union first
        layer), and for every ``x`` in the ball ``y = Q^T x`` has
        ``||y|| <= beta`` and ``W0 Q y = W0 x``. So conic programs and MIPs may
        use ``y`` in the ball of R^r instead of ``x``, with ``x = Q y``.
        """
        if "_basis" not in self.__dict__:
            basis = None
            if not self.domain.has_box:
                w = self.shared.weight
                top = float(np.max(np.abs(w), initial=0.0))
                # scaled, so subnormal or huge weights keep their rank; only singular
                # values at the rounding level of the SVD itself count as zero.
                _, sv, vt = np.linalg.svd(w / (top if top > 0 else 1.0),
                                          full_matrices=False)
                tol = max(w.shape) * np.finfo(np.float64).eps * sv.max(initial=0.0)
                r = int(np.sum(sv > tol))
                if r < self.d:
                    basis = vt[: max(r, 1)].T.copy()
            object.__setattr__(self, "_basis", basis)
        return self.__dict__["_basis"]

    def torch_layers(self, dtype=None, device=None) -> list[list[TorchLayer]]:
        """Both networks as lists of :class:`TorchLayer` (weight, bias, activation)."""
        import torch

        dtype = dtype or self.dtype or torch.float64
        device = device or self.device or "cpu"

        def conv(net: tuple[Layer, ...]) -> list[TorchLayer]:
            return [TorchLayer(torch.as_tensor(la.weight, dtype=dtype, device=device),
                               torch.as_tensor(la.bias, dtype=dtype, device=device),
                               la.activation) for la in net]

        return [conv(self.f), conv(self.g)]

    def signed_differences(self, x, layers):
        """``(f(x) - g(x)) / scale`` for a torch batch ``x`` (B, d)."""
        import torch

        out = []
        for net in layers:
            h = x
            for w, b, act in net:
                h = h @ w.T + b
                h = h if act is None else act.torch(h)
            out.append(h)
        scale = torch.as_tensor(self.scale, dtype=x.dtype, device=x.device)
        return (out[0] - out[1]) / scale

    def evaluate(self, x: np.ndarray) -> Evaluation:
        """Objective and argmax output at one point, in torch float64 (CPU)."""
        import torch

        layers = self._float64_layers()
        xt = torch.as_tensor(np.asarray(x, dtype=np.float64)[None, :])
        with torch.no_grad():
            diff = self.signed_differences(xt, layers)[0].abs()
        i = int(torch.argmax(diff))
        return Evaluation(float(diff[i]), i)

    def _float64_layers(self) -> list:
        cache = self.__dict__.get("_f64")
        if cache is None:
            import torch

            cache = self.torch_layers(torch.float64, "cpu")
            object.__setattr__(self, "_f64", cache)
        return cache


def _module_dtype_device(module) -> tuple:
    for p in module.parameters():
        return p.dtype, p.device
    return None, None


def _check_scale(scale, k: int) -> np.ndarray:
    if scale is None:
        return np.ones(k)
    expected = f"None, a number > 0 or a finite positive array of shape ({k},) (one per output)"
    try:
        arr = np.asarray(scale.detach().cpu() if hasattr(scale, "detach") else scale,
                         dtype=np.float64)
    except (TypeError, ValueError, RuntimeError):
        raise fail(_FUNC, "scale", expected, type(scale).__name__) from None
    if arr.ndim == 0:
        arr = np.full(k, float(arr))
    if arr.shape != (k,):
        raise fail(_FUNC, "scale", expected, f"shape {arr.shape}")
    if not np.all(np.isfinite(arr) & (arr > 0)):
        bad = int(np.argmax(~(np.isfinite(arr) & (arr > 0))))
        raise fail(_FUNC, "scale", expected, f"scale[{bad}] = {arr[bad]}")
    return arr


def make_problem(original, pruned, *, beta, lower, upper, scale) -> Problem:
    """Validate every argument and build the :class:`Problem`.

    Both models are read by :func:`coreset_verify.nets.model.read_layers`, the
    one reader of torch models (unsupported layers, parameter dtypes other
    than float32/float64, non-finite weights and invalid activation
    parameters are refused there, naming the layer).

    Raises
    ------
    InvalidArgumentError
        Bad domain, mismatched input/output dimensions, unsupported layers or
        dtypes, bad ``scale``.
    MissingDependencyError
        torch is not installed.
    """
    nn = import_torch().nn
    for name, net in (("original", original), ("pruned", pruned)):
        if not isinstance(net, nn.Module):
            raise fail(_FUNC, name, "a torch.nn.Module (nn.Linear or nn.Sequential)",
                       type(net).__name__)
    f, g = read_network(original, "original", _FUNC), read_network(pruned, "pruned", _FUNC)
    for what, a, b in (("input", f[0].weight.shape[1], g[0].weight.shape[1]),
                       ("output", f[-1].weight.shape[0], g[-1].weight.shape[0])):
        if a != b:
            raise fail(_FUNC, "pruned", f"a network with the same {what} dimension as "
                       f"original ({a})", f"{what} dimension {b}")
    d, k = f[0].weight.shape[1], f[-1].weight.shape[0]
    domain = make_domain(d, beta, lower, upper)
    dtype, device = _module_dtype_device(original)
    return Problem(f, g, domain, _check_scale(scale, k), dtype, device)
