"""Hypothesis examples whose magnitudes float64 cannot carry are rejected here.

Such a layer gets the documented MagnitudeError (tests/unit/test_extremes.py
checks that); the property tests are about other things, so they reject the
example instead of failing on it.
"""

from __future__ import annotations

from hypothesis import reject

from coreset_verify.errors import MagnitudeError


def reject_magnitudes(fn):
    """``fn`` with a :class:`MagnitudeError` turned into ``hypothesis.reject()``."""

    def wrapped(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MagnitudeError:
            reject()

    return wrapped
