"""Classify the mutants that survived `make mutation`, by why they survive.

Reads ``mutmut results`` and ``mutmut show`` in the mutation folder (default
/tmp/coreset-verify-mutation) and sorts each survivor into a class whose
reason is stated once below; what fits no class is printed in full, to be
killed by a new test or argued equivalent by hand.

Mutants argued equivalent one by one are listed, each with its reason, in
``benchmarks/mutation_equivalent.txt`` (``NAME: reason`` per line); they are
counted as the class "argued" and their reasons printed with them.

Usage::

    .venv/bin/python benchmarks/mutation_survivors.py [--dir /tmp/coreset-verify-mutation]
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
from pathlib import Path

MUTMUT = str(Path(sys.executable).with_name("mutmut"))

# (class, reason, regex on the mutated (+) line, regex on the original (-) line)
CLASSES = [
    ("message", "a function or argument name, or message text, passed to a validation "
     "helper: changes an error message, never a bound (messages are checked by "
     "tests/unit/test_validation.py and the fuzz tests, outside the fast selection)",
     r"XX|\"[A-Z_ ]+\"|func = None|\(None, |, None\)$|check_\w+\(.*None",
     r"func|check_|_check_|fail\(|theorem="),
    ("warnings", "np.errstate / warnings arguments: floating-point warnings only",
     r"errstate", r"errstate"),
    ("equivalent-argument", "zip(strict=...) on equal lengths, dtype=float64 on float64 "
     "arrays, keyword defaults the callers always pass: same values",
     r"strict=|dtype=|, \)", r"strict=True|dtype=np\.float64"),
    ("rounding-margin", "a float64 rounding margin (_relative, _SUBNORMAL, 1e-12, 1e-10 "
     "* magnitude, 1 + 1e-9 radius margin) made larger or smaller but still far below "
     "the 1e-9 tolerance of every truth test; the bounds stay true on every instance "
     "whose arithmetic the margin was written for",
     r".", r"_relative|_SUBNORMAL|1e-12|1e-300|_RADIUS_MARGIN|magnitude|_underflow_margin|"
     r"\bmag\b|np\.abs\(center\)|tiny"),
    ("bookkeeping", "progress callbacks, deadlines, time limits and the stage trace of the "
     "search: no bound changes (tests/search/test_search_failures.py checks them)",
     r".", r"progress|deadline|perf_counter|time_limit|Stage\(|stages|status|TIME_LIMIT"),
    ("bisection", "the bracket and the comparisons of sample_size_for's search: the bound "
     "decreases in m and cannot reach epsilon < 1 at m <= 2, so any bracket below the "
     "answer, any growth factor, and < against <= (equal only on exact ties) return the "
     "same m", r".", r"low, high|while eps|while high|mid = |return low|2 \* high|MAX_SAMPLE"),
    ("rng-chunking", "draw_until_distinct's chunk sizes: any chunking draws the same i.i.d. "
     "sequence law, so the coreset's law and every bound are unchanged",
     r".", r"chunk"),
]


def _survivors(folder: Path) -> list[str]:
    out = subprocess.run([MUTMUT, "results"], cwd=folder, capture_output=True, text=True).stdout
    return [line.split(":")[0].strip() for line in out.splitlines()
            if line.strip().endswith("survived")]


def _diff(folder: Path, name: str) -> tuple[str, str]:
    out = subprocess.run([MUTMUT, "show", name], cwd=folder, capture_output=True,
                         text=True).stdout
    minus = " ".join(x[1:].strip() for x in out.splitlines() if x.startswith("- "))
    plus = " ".join(x[1:].strip() for x in out.splitlines() if x.startswith("+ "))
    return minus, plus


def classify(minus: str, plus: str) -> str:
    for name, _, plus_re, minus_re in CLASSES:
        if re.search(minus_re, minus) and re.search(plus_re, plus):
            return name
    return "other"


EQUIVALENT = Path(__file__).with_name("mutation_equivalent.txt")


def _argued(path: Path) -> dict[str, str]:
    """``{mutant name: reason}`` from ``NAME: reason`` lines."""
    if not path.exists():
        return {}
    lines = path.read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="/tmp/coreset-verify-mutation")
    parser.add_argument("--equivalent", default=str(EQUIVALENT))
    args = parser.parse_args()
    folder, argued = Path(args.dir), _argued(Path(args.equivalent))
    counts: collections.Counter = collections.Counter()
    listed = {"argued": [], "other": []}
    for name in _survivors(folder):
        minus, plus = _diff(folder, name)
        kind = "argued" if name in argued else classify(minus, plus)
        counts[kind] += 1
        if kind in listed:
            listed[kind].append((name, minus, plus))
    reasons = {name: reason for name, reason, _, _ in CLASSES}
    reasons["argued"] = f"argued equivalent one by one ({Path(args.equivalent).name}), below"
    for kind, n in counts.most_common():
        print(f"{n:5d}  {kind}: {reasons.get(kind, 'see below')}")
    for kind in ("other", "argued"):
        for name, minus, plus in listed[kind]:
            why = f"\n  equivalent: {argued[name]}" if kind == "argued" else ""
            print(f"\n[{kind}] {name}\n  - {minus}\n  + {plus}{why}")


if __name__ == "__main__":
    main()
