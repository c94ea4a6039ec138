# Two commands do everything on a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HWNAS_HOME ?= .hwnas
CANDIDATES ?= $(HWNAS_HOME)/candidates/nb201
DB ?= $(HWNAS_HOME)/latency.db
N_CANDIDATES ?= 50
SEED ?= 0
PYTEST_ARGS ?=

.PHONY: run test install install-dev bench clean

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

## run: export NB201 candidates, profile them on this CPU into $(DB), print the p50/p90 table
run: install
	$(BIN)/hwnas export --space nb201 --sample $(N_CANDIDATES) --seed $(SEED) --out $(CANDIDATES)
	$(BIN)/device_agent run --models $(CANDIDATES) --db $(DB)
	$(BIN)/hwnas db summary --db $(DB)

## test: install with the dev extra and run the test suite
test: install-dev
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

## bench: agent overhead against a bare onnxruntime loop
bench: install
	$(BIN)/python bench/agent_overhead.py

clean:
	rm -rf $(HWNAS_HOME) .pytest_cache build *.egg-info
