"""The main job: train LeNet-300-100 on real digits, prune its first hidden
layer with the coreset, and set the theory beside what is measured.

Returns a :class:`DemoResult`; printing is left to ``cli.py``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .coreset import layer_coreset
from .counterexamples import layer_errors
from .data import mnist_5k
from .guarantees import theoretical_bound
from .models import accuracy, mlp, train_classifier
from .network import replace_layer_pair

__all__ = ["DemoResult", "run_demo"]


@dataclass(frozen=True)
class DemoResult:
    """Figures of one demo run (all plain Python values, JSON-ready)."""

    dataset: str
    beta: float
    data_max_norm: float
    neurons: int
    kept: int
    sample_size: int
    delta: float
    epsilon_pointwise: float
    epsilon_uniform: float
    epsilon_uniform_statistical: float
    epsilon_paper: float
    data_error_max: float
    data_error_mean: float
    dense_accuracy: float
    pruned_accuracy: float
    dense_params: int
    pruned_params: int
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def run_demo(
    *,
    seed: int = 0,
    sample_size: int = 60,
    beta: float = 15.0,
    delta: float = 0.1,
    epochs: int = 10,
    progress: Any = None,
) -> DemoResult:
    """Train, prune the first hidden layer, bound and measure. About 20 s on 2 cores.

    ``progress(stage, detail)`` is called as the stages go.
    """
    report = progress or (lambda stage, detail: None)
    data = mnist_5k(rng=seed)
    model = mlp([784, 300, 100, 10], seed=seed)
    def on_epoch(epoch: int, loss: float) -> None:
        report("train", f"epoch {epoch + 1}/{epochs} loss {loss:.3f}")

    train_classifier(model, data, epochs=epochs, seed=seed, progress=on_epoch)
    layer = tuple(p.detach().numpy().astype(np.float64) for p in
                  (model[0].weight, model[0].bias, model[2].weight))
    report("prune", f"coreset of {sample_size} draws")
    coreset = layer_coreset(*layer, sample_size=sample_size, beta=beta, rng=seed)
    bounds = {kind: theoretical_bound(coreset, delta=delta, kind=kind)
              for kind in ("pointwise", "uniform", "paper")}
    errors = layer_errors(layer, coreset.pruned(), coreset.scale, data.x_test)
    pruned = replace_layer_pair(model, 0, coreset).float()
    return DemoResult(
        dataset=data.name, beta=beta, data_max_norm=data.max_norm,
        neurons=coreset.n_neurons, kept=coreset.n_kept, sample_size=coreset.sample_size,
        delta=delta, epsilon_pointwise=bounds["pointwise"].epsilon,
        epsilon_uniform=bounds["uniform"].epsilon,
        epsilon_uniform_statistical=bounds["uniform"].statistical,
        epsilon_paper=bounds["paper"].epsilon,
        data_error_max=float(errors.max()), data_error_mean=float(errors.mean()),
        dense_accuracy=accuracy(model, data.x_test, data.y_test),
        pruned_accuracy=accuracy(pruned, data.x_test, data.y_test),
        dense_params=_count(model), pruned_params=_count(pruned), seed=seed,
    )
