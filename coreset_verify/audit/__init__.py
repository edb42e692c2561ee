"""Audit any pruner: adapters, the check battery, campaigns.

A pruner is any callable ``pruner(W_in, b_in, W_out, *, size, rng) ->
(W_in', b_in', W_out')`` (float64 numpy in and out). :func:`check_pruner` runs
the battery on one; :func:`parametrize_with_checks` turns it into tests of a
user's suite; :func:`run_campaign` measures, over many seeds, how often each
theoretical bound is exceeded by the worst case found.
"""

from ._common import Layer
from .adapters import (
    CoresetPruner,
    coreset_pruner,
    from_function,
    torch_prune_pruner,
    torch_pruning_pruner,
)
from .baselines import builtin_pruners, raw_max_pruner, top_norm_pruner, uniform_pruner
from .battery import AuditReport, CheckResult, check_pruner, parametrize_with_checks, run_audit
from .campaign import CampaignSummary, SummaryRow, clopper_pearson, run_campaign, summarize
from .checks import CHECKS

__all__ = [
    "CHECKS",
    "AuditReport",
    "CampaignSummary",
    "CheckResult",
    "CoresetPruner",
    "Layer",
    "SummaryRow",
    "builtin_pruners",
    "check_pruner",
    "clopper_pearson",
    "coreset_pruner",
    "from_function",
    "parametrize_with_checks",
    "raw_max_pruner",
    "run_audit",
    "run_campaign",
    "summarize",
    "top_norm_pruner",
    "torch_prune_pruner",
    "torch_pruning_pruner",
    "uniform_pruner",
]
