#!/usr/bin/env bash
# The checks that need a GPU, as one script for a lent device machine:
#   run it from the repository root there (it builds .venv if missing).
# Prints: the CUDA tests, the construction ratios (numpy, torch CPU, torch CUDA)
# the search benchmark's batched-gradient throughput on CPU and CUDA, and the
# branch and bound's nodes per second on CPU and CUDA.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
  .venv/bin/python -m pip install --quiet torch==2.13.0
  .venv/bin/python -m pip install --quiet -e '.[all]'
fi
.venv/bin/python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
echo "== CUDA tests"
.venv/bin/python -m pytest -q -p no:cacheprovider -m "not slow" -k cuda tests || true
echo "== construction: ours / floor"
.venv/bin/python benchmarks/construction.py --repeats 5
echo "== search: batched gradient throughput"
OMP_NUM_THREADS=1 .venv/bin/python benchmarks/search.py --quick | tail -2
echo "== certifier: branch-and-bound nodes per second"
.venv/bin/python benchmarks/certify.py --throughput
