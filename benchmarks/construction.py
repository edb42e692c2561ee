"""How close is layer_coreset to the cost of reading the weights once?

A 4096 x 4096 float32 layer pair. Prints, per backend (numpy; torch on the
CPU; torch on CUDA when there is a device), the best-of-repeats times of the
floor (row norms of W_in plus column maxima of W_out: each weight read once),
of layer_coreset, and of a one-draw-at-a-time Python loop like the authors'
released code, with the ratios ours/floor and loop/ours. Target: ours within
2x of the floor. The measuring code is coreset_verify.benchmark (also behind
``coreset-verify bench``).

    python benchmarks/construction.py [--size 4096] [--sample-size 1024] [--repeats 7]
"""

from __future__ import annotations

import argparse

from coreset_verify.benchmark import construction_benchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--sample-size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(f"layer_coreset on a {args.size} x {args.size} float32 layer pair, "
          f"m = {args.sample_size}")
    for row in construction_benchmark(size=args.size, sample_size=args.sample_size,
                                      repeats=args.repeats):
        line = (f"{row.backend:<11} floor {row.floor * 1e3:8.2f} ms   ours "
                f"{row.ours * 1e3:8.2f} ms   ours/floor {row.ours_over_floor:5.2f}")
        if row.loop is not None:
            line += f"   loop {row.loop * 1e3:8.1f} ms   loop/ours {row.loop_over_ours:6.1f}"
        print(line)


if __name__ == "__main__":
    main()
