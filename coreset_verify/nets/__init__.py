"""The model kernel: layer pairs, reading torch models, interval propagation.

Everything above it (network, search, audit, verdict) computes ``F``, ``T_i``,
the torch modules of a layer pair, the layers of an ``nn.Sequential`` and
interval bounds through these functions, in one place. Imports numpy only;
torch is imported inside the functions that need it.
"""

from .layer_pair import layer_pair_forward, layer_pair_modules, layer_pair_scale

__all__ = ["layer_pair_forward", "layer_pair_modules", "layer_pair_scale"]
