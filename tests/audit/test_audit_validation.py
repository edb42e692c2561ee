"""Every public function of the audit gives the documented error for bad input."""

from __future__ import annotations

import numpy as np
import pytest

from coreset_verify import InvalidArgumentError
from coreset_verify.audit import (
    builtin_pruners,
    check_pruner,
    clopper_pearson,
    coreset_pruner,
    parametrize_with_checks,
    raw_max_pruner,
    run_audit,
    top_norm_pruner,
    uniform_pruner,
)

OK = uniform_pruner()
GOOD = {"unbiased": True}


def _epsilon(value):
    return {"pruner": OK, "claims": GOOD | {"guarantee": {"kind": "pointwise", "delta": 0.1,
                                                          "epsilon": value}}}


@pytest.mark.parametrize(
    ("fn", "kwargs", "match"),
    [
        pytest.param(check_pruner, {"pruner": 3, "claims": GOOD}, "pruner",
                     id="check_pruner(pruner=3)"),
        pytest.param(check_pruner, {"pruner": OK, "claims": {}}, "unbiased",
                     id="check_pruner(claims={})"),
        pytest.param(check_pruner, {"pruner": OK, "claims": {"unbiased": 1}}, "unbiased",
                     id="check_pruner(unbiased=1)"),
        pytest.param(check_pruner, {"pruner": OK, "claims": GOOD | {"fast": True}}, "fast",
                     id="check_pruner(unknown claim)"),
        pytest.param(check_pruner, {"pruner": OK, "claims": GOOD | {"guarantee": {
            "kind": "uniform", "delta": 2.0, "epsilon": 0.1}}}, "delta",
            id="check_pruner(guarantee delta=2)"),
        pytest.param(check_pruner, {"pruner": OK, "claims": GOOD | {"guarantee": {
            "kind": "sometimes", "delta": 0.1, "epsilon": 0.1}}}, "kind",
            id="check_pruner(guarantee kind)"),
        pytest.param(check_pruner, {"pruner": OK, "claims": GOOD | {"guarantee": {
            "kind": "uniform", "delta": 0.1, "epsilon": "small"}}}, "epsilon",
            id="check_pruner(guarantee epsilon)"),
        pytest.param(check_pruner, _epsilon(float("nan")), "'epsilon'.*Got nan",
                     id="check_pruner(epsilon=nan)"),
        pytest.param(check_pruner, _epsilon(float("inf")), "'epsilon'.*finite",
                     id="check_pruner(epsilon=inf)"),
        pytest.param(check_pruner, _epsilon(-0.1), "'epsilon'.*>= 0",
                     id="check_pruner(epsilon=-0.1)"),
        pytest.param(check_pruner, _epsilon(True), "'epsilon'", id="check_pruner(epsilon=True)"),
        pytest.param(check_pruner, {"pruner": OK, "claims": GOOD | {"guarantee": {
            "kind": "uniform", "delta": 0.1, "epsilom": 0.1}}}, "epsilom",
            id="check_pruner(unknown guarantee key)"),
        pytest.param(check_pruner, {"pruner": OK, "claims": GOOD, "pruner_time_limit": 0},
                     "pruner_time_limit", id="check_pruner(pruner_time_limit=0)"),
        pytest.param(check_pruner, {"pruner": OK, "claims": GOOD,
                                    "pruner_time_limit": float("nan")},
                     "pruner_time_limit", id="check_pruner(pruner_time_limit=nan)"),
        pytest.param(parametrize_with_checks, {"pruners": [OK], "claims": GOOD,
                                               "time_limt": 0.5}, "time_limt",
                     id="parametrize_with_checks(time_limt=0.5)"),
        pytest.param(parametrize_with_checks, {"pruners": [OK], "claims": GOOD,
                                               "pruner_time_limit": -1}, "pruner_time_limit",
                     id="parametrize_with_checks(pruner_time_limit=-1)"),
        pytest.param(check_pruner, {"pruner": OK, "claims": GOOD, "time_limt": 1.0},
                     r"'time_limt'.*Known options: .*'pruner_time_limit'",
                     id="check_pruner(time_limt=1)"),
        pytest.param(run_audit, {"pruner_time_limt": 1.0}, "pruner_time_limt",
                     id="run_audit(pruner_time_limt=1)"),
        pytest.param(builtin_pruners, {"delta": 10**400}, "delta",
                     id="builtin_pruners(delta=10**400)"),
        pytest.param(builtin_pruners, {"torch": "yes"}, "torch", id="builtin_pruners(torch=yes)"),
        pytest.param(builtin_pruners, {"beta": float("inf")}, "beta",
                     id="builtin_pruners(beta=inf)"),
        pytest.param(run_audit, {"delta": 0.0}, "delta", id="run_audit(delta=0)"),
        pytest.param(run_audit, {"torch": 1}, "torch", id="run_audit(torch=1)"),
        pytest.param(coreset_pruner().claims, {"delta": float("nan")}, "delta",
                     id="CoresetPruner.claims(delta=nan)"),
        pytest.param(coreset_pruner().claims, {"kind": "uniformly"}, "kind",
                     id="CoresetPruner.claims(kind=uniformly)"),
        pytest.param(check_pruner, {"pruner": OK, "claims": GOOD, "activation": "silu"},
                     r"'activation' parameter of check_pruner must be a non-decreasing",
                     id="check_pruner(activation=silu)"),
        pytest.param(check_pruner, {"pruner": OK, "claims": GOOD, "activation": "relu6x"},
                     r"check_pruner: activation must be one of", id="check_pruner(activation=?)"),
        pytest.param(coreset_pruner, {"activation": "silu"}, "coreset_pruner",
                     id="coreset_pruner(activation=silu)"),
        pytest.param(coreset_pruner, {"betta": 1.0}, "betta", id="coreset_pruner(betta=1)"),
        pytest.param(coreset_pruner, {"mode": "all"}, "mode", id="coreset_pruner(mode=all)"),
        pytest.param(coreset_pruner, {"reduction": "max"}, "reduction",
                     id="coreset_pruner(reduction=max)"),
        pytest.param(raw_max_pruner, {"reduction": "per-output"}, "reduction",
                     id="raw_max_pruner(reduction=...)"),
        pytest.param(uniform_pruner, {"reweight": "yes"}, "reweight",
                     id="uniform_pruner(reweight='yes')"),
        pytest.param(top_norm_pruner, {"order": "fro"}, "order", id="top_norm_pruner(order=fro)"),
        pytest.param(check_pruner, {"pruner": OK, "claims": GOOD, "rng": -1}, "rng",
                     id="check_pruner(rng=-1)"),
        pytest.param(check_pruner, {"pruner": OK, "claims": GOOD, "method": "exact"},
                     "method", id="check_pruner(method=exact)"),
        pytest.param(check_pruner, {"pruner": OK, "claims": GOOD, "time_limit": 0},
                     "time_limit", id="check_pruner(time_limit=0)"),
        pytest.param(check_pruner, {"pruner": OK, "claims": GOOD,
                                    "expected_failed_checks": {"check_speed": "x"}},
                     "check_speed", id="check_pruner(unknown expected check)"),
        pytest.param(check_pruner, {"pruner": OK, "claims": GOOD,
                                    "layers": [(np.eye(3), np.zeros(2), np.ones((1, 3)))]},
                     "b_in", id="check_pruner(layers bad shape)"),
        pytest.param(check_pruner, {"pruner": OK, "claims": GOOD,
                                    "layers": [(np.eye(2), np.array([0, np.nan]),
                                                np.ones((1, 2)))]},
                     "finite", id="check_pruner(layers NaN)"),
        pytest.param(parametrize_with_checks, {"pruners": [3], "claims": GOOD}, "pruners",
                     id="parametrize_with_checks(pruners=[3])"),
        pytest.param(run_audit, {"pruners": {"x": OK}}, "pair",
                     id="run_audit(pruners not pairs)"),
        pytest.param(clopper_pearson, {"failures": 5, "trials": 3}, "failures",
                     id="clopper_pearson(5 of 3)"),
        pytest.param(clopper_pearson, {"failures": 1, "trials": 3, "confidence": 1.0},
                     "confidence", id="clopper_pearson(confidence=1)"),
    ],
)
def test_bad_arguments_raise_the_documented_error(fn, kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        fn(**kwargs)


def test_duplicate_layer_names_are_refused():
    from coreset_verify.audit._layers import default_layers

    first = default_layers()[0]
    with pytest.raises(InvalidArgumentError, match="distinct names"):
        check_pruner(OK, claims=GOOD, layers=[first, first])
