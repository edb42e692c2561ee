"""coreset-verify: a reference coreset pruner and the tools to test its guarantee.

The pruner is the sensitivity sampling of Mussay, Osadchy, Braverman, Zhou and
Feldman, "Data-Independent Neural Pruning via Coresets" (ICLR 2020). Its
guarantees are code with every constant explicit (``theoretical_bound``,
``sample_size_for``); the derivations are in ``proofs_notes/``.
"""

from .activations import (
    Activation,
    available_activations,
    get_activation,
    register_activation,
)
from .coreset import LayerCoreset, layer_coreset, neuron_coreset
from .errors import (
    AssumptionError,
    CertificateError,
    CoresetVerifyError,
    InvalidArgumentError,
    MagnitudeError,
    MissingDependencyError,
    SolverError,
)
from .guarantees import Bound, sample_size_for, theoretical_bound
from .network import (
    PrunedLayer,
    PrunedNetwork,
    composed_bound,
    load_model,
    prune_network,
    save_model,
    select_neurons,
    to_masks,
)
from .sensitivity import (
    Sensitivities,
    envelope,
    layer_sensitivities,
    output_sensitivities,
    phi_hi,
    phi_lo,
)

__version__ = "0.1.0"


def __getattr__(name: str):
    # The audit and the search import torch and solvers: load them on first use.
    if name in _LAZY:
        import importlib

        module = importlib.import_module(_LAZY[name], __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'coreset_verify' has no attribute {name!r}")


_LAZY = {
    "AuditReport": ".audit",
    "CertifiedCoreset": ".certified",
    "CertifiedNetwork": ".certified",
    "ChannelCoreset": ".conv",
    "GuaranteeCheck": ".verdict",
    "WorstCase": ".search",
    "check_guarantee": ".verdict",
    "certified_coreset": ".certified",
    "certified_network": ".certified",
    "channel_bound": ".conv",
    "channel_coreset": ".conv",
    "check_pruner": ".audit",
    "conv_operator_bound": ".network",
    "fold_batchnorm": ".conv",
    "parametrize_with_checks": ".audit",
    "run_campaign": ".audit",
    "select_channels": ".network",
    "verify": ".search",
    "worst_case": ".search",
}

__all__ = [
    "Activation",
    "AssumptionError",
    "AuditReport",
    "Bound",
    "CertificateError",
    "CertifiedCoreset",
    "CertifiedNetwork",
    "ChannelCoreset",
    "CoresetVerifyError",
    "GuaranteeCheck",
    "InvalidArgumentError",
    "LayerCoreset",
    "MagnitudeError",
    "MissingDependencyError",
    "PrunedLayer",
    "PrunedNetwork",
    "Sensitivities",
    "SolverError",
    "WorstCase",
    "available_activations",
    "certified_coreset",
    "certified_network",
    "channel_bound",
    "channel_coreset",
    "check_guarantee",
    "check_pruner",
    "composed_bound",
    "conv_operator_bound",
    "envelope",
    "fold_batchnorm",
    "get_activation",
    "layer_coreset",
    "layer_sensitivities",
    "load_model",
    "neuron_coreset",
    "output_sensitivities",
    "parametrize_with_checks",
    "phi_hi",
    "phi_lo",
    "prune_network",
    "register_activation",
    "run_campaign",
    "sample_size_for",
    "save_model",
    "select_channels",
    "select_neurons",
    "theoretical_bound",
    "to_masks",
    "verify",
    "worst_case",
]
