"""The fuzz's own findings (F1, F2, ... of the issue 8 session), replayed every run.

Each is one explicit case with the same oracle as the random ones, so a finding
fixed once stays fixed even when the random draw no longer reaches it.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from pathlib import Path

import numpy as np
from _fuzz_cases import Base, Case, FalseClaim, check_bound, label_of, make_base
from _fuzz_layer import _check_phi, _check_sens, check_sample_size
from _fuzz_models import check_pruned_network, check_worst_case

import coreset_verify as cv

W_IN = np.array([[1.0], [2.0]])
B_IN = np.array([0.5, 0.1])
W_OUT = np.array([[1.0, -1.0]])


def _refused(what: str):
    def check(result):
        raise FalseClaim(f"{what} accepted: returned {type(result).__name__}")

    return check


def _sens_case(tag, W_in, b_in, W_out, beta, act="relu"):
    base = Base(W_in, b_in, W_out, act, beta, 0, tag)
    return Case("regressions", label_of("regressions", [tag]),
                lambda: cv.output_sensitivities(W_in, b_in, W_out, beta=beta, activation=act),
                lambda r: _check_sens(r, base, act, output=True))


def _tampered_bound(tag, **change):
    def call():
        c = cv.layer_coreset(W_IN, B_IN, W_OUT, sample_size=5, beta=1.0, rng=0)
        if "weight_out" in change:
            change["weight_out"] = c.weight_out * np.nan
        return cv.theoretical_bound(dataclasses.replace(c, **change), delta=0.1)

    return Case("regressions", label_of("regressions", [tag]), call, _refused(tag))


def _float32_radius():
    import torch
    import torch.nn as nn

    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 1, bias=False))
    p = nn.Sequential(nn.Linear(1, 1), nn.ReLU(), nn.Linear(1, 1, bias=False))
    return m, p


def _meta_model():
    import torch.nn as nn

    return nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2)).to("meta")


def _small_net():
    import torch
    import torch.nn as nn

    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 3), nn.ReLU(),
                         nn.Linear(3, 1)).double()


def _wrong_widths():
    import torch.nn as nn

    original = nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(3, 1))
    pruned = nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 1))
    return cv.worst_case(original, pruned, beta=1.0, method="gradient", time_limit=1.0)


def _campaign(**options):
    from coreset_verify import audit

    r = np.random.default_rng(7)
    layer = (r.standard_normal((6, 2)), abs(r.standard_normal(6)), r.standard_normal((2, 6)))
    args = {"sizes": [3], "seeds": 1, "delta": 0.1, "kinds": ["pointwise"], "time_limit": 0.3,
            "method": "gradient", **options}
    path = Path(tempfile.mkdtemp(prefix="fuzz_reg_")) / args.pop("folder", ".") / "c.jsonl"
    return cv.run_campaign({"L": layer}, pruners={"paper": audit.coreset_pruner()}, path=path,
                           **args)


def _subnormal_reach():
    W_in = np.array([[5.53e-322, 4.12e-321]])
    base = Base(W_in, np.zeros(1), np.ones((1, 1)), "relu", 1e300, 0, "F12")
    return Case("regressions", label_of("regressions", ["F12 phi_hi subnormal row"]),
                lambda: cv.phi_hi(W_in, np.zeros(1), beta=1e300),
                lambda r: _check_phi("phi_hi", r, base, "relu"))


def _pruned_net_nan_epsilon():
    net = _small_net()
    pn = cv.prune_network(net, keep=0.5, beta=1.0, rng=0)
    layers = tuple(dataclasses.replace(L, epsilon=math.nan) for L in pn.layers)
    return cv.composed_bound(dataclasses.replace(pn, layers=layers))


def _same_seed_split_signs():
    """Issue 8: numpy and torch disagreed under split_signs with an odd m (15 of 400
    seeds). 200 seeds of a layer with mixed-sign outgoing weights, m = 7."""
    import torch

    r = np.random.default_rng(11)
    W_in, b_in = r.standard_normal((9, 3)), np.abs(r.standard_normal(9))
    W_out = r.standard_normal((2, 9))
    tensors = [torch.from_numpy(a) for a in (W_in, b_in, W_out)]
    for seed in range(200):
        a = cv.layer_coreset(W_in, b_in, W_out, sample_size=7, beta=1.0, rng=seed,
                             split_signs=True)
        t = cv.layer_coreset(*tensors, sample_size=7, beta=1.0, rng=seed, split_signs=True)
        if not np.array_equal(np.asarray(a.indices), t.indices.numpy()) or not np.allclose(
                np.asarray(a.weight_out), t.weight_out.numpy(), rtol=1e-12, atol=0):
            raise FalseClaim(f"seed {seed}: numpy and torch coresets differ")
    return "200 seeds agree"


def _from_base(tag, spec, output: bool) -> Case:
    base = make_base(*spec)
    fn = cv.output_sensitivities if output else cv.layer_sensitivities
    return Case("regressions", label_of("regressions", [tag]),
                lambda: fn(base.W_in, base.b_in, base.W_out, beta=base.beta,
                           activation=base.act),
                lambda r: _check_sens(r, base, base.act, output=output))


def _size_case(tag, spec, **args) -> Case:
    base = make_base(*spec)
    arrays = {"W_in": base.W_in, "b_in": base.b_in, "W_out": base.W_out}
    args = {"beta": base.beta, "activation": base.act, **args}
    return Case("regressions", label_of("regressions", [tag]),
                lambda: cv.sample_size_for(base.W_in, base.b_in, base.W_out, **args),
                lambda m: check_sample_size(m, arrays, base, args))


def _huge_time_limit() -> Case:
    import torch
    import torch.nn as nn

    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(2, 6), nn.ReLU(), nn.Linear(6, 1)).double()
    p = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)).double()

    def check(r):
        if r.status == "solver_failed":
            raise FalseClaim("the exact stage failed on a valid time_limit=1e308")
        check_worst_case(r, m, p, 1.0, None, 0)

    return Case("regressions", label_of("regressions", ["F13 exact with time_limit=1e308"]),
                lambda: cv.worst_case(m, p, beta=1.0, method="exact", time_limit=1e308), check)


def _subnormal_search() -> Case:
    from _fuzz_models import pair_modules, pruned_of

    b = make_base(1043992148, "elu", 1e-320, 1e200, 0.5, 0.0)
    keep, U = pruned_of(b, np.random.default_rng(b.seed))
    m = pair_modules(b.W_in, b.b_in, b.W_out, "elu")
    p = pair_modules(b.W_in[keep], b.b_in[keep], U, "elu")
    box = {"lower": np.array([-0.40242332]), "upper": np.array([0.24916407])}
    return Case("regressions", label_of("regressions", ["F16 worst_case subnormal weights"]),
                lambda: cv.worst_case(m, p, beta=0.5, method="gradient", time_limit=1.0, rng=0,
                                      restarts=4, **box),
                lambda r: check_worst_case(r, m, p, 0.5, None, 0, **box))


def _paper_dimension() -> Case:
    b = make_base(3387994422, "relu", 1e5, 1e-150, 0.5, 1e5)

    def call():
        c = cv.layer_coreset(b.W_in, b.b_in, b.W_out, sample_size=5, beta=0.5, rng=b.seed,
                             split_signs=True)
        return c, cv.theoretical_bound(c, delta=0.1, kind="paper", paper_dimension=1e308)

    return Case("regressions", label_of("regressions", ["F17 paper_dimension=1e308"]), call,
                lambda out: check_bound(out[1], out[0], b))


def regression_cases() -> list[Case]:
    """Every finding as a case (its oracle: refused, or the claim re-checked)."""
    def wc_check(r):
        m, p = _float32_radius()
        check_worst_case(r, m, p, 1e300, None, 0)

    def net_check(pn):
        check_pruned_network(pn, NET, None, 1.0, 0, 2)

    NET = _small_net()
    cases = [
        _sens_case("F1 1e200", W_IN * 1e200, B_IN, W_OUT * 1e200, 0.5),
        _sens_case("F1 subnormal W_out", W_IN * 1e-310, 0 * B_IN, W_OUT * 1e-320, 1e300,
                   "leaky_relu"),
        _sens_case("F1b 1e-300", W_IN * 1e-300, B_IN * 1e-300, W_OUT * 1e-300, 1.0),
        _tampered_bound("F2 nan weight_out", weight_out=None),
        _tampered_bound("F2 sample_size=0", sample_size=0),
        _tampered_bound("F2 beta=-1", beta=-1.0),
        Case("regressions", label_of("regressions", ["F3 float32 beta=1e300"]),
             lambda: cv.worst_case(*_float32_radius(), beta=1e300, method="auto",
                                   time_limit=1.0, rng=0, restarts=4), wc_check),
        Case("regressions", label_of("regressions", ["F4 select meta"]),
             lambda: cv.select_neurons(_meta_model(), [np.array([0])]), _refused("meta")),
        Case("regressions", label_of("regressions", ["F4 save meta"]),
             lambda: cv.save_model(_meta_model(), Path(tempfile.mkdtemp()) / "m.pt"),
             _refused("meta")),
        Case("regressions", label_of("regressions", ["F4b prune meta"]),
             lambda: cv.prune_network(_meta_model(), keep=0.5, beta=1.0), _refused("meta")),
        Case("regressions", label_of("regressions", ["F5 save path None"]),
             lambda: cv.save_model(_small_net(), None), _refused("path None")),
        Case("regressions", label_of("regressions", ["F8 campaign silu"]),
             lambda: _campaign(activation="silu"), _refused("activation='silu'")),
        Case("regressions", label_of("regressions", ["F9 widths"]), _wrong_widths,
             _refused("widths that do not chain")),
        Case("regressions", label_of("regressions", ["F10 campaign seeds=2**63"]),
             lambda: _campaign(seeds=2**63), _refused("seeds=2**63")),
        Case("regressions", label_of("regressions", ["F15 campaign path in a missing folder"]),
             lambda: _campaign(folder="no/such"), _refused("a path in a missing folder")),
        Case("regressions", label_of("regressions", ["F11 composed_bound nan epsilon"]),
             _pruned_net_nan_epsilon, _refused("NaN epsilon")),
        Case("regressions", label_of("regressions", ["prune_network genuine"]),
             lambda: cv.prune_network(NET, keep=0.5, delta=1e-6, beta=1.0, rng=0), net_check),
        _subnormal_reach(),
        _from_base("F12c reach underflows to 0", (3047181190, "leaky_relu", 1e-150, 2**-40,
                                                  1e-300, 0.0), output=True),
        _from_base("F12c subnormal T", (644060935, "tanh", 1e-320, 1e200, 1e300, 1e-320),
                   output=False),
        _sens_case("F12d softplus envelope underflows", np.array([[1e-5], [2e-5]]),
                   np.full(2, -1e6), W_OUT, 0.5, "softplus"),
        check_bound_case(),
        _huge_time_limit(),
        _paper_dimension(),
        _subnormal_search(),
        _size_case("F14 uniform at beta=1e308", (2963260268, "relu", 1.0, 2**-40, 1e308, 1.0),
                   epsilon=0.9, delta=1e-6, kind="uniform"),
        Case("regressions", label_of("regressions", ["same seed split_signs odd m"]),
             _same_seed_split_signs),
    ]
    return cases


def check_bound_case() -> Case:
    """A genuine bound, to keep ``check_bound`` in this list's reach."""
    base = Base(W_IN, B_IN, W_OUT, "relu", 1.0, 0, "genuine")

    def call():
        c = cv.layer_coreset(W_IN, B_IN, W_OUT, sample_size=5, beta=1.0, rng=0)
        return c, cv.theoretical_bound(c, delta=1e-6)

    return Case("regressions", label_of("regressions", []), call,
                lambda out: check_bound(out[1], out[0], base, search=True))
