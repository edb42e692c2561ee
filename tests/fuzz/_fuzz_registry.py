"""Every fuzzed public function, its case strategy and its example budget.

Covered: every function of ``coreset_verify.__all__`` and of ``coreset_verify.audit``,
``coreset_verify.search`` and ``coreset_verify.certificate`` (``check``, fed doctored
certificates), plus the command line. Not fuzzed: ``available_activations`` (no
argument), and unknown keywords on functions with a fixed signature (Python raises its own
TypeError there, as for any function; mappings and ``**options`` are fuzzed).
Profiles: ``CORESET_VERIFY_FUZZ=nightly`` runs 25 times the default examples.

Known findings not fixed yet are strict expected failures (``KNOWN``, next to their
cases): a failure matching one does not fail its target, counted as ``known``
instead, and each one's reproducer is run every time and must still fail so; when
the code is fixed, that shows up as a failure asking to remove the entry.
"""

from __future__ import annotations

import os
import re
from collections import Counter

from _fuzz_audit import (
    activation_cases,
    adapter_cases,
    check_pruner_cases,
    cli_cases,
    clopper_pearson_cases,
    register_cases,
    run_campaign_cases,
    summarize_cases,
)
from _fuzz_cases import run_case
from _fuzz_certificate import FIXED as FIXED_CERTIFICATE
from _fuzz_certificate import KNOWN as KNOWN_CERTIFICATE
from _fuzz_certificate import certificate_cases, certified_cases
from _fuzz_conv import FIXED as FIXED_CONV
from _fuzz_conv import KNOWN as KNOWN_CONV
from _fuzz_conv import (
    certified_network_cases,
    channel_bound_cases,
    channel_coreset_cases,
    conv_operator_bound_cases,
    fold_batchnorm_cases,
    select_channels_cases,
)
from _fuzz_layer import (
    layer_coreset_cases,
    neuron_coreset_cases,
    sample_size_for_cases,
    sensitivity_cases,
    theoretical_bound_cases,
)
from _fuzz_models import (
    check_guarantee_cases,
    prune_network_cases,
    records_cases,
    save_load_cases,
    select_neurons_cases,
    verify_cases,
    worst_case_cases,
)
from _fuzz_regressions import regression_cases
from hypothesis import HealthCheck, Phase, given, settings

PROFILE = os.environ.get("CORESET_VERIFY_FUZZ", "default")
SCALE = {"default": 1, "nightly": 25}.get(PROFILE, 1)

# name -> (strategy, examples in the default profile); "regressions" are explicit cases
TARGETS = {
    "regressions": (None, 0),
    "phi_hi": (sensitivity_cases("phi_hi"), 120),
    "phi_lo": (sensitivity_cases("phi_lo"), 120),
    "envelope": (sensitivity_cases("envelope"), 60),
    "output_sensitivities": (sensitivity_cases("output_sensitivities"), 160),
    "layer_sensitivities": (sensitivity_cases("layer_sensitivities"), 160),
    "layer_coreset": (layer_coreset_cases(), 240),
    "neuron_coreset": (neuron_coreset_cases(), 160),
    "theoretical_bound": (theoretical_bound_cases(), 240),
    "sample_size_for": (sample_size_for_cases(), 160),
    "worst_case": (worst_case_cases(), 100),
    "verify": (verify_cases(), 14),
    "check_guarantee": (check_guarantee_cases(), 80),
    "prune_network": (prune_network_cases(), 80),
    "composed_bound.to_masks": (records_cases(), 40),
    "select_neurons": (select_neurons_cases(), 60),
    "save_model.load_model": (save_load_cases(), 40),
    "check_pruner": (check_pruner_cases(), 16),
    "run_campaign": (run_campaign_cases(), 10),
    "audit.clopper_pearson": (clopper_pearson_cases(), 60),
    "audit.summarize": (summarize_cases(), 10),
    "audit.adapters": (adapter_cases(), 30),
    "cli.main": (cli_cases(), 40),
    "get_activation": (activation_cases(), 30),
    "register_activation": (register_cases(), 14),
    "certificate.check": (certificate_cases(), 130),
    "certified_coreset": (certified_cases(), 30),
    "channel_coreset": (channel_coreset_cases(), 1000),
    "channel_bound": (channel_bound_cases(), 600),
    "fold_batchnorm": (fold_batchnorm_cases(), 600),
    "conv_operator_bound": (conv_operator_bound_cases(), 500),
    "select_channels": (select_channels_cases(), 400),
    "certified_network": (certified_network_cases(), 12),
}
#: target -> known findings (strict expected failures; see the module docstring)
KNOWN = {**KNOWN_CERTIFICATE, **KNOWN_CONV}
#: target -> reproducers of fixed findings, run every time (each must pass)
FIXED = {**FIXED_CERTIFICATE, **FIXED_CONV}


def examples(name: str) -> int:
    return TARGETS[name][1] * SCALE


def _known(target: str, detail: str):
    return next((k for k in KNOWN.get(target, ()) if re.search(k.pattern, detail)), None)


def _record(case, tally, labels, failures, clean) -> None:
    outcome = run_case(case)
    if outcome.kind == "failure" and _known(case.target, outcome.detail):
        outcome = type(outcome)("known", outcome.detail)
    tally[outcome.kind] += 1
    if not case.label.endswith("(valid)"):  # at least one hostile value
        tally["bad"] += 1
        tally[f"bad_{outcome.kind}"] += 1
    labels.setdefault(case.label, outcome.kind)
    if outcome.kind == "failure":
        failures.append(outcome.detail)
    elif outcome.kind == "clean" and clean is not None:
        clean.append(outcome.detail)


def run_target(name: str, clean: list | None = None) -> tuple[Counter, dict, list]:
    """Run every case of ``name``.

    Returns ``(tally of outcome kinds, {label: first kind}, [failure details])``;
    the messages of clean errors are appended to ``clean``. Failures are recorded,
    not raised, so one run sees them all (no shrinking: a label names its values).
    """
    tally, labels, failures = Counter(), {}, []
    for known in KNOWN.get(name, ()):  # strict: each must still fail as described
        outcome = run_case(known.reproducer())
        if not (outcome.kind == "failure" and re.search(known.pattern, outcome.detail)):
            failures.append(f"known finding no longer fails as described ({known.reason}): "
                            f"{outcome.kind} {outcome.detail[:200]}; remove it from KNOWN")
    for reproducer in FIXED.get(name, ()):
        _record(reproducer(), tally, labels, failures, clean)
    if name == "regressions":  # explicit cases, every one every run
        for case in regression_cases():
            _record(case, tally, labels, failures, clean)
        return tally, labels, failures

    def record(case):
        _record(case, tally, labels, failures, clean)

    runner = settings(max_examples=examples(name), deadline=None, derandomize=True,
                      database=None, phases=(Phase.explicit, Phase.generate),
                      suppress_health_check=list(HealthCheck))(
        given(case=TARGETS[name][0])(record))
    runner()
    return tally, labels, failures
