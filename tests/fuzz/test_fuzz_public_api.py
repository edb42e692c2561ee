"""Public-API fuzz: every public function, fed hostile values, either raises a
documented error (a ``CoresetVerifyError``) or returns claims that hold.

The cases and the oracle are in ``_fuzz_cases.py`` and its siblings; the
tolerances are stated there. Examples are derandomized, so a run is
reproducible; ``CORESET_VERIFY_FUZZ=nightly`` multiplies the example counts
by 25. ``python tests/fuzz/census.py`` prints how many cases of each function
got a clean error, a correct result, or failed.
"""

from __future__ import annotations

import pytest
from _fuzz_registry import TARGETS, run_target


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_public_function_refuses_or_holds(name):
    tally, _, failures = run_target(name)
    assert not failures, f"{len(failures)} of {sum(tally.values())} cases failed:\n" + \
        "\n".join(sorted(set(failures)))
    assert tally["clean"] + tally["correct"] > 0
