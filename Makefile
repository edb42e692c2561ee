# Two commands do all the set-up: `make test` and `make demo`. Each creates
# .venv when it is missing (torch==2.13.0 first: its CPU build is on disk here,
# and a plain `torch` would pull a CUDA build of several GB).
PYTHON ?= python3
# The networks here are small: one BLAS/OpenMP thread per process is faster on
# a 2-core machine than threads that contend (measured: 10x on the search).
export OMP_NUM_THREADS ?= 1
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test test-slow demo bench lint clean mutation mutation-results

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[all]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

demo: $(STAMP)
	$(BIN)/coreset-verify demo

bench: $(STAMP)
	env -u OMP_NUM_THREADS $(BIN)/python benchmarks/construction.py

lint: $(STAMP)
	$(BIN)/ruff check .

# Mutation testing (not part of `make test`): mutmut over the theorems' code,
# configured in pyproject.toml ([tool.mutmut]). It runs in a scratch copy of
# the tree (MUTATION_DIR), so the working tree never holds a mutant; one child
# process by default (MUTATION_CHILDREN) so that it does not take every core;
# one thread per child, as mutmut's time limits are in CPU seconds.
# About 22 minutes with MUTATION_CHILDREN=2 on two cores (3,486 mutants); `make mutation-results`
# lists the survivors, benchmarks/mutation_survivors.py sorts them by cause.
MUTATION_DIR      ?= /tmp/coreset-verify-mutation
MUTATION_CHILDREN ?= 1

$(BIN)/mutmut: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[mutation]'

mutation: $(BIN)/mutmut
	rm -rf $(MUTATION_DIR) && mkdir -p $(MUTATION_DIR)
	tar --exclude=./.venv --exclude=./.git --exclude=./mutants --exclude='*/__pycache__' \
	    --exclude=./.hypothesis --exclude=./.pytest_cache -cf - . | tar -xf - -C $(MUTATION_DIR)
	cd $(MUTATION_DIR) && OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \
	    $(abspath $(BIN))/mutmut run --max-children $(MUTATION_CHILDREN)
	$(MAKE) --no-print-directory mutation-results

mutation-results:
	cd $(MUTATION_DIR) && $(abspath $(BIN))/mutmut results

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
