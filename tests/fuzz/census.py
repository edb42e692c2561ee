"""Print the fuzz census: cases tried per public function and how each ended.

Run ``python tests/fuzz/census.py [-v] [NAME ...]`` (or ``python -m tests.fuzz.census``)
from the repository root; ``CORESET_VERIFY_FUZZ=nightly`` for the larger profile.
The same cases are run by ``test_fuzz_public_api.py``; this script only counts,
and lists each distinct failure once. Not collected by pytest (no ``test_`` name).

Columns: ``cases`` examples run, and how they ended: ``clean`` (a documented
error), ``correct`` (returned, and every claim re-checked), ``failed`` (anything
else) or ``known`` (a failure of a known finding not fixed yet,
``_fuzz_registry.KNOWN``: it does not fail the run); then the ``bad`` cases (at
least one hostile value) with how many of them got a clean error and how many
failed (a bad case may also return correctly: a list, a float32 tensor or an
extreme but representable magnitude is accepted by design); then ``kinds``:
distinct kinds of input (the function and its set of hostile values, whatever
the random layer), and those with a hostile value.
``-v`` also lists the message of every clean error.
"""

from __future__ import annotations

import os
import sys
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")  # the census is a report; pytest never runs this file


def _row(name: str, c: Counter) -> str:
    cases = c["clean"] + c["correct"] + c["failure"] + c["known"]
    return (f"{name:24} {cases:6d} {c['clean']:6d} {c['correct']:7d} {c['failure']:6d} "
            f"{c['known']:5d} | "
            f"{c['bad']:5d} {c['bad_clean']:6d} {c['bad_failure']:6d} | {c['kinds']:5d} "
            f"{c['kinds_bad']:5d}")


def main(argv: list[str]) -> int:
    from _fuzz_registry import TARGETS, run_target

    verbose = "-v" in argv
    argv = [a for a in argv if a != "-v"]
    total, found = Counter(), {}
    _say(f"{'function':24} {'cases':>6} {'clean':>6} {'correct':>7} {'failed':>6} {'known':>5} | "
         f"{'bad':>5} {'clean':>6} {'failed':>6} | {'kinds':>5} {'bad':>5}")
    for name in argv or sorted(TARGETS):
        clean: list[str] = []
        tally, labels, failures = run_target(name, clean)
        if verbose:
            for line in sorted(set(clean)):
                _say(f"    clean: {line}")
        kinds_bad = sum(1 for label in labels if not label.endswith("(valid)"))
        row = Counter({**tally, "kinds": len(labels), "kinds_bad": kinds_bad})
        total.update(row)
        found[name] = failures
        _say(_row(name, row))
    _say(_row("TOTAL", total))
    for name, details in found.items():
        if details:
            _say(f"\n## {name}: {len(details)} failures")
            for d in sorted(set(details)):
                _say(f"- {d}")
    return 1 if total["failure"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
