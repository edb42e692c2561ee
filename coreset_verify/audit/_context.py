"""What every check shares: its outcome type, the audit context, seeds and calls.

Seeds: every check draws its seeds from its own stream, ``seed_stream(ctx,
stream, layer, count)``; seed ``t`` of a stream is
``SeedSequence(ctx.seed, spawn_key=(stream, layer, t)).generate_state(1,
uint64)[0]``, so no two (check, layer, trial) share a seed however many
layers are audited (the streams are distinct spawn keys of one SeedSequence).
Calls into the pruner go through :class:`~._worker.PrunerCalls` (time limit).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np

from ..activations import Activation, get_activation
from ._arguments import check_epsilon_value
from ._forward import evaluate
from ._inputs import ball_inputs
from ._layers import DegenerateLayer, Layer, LayerArrays, Pruner, degenerate_layer
from ._worker import CallSpec, PrunerCalls, PrunerError

__all__ = [
    "FAILED",
    "PASSED",
    "SKIPPED",
    "AuditContext",
    "Outcome",
    "Stream",
    "call",
    "call_many",
    "claimed_epsilons",
    "functions_of",
    "prune_many",
    "pruned_outputs",
    "seed_stream",
    "stream_evidence",
    "triple",
]

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


@dataclass(frozen=True)
class Outcome:
    """What one check concluded: a ``status``, a one-line ``message``, ``evidence``.

    ``status`` is ``"passed"``, ``"failed"`` or ``"skipped"`` (the check does
    not apply to the claims, or cannot run here): a skipped check is not a
    pass, as scikit-learn's ``SkipTest`` is not.
    """

    status: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """The check ran and passed."""
        return self.status == PASSED

    @property
    def skipped(self) -> bool:
        """The check did not run."""
        return self.status == SKIPPED

    @classmethod
    def ok(cls, message: str, evidence: dict[str, Any] | None = None) -> Outcome:
        """A pass."""
        return cls(PASSED, message, evidence or {})

    @classmethod
    def fail(cls, message: str, evidence: dict[str, Any] | None = None) -> Outcome:
        """A failure."""
        return cls(FAILED, message, evidence or {})

    @classmethod
    def skip(cls, reason: str) -> Outcome:
        """Not run, with the reason."""
        return cls(SKIPPED, f"skipped: {reason}")


class Stream(IntEnum):
    """The seed streams of the checks (the first spawn key of each seed)."""

    RETURNS = 1
    SIZE = 2
    FULL = 3
    MUTATION = 4
    RNG = 5
    PERMUTATION = 6
    DEGENERATE = 7
    SHRINKS = 8
    UNBIASED_PILOT = 9
    UNBIASED_TEST = 10
    PERMUTATION_PILOT = 11
    PERMUTATION_TEST = 12
    GUARANTEE = 13
    POINTWISE = 14
    KEPT_ROWS = 15


@dataclass(frozen=True)
class AuditContext:
    """Everything the checks share: claims, layers, ball, seeds, budgets, calls.

    Attributes
    ----------
    claims : mapping
        Validated by :func:`~._arguments.check_claims`.
    layers : tuple of Layer, or tuple of ConvLayer
        One kind (dense or conv); :attr:`kind` says which.
    beta : float
        Radius of the input ball the checks evaluate on.
    activation : Activation
    seed : int
        Base seed; every check derives its seeds from it (recorded in evidence).
    time_limit : float
        Seconds for each worst-case search of ``check_guarantee``.
    method : str
        Search method of ``check_guarantee`` (``"gradient"`` or ``"auto"``).
    pilot_seeds, test_seeds : int
        Seeds of the pilot (variance estimate) and of the test of
        ``check_unbiased`` and the random branch of ``check_permutation``.
    n_inputs : int
        Inputs of the ball at which functions are compared.
    calls : PrunerCalls or None
        Where calls into the pruner go (a time-limited worker); None calls the
        pruner directly in this process.
    """

    claims: Mapping[str, Any]
    layers: tuple[Layer, ...]
    beta: float = 1.0
    activation: Activation | None = None
    seed: int = 0
    time_limit: float = 2.0
    method: str = "gradient"
    pilot_seeds: int = 50
    test_seeds: int = 200
    n_inputs: int = 24
    calls: PrunerCalls | None = field(default=None, repr=False, compare=False)

    def inputs(self, layer: Layer, count: int | None = None) -> np.ndarray:
        """Fixed inputs of the ball for ``layer`` (seeded by ``seed``)."""
        rng = np.random.default_rng([self.seed, 7919, layer.n])
        return ball_inputs(layer, self.beta, count or self.n_inputs, rng)

    def act(self) -> Activation:
        """The activation (ReLU when none was given)."""
        return self.activation if self.activation is not None else get_activation("relu")

    @property
    def kind(self) -> str:
        """``"dense"`` or ``"conv"``: the kind of the layers (and of the pruner)."""
        return self.layers[0].kind

    def degenerate(self) -> DegenerateLayer:
        """The degenerate layer of :attr:`kind` (dead, zero and duplicate neurons)."""
        if self.kind == "conv":
            from ._conv import degenerate_conv_layer

            return degenerate_conv_layer()
        return degenerate_layer()


def seed_stream(ctx: AuditContext, stream: Stream, layer: int, count: int) -> list[int]:
    """``count`` seeds of one (check, layer) stream; no two streams share a seed."""
    return [int(np.random.SeedSequence(ctx.seed, spawn_key=(int(stream), layer, t))
                .generate_state(1, np.uint64)[0]) for t in range(count)]


def stream_evidence(ctx: AuditContext, stream: Stream, layer: int, count: int,
                    ) -> dict[str, Any]:
    """How to regenerate a stream's seeds (see the module docstring)."""
    return {"entropy": ctx.seed, "spawn_key": [int(stream), layer], "count": count}


def functions_of(pruner: Pruner, claims: Mapping[str, Any]) -> dict[str, Callable]:
    """The user's callables an audit calls: the pruner and a callable epsilon."""
    out: dict[str, Callable] = {"pruner": pruner}
    eps = claims.get("guarantee", {}).get("epsilon")
    if callable(eps):
        out["epsilon"] = eps
    return out


def _calls(pruner: Pruner, ctx: AuditContext) -> PrunerCalls:
    if ctx.calls is not None and ctx.calls.pruner is pruner:
        return ctx.calls
    return PrunerCalls(functions_of(pruner, ctx.claims), None)


def call_many(pruner: Pruner, ctx: AuditContext, specs: Sequence[CallSpec], *,
              keep: bool = False) -> list[Any]:
    """The pruner's outputs for each ``(layer, size, seed)``, in order (time-limited)."""
    return _calls(pruner, ctx).run("pruner", specs, keep=keep)


def call(pruner: Pruner, ctx: AuditContext, layer: Layer, size: int, seed: int) -> Any:
    """One call: ``pruner(*layer.arrays(), size=size, rng=default_rng(seed),
    **layer.keywords())``."""
    return call_many(pruner, ctx, [CallSpec(layer, size, seed)])[0]


def triple(out: Any, spec: CallSpec) -> LayerArrays:
    """A pruner's output as float64 arrays of shapes (r, d), (r,), (k, r).

    For a conv pair, the pruned triple ``(conv_weight[kept],
    conv_bias[kept], next_weight')`` (:func:`~._conv.conv_arrays`). Types and
    dtypes are judged by ``check_returns_arrays``; this only makes the output
    computable, and says clearly when it is not.

    Raises
    ------
    PrunerError
        Not three arrays convertible to float64, or shapes that do not fit.
    """
    if spec.layer.kind == "conv":
        from ._conv import conv_arrays

        return conv_arrays(out, spec)
    where = (f"layer {spec.layer.name!r}, size={spec.size}, seed={spec.seed}")
    evidence = {"layer": spec.layer.name, "size": spec.size, "seed": spec.seed}
    try:
        W_in, b_in, W_out = (np.asarray(a, dtype=np.float64) for a in out)
    except (TypeError, ValueError) as exc:
        raise PrunerError(f"the pruner returned {type(out).__name__}, not three arrays "
                          f"(W_in', b_in', W_out') of numbers ({exc}) ({where})",
                          evidence) from None
    layer = spec.layer
    r = W_in.shape[0] if W_in.ndim == 2 else -1
    if (W_in.shape, b_in.shape, W_out.shape) != ((r, layer.d), (r,), (layer.k, r)):
        raise PrunerError(f"the pruner returned arrays of shapes {W_in.shape}, {b_in.shape}, "
                          f"{W_out.shape}, not (r, {layer.d}), (r,), ({layer.k}, r) ({where})",
                          evidence)
    return LayerArrays(W_in, b_in, W_out)


def prune_many(pruner: Pruner, ctx: AuditContext, specs: Sequence[CallSpec],
               ) -> list[LayerArrays]:
    """:func:`call_many`, each output checked and converted by :func:`triple`."""
    specs = list(specs)
    return [triple(out, spec) for out, spec in
            zip(call_many(pruner, ctx, specs), specs, strict=True)]


def pruned_outputs(pruner: Pruner, ctx: AuditContext, layer: Layer, size: int,
                   seeds: Sequence[int], x: np.ndarray) -> np.ndarray:
    """``F~(x)`` for each seed: shape (len(seeds), b, k)."""
    outs = prune_many(pruner, ctx, [CallSpec(layer, size, s) for s in seeds])
    return np.stack([evaluate(layer, o, x, ctx.act()) for o in outs])


def claimed_epsilons(pruner: Pruner, ctx: AuditContext, layer: Layer, size: int,
                     seeds: Sequence[int]) -> list[float]:
    """The claimed epsilon for each seed (a callable is called like the pruner).

    Raises
    ------
    PrunerError
        The callable raised, timed out, or returned something other than a
        finite number >= 0 (NaN, infinity and negative numbers claim nothing).
    """
    eps = ctx.claims["guarantee"]["epsilon"]
    if not callable(eps):
        return [float(eps)] * len(seeds)
    specs = [CallSpec(layer, size, s) for s in seeds]
    values = _calls(pruner, ctx).run("epsilon", specs)
    for spec, value in zip(specs, values, strict=True):
        if not check_epsilon_value(value):
            raise PrunerError(f"the claimed epsilon callable returned {value!r}, not a finite "
                              f"number >= 0 (layer {layer.name!r}, size={size}, "
                              f"seed={spec.seed})", {"layer": layer.name, "size": size,
                                                     "seed": spec.seed, "epsilon": repr(value)})
    return [float(v) for v in values]

