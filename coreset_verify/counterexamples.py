"""Counterexamples: inputs where a pruned layer breaks a claimed bound.

A counterexample is two files in one folder, ``NAME.npz`` (the input ``x``,
the original and the pruned layer pair, the scale) and ``NAME.json`` (what was
claimed and found, the seeds and the versions that found it). Replaying one
re-evaluates the error at ``x`` from the stored arrays, with no solver, and
re-draws the coreset from the stored seed to check it is still the same.
"""

from __future__ import annotations

import json
import platform
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ._validation import fail
from .nets import layer_pair_forward

__all__ = [
    "Counterexample",
    "LayerPair",
    "Replay",
    "layer_errors",
    "load_counterexample",
    "replay",
    "save_counterexample",
]

#: What a counterexample's name may use (it becomes a file name).
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+$")


class LayerPair(NamedTuple):
    """A layer pair ``F(x) = W_out phi(W_in x + b_in)``: float64 arrays (n, d), (n,), (k, n)."""

    W_in: np.ndarray
    b_in: np.ndarray
    W_out: np.ndarray


@dataclass(frozen=True)
class Counterexample:
    """A stored counterexample: arrays and metadata.

    ``layer`` is the original pair, ``pruned`` the kept neurons with their new
    outgoing weights ``(W_in[kept], b_in[kept], U)``.
    """

    x: np.ndarray
    layer: LayerPair
    pruned: LayerPair
    scale: np.ndarray
    metadata: dict[str, Any]


@dataclass(frozen=True)
class Replay:
    """The outcome of :func:`replay`."""

    recorded_error: float
    reproduced_error: float
    claimed_epsilon: float
    same_coreset: bool | None  # None when no seed was stored

    @property
    def reproduced(self) -> bool:
        """The error is reproduced to 1e-9 (relative) and still beats the claim."""
        close = abs(self.reproduced_error - self.recorded_error) <= 1e-9 * max(
            1.0, abs(self.recorded_error))
        return close and self.reproduced_error > self.claimed_epsilon


def _versions() -> dict[str, str]:
    from . import __version__

    versions = {"coreset_verify": __version__, "numpy": np.__version__,
                "python": platform.python_version()}
    try:
        import torch

        versions["torch"] = torch.__version__
    except ImportError:
        pass
    return versions


def layer_errors(layer, pruned, scale, x, activation: str = "relu") -> np.ndarray:
    """``max_i |F_i(x) - F~_i(x)| / scale_i`` in float64 for each row of x (N, d).

    ``layer`` is ``(W_in, b_in, W_out)``, ``pruned`` is ``(W_in', b_in', U)``;
    both are evaluated by :func:`coreset_verify.nets.layer_pair_forward`. An
    output with ``scale_i = 0`` (``T_i = 0``: it is 0 on the whole ball) counts
    0 where the two agree and ``inf`` where they differ, the convention of
    :func:`coreset_verify.theoretical_bound` (such a row carries no error).
    Returns shape (N,), or a float for a single input of shape (d,).
    """
    diff = np.abs(layer_pair_forward(*layer, x, activation)
                  - layer_pair_forward(*pruned, x, activation))
    scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), diff.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(scale > 0, diff / np.where(scale > 0, scale, 1.0),
                         np.where(diff == 0, 0.0, np.inf))
    errors = np.max(ratio, axis=-1)
    return float(errors[0]) if np.ndim(x) == 1 else errors


def _compact(a) -> np.ndarray:
    """float32 when that stores the values exactly (trained weights), else float64."""
    a = np.asarray(a, dtype=np.float64)
    small = a.astype(np.float32)
    return small if np.array_equal(small.astype(np.float64), a) else a


def save_counterexample(folder, name: str, *, x, layer, pruned, scale,
                        metadata: dict[str, Any]) -> Path:
    """Write ``NAME.npz`` and ``NAME.json`` into ``folder``; return the JSON path.

    ``metadata`` must hold at least ``error``, ``epsilon`` and ``activation``;
    versions are added.
    """
    func = "save_counterexample"
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise fail(func, "name", "a string of letters, digits, '.', '_' or '-'", name)
    missing = {"error", "epsilon", "activation"} - set(metadata)
    if missing:
        raise fail(func, "metadata", "a dict with at least 'error', 'epsilon' and "
                   "'activation'", f"a dict without {sorted(missing)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = dict(zip(("W_in", "b_in", "W_out"), layer, strict=True))
    arrays |= dict(zip(("kept_W_in", "kept_b_in", "U"), pruned, strict=True))
    np.savez_compressed(folder / f"{name}.npz", x=np.asarray(x, np.float64),
                        scale=np.asarray(scale, np.float64),
                        **{k: _compact(v) for k, v in arrays.items()})
    meta = {"format": 1, **metadata, "versions": _versions()}
    path = folder / f"{name}.json"
    path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return path


_ARRAYS = ("x", "scale", "W_in", "b_in", "W_out", "kept_W_in", "kept_b_in", "U")


def load_counterexample(path) -> Counterexample:
    """Read a counterexample from its ``.json`` (or ``.npz``) path.

    Raises
    ------
    InvalidArgumentError
        ``path`` is not a path, or the two files are missing, unreadable, not
        JSON / npz, or lack a field (``error``, ``epsilon``, ``activation``;
        the arrays ``x``, ``scale``, ``W_in``, ``b_in``, ``W_out``,
        ``kept_W_in``, ``kept_b_in``, ``U``).
    """
    func = "load_counterexample"
    if not isinstance(path, str | Path):
        raise fail(func, "path", "a str or pathlib.Path", type(path).__name__)
    path = Path(path)
    try:
        meta = json.loads(path.with_suffix(".json").read_text())
        with np.load(path.with_suffix(".npz"), allow_pickle=False) as z:
            a = {key: z[key].astype(np.float64) for key in z.files}
    except (OSError, ValueError, TypeError) as exc:
        raise fail(func, "path", "the .json or .npz of a saved counterexample (both files "
                   "readable)", f"{path} ({type(exc).__name__}: {exc})") from None
    missing = [k for k in _ARRAYS if k not in a]
    missing += [k for k in ("error", "epsilon", "activation") if not isinstance(meta, dict)
                or k not in meta]
    if missing:
        raise fail(func, "path", "a saved counterexample with every field",
                   f"{path} without {missing}")
    return Counterexample(
        x=a["x"], layer=LayerPair(a["W_in"], a["b_in"], a["W_out"]),
        pruned=LayerPair(a["kept_W_in"], a["kept_b_in"], a["U"]), scale=a["scale"],
        metadata=meta)


def replay(path) -> Replay:
    """Re-evaluate a stored counterexample (no solver) and re-draw its coreset."""
    from .coreset import layer_coreset

    ce = load_counterexample(path)
    meta = ce.metadata
    error = layer_errors(ce.layer, ce.pruned, ce.scale, ce.x, meta["activation"])
    same = None
    if "seed" in meta and "sample_size" in meta:
        c = layer_coreset(*ce.layer, sample_size=meta["sample_size"], beta=meta["beta"],
                          activation=meta["activation"], rng=meta["seed"])
        _, _, U = c.pruned()
        same = U.shape == ce.pruned[2].shape and bool(
            np.allclose(U, ce.pruned[2], rtol=1e-12, atol=0))
    return Replay(meta["error"], error, meta["epsilon"], same)
