"""How close is :func:`layer_coreset` to the cost of reading the weights once?

Used by ``benchmarks/construction.py`` and ``coreset-verify bench``. Timings
are taken side by side in one run, interleaved, best of several repeats, and
reported as ratios (the machines this runs on are noisy):

* floor: row norms of W_in plus column maxima of W_out, the least any
  sensitivity sampler must do (each weight read once);
* ours: ``layer_coreset`` (sensitivities, draws, re-weighting);
* loop: the same result built as the authors' released code does, with
  full-size temporaries and one ``rng.choice`` per draw in a Python loop.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np

from ._validation import check_int, fail
from .coreset import layer_coreset
from .nets import layer_pair_scale

__all__ = ["ConstructionTiming", "LoopCoreset", "construction_benchmark", "loop_coreset"]

#: Largest ``size`` :func:`construction_benchmark` accepts (two size x size
#: float32 matrices, 2 GiB each at this size).
MAX_SIZE = 2**15


@dataclass(frozen=True)
class ConstructionTiming:
    """Best-of-repeats seconds for one backend, and the ratios."""

    backend: str
    floor: float
    ours: float
    loop: float | None

    @property
    def ours_over_floor(self) -> float:
        return self.ours / self.floor

    @property
    def loop_over_ours(self) -> float | None:
        return None if self.loop is None else self.loop / self.ours

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ours_over_floor": self.ours_over_floor,
                "loop_over_ours": self.loop_over_ours}


def _floor_numpy(W_in, b_in, W_out):
    return np.sqrt(np.einsum("ij,ij->i", W_in, W_in)), W_out.max(axis=0)


def _floor_torch(W_in, b_in, W_out):
    import torch

    return torch.linalg.vector_norm(W_in, dim=1), W_out.amax(dim=0)


class LoopCoreset(NamedTuple):
    """:func:`loop_coreset`: the kept neurons and their new outgoing weights."""

    kept: np.ndarray
    weight_out: np.ndarray


def loop_coreset(W_in, b_in, W_out, m: int, beta: float, seed: int) -> LoopCoreset:
    """One draw at a time, as in the authors' code (a baseline, not for use).

    ReLU, numpy. ``T_i`` comes from :func:`coreset_verify.nets.layer_pair_scale`;
    the per-neuron terms and the draws are written out with full-size
    temporaries and one ``rng.choice`` per draw, as the authors' code does.
    """
    phi_hi = np.maximum(beta * np.linalg.norm(W_in, axis=1) + b_in, 0)
    scale = layer_pair_scale(W_in, b_in, W_out, beta=beta, activation="relu")
    s = (np.abs(W_out) * phi_hi / scale[:, None]).max(axis=0)
    pr = s / s.sum()
    rng = np.random.default_rng(seed)
    counts = np.zeros(len(pr), dtype=np.int64)
    for _ in range(m):
        counts[rng.choice(len(pr), p=pr)] += 1
    kept = np.flatnonzero(counts)
    return LoopCoreset(kept, W_out[:, kept] * (counts[kept] / (m * pr[kept])))


def _best(fn, repeats: int, sync) -> float:
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return min(times)


def _measure(label, arrays, floor, m, repeats, sync, with_loop) -> ConstructionTiming:
    W_in, b_in, W_out = arrays

    def ours():
        return layer_coreset(W_in, b_in, W_out, sample_size=m, beta=1.0, rng=0)

    def read_once():
        return floor(W_in, b_in, W_out)

    ours(), read_once()  # warm up
    t_floor, t_ours = [], []
    for _ in range(repeats):  # interleaved, so both see the same machine load
        t_floor.append(_best(read_once, 1, sync))
        t_ours.append(_best(ours, 1, sync))
    t_loop = None
    if with_loop:
        t_loop = _best(lambda: loop_coreset(W_in, b_in, W_out, m, 1.0, 0),
                       max(1, repeats // 3), sync)
    return ConstructionTiming(label, min(t_floor), min(t_ours), t_loop)


def construction_benchmark(*, size: int = 4096, sample_size: int = 1024, repeats: int = 7,
                           progress: Any = None) -> list[ConstructionTiming]:
    """Time ``layer_coreset`` on a ``size`` x ``size`` float32 layer pair.

    Rows: numpy (with the loop baseline), torch on the CPU, torch on CUDA when
    a device is present. ``size`` is at most :data:`MAX_SIZE`; ``progress``,
    when given, is called as ``progress(stage, detail)``.
    """
    func = "construction_benchmark"
    size = check_int(size, "size", func)
    if size > MAX_SIZE:
        raise fail(func, "size", f"an integer <= {MAX_SIZE} (two size x size float32 "
                   "matrices must fit in memory)", size)
    sample_size = check_int(sample_size, "sample_size", func)
    repeats = check_int(repeats, "repeats", func)
    if progress is not None and not callable(progress):
        raise fail(func, "progress", "None or a callable progress(stage, detail)",
                   type(progress).__name__)
    report = progress or (lambda stage, detail: None)
    gen = np.random.default_rng(0)
    arrays = tuple(a.astype(np.float32) for a in (
        gen.normal(size=(size, size)) / np.sqrt(size), gen.normal(size=size) * 0.1,
        gen.normal(size=(size, size)) / np.sqrt(size)))
    rows = []
    report("bench", "numpy")
    rows.append(_measure("numpy", arrays, _floor_numpy, sample_size, repeats,
                         lambda: None, True))
    try:
        import torch
    except ImportError:
        return rows
    report("bench", "torch cpu")
    rows.append(_measure("torch cpu", tuple(torch.from_numpy(a) for a in arrays),
                         _floor_torch, sample_size, repeats, lambda: None, False))
    if torch.cuda.is_available():
        report("bench", "torch cuda")
        cuda = tuple(torch.from_numpy(a).cuda() for a in arrays)
        rows.append(_measure("torch cuda", cuda, _floor_torch, sample_size, repeats,
                             torch.cuda.synchronize, False))
    return rows
