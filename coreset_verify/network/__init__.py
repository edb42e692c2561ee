"""Pruned torch networks built from layer coresets.

:func:`prune_network` prunes every hidden layer of an ``nn.Sequential`` MLP with
:func:`~coreset_verify.layer_coreset` and returns a physically smaller model
with the guarantee of each layer (:class:`PrunedNetwork`);
:func:`composed_bound` turns those into a bound on the whole network's output
(proofs_notes/network.md). :func:`load_model` and :func:`save_model` move
models through files without unpickling code; :func:`to_masks` gives the
``torch.nn.utils.prune`` view of a pruned network.

By concern: ``reading`` (the model's Linears; the reader itself is
:mod:`coreset_verify.nets.model`), ``bounds`` (radii, propagation, the
composed bound), ``prune`` (prune_network), ``records`` (PrunedLayer,
PrunedNetwork), ``surgery`` (replace_layer_pair, select_neurons), ``masks``
(to_masks), ``io`` (load_model, save_model). torch is imported inside the
functions that need it.
"""

from ..nets.layer_pair import layer_pair_modules
from .bounds import composed_bound
from .conv_bounds import conv_operator_bound
from .conv_prune import select_channels
from .io import load_model, save_model
from .masks import to_masks
from .prune import ORDERS, prune_network
from .reading import LayerPair, LayerWeights, layer_pair_of, linear_layers
from .records import PrunedLayer, PrunedNetwork
from .surgery import replace_layer_pair, select_neurons

__all__ = [
    "ORDERS",
    "LayerPair",
    "LayerWeights",
    "PrunedLayer",
    "PrunedNetwork",
    "composed_bound",
    "conv_operator_bound",
    "layer_pair_modules",
    "layer_pair_of",
    "linear_layers",
    "load_model",
    "prune_network",
    "replace_layer_pair",
    "save_model",
    "select_channels",
    "select_neurons",
    "to_masks",
]
