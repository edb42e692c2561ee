"""Plant the wrong constants of issue 8 in a scratch copy and see which tests fail.

Each mutation below is one wrong constant in a theorem's code (the Hoeffding
term halved, the union over outputs removed, ...). For each, the script copies
the working tree to a scratch folder (never touching the tree itself), makes
the one edit there, runs the fast truth and statistical tests with the
scratch package first on the path, and prints the tests that fail. A mutation
that no test notices is reported as SURVIVED; one whose pattern is no longer
in the code (after a refactor) as MISSING, to be updated here.

Usage::

    .venv/bin/python benchmarks/planted_mutations.py [--scratch /tmp/mut_scratch]
        [--only a,b] [--tests tests/truth tests/statistical]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (label, description, file, old, new): `old` must occur in `file` (every
# occurrence is replaced).
MUTATIONS = [
    ("a", "Hoeffding term halved", "coreset_verify/guarantees.py",
     "hoeffding = t * np.sqrt(2 * L / m)", "hoeffding = t * np.sqrt(2 * L / m) / 2"),
    ("b", "union over outputs removed", "coreset_verify/guarantees.py",
     "log0 = math.log(2 * k) - log_delta", "log0 = math.log(2) - log_delta"),
    ("c", "net-size term removed (ball)", "coreset_verify/guarantees.py",
     "ball = log0 + dim * np.log1p(2 * beta / radii)", "ball = log0 + 0 * radii"),
    ("c2", "net-size term removed (ellipsoid)", "coreset_verify/guarantees.py",
     "ell = log0 + kept.sum(axis=1)[:, None] * math.log(2) / 2 + kept @ per_axis.T",
     "ell = log0 + 0 * (kept @ per_axis.T)"),
    ("d", "Lipschitz term removed", "coreset_verify/guarantees.py",
     "value = eps_net + radii * _net_terms(", "value = eps_net + 0 * radii * _net_terms("),
    ("e", "deterministic cap halved", "coreset_verify/guarantees.py",
     "cap = 1 + S @ draws", "cap = (1 + S @ draws) / 2"),
    ("f", "multiplicative form from the additive sensitivities",
     "coreset_verify/guarantees.py",
     '    if form == "additive":\n        num, den = A * env, scale[:, None]',
     '    if True:\n        num, den = A * env, scale[:, None]'),
    ("g", "distinct: union over m removed", "coreset_verify/guarantees.py",
     "log_delta -= math.log(m) + math.log(m + 1)", "log_delta -= 0.0"),
    ("h", "split_signs: delta share removed", "coreset_verify/guarantees.py",
     "share = log_delta - math.log(len(parts))", "share = log_delta"),
    ("i", "composed bound: propagation factor dropped", "coreset_verify/network/bounds.py",
     "total += layer.propagation @ (layer.epsilon * layer.scale)",
     "total += (layer.propagation > 0) @ (layer.epsilon * layer.scale)"),
    ("j1", "search: linear relaxation margin of the wrong sign",
     "coreset_verify/search/bounds.py",
     "out = const + best + 1e-10 * mag", "out = const + best - 1e-10 * mag"),
    ("j2", "search: relaxation lines swapped (wrong sign test)",
     "coreset_verify/search/bounds.py",
     "s_mat = np.where(coef >= 0, coef * su, coef * sl)",
     "s_mat = np.where(coef >= 0, coef * sl, coef * su)"),
    ("j3", "search: interval widening of the wrong sign", "coreset_verify/nets/intervals.py",
     "r = radius + _relative(n) * (magnitude + np.abs(center))",
     "r = radius - _relative(n) * (magnitude + np.abs(center))"),
]

IGNORE = shutil.ignore_patterns(".venv", ".git", "mutants", "__pycache__", ".pytest_cache",
                                ".hypothesis", ".ruff_cache", "*.egg-info")


def _copy(scratch: Path) -> None:
    if scratch.exists():
        shutil.rmtree(scratch)
    shutil.copytree(ROOT, scratch, ignore=IGNORE)


def _run_tests(scratch: Path, tests: list[str]) -> tuple[int, list[str]]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(scratch))
    where = subprocess.run(
        [sys.executable, "-c", "import coreset_verify; print(coreset_verify.__file__)"],
        cwd=scratch, env=env, capture_output=True, text=True, check=True).stdout.strip()
    if not where.startswith(str(scratch)):
        raise SystemExit(f"the scratch package is not the one imported: {where}")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *tests, "-q", "-p", "no:cacheprovider", "--tb=no",
         "-rf", "--no-header"],
        cwd=scratch, env=env, capture_output=True, text=True)
    failed = re.findall(r"^FAILED (\S+)", proc.stdout, flags=re.M)
    return proc.returncode, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scratch", default="/tmp/mut_scratch")
    parser.add_argument("--only", default="")
    parser.add_argument("--tests", nargs="+", default=["tests/truth", "tests/statistical"])
    args = parser.parse_args()
    scratch = Path(args.scratch)
    only = set(filter(None, args.only.split(",")))
    for label, what, rel, old, new in MUTATIONS:
        if only and label not in only:
            continue
        _copy(scratch)
        path = scratch / rel
        text = path.read_text() if path.exists() else ""
        if old not in text:
            print(f"({label}) {what}: MISSING (pattern not in {rel})", flush=True)
            continue
        path.write_text(text.replace(old, new))
        rc, failed = _run_tests(scratch, args.tests)
        status = "caught" if failed else ("SURVIVED" if rc == 0 else f"pytest rc={rc}")
        print(f"({label}) {what}: {status}", flush=True)
        for test in failed:
            print(f"    {test}", flush=True)
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
