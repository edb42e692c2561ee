"""Run an adversarial campaign: search for inputs that break claimed bounds.

    python adversarial/run.py adversarial/campaigns/paper-constant.json

A campaign file names a layer pair (a seeded random layer, or the first
hidden layer of LeNet-300-100 trained on the MNIST 5k digits), the coresets to
draw from it (sample size and seeds), the claims to check (kind, delta, and
for the paper form its constant) and the search budget. Each violation is
saved under ``adversarial/counterexamples/<campaign>/`` and replayed by
``tests/regression/test_counterexamples.py``. A summary line per check is
printed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from coreset_verify import layer_coreset
from coreset_verify._validation import check_option, check_unknown_options
from coreset_verify.verdict import check_guarantee

HERE = Path(__file__).parent
_FUNC = "adversarial/run.py"
#: The keys a campaign file and each of its sections may have.
SECTIONS = {
    "": ("description", "layer", "beta", "coreset", "claims", "search"),
    "layer": ("source", "seed", "n", "d", "k", "epochs"),
    "coreset": ("sample_size", "seeds"),
    "claim": ("kind", "delta", "paper_constant"),
    "search": ("method", "time_limit"),
}


def check_config(config: dict) -> dict:
    """Refuse misspelt keys and unknown layer sources before anything runs."""
    check_unknown_options(config, SECTIONS[""], _FUNC)
    for section in ("layer", "coreset", "search"):
        check_unknown_options(config[section], SECTIONS[section], f"{_FUNC} [{section}]")
    for claim in config["claims"]:
        check_unknown_options(claim, SECTIONS["claim"], f"{_FUNC} [claims]")
    check_option(config["layer"]["source"], "layer.source", _FUNC, ("random", "lenet300"))
    return config


def load_layer(spec: dict) -> tuple[tuple[np.ndarray, ...], np.ndarray | None]:
    """The layer pair (float64) and held-out data (or None) a campaign names."""
    if check_option(spec["source"], "layer.source", _FUNC, ("random", "lenet300")) == "random":
        gen = np.random.default_rng(spec["seed"])
        n, d, k = spec["n"], spec["d"], spec["k"]
        layer = (gen.normal(size=(n, d)) / np.sqrt(d), gen.normal(size=n) * 0.1,
                 gen.normal(size=(k, n)) / np.sqrt(n))
        return layer, None
    from coreset_verify.data import mnist_5k
    from coreset_verify.models import mlp, train_classifier

    data = mnist_5k(rng=spec["seed"])
    model = mlp([784, 300, 100, 10], seed=spec["seed"])
    train_classifier(model, data, epochs=spec["epochs"], seed=spec["seed"])
    layer = tuple(p.detach().numpy().astype(np.float64)
                  for p in (model[0].weight, model[0].bias, model[2].weight))
    return layer, data.x_test


def run(config_path: Path) -> list[dict]:
    config = check_config(json.loads(config_path.read_text()))
    layer, data = load_layer(config["layer"])
    out = HERE / "counterexamples" / config_path.stem
    rows = []
    for seed in config["coreset"]["seeds"]:
        coreset = layer_coreset(*layer, sample_size=config["coreset"]["sample_size"],
                                beta=config["beta"], rng=seed)
        search = None  # one search per coreset serves every claim (same scale T)
        for claim in config["claims"]:
            name = f"{claim['kind']}-C{claim.get('paper_constant', 1)}-seed{seed}"
            result = check_guarantee(
                *layer, coreset, delta=claim["delta"], kind=claim["kind"],
                paper_constant=claim.get("paper_constant", 1.0),
                time_limit=config["search"]["time_limit"], method=config["search"]["method"],
                data=data, rng=seed, counterexample_dir=out, name=name, search_result=search,
                metadata={"seed": seed, "campaign": config_path.stem})
            search = result.worst_case
            row = {"seed": seed, "claim": claim, "kept": coreset.n_kept,
                   "epsilon": result.epsilon, "found": result.found,
                   "certified": result.certified, "data_error": result.data_error,
                   "verdict": result.verdict}
            print(json.dumps(row))
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path, nargs="+")
    for path in parser.parse_args().config:
        run(path)


if __name__ == "__main__":
    main()
