"""Print the fuzz census: cases tried per public function and how each ended.

Run ``python tests/fuzz/census.py [-v] [NAME ...]`` (or ``python -m tests.fuzz.census``)
from the repository root; ``CORESET_VERIFY_FUZZ=nightly`` for the larger profile.
The same cases are run by ``test_fuzz_public_api.py``; this script only counts,
and lists each distinct failure once. Not collected by pytest (no ``test_`` name).

Columns: ``cases`` examples run; ``distinct`` distinct kinds of input (the
function and the set of hostile values, whatever the random layer);
``bad`` those with at least one hostile value; ``clean`` a documented error;
``correct`` returned and every claim re-checked; ``failed`` anything else.
``-v`` also lists the message of every clean error.
"""

from __future__ import annotations

import os
import sys
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")  # the census is a report; pytest never runs this file


def main(argv: list[str]) -> int:
    from _fuzz_registry import TARGETS, run_target

    verbose = "-v" in argv
    argv = [a for a in argv if a != "-v"]
    total, found = Counter(), {}
    _say(f"{'function':24} {'cases':>6} {'distinct':>8} {'bad':>5} {'clean':>6} "
          f"{'correct':>7} {'failed':>6}")
    for name in argv or sorted(TARGETS):
        clean: list[str] = []
        tally, labels, failures = run_target(name, clean)
        if verbose:
            for line in sorted(set(clean)):
                _say(f"    clean: {line}")
        bad = sum(1 for label in labels if not label.endswith("(valid)"))
        row = Counter({**tally, "distinct": len(labels), "bad": bad})
        total.update(row)
        found[name] = failures
        _say(f"{name:24} {sum(tally.values()):6d} {len(labels):8d} {bad:5d} "
              f"{tally['clean']:6d} {tally['correct']:7d} {tally['failure']:6d}")
    n = total["clean"] + total["correct"] + total["failure"]
    _say(f"{'TOTAL':24} {n:6d} {total['distinct']:8d} {total['bad']:5d} {total['clean']:6d} "
          f"{total['correct']:7d} {total['failure']:6d}")
    for name, details in found.items():
        if details:
            _say(f"\n## {name}: {len(details)} failures")
            for d in sorted(set(details)):
                _say(f"- {d}")
    return 1 if total["failure"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
