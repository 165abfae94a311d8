# Two commands for a fresh machine: `make train` (the main job) and `make test`.
# Each creates .venv with every dependency if it is missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Data: --data-dir, else ARRITMIAS_DATA_DIR, else ./mit-bih (see README).
export ARRITMIAS_DATA_DIR ?= $(if $(wildcard ../shared/mitdb/RECORDS),$(abspath ../shared/mitdb),)

.PHONY: install train test test-fast verify requirements bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

train: $(STAMP)
	$(BIN)/python deteccionarritmias.py $(ARGS)

verify: $(STAMP)
	$(BIN)/arritmias data verify

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

requirements: $(STAMP)
	$(BIN)/python -m arritmias.requirements > requirements-api.txt

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_dataset.py
	$(BIN)/python benchmarks/bench_training.py

clean:
	rm -rf $(VENV) .cache .pytest_cache
