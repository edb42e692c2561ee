"""Conv layer pairs for the audit: :class:`ConvGeometry`, :class:`ConvLayer`, ``F``, ``T_i``.

A *conv pair* is a Conv2d with weight ``(C, C_in, kh, kw)`` and bias ``(C,)``,
an activation, an optional 2-D pooling, then the next layer: a Conv2d with
weight ``(k, C, kh', kw')`` (no bias) or, after Flatten, a Linear with
weight ``(k, C * H * W)``. The audited function is the next layer's
pre-activation without its bias, on the flattened input ``x`` of ``D = C_in
H_in W_in`` numbers, flattened to ``k Q`` outputs (``Q`` output positions per
output channel, 1 for a Linear): the ``F`` of proofs_notes/conv.md. A channel
plays the role of a neuron.

A conv pruner is any callable

    pruner(conv_weight, conv_bias, next_weight, *, size, rng, geometry)
        -> (kept, next_weight')

with float64 numpy arrays in; ``kept`` the distinct kept channels (1-D
integer array, ``r <= size`` of them) and ``next_weight'`` the next weight
restricted to them, possibly re-weighted: shape ``(k, r, kh', kw')`` or ``(k,
r * H * W)``. ``geometry`` is the pair's :class:`ConvGeometry`. The audit
turns the result into the pruned triple ``(conv_weight[kept],
conv_bias[kept], next_weight')``, the conv analogue of the dense
``(W_in', b_in', W_out')``.

``F`` is computed by torch, with the modules :func:`conv_pair_modules` builds;
the worst-case search runs on the same modules.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from .._validation import check_int, check_option, fail, import_torch, to_numpy
from ..activations import Activation
from ..nets import layer_pair_scale
from ._layers import DegenerateLayer, LayerArrays
from ._worker import CallSpec, PrunerError

__all__ = [
    "POOLS",
    "ConvGeometry",
    "ConvLayer",
    "conv_arrays",
    "conv_fault",
    "conv_forward",
    "conv_layer",
    "conv_pair_modules",
    "conv_scale",
    "default_conv_layers",
    "degenerate_conv_layer",
    "next_channels",
]

POOLS = (None, "max", "avg")


def _out(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a conv or pooling along one axis (floor mode)."""
    return (size + 2 * padding - kernel) // stride + 1


@dataclass(frozen=True)
class ConvGeometry:
    """How a conv pair is wired: input shape, strides, padding, pooling.

    Attributes
    ----------
    input_shape : (C_in, H_in, W_in)
        Shape of the conv's input (one sample); ``D = C_in H_in W_in``.
    stride, padding : int
        Of the first conv (zero padding, square).
    pool : {None, "max", "avg"}
        Pooling between the activation and the next layer.
    pool_size : int
        Window and stride of the pooling.
    next_stride, next_padding : int
        Of the next layer when it is a Conv2d (ignored for a Linear).
    """

    input_shape: tuple[int, int, int]
    stride: int = 1
    padding: int = 0
    pool: str | None = None
    pool_size: int = 2
    next_stride: int = 1
    next_padding: int = 0

    def __post_init__(self) -> None:
        func = "ConvGeometry"
        if not (isinstance(self.input_shape, tuple | list) and len(self.input_shape) == 3):
            raise fail(func, "input_shape", "a triple (C_in, H_in, W_in)", self.input_shape)
        object.__setattr__(self, "input_shape", tuple(
            check_int(s, "input_shape", func) for s in self.input_shape))
        for name in ("stride", "pool_size", "next_stride"):
            check_int(getattr(self, name), name, func)
        for name in ("padding", "next_padding"):
            check_int(getattr(self, name), name, func, minimum=0)
        check_option(self.pool, "pool", func, POOLS)

    @property
    def input_size(self) -> int:
        """``D = C_in H_in W_in``, the dimension of the input ball."""
        c, h, w = self.input_shape
        return c * h * w

    def channel_shape(self, kernel: Sequence[int]) -> tuple[int, int]:
        """``(H, W)`` of each channel where the next layer reads it (after pooling)."""
        h, w = (_out(s, k, self.stride, self.padding)
                for s, k in zip(self.input_shape[1:], kernel, strict=True))
        if self.pool is not None:
            h, w = (_out(s, self.pool_size, self.pool_size, 0) for s in (h, w))
        return h, w

    def output_positions(self, kernel: Sequence[int], next_shape: Sequence[int]) -> int:
        """``Q``: output positions of the next layer per output channel (1 for a Linear)."""
        if len(next_shape) == 2:
            return 1
        h, w = (_out(s, k, self.next_stride, self.next_padding)
                for s, k in zip(self.channel_shape(kernel), next_shape[2:], strict=True))
        return h * w


@dataclass(frozen=True)
class ConvLayer:
    """A named conv pair the battery runs conv pruners on (see the module docstring).

    Attributes
    ----------
    name : str
    conv_weight : ndarray, shape (C, C_in, kh, kw), float64
    conv_bias : ndarray, shape (C,), float64
    next_weight : ndarray, shape (k, C, kh', kw') or (k, C * H * W), float64
    geometry : ConvGeometry
    """

    kind: ClassVar[str] = "conv"
    #: The pruner's positional arguments, as the mutation check names them.
    argument_names: ClassVar[tuple[str, ...]] = ("conv_weight", "conv_bias", "next_weight")

    name: str
    conv_weight: np.ndarray = field(repr=False)
    conv_bias: np.ndarray = field(repr=False)
    next_weight: np.ndarray = field(repr=False)
    geometry: ConvGeometry

    @property
    def n(self) -> int:
        """Number of channels ``C`` (the "neurons")."""
        return int(self.conv_weight.shape[0])

    @property
    def d(self) -> int:
        """Input dimension ``D = C_in H_in W_in``."""
        return self.geometry.input_size

    @property
    def k(self) -> int:
        """Number of outputs of ``F``: ``k Q`` (output channels times positions)."""
        return int(self.next_weight.shape[0]) * self.output_positions

    @property
    def kernel(self) -> tuple[int, int]:
        """``(kh, kw)`` of the first conv."""
        return int(self.conv_weight.shape[2]), int(self.conv_weight.shape[3])

    @property
    def output_positions(self) -> int:
        """``Q`` (1 when the next layer is a Linear)."""
        return self.geometry.output_positions(self.kernel, self.next_weight.shape)

    @property
    def incoming(self) -> tuple[np.ndarray, np.ndarray]:
        """The flattened filters (C, C_in kh kw) and the biases (C,)."""
        return self.conv_weight.reshape(self.n, -1), self.conv_bias

    @property
    def directions(self) -> np.ndarray:
        """(C, D): filter c placed on one patch of the input (where channel c peaks)."""
        c_in, h, w = self.geometry.input_shape
        s, p = self.geometry.stride, self.geometry.padding
        i0, kh, kw = (-p) % s, *self.kernel
        out = np.zeros((self.n, c_in, h, w))
        hh, ww = min(kh, h - i0), min(kw, w - i0)
        if hh > 0 and ww > 0:
            out[:, :, i0:i0 + hh, i0:i0 + ww] = self.conv_weight[:, :, :hh, :ww]
        return out.reshape(self.n, -1)

    def arrays(self) -> LayerArrays:
        """Fresh copies of ``(conv_weight, conv_bias, next_weight)``."""
        return LayerArrays(self.conv_weight.copy(), self.conv_bias.copy(),
                           self.next_weight.copy())

    def keywords(self) -> dict[str, Any]:
        """The keyword arguments a conv pruner gets besides ``size`` and ``rng``."""
        return {"geometry": self.geometry}

    def rescaled(self, factor: float) -> ConvLayer:
        """The pair with filters multiplied by ``factor`` (biases unchanged)."""
        return _frozen(replace(self, conv_weight=self.conv_weight * factor))

    def permuted(self, perm: np.ndarray) -> ConvLayer:
        """The same function with its channels in the order ``perm``."""
        return _frozen(ConvLayer(f"{self.name}-permuted", self.conv_weight[perm],
                                 self.conv_bias[perm],
                                 next_channels(self.next_weight, self.n, perm),
                                 self.geometry))


def _frozen(layer: ConvLayer) -> ConvLayer:
    for a in (layer.conv_weight, layer.conv_bias, layer.next_weight):
        a.setflags(write=False)
    return layer


def next_channels(next_weight: np.ndarray, n_channels: int, kept: Any,
                  factor: Any = 1.0) -> np.ndarray:
    """The next weight restricted to the input channels ``kept``, times ``factor``.

    ``factor`` is a scalar or one number per kept channel; a 2-D (Linear)
    weight holds ``P`` consecutive columns per channel (Flatten order).
    """
    kept = np.asarray(kept, dtype=np.int64)
    factor = np.broadcast_to(np.asarray(factor, dtype=np.float64), kept.shape)
    if next_weight.ndim == 4:
        return np.array(next_weight[:, kept] * factor[None, :, None, None], dtype=np.float64)
    k = next_weight.shape[0]
    blocks = next_weight.reshape(k, n_channels, -1)[:, kept] * factor[None, :, None]
    return np.array(blocks.reshape(k, -1), dtype=np.float64)


def conv_layer(name: str, conv_weight: Any, conv_bias: Any, next_weight: Any,
               geometry: ConvGeometry, func: str = "conv_layer") -> ConvLayer:
    """Validate one conv pair and store it as read-only float64 numpy.

    Raises
    ------
    InvalidArgumentError
        Shapes that do not fit each other or ``geometry``, non-finite weights.
    """
    if not isinstance(geometry, ConvGeometry):
        raise fail(func, "geometry", "a ConvGeometry", type(geometry).__name__)
    w, b, V = (np.array(to_numpy(a), dtype=np.float64) for a in
               (conv_weight, conv_bias, next_weight))
    if w.ndim != 4 or w.shape[1] != geometry.input_shape[0] or b.shape != w.shape[:1]:
        raise fail(func, "conv_weight", f"of shape (C, {geometry.input_shape[0]}, kh, kw) "
                   "with a bias of shape (C,)", f"shapes {w.shape}, {b.shape}")
    layer = ConvLayer(name, w, b, V, geometry)
    if min(layer.geometry.channel_shape(layer.kernel)) < 1 or layer.output_positions < 1:
        raise fail(func, "geometry", "a geometry leaving at least one output position",
                   geometry)
    P = int(np.prod(layer.geometry.channel_shape(layer.kernel)))
    if not ((V.ndim == 4 and V.shape[1] == w.shape[0]) or
            (V.ndim == 2 and V.shape[1] == w.shape[0] * P)):
        raise fail(func, "next_weight", f"of shape (k, {w.shape[0]}, kh', kw') or (k, "
                   f"{w.shape[0] * P})", f"shape {V.shape}")
    if not all(np.all(np.isfinite(a)) for a in (w, b, V)):
        raise fail(func, "weights", "finite (no NaN or infinity)", "non-finite entries")
    return _frozen(layer)


# ------------------------------------------------------------ pruned pairs


def _shape_fault(kept: np.ndarray, V: np.ndarray, layer: ConvLayer) -> str | None:
    """Why ``(kept, next_weight')`` does not fit ``layer``, or None."""
    if kept.ndim != 1 or not (kept.size == 0 or np.issubdtype(kept.dtype, np.integer)):
        return f"kept must be a 1-D integer array; got dtype {kept.dtype}, shape {kept.shape}"
    if kept.size and (kept.min() < 0 or kept.max() >= layer.n):
        return f"kept channels must lie in [0, {layer.n}); got {kept.min()}..{kept.max()}"
    if np.unique(kept).size != kept.size:
        return "kept channels must be distinct"
    r, full = kept.size, layer.next_weight.shape
    want = (full[0], r, *full[2:]) if len(full) == 4 else (full[0], r * full[1] // layer.n)
    if V.shape != want:
        return f"next_weight' must have shape {want} for r = {r} kept channels; got {V.shape}"
    return None


def conv_arrays(out: Any, spec: CallSpec) -> LayerArrays:
    """A conv pruner's ``(kept, next_weight')`` as the pruned triple (float64).

    Raises
    ------
    PrunerError
        Not a pair, entries that are not numbers, or shapes that do not fit.
    """
    layer, where = spec.layer, f"layer {spec.layer.name!r}, size={spec.size}, seed={spec.seed}"
    evidence = {"layer": layer.name, "size": spec.size, "seed": spec.seed}
    try:
        kept, V = out
        kept, V = np.asarray(to_numpy(kept)), np.asarray(to_numpy(V), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PrunerError(f"the pruner returned {type(out).__name__}, not a pair (kept, "
                          f"next_weight') of arrays ({exc}) ({where})", evidence) from None
    fault = _shape_fault(kept, V, layer)
    if fault is not None:
        raise PrunerError(f"{fault} ({where})", evidence)
    kept = kept.astype(np.int64)
    return LayerArrays(layer.conv_weight[kept], layer.conv_bias[kept], V)


def conv_fault(out: Any, layer: ConvLayer, where: str) -> str | None:
    """Why ``out`` is not ``(kept, next_weight')`` as the protocol asks, or None."""
    if not (isinstance(out, tuple | list) and len(out) == 2):
        return f"expected a pair (kept, next_weight'); got {type(out).__name__} ({where})"
    kept, V = out
    for label, a in (("kept", kept), ("next_weight'", V)):
        if not isinstance(a, np.ndarray):
            return f"{label} must be a numpy.ndarray; got {type(a).__name__} ({where})"
    if V.dtype != np.float64:
        return f"next_weight' must be float64; got {V.dtype} ({where})"
    if not np.all(np.isfinite(V)):
        return f"next_weight' has NaN or infinite entries ({where})"
    fault = _shape_fault(kept, V, layer)
    return None if fault is None else f"{fault} ({where})"


# ------------------------------------------------------------ F and T_i


def _parameter(torch: Any, a: np.ndarray) -> Any:
    return torch.nn.Parameter(torch.as_tensor(np.ascontiguousarray(a, dtype=np.float64)),
                              requires_grad=False)


def _conv(torch: Any, weight: np.ndarray, bias: np.ndarray | None, stride: int,
          padding: int) -> Any:
    """A float64 Conv2d holding ``weight`` (built on the meta device, so it draws
    nothing from torch's global generator, then given its parameters)."""
    out_c, in_c, kh, kw = weight.shape
    conv = torch.nn.Conv2d(in_c, out_c, (kh, kw), stride=stride, padding=padding,
                           bias=bias is not None, dtype=torch.float64, device="meta")
    conv.weight = _parameter(torch, weight)
    if bias is not None:
        conv.bias = _parameter(torch, bias)
    return conv


def _nonempty(pruned: Sequence[np.ndarray], geometry: ConvGeometry) -> tuple[np.ndarray, ...]:
    """No channel kept is the zero function: one channel with zero weights."""
    w, b, V = (np.asarray(a, dtype=np.float64) for a in pruned)
    if w.shape[0] > 0:
        return w, b, V
    P = int(np.prod(geometry.channel_shape(w.shape[2:])))
    V = np.zeros((V.shape[0], 1, *V.shape[2:]) if V.ndim == 4 else (V.shape[0], P))
    return np.zeros((1, *w.shape[1:])), np.zeros(1), V


def conv_pair_modules(pruned: Sequence[np.ndarray], geometry: ConvGeometry,
                      activation: Activation) -> Any:
    """``x -> next(pool(phi(conv(x))))`` on flat inputs (b, D), as a float64 ``nn.Sequential``.

    ``Unflatten(1, input_shape), Conv2d, phi, [MaxPool2d | AvgPool2d], Conv2d
    (no bias), Flatten`` or ``..., Flatten, Linear (no bias)``. No channel
    kept (``r = 0``) is the zero function: one channel with zero weights.
    """
    torch = import_torch()
    nn = torch.nn
    w, b, V = _nonempty(pruned, geometry)
    mods = [nn.Unflatten(1, geometry.input_shape),
            _conv(torch, w, b, geometry.stride, geometry.padding), activation.torch_module()]
    if geometry.pool is not None:
        pool = nn.MaxPool2d if geometry.pool == "max" else nn.AvgPool2d
        mods.append(pool(geometry.pool_size))
    if V.ndim == 4:
        mods += [_conv(torch, V, None, geometry.next_stride, geometry.next_padding),
                 nn.Flatten()]
    else:
        linear = nn.Linear(V.shape[1], V.shape[0], bias=False, dtype=torch.float64,
                           device="meta")
        linear.weight = _parameter(torch, V)
        mods += [nn.Flatten(), linear]
    return nn.Sequential(*mods).requires_grad_(False)


@contextmanager
def _one_thread(torch: Any) -> Iterator[None]:
    """torch on one thread inside (restored after): a float64 conv2d on a small
    batch is ~500x slower with a second thread on a loaded CPU (measured here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def conv_forward(layer: ConvLayer, pruned: Sequence[np.ndarray], x: np.ndarray,
                 activation: Activation) -> np.ndarray:
    """``F~(x)`` of the pruned triple on the pair's geometry: (b, D) -> (b, k Q), float64."""
    torch = import_torch()
    net = conv_pair_modules(pruned, layer.geometry, activation)
    with torch.no_grad(), _one_thread(torch):
        return net(torch.as_tensor(np.asarray(x, dtype=np.float64))).numpy()


def conv_scale(layer: ConvLayer, beta: float, activation: Activation) -> np.ndarray:
    """``T_i`` of every output (k Q,): ``sum_c ||V[i, c]||_1 env[c]``, repeated over positions.

    The dense :func:`~coreset_verify.nets.layer_pair_scale` of the reduced pair
    ``(w_flat, b, A)``, ``A[i, c] = ||V[i, c]||_1`` (proofs_notes/conv.md,
    Lemma C2: ``|F_{i,q}(x)| <= T_i`` on the ball).
    """
    V = layer.next_weight
    A = np.abs(V.reshape(V.shape[0], layer.n, -1)).sum(axis=2)
    scale = layer_pair_scale(*layer.incoming, A, beta=beta, activation=activation)
    return np.repeat(scale, layer.output_positions)


# ------------------------------------------------------------ default pairs


def default_conv_layers() -> tuple[ConvLayer, ...]:
    """Two small fixed conv pairs (seeded): ``conv-conv`` and ``conv-linear``.

    ``conv-conv``: a 2 x 6 x 6 input (D = 72), 24 filters 3 x 3 with padding 1,
    max-pooling 2, a next Conv2d of 3 filters 2 x 2 (Q = 4).
    ``conv-linear``: a 1 x 6 x 6 input, 32 filters 3 x 3, average-pooling 2,
    Flatten and a Linear to 2 outputs; 4 channels have 10x larger outgoing
    weights, so that importance and uniform sampling differ.
    """
    gen = np.random.default_rng(20200402)
    first = conv_layer("conv-conv", gen.normal(size=(24, 2, 3, 3)), 0.3 * gen.normal(size=24),
                       gen.normal(size=(3, 24, 2, 2)),
                       ConvGeometry((2, 6, 6), padding=1, pool="max"), "default_conv_layers")
    V = gen.normal(size=(2, 32, 4))
    V[:, :4] *= 10.0
    second = conv_layer("conv-linear", gen.normal(size=(32, 1, 3, 3)),
                        0.3 * gen.normal(size=32), V.reshape(2, -1),
                        ConvGeometry((1, 6, 6), pool="avg"), "default_conv_layers")
    return first, second


def degenerate_conv_layer(seed: int = 7) -> DegenerateLayer:
    """A conv pair with dead, duplicate and zero channels, and its mask of dead channels.

    20 filters 3 x 3 on a 1 x 4 x 4 input, Flatten and a Linear to 2 outputs,
    the pattern of :func:`~._layers.degenerate_layer`: channels 0-3 are dead
    on the unit ball (bias -100), 4-5 have zero filters and bias 0, 6-7 repeat
    channel 8, and 9-10 have zero outgoing weights.
    """
    gen = np.random.default_rng(seed)
    w, b = gen.normal(size=(20, 1, 3, 3)), 0.3 * gen.normal(size=20)
    V = gen.normal(size=(2, 20, 4))
    b[0:4] = -100.0
    w[4:6], b[4:6] = 0.0, 0.0
    w[6:8], b[6:8] = w[8], b[8]
    V[:, 9:11] = 0.0
    dead = np.zeros(20, dtype=bool)
    dead[[0, 1, 2, 3, 4, 5, 9, 10]] = True
    layer = conv_layer("degenerate-conv", w, b, V.reshape(2, -1), ConvGeometry((1, 4, 4)),
                       "degenerate_conv_layer")
    return DegenerateLayer(layer, dead)
