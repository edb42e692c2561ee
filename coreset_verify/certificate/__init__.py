"""Re-check a branch-and-bound certificate (proofs_notes/bab.md) in float64 numpy,
independently of :mod:`coreset_verify.search` (nothing is imported from it).

Two formats: ``coreset-verify/one-hidden-layer/1`` (``_one.py``) and
``coreset-verify/deep/1`` for deeper (leaky) ReLU pairs (``_deep.py``); what
they share is in ``_common.py``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _deep, _one
from ._common import DEEP_FORMAT, FORMAT, asked, cover, load, require

__all__ = ["DEEP_FORMAT", "FORMAT", "CertificateCheck", "check"]


@dataclass(frozen=True)
class CertificateCheck:
    """An accepted certificate: the proved claim ``upper_bound``, counts, and the largest
    recomputed leaf bound with its margin (``-inf`` when every leaf is empty)."""

    upper_bound: float
    leaves: int
    specifications: int
    max_leaf_bound: float


def check(path: str | os.PathLike, original: Any, pruned: Any, *, beta: float | None = None,
          lower: Any = None, upper: Any = None, scale: Any = None) -> CertificateCheck:
    """Verify that the certificate at ``path`` proves its bound on ``|original - pruned|``.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.npz`` certificate, format ``coreset-verify/one-hidden-layer/1`` or
        ``coreset-verify/deep/1``.
    original, pruned : torch.nn.Module
        ``f`` and ``g``: each ``Linear -> ReLU or LeakyReLU -> Linear`` for the
        first format; ``Linear -> (leaky) ReLU -> ... -> Linear`` for the second.
    beta, lower, upper, scale : float or array_like, optional
        The domain (ball, box or both) and output scales asked about; when
        given, the certificate's must be exactly these.

    Returns
    -------
    CertificateCheck
        ``upper_bound``, the claim, is proved: ``max_i |f_i(x) - g_i(x)| / scale_i``
        is at most it for every ``x`` of the certificate's domain.

    Raises
    ------
    InvalidArgumentError
        ``path`` names no file; a model cannot be read (``nets.model.read_model``);
        bad ``beta``, ``lower``, ``upper`` or ``scale``.
    CertificateError
        An item of the checklist in proofs_notes/bab.md, "Certificate", fails (named).
        Optional ``lo``/``hi`` (the search's ranges) serve if they contain the checker's.
    """
    c, dims = load(path)
    if c["format"][()] == FORMAT:
        net = _one.networks(c, original, pruned)
    else:
        net = _deep.networks(c, dims, original, pruned)
    asked(c, net["W"].shape[1], beta, lower, upper, scale)
    cover(c)
    bound = (_one if c["format"][()] == FORMAT else _deep).bounds(c, net)
    worst = int(np.argmax(bound))
    require(bound[worst] <= c["claim"], f"leaf {worst} (output {c['leaf_output'][worst]}, "
            f"sign {c['leaf_sign'][worst]:+d}): recomputed bound {float(bound[worst])!r} "
            f"exceeds claim {float(c['claim'])!r}")
    return CertificateCheck(float(c["claim"]), len(bound), 2 * len(c["scale"]),
                            float(bound[worst]))
