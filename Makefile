# Two commands do everything on a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HWNAS_HOME ?= .hwnas
CANDIDATES ?= $(HWNAS_HOME)/candidates/nb201
DB ?= $(HWNAS_HOME)/latency.db
N_CANDIDATES ?= 50
SEED ?= 0
DEVICE ?= $(shell hostname)
PREDICTOR ?= $(HWNAS_HOME)/predictor-$(DEVICE).json
SEARCH_OUT ?= $(HWNAS_HOME)/search
SEARCH_EVALS ?= 60
CODESIGN_OUT ?= $(HWNAS_HOME)/codesign
CODESIGN_EVALS ?= 60
# the budget of the demo search: this percentile of the latencies just measured on this machine
BUDGET_PCT ?= 30
PYTEST_ARGS ?=

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test install install-dev services bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamps: reinstall when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[host]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## run: profile NB201 candidates on this CPU, train a latency predictor on them, search under a
## budget, export the best and re-measure the top 3 on this machine (predicted vs measured), then a
## small network x accelerator codesign run on the analytical cost model (Pareto front + plot)
run: install
	$(BIN)/hwnas export --space nb201 --sample $(N_CANDIDATES) --seed $(SEED) --out $(CANDIDATES)
	$(BIN)/device_agent run --models $(CANDIDATES) --db $(DB) --device-name $(DEVICE)
	$(BIN)/hwnas db summary --db $(DB)
	test -f $(PREDICTOR) || $(BIN)/hwnas predictor train --kind gnn --db $(DB) --device $(DEVICE) \
		--models $(CANDIDATES) --epochs 60 --out $(PREDICTOR)
	rm -rf $(SEARCH_OUT) $(CODESIGN_OUT)  # a fresh demo each run (the budget follows the DB)
	$(BIN)/hwnas search --space nb201 --strategy predictor --evaluator tabular \
		--latency-source predictor --predictor $(PREDICTOR) --device $(DEVICE) --models $(CANDIDATES) \
		--latency-budget-ms "$$($(BIN)/hwnas db quantile --db $(DB) --device $(DEVICE) --q $(BUDGET_PCT))" \
		--budget-evals $(SEARCH_EVALS) --seed $(SEED) --verify-top 3 --db $(DB) --out $(SEARCH_OUT)
	$(BIN)/hwnas codesign --space nb201 --mode nested --strategy nsga2 --evaluator tabular \
		--objective accuracy,edp --budget-evals $(CODESIGN_EVALS) --area-budget-mm2 10 --power-budget-mw 600 \
		--seed $(SEED) --out $(CODESIGN_OUT)

## services: Debian's OpenSSH server and PostgreSQL, which the tests start on 127.0.0.1 themselves
services:
	@test -x /usr/sbin/sshd || (DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q openssh-server \
		|| ($(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q openssh-server)) \
		|| echo "openssh-server could not be installed: the SSH tests will be skipped"
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || (DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q postgresql \
		|| ($(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q postgresql)) \
		|| echo "postgresql could not be installed: the PostgreSQL tests will be skipped"

## test: install with the dev extra and run the test suite
test: install-dev services
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

## bench: agent overhead against a bare onnxruntime loop
bench: install
	$(BIN)/python bench/agent_overhead.py

clean:
	rm -rf $(HWNAS_HOME) .pytest_cache build *.egg-info
