"""Former home of the audit's shared pieces, now split by concern.

* :mod:`._layers`: :class:`Layer`, :class:`LayerArrays`, the default and
  degenerate layers, :func:`named_layers`;
* :mod:`._forward`: ``F``, ``T_i`` and the relative error (through
  :mod:`coreset_verify.nets`);
* :mod:`._inputs`: inputs of the ball;
* :mod:`._arguments`: claims and options.

The names are re-exported here for code that still imports them from
``_common`` (the campaign); new code imports the module of its concern.
"""

from ._forward import forward, relative_error, scale_of
from ._inputs import ball_inputs
from ._layers import (
    DegenerateLayer,
    Layer,
    LayerArrays,
    Pruner,
    default_layers,
    degenerate_layer,
    make_layer,
    named_layers,
)

__all__ = [
    "DegenerateLayer",
    "Layer",
    "LayerArrays",
    "Pruner",
    "ball_inputs",
    "default_layers",
    "degenerate_layer",
    "forward",
    "make_layer",
    "named_layers",
    "relative_error",
    "scale_of",
]
