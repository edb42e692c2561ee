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
    CoresetVerifyError,
    InvalidArgumentError,
    MissingDependencyError,
    SolverError,
)
from .guarantees import Bound, sample_size_for, theoretical_bound
from .sensitivity import (
    Sensitivities,
    envelope,
    layer_sensitivities,
    output_sensitivities,
    phi_hi,
    phi_lo,
)

__version__ = "0.1.0"

__all__ = [
    "Activation",
    "AssumptionError",
    "Bound",
    "CoresetVerifyError",
    "InvalidArgumentError",
    "LayerCoreset",
    "MissingDependencyError",
    "Sensitivities",
    "SolverError",
    "available_activations",
    "envelope",
    "get_activation",
    "layer_coreset",
    "layer_sensitivities",
    "neuron_coreset",
    "output_sensitivities",
    "phi_hi",
    "phi_lo",
    "register_activation",
    "sample_size_for",
    "theoretical_bound",
]
