"""The search problem: two read networks, a domain and output scales."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InvalidArgumentError
from ._domain import Domain, make_domain
from ._network import Layer, SharedFirstLayer, read_network, share_first_layer

__all__ = ["Problem", "make_problem"]


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
                _, sv, vt = np.linalg.svd(self.shared.weight, full_matrices=False)
                r = int(np.sum(sv > 1e-12 * max(sv.max(initial=0.0), 1e-300)))
                if r < self.d:
                    basis = vt[: max(r, 1)].T.copy()
            object.__setattr__(self, "_basis", basis)
        return self.__dict__["_basis"]

    def torch_layers(self, dtype=None, device=None) -> list:
        """Both networks as lists of (W, b, activation) torch tensors."""
        import torch

        dtype = dtype or self.dtype or torch.float64
        device = device or self.device or "cpu"

        def conv(net: tuple[Layer, ...]) -> list:
            return [(torch.as_tensor(la.weight, dtype=dtype, device=device),
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

    def evaluate(self, x: np.ndarray) -> tuple[float, int]:
        """Objective and argmax output at one point, in torch float64 (CPU)."""
        import torch

        layers = self._float64_layers()
        xt = torch.as_tensor(np.asarray(x, dtype=np.float64)[None, :])
        with torch.no_grad():
            diff = self.signed_differences(xt, layers)[0].abs()
        i = int(torch.argmax(diff))
        return float(diff[i]), i

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
    arr = np.asarray(scale.detach().cpu() if hasattr(scale, "detach") else scale,
                     dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(k, float(arr))
    if arr.shape != (k,):
        raise InvalidArgumentError(
            f"scale must have shape ({k},) (one entry per output); got {arr.shape}."
        )
    if not np.all(np.isfinite(arr) & (arr > 0)):
        raise InvalidArgumentError(
            f"scale must be positive and finite; got min(scale)={arr.min()}."
        )
    return arr


def make_problem(original, pruned, *, beta, lower, upper, scale) -> Problem:
    """Validate every argument and build the :class:`Problem`.

    Raises
    ------
    InvalidArgumentError
        Bad domain, mismatched input/output dimensions, unsupported layers,
        bad ``scale``.
    """
    try:
        from torch import nn
    except ImportError:  # pragma: no cover - torch is needed to get here
        from ..errors import MissingDependencyError

        raise MissingDependencyError(
            "worst_case needs torch; pip install 'coreset-verify[torch]'."
        ) from None
    for name, net in (("original", original), ("pruned", pruned)):
        if not isinstance(net, nn.Module):
            raise InvalidArgumentError(
                f"{name} must be a torch.nn.Module; got {type(net).__name__}."
            )
    f, g = read_network(original, "original"), read_network(pruned, "pruned")
    for what, a, b in (("input", f[0].weight.shape[1], g[0].weight.shape[1]),
                       ("output", f[-1].weight.shape[0], g[-1].weight.shape[0])):
        if a != b:
            raise InvalidArgumentError(
                f"original and pruned must have the same {what} dimension; got "
                f"{a} (original) and {b} (pruned)."
            )
    d, k = f[0].weight.shape[1], f[-1].weight.shape[0]
    domain = make_domain(d, beta, lower, upper)
    dtype, device = _module_dtype_device(original)
    return Problem(f, g, domain, _check_scale(scale, k), dtype, device)
