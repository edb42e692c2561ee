"""Does each bound fail at most a delta fraction of the time? A campaign.

On the audit's ``gaussian`` layer (n = 24 neurons, d = 5, k = 3; ball radius
1), the coreset with a fixed number of draws, uniform sampling and top-k by
norm are each run at sizes 4, 8 and 16 over SEEDS seeds. Per trial: the worst
case found and certified by ``worst_case(method="auto")``, the coreset's
theoretical epsilons (pointwise, uniform, paper form) and the error on 500
inputs of the unit sphere. Printed: per (pruner, size, bound) the failure rate
with its Clopper-Pearson interval against delta, and the empirical epsilon
(the 1 - delta quantile of the worst cases found) beside the theoretical one.
Results stream to OUT/campaign.jsonl; rerunning resumes where it stopped. A
Markdown report with plots goes to OUT/.

    python benchmarks/campaign.py [--seeds 20] [--time-limit 1] [--out reports/campaign]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from coreset_verify.audit import coreset_pruner, run_campaign, top_norm_pruner, uniform_pruner
from coreset_verify.audit._common import default_layers
from coreset_verify.report import write_campaign_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--time-limit", type=float, default=1.0)
    parser.add_argument("--delta", type=float, default=0.1)
    parser.add_argument("--out", type=Path, default=Path("reports/campaign"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    layer = default_layers()[0]
    sphere = np.random.default_rng(0).normal(size=(500, layer.d))
    sphere /= np.linalg.norm(sphere, axis=1, keepdims=True)
    summary = run_campaign(
        {"gaussian": layer},
        pruners={"coreset": coreset_pruner(mode="draws"), "uniform": uniform_pruner(),
                 "top-norm": top_norm_pruner()},
        sizes=[4, 8, 16], seeds=args.seeds, delta=args.delta,
        path=args.out / "campaign.jsonl", time_limit=args.time_limit, method="auto",
        data=sphere)
    report = write_campaign_report(args.out / "campaign.jsonl", args.out)
    print(summary)
    print(f"report: {report}")


if __name__ == "__main__":
    main()
