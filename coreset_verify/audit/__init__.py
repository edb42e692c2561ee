"""Audit any pruner: adapters, the check battery, campaigns.

A pruner is any callable ``pruner(W_in, b_in, W_out, *, size, rng) ->
(W_in', b_in', W_out')`` (float64 numpy in and out). :func:`check_pruner` runs
the battery on one; :func:`parametrize_with_checks` turns it into tests of a
user's suite; :func:`run_campaign` measures, over many seeds, how often each
theoretical bound is exceeded by the worst case found.

Every call into the pruner runs under a time limit (``pruner_time_limit``,
default 10 s) in a worker process, so a pruner that hangs fails a check
instead of hanging the audit. A check is passed, failed or skipped (it does
not apply to the claims); a skipped check is not a pass.

Claims
------
A pruner is judged against what it claims: ``unbiased`` (required),
``deterministic``, ``drops_dead``, ``exact_at_full_size`` (default True) and
an optional ``guarantee``. A correct implementation of the paper's algorithm
(``m = size`` i.i.d. draws from ``pr = s / t``, re-weighted by ``cnt_j / (m
pr_j)``) declares ``{"unbiased": True, "deterministic": False, "drops_dead":
True, "exact_at_full_size": False, "guarantee": {"kind": "pointwise",
"delta": delta, "epsilon": ...}}`` and passes every check: it is not exact at
``size = n``, since n draws with replacement rarely keep every neuron once.

Conv pruners
------------
A conv pruner prunes the output channels of a Conv2d followed by an
activation, optional pooling and a next Conv2d or Linear:
``pruner(conv_weight, conv_bias, next_weight, *, size, rng, geometry) ->
(kept, next_weight')`` (:class:`ConvGeometry` carries strides, padding,
pooling and the input shape). A pruner with ``kind = "conv"`` (every
built-in of :func:`builtin_conv_pruners`) is audited by the same checks on
conv pairs (:class:`ConvLayer`, :func:`default_conv_layers`), ``F`` evaluated
by torch.
"""

from ._conv import ConvGeometry, ConvLayer, conv_layer, default_conv_layers
from ._layers import Layer
from .adapters import (
    CoresetPruner,
    coreset_pruner,
    from_function,
    torch_prune_pruner,
    torch_pruning_pruner,
)
from .baselines import (
    Audited,
    builtin_pruners,
    raw_max_pruner,
    top_norm_pruner,
    uniform_pruner,
)
from .battery import AuditReport, CheckResult, check_pruner, parametrize_with_checks, run_audit
from .campaign import CampaignSummary, SummaryRow, clopper_pearson, run_campaign, summarize
from .checks import CHECKS
from .conv_adapters import (
    builtin_conv_pruners,
    channel_coreset_pruner,
    ln_structured_pruner,
    torch_pruning_conv_pruner,
    uniform_channel_pruner,
)

__all__ = [
    "CHECKS",
    "AuditReport",
    "Audited",
    "CampaignSummary",
    "CheckResult",
    "ConvGeometry",
    "ConvLayer",
    "CoresetPruner",
    "Layer",
    "SummaryRow",
    "builtin_conv_pruners",
    "builtin_pruners",
    "channel_coreset_pruner",
    "check_pruner",
    "clopper_pearson",
    "conv_layer",
    "coreset_pruner",
    "default_conv_layers",
    "from_function",
    "ln_structured_pruner",
    "parametrize_with_checks",
    "raw_max_pruner",
    "run_audit",
    "run_campaign",
    "summarize",
    "top_norm_pruner",
    "torch_prune_pruner",
    "torch_pruning_conv_pruner",
    "torch_pruning_pruner",
    "uniform_channel_pruner",
    "uniform_pruner",
]
