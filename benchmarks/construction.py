"""How close is layer_coreset to the cost of reading the weights once?

A 4096 x 4096 float32 layer pair (W_in 4096 x 4096, W_out 4096 x 4096). Timed
side by side in one run, interleaved, best of several repeats:

* floor: row norms of W_in plus column maxima of W_out, the least any
  sensitivity sampler must do (each weight read once);
* ours: layer_coreset (sensitivities, draws, re-weighting);
* loop: the same result built as the authors' released code does: full-size
  temporaries for the sensitivities, then one ``rng.choice`` per draw in a
  Python loop.

Prints ratios (ours / floor, loop / ours) for numpy and torch (CPU here; CUDA
when available). Target: ours within 2x of the floor.

    python benchmarks/construction.py [--size 4096] [--sample-size 1024] [--repeats 7]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from coreset_verify import layer_coreset


def floor_numpy(W_in, b_in, W_out):
    return np.sqrt(np.einsum("ij,ij->i", W_in, W_in)), W_out.max(axis=0)


def floor_torch(W_in, b_in, W_out):
    import torch

    return torch.linalg.vector_norm(W_in, dim=1), W_out.amax(dim=0)


def loop_numpy(W_in, b_in, W_out, m, beta, seed):
    """One draw at a time, as in the authors' code (a baseline, not for use)."""
    phi_hi = np.maximum(beta * np.linalg.norm(W_in, axis=1) + b_in, 0)
    contrib = np.abs(W_out) * phi_hi
    s = (contrib / contrib.sum(axis=1, keepdims=True)).max(axis=0)
    pr = s / s.sum()
    rng = np.random.default_rng(seed)
    counts = np.zeros(len(pr), dtype=np.int64)
    for _ in range(m):
        counts[rng.choice(len(pr), p=pr)] += 1
    kept = np.flatnonzero(counts)
    return kept, W_out[:, kept] * (counts[kept] / (m * pr[kept]))


def best_time(fn, repeats, sync=lambda: None):
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(label, arrays, floor, m, repeats, sync=lambda: None, loop=None):
    W_in, b_in, W_out = arrays
    ours = lambda: layer_coreset(W_in, b_in, W_out, sample_size=m, beta=1.0, rng=0)  # noqa: E731
    floor_fn = lambda: floor(W_in, b_in, W_out)  # noqa: E731
    ours(), floor_fn()  # warm up
    t_floor = best_time(floor_fn, repeats, sync)
    t_ours = best_time(ours, repeats, sync)
    line = (f"{label:<14} floor {t_floor * 1e3:8.2f} ms   ours {t_ours * 1e3:8.2f} ms   "
            f"ours/floor {t_ours / t_floor:5.2f}")
    if loop is not None:
        t_loop = best_time(lambda: loop(W_in, b_in, W_out, m, 1.0, 0), max(1, repeats // 3))
        line += f"   loop {t_loop * 1e3:8.1f} ms   loop/ours {t_loop / t_ours:6.1f}"
    print(line)
    return t_ours / t_floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--sample-size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    n = args.size
    gen = np.random.default_rng(0)
    arrays = tuple(a.astype(np.float32) for a in (
        gen.normal(size=(n, n)) / np.sqrt(n), gen.normal(size=n) * 0.1,
        gen.normal(size=(n, n)) / np.sqrt(n)))
    print(f"layer_coreset on a {n} x {n} float32 layer pair, m = {args.sample_size}")
    measure("numpy", arrays, floor_numpy, args.sample_size, args.repeats, loop=loop_numpy)
    try:
        import torch
    except ImportError:
        print("torch not installed: torch rows skipped")
        return
    measure("torch cpu", tuple(torch.from_numpy(a) for a in arrays), floor_torch,
            args.sample_size, args.repeats)
    if torch.cuda.is_available():
        cuda = tuple(torch.from_numpy(a).cuda() for a in arrays)
        measure("torch cuda", cuda, floor_torch, args.sample_size, args.repeats,
                sync=torch.cuda.synchronize)
    else:
        print("torch cuda     (no CUDA device here)")


if __name__ == "__main__":
    main()
