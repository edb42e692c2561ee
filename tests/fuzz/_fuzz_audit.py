"""Fuzz cases of the audit (battery, campaigns, adapters) and the activation registry.

The battery and campaigns run worker processes and searches, so these cases
are few and mostly hostile values that must be refused before any work starts;
when a call does run, it runs on one small layer with short time limits.
"""

from __future__ import annotations

import itertools
import math
import tempfile
import time
from pathlib import Path

import numpy as np
from _fuzz_cases import (
    BETA_HOSTILE,
    DELTA_HOSTILE,
    OPTION_HOSTILE,
    RNG_HOSTILE,
    TIME_HOSTILE,
    Case,
    FalseClaim,
    Refused,
    label_of,
    scalar_args,
)
from hypothesis import strategies as st

import coreset_verify as cv
from coreset_verify import audit

_RNG = np.random.default_rng(7)
LAYER = (_RNG.standard_normal((6, 2)), np.abs(_RNG.standard_normal(6)),
         _RNG.standard_normal((2, 6)))
GOOD_CLAIMS = {"unbiased": True, "deterministic": False, "drops_dead": True,
               "exact_at_full_size": False}
CLAIMS_HOSTILE = {
    "epsilon nan": {**GOOD_CLAIMS, "guarantee": {"kind": "pointwise", "delta": 0.1,
                                                 "epsilon": math.nan}},
    "epsilon -1": {**GOOD_CLAIMS, "guarantee": {"kind": "pointwise", "delta": 0.1,
                                                "epsilon": -1.0}},
    "delta 10**400": {**GOOD_CLAIMS, "guarantee": {"kind": "uniform", "delta": 10**400,
                                                   "epsilon": 0.5}},
    "guarantee kind misspelt": {**GOOD_CLAIMS, "guarantee": {"kind": "unifrom", "delta": 0.1,
                                                             "epsilon": 0.5}},
    "guarantee unknown key": {**GOOD_CLAIMS, "guarantee": {"kind": "uniform", "delta": 0.1,
                                                           "epsilon": 0.5, "x": 1}},
    "unbiased 'yes'": {**GOOD_CLAIMS, "unbiased": "yes"},
    "unknown claim": {**GOOD_CLAIMS, "fast": True},
    "None": None, "list": [("unbiased", True)], "empty": {},
}
# Claims that must be refused: a report returned for them is a finding.
REFUSED_CLAIMS = set(CLAIMS_HOSTILE)


def _paper_pruner(W_in, b_in, W_out, *, size, rng):
    """The paper's sampler (m i.i.d. draws, re-weighted), written for the audit."""
    c = cv.layer_coreset(W_in, b_in, W_out, sample_size=size, beta=1.0, rng=rng)
    return c.pruned()


def _nan_pruner(W_in, b_in, W_out, *, size, rng):
    return W_in[:size], b_in[:size], np.full((W_out.shape[0], size), math.nan)


def _raising_pruner(W_in, b_in, W_out, *, size, rng):
    raise TypeError("user pruner bug")


def _shape_pruner(W_in, b_in, W_out, *, size, rng):
    return W_in[:size], b_in[: size + 1], W_out


def _hanging_pruner(W_in, b_in, W_out, *, size, rng):
    while True:  # the battery's worker time limit must end this
        time.sleep(0.05)


PRUNERS = {"paper": _paper_pruner, "nan output": _nan_pruner, "raises": _raising_pruner,
           "wrong shapes": _shape_pruner, "hangs": _hanging_pruner, "None": None, "int": 3,
           "lambda no kw": lambda a: a}
BAD_PRUNERS = {"nan output", "wrong shapes", "raises", "hangs"}
_counter = itertools.count()


@st.composite
def check_pruner_cases(draw) -> Case:
    r = np.random.default_rng(draw(st.integers(0, 2**63 - 1)))
    genuine = r.random() < 0.3  # the paper's sampler with its own claims must pass
    pname = "paper" if genuine else str(r.choice(sorted(PRUNERS)))
    cname = "good" if genuine or r.random() < 0.4 else str(r.choice(sorted(CLAIMS_HOSTILE)))
    claims = GOOD_CLAIMS if cname == "good" else CLAIMS_HOSTILE[cname]
    pools = {"time_limit": TIME_HOSTILE, "pruner_time_limit": TIME_HOSTILE,
             "beta": BETA_HOSTILE, "rng": RNG_HOSTILE, "activation": {"'silu'": "silu",
                                                                      **OPTION_HOSTILE},
             "method": OPTION_HOSTILE, "layers": {"nan layer": "nan", "empty": [],
                                                  "str": "layer", "half": "half"}}
    valid = {"time_limit": 0.3, "pruner_time_limit": 0.3 if pname == "hangs" else 5.0,
             "rng": 0, "layers": LAYER, "method": "gradient"}
    args, more = ({**valid}, []) if genuine else draw(scalar_args(pools, valid))
    if pname == "hangs":  # None or 1e308 would be an honest "wait forever"
        args["pruner_time_limit"] = 0.3
        more = [m for m in more if not m.startswith("pruner_time_limit=")]
    if isinstance(args.get("layers"), str) and args["layers"] in ("nan", "half"):
        W_in = LAYER[0].copy()
        if args["layers"] == "nan":
            W_in[0, 0] = math.nan
            args["layers"] = (W_in, LAYER[1], LAYER[2])
        else:
            args["layers"] = tuple(a.astype(np.float16) for a in LAYER)
    labels = [] if genuine else [*more, f"pruner={pname}"] + (
        [] if cname == "good" else [f"claims={cname}"])

    def call():
        return cv.check_pruner(PRUNERS[pname], claims=claims, **args)

    def check(report):
        if not isinstance(report, cv.AuditReport):
            raise FalseClaim(f"returned {type(report).__name__}")
        statuses = {r.name: r.status for r in report.results}
        failed = [n for n, s in statuses.items() if s == "failed"]
        if cname in REFUSED_CLAIMS:
            raise FalseClaim(f"claims {cname!r} accepted (report statuses {statuses})")
        if pname in BAD_PRUNERS and not failed:
            raise FalseClaim(f"pruner {pname!r} passed every check: {statuses}")
        if pname == "paper" and not more and failed:
            raise FalseClaim(f"the paper's sampler failed {failed} with its own claims")

    return Case("check_pruner", label_of("check_pruner", labels), call, check)


MUST_REFUSE_CAMPAIGN = {
    "data=nan", "data=wrong d", "data=half", "seeds=-1", "seeds=nan", "seeds=10**400",
    "seeds=[]", "seeds=['a']", "delta=0", "delta=-1", "delta=nan", "delta=inf", "delta=1",
    "delta=10**400", "delta=None", "delta=str", "delta=complex", "delta=1.5", "beta=0",
    "beta=-1", "beta=nan", "beta=inf", "beta=10**400", "time_limit=0", "time_limit=-1",
    "time_limit=nan", "time_limit=10**400", "time_limit=str"}


@st.composite
def run_campaign_cases(draw) -> Case:
    pools = {"sizes": {"[2**63]": [2**63], "[0]": [0], "[-1]": [-1], "[nan]": [math.nan],
                       "[]": [], "3": 3, "['2']": ["2"], "[10**400]": [10**400]},
             "seeds": {"-1": -1, "nan": math.nan, "10**400": 10**400, "[]": [],
                       "['a']": ["a"], "0": 0, "2**63": 2**63},
             "delta": DELTA_HOSTILE, "time_limit": {k: v for k, v in TIME_HOSTILE.items()
                                                    if k not in ("None", "inf")},
             "kinds": {"['unifrom']": ["unifrom"], "[]": [], "'uniform'": "uniform"},
             "method": {"'gradiant'": "gradiant", **OPTION_HOSTILE},
             "beta": BETA_HOSTILE, "activation": {"'silu'": "silu", **OPTION_HOSTILE},
             "data": {"nan": "nan", "wrong d": "wrong", "list": "list", "half": "half"},
             "path": {"directory": "dir", "missing dir": "missing", "None": None}}
    valid = {"sizes": [3], "seeds": 1, "delta": 0.1, "time_limit": 0.3, "kinds": ["pointwise"],
             "method": "gradient"}
    args, labels = draw(scalar_args(pools, valid))
    tag = next(_counter)

    def call():
        tmp = Path(tempfile.mkdtemp(prefix=f"fuzz_campaign_{tag}_"))
        a = dict(args)
        a["path"] = {"dir": tmp, "missing": tmp / "no" / "x.jsonl", None: None}.get(
            a.get("path", "ok"), tmp / "c.jsonl")
        if "data" in a:
            x = np.zeros((4, 2))
            x[0, 0] = math.nan
            a["data"] = {"nan": x, "wrong": np.zeros((4, 5)), "list": [[0.1, 0.2]],
                         "half": np.zeros((4, 2), dtype=np.float16)}[a["data"]]
        return cv.run_campaign({"L": LAYER}, pruners={"paper": audit.coreset_pruner()}, **a)

    def check(summary):
        if not isinstance(summary, audit.CampaignSummary):
            raise FalseClaim(f"returned {type(summary).__name__}")
        bad = [lab for lab in labels if lab in MUST_REFUSE_CAMPAIGN
               or lab.startswith(("sizes=", "kinds=[", "method=", "activation=", "path="))]
        if bad:
            raise FalseClaim(f"accepted {bad}: {summary.trials} trials, {summary.errors} "
                             f"errors")

    return Case("run_campaign", label_of("run_campaign", labels), call, check)


@st.composite
def clopper_pearson_cases(draw) -> Case:
    ints = {"0": 0, "-1": -1, "2**63": 2**63, "10**400": 10**400, "nan": math.nan, "1.5": 1.5,
            "True": True, "'3'": "3", "None": None}
    pools = {"failures": ints, "trials": ints, "confidence": DELTA_HOSTILE}
    valid = {"failures": draw(st.integers(0, 20)), "trials": 20, "confidence": 0.95}
    args, labels = draw(scalar_args(pools, valid))

    def check(out):
        from scipy.stats import beta as beta_dist

        f, n, c = args["failures"], args["trials"], args["confidence"]
        lo, hi = out
        if not (0 <= lo <= hi <= 1):
            raise FalseClaim(f"interval ({lo}, {hi})")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (f, n)) or \
                not (0 <= f <= n and n >= 1) or not (isinstance(c, float) and 0 < c < 1):
            raise FalseClaim(f"accepted failures={f!r}, trials={n!r}, confidence={c!r}")
        a = 1 - c
        t_lo = 0.0 if f == 0 else beta_dist.ppf(a / 2, f, n - f + 1)
        t_hi = 1.0 if f == n else beta_dist.ppf(1 - a / 2, f + 1, n - f)
        if not (abs(lo - t_lo) <= 1e-6 and abs(hi - t_hi) <= 1e-6):
            raise FalseClaim(f"({lo}, {hi}) != Clopper-Pearson ({t_lo}, {t_hi})")

    return Case("audit.clopper_pearson", label_of("audit.clopper_pearson", labels),
                lambda: audit.clopper_pearson(**args), check)


@st.composite
def summarize_cases(draw) -> Case:
    how = draw(st.sampled_from(["missing", "directory", "empty", "non-utf8", "garbage",
                                "json list", "truncated json", "path None"]))

    def call():
        tmp = Path(tempfile.mkdtemp(prefix="fuzz_summary_"))
        p = tmp / "c.jsonl"
        content = {"empty": b"", "non-utf8": b'{"a": 1}\n\xff\xfe\n', "garbage": b"hello\n",
                   "json list": b"[1, 2]\n", "truncated json": b'{"layer": "L", "si'}
        if how in content:
            p.write_bytes(content[how])
        target = {"directory": tmp, "path None": None}.get(how, p)
        return audit.summarize(target)

    def check(summary):
        if how in ("missing", "directory", "path None"):
            raise FalseClaim(f"summarize accepted a {how} path")
        if not isinstance(summary, audit.CampaignSummary) or summary.trials != 0:
            raise FalseClaim(f"{summary!r} from a file without trials")

    return Case("audit.summarize", label_of("audit.summarize", [how]), call, check)


def _run_small(pruner):
    out = pruner(*LAYER, size=3, rng=0)
    if not (isinstance(out, tuple) and len(out) == 3):
        raise FalseClaim(f"pruner returned {type(out).__name__}")
    a, b, c = (np.asarray(v, dtype=np.float64) for v in out)
    if a.shape[0] != b.shape[0] or c.shape != (2, a.shape[0]) or not np.all(np.isfinite(c)):
        raise FalseClaim(f"pruner returned shapes {a.shape}, {b.shape}, {c.shape}")


@st.composite
def adapter_cases(draw) -> Case:
    choices = {
        "coreset_pruner(unknown=1)": lambda: audit.coreset_pruner(unknown=1),
        "coreset_pruner(beta=nan)": lambda: audit.coreset_pruner(beta=math.nan),
        "coreset_pruner(mode='x')": lambda: audit.coreset_pruner(mode="x"),
        "coreset_pruner(split_signs='yes')": lambda: audit.coreset_pruner(split_signs="yes"),
        "raw_max_pruner(unknown=1)": lambda: audit.raw_max_pruner(unknown=1),
        "uniform_pruner(reweight='yes')": lambda: audit.uniform_pruner(reweight="yes"),
        "top_norm_pruner(order=nan)": lambda: audit.top_norm_pruner(order=math.nan),
        "top_norm_pruner(order=-1)": lambda: audit.top_norm_pruner(order=-1),
        "torch_prune_pruner('x')": lambda: audit.torch_prune_pruner("x"),
        "torch_pruning_pruner(p=nan)": lambda: audit.torch_pruning_pruner(p=math.nan),
        "from_function(None)": lambda: audit.from_function(None),
        "from_function(3)": lambda: audit.from_function(3),
        "builtin_pruners(beta=nan)": lambda: audit.builtin_pruners(beta=math.nan),
        "builtin_pruners(delta=10**400)": lambda: audit.builtin_pruners(delta=10**400),
        "builtin_pruners(torch='yes')": lambda: audit.builtin_pruners(torch="yes"),
        "parametrize_with_checks(time_limt=1)": lambda: audit.parametrize_with_checks(
            [audit.coreset_pruner()], claims=GOOD_CLAIMS, time_limt=1.0),
        "parametrize_with_checks(claims=None)": lambda: audit.parametrize_with_checks(
            [audit.coreset_pruner()], claims=None),
        "run_audit(rng='x')": lambda: audit.run_audit(rng="x"),
        "run_audit(time_limit=nan)": lambda: audit.run_audit(time_limit=math.nan),
        "run_audit(pruners={'x': None})": lambda: audit.run_audit(pruners={"x": None}),
        "run_audit(delta=0)": lambda: audit.run_audit(delta=0),
    }
    key = draw(st.sampled_from(sorted(choices)))
    target = key.split("(")[0]

    def check(out):
        if key.startswith(("parametrize", "run_audit", "builtin")):
            raise FalseClaim(f"{key} accepted: returned {type(out).__name__}")
        _run_small(out)  # an accepted option must give a pruner that works

    return Case(f"audit.{target}", label_of(f"audit.{target}", [key]), choices[key], check)


@st.composite
def activation_cases(draw) -> Case:
    from _fuzz_layer import ACT_HOSTILE

    strings = {**ACT_HOSTILE, "'elu(alpha=0.5)'": "elu(alpha=0.5)",
               "'softplus(beta=2)'": "softplus(beta=2)", "'softplus(beta=1e-320)'":
               "softplus(beta=1e-320)", "'leaky_relu(negative_slope=0.5)'":
               "leaky_relu(negative_slope=0.5)", "'elu(alpha=1e308)'": "elu(alpha=1e308)",
               "b'relu'": b"relu", "'relu '": "relu "}
    key, value = draw(st.sampled_from(sorted(strings.items())))

    def check(act):
        _check_activation_facts(act)
        if value in ("", None, 5, "relu(", "RELU", b"relu", "softplus(beta=0)",
                     "softplus(beta=-1)", "softplus(beta=nan)", "elu(alpha=nan)",
                     "leaky_relu(negative_slope=inf)", "softplus(beta=1e400)"):
            raise FalseClaim(f"get_activation({value!r}) returned {act!r}")

    return Case("get_activation", label_of("get_activation", [key]),
                lambda: cv.get_activation(value), check)


def _check_activation_facts(act) -> None:
    """The facts an Activation states hold on a grid of inputs (float64 numpy)."""
    z = np.concatenate([-np.logspace(-6, 3, 200)[::-1], [0.0], np.logspace(-6, 3, 200)])
    y = np.asarray(act.function(z, np), dtype=np.float64)
    positive = z >= -30  # below, phi > 0 may underflow to 0 in float64
    if act.is_nondecreasing and np.any(np.diff(y) < -1e-12 * (1 + np.abs(y[1:]))):
        raise FalseClaim(f"{act.name}{act.params} claims non-decreasing but is not")
    if act.is_nonnegative and np.any(y < 0):
        raise FalseClaim(f"{act.name}{act.params} claims phi >= 0 but phi = {y.min()}")
    if act.is_positive and np.any(y[positive] <= 0):
        raise FalseClaim(f"{act.name}{act.params} claims phi > 0 but phi = {y.min()}")
    slopes = np.abs(np.diff(y)) / np.diff(z)
    if not (np.nanmax(slopes) <= act.lipschitz * (1 + 1e-6)):
        raise FalseClaim(f"{act.name}{act.params} claims Lipschitz {act.lipschitz} but a "
                         f"slope is {np.nanmax(slopes)}")


@st.composite
def register_cases(draw) -> Case:
    fields = {"lipschitz nan": {"lipschitz": math.nan}, "lipschitz -1": {"lipschitz": -1.0},
              "function None": {"function": None}, "name 5": {"name": 5},
              "name ''": {"name": ""}, "positive not nonnegative": {"is_positive": True,
                                                                    "is_nonnegative": False},
              "is_nondecreasing 'yes'": {"is_nondecreasing": "yes"},
              "false lipschitz": {"lipschitz": 0.1}, "false nonnegative":
              {"function": lambda z, xp: z, "is_nonnegative": True},
              "overwrite 'yes'": {}, "valid": {}}
    key = draw(st.sampled_from(sorted(fields)))
    name = f"fuzz_act_{next(_counter)}"

    def call():
        spec = {"name": name, "function": lambda z, xp: xp.maximum(z, 0 * z),
                "is_nondecreasing": True, "is_nonnegative": True, "is_positive": False,
                "lipschitz": 1.0, **fields[key]}
        from coreset_verify.activations import _REGISTRY

        saved = dict(_REGISTRY)  # leave the registry as found: other tests list it
        try:
            act = cv.Activation(**spec)
            cv.register_activation(act, overwrite="yes" if key == "overwrite 'yes'" else False)
            return cv.get_activation(spec["name"])
        finally:
            _REGISTRY.clear()
            _REGISTRY.update(saved)

    def check(act):
        if key not in ("valid", "false lipschitz", "false nonnegative"):
            raise FalseClaim(f"register_activation accepted {key}")
        if key in ("false lipschitz", "false nonnegative"):
            return  # a user's false fact is the user's: recorded as accepted
        _check_activation_facts(act)

    return Case("register_activation", label_of("register_activation",
                                                [] if key == "valid" else [key]), call, check)



# ------------------------------------------------------------------ command line


def _cli_files(tmp: Path) -> dict:
    """Hostile files for the command line, written into ``tmp``."""
    import torch
    import torch.nn as nn

    good = tmp / "good.pt"
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1)).double()
    torch.save(model, good)
    (tmp / "empty.pt").write_bytes(b"")
    (tmp / "text.pt").write_text("not a model\n")
    (tmp / "trunc.pt").write_bytes(good.read_bytes()[:40])
    (tmp / "afile").write_text("x")
    return {"MISSING": str(tmp / "missing.pt"), "EMPTY": str(tmp / "empty.pt"),
            "TEXT": str(tmp / "text.pt"), "TRUNC": str(tmp / "trunc.pt"), "DIR": str(tmp),
            "GOOD": str(good), "OUT_IN_FILE": str(tmp / "afile" / "out.pt"),
            "OUT_DIR": str(tmp), "REPORT_IN_FILE": str(tmp / "afile" / "report"),
            "OUT": str(tmp / "out.pt")}


CLI_HOSTILE = [
    "prune MISSING -o OUT --beta 1 --keep 0.5", "prune EMPTY -o OUT --beta 1 --keep 0.5",
    "prune TEXT -o OUT --beta 1 --keep 0.5", "prune TRUNC -o OUT --beta 1 --keep 0.5",
    "prune DIR -o OUT --beta 1 --keep 0.5", "prune GOOD -o OUT_IN_FILE --beta 1 --keep 0.5",
    "prune GOOD -o OUT_DIR --beta 1 --keep 0.5", "prune GOOD -o OUT --beta -1 --keep 0.5",
    "prune GOOD -o OUT --beta nan --keep 0.5", "prune GOOD -o OUT --beta 1e400 --keep 0.5",
    "prune GOOD -o OUT --beta 1 --keep 0", "prune GOOD -o OUT --beta 1 --keep 1.5",
    "prune GOOD -o OUT --beta 1 --keep nan", "prune GOOD -o OUT --beta 1 --epsilon 0",
    "prune GOOD -o OUT --beta 1 --keep 0.5 --delta 1", "prune GOOD -o OUT --beta 1 --keep 0.5 "
    "--architecture x,y", "prune GOOD -o OUT --beta 1 --keep 0.5 --seed -1",
    "audit --beta nan", "audit --time-limit 0", "audit --pruner-time-limit -1",
    "audit --pruners no-such-pruner", "audit --model MISSING", "audit --model GOOD --layer 99",
    "audit --report REPORT_IN_FILE --pruners uniform --time-limit 0.2", "audit --delta 0",
    "bench --size -5", "bench --repeats 0", "bench --sample-size 0", "bench --size 1e400",
    "bench --size 100000000000000000000000", "demo --delta 0", "demo --sample-size 0",
    "demo --time-limit -1", "demo --seed x", "no-such-command", "prune",
]


@st.composite
def cli_cases(draw) -> Case:
    line = draw(st.sampled_from(CLI_HOSTILE))

    def call():
        import contextlib
        import io

        from coreset_verify import cli

        files = _cli_files(Path(tempfile.mkdtemp(prefix="fuzz_cli_")))
        argv = [files.get(word, word) for word in line.split()]
        err, out = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                code = cli.main(argv)
            except SystemExit as exc:  # argparse's own usage errors
                code = exc.code
        return code, err.getvalue()

    def check(result):
        code, err = result
        lines = [s for s in err.splitlines() if s.strip()]
        if code != 2 or "Traceback" in err or not lines or "error" not in lines[-1]:
            raise FalseClaim(f"exit code {code}, stderr {err[-300:]!r}")
        raise Refused(lines[-1][:300])

    return Case("cli.main", label_of("cli.main", [line]), call, check)
