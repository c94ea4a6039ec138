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
# onnxruntime intra-op threads of the profile (the search measures and re-measures the same way). 1 on
# a shared 2-core machine: with both cores, 12 cells measured about 2x slower, at +-36-100% against +-2%
THREADS ?= 1
PYTEST_ARGS ?=
# pytest workers (pytest-xdist; 0 = one process): one per core, at most 4. Each test file runs whole on
# one worker (its module fixtures are built once), torch at one thread in each (two workers with two
# threads each spin-wait on a 2-core machine)
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); [ $$n -gt 4 ] && n=4; echo $$n)
# The agent-only environment (numpy + onnxruntime: the bare install a device gets; no torch, no onnx)
# and the device-side test files run in it by `make test-agent` (part of `make test`).
AGENT_VENV ?= .venv-agent
AGENT_TESTS ?= tests/test_device_agent.py tests/test_device_agent_units.py tests/test_latency_db.py

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test test-agent install install-dev services bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamps: reinstall when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[host]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

$(AGENT_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(AGENT_VENV)
	$(AGENT_VENV)/bin/python -m pip install --quiet -e . pytest==9.2.0
	$(AGENT_VENV)/bin/python -c "import importlib.util as u, sys; bad = [m for m in ('torch', 'onnx') if u.find_spec(m)]; \
		sys.exit(f'$(AGENT_VENV) is not agent-only: {bad}' if bad else 0)"
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## run: profile NB201 candidates on this CPU, train a latency predictor on them, search under a
## budget, export the best and re-measure the top 3 on this machine (predicted vs measured), then a
## small network x accelerator codesign run on the analytical cost model (Pareto front + plot)
run: install
	$(BIN)/hwnas export --space nb201 --sample $(N_CANDIDATES) --seed $(SEED) --out $(CANDIDATES)
	$(BIN)/device_agent run --models $(CANDIDATES) --db $(DB) --device-name $(DEVICE) --threads $(THREADS)
	$(BIN)/hwnas db summary --db $(DB)
	test -f $(PREDICTOR) || $(BIN)/hwnas predictor train --kind gbdt --db $(DB) --device $(DEVICE) \
		--models $(CANDIDATES) --out $(PREDICTOR)
	rm -rf $(SEARCH_OUT) $(CODESIGN_OUT)  # a fresh demo each run (the budget follows the DB)
	$(BIN)/hwnas search --space nb201 --strategy predictor --evaluator tabular \
		--latency-source predictor --predictor $(PREDICTOR) --device $(DEVICE) --models $(CANDIDATES) \
		--latency-budget-ms "$$($(BIN)/hwnas db quantile --db $(DB) --device $(DEVICE) --q $(BUDGET_PCT))" \
		--budget-evals $(SEARCH_EVALS) --seed $(SEED) --verify-top 3 --db $(DB) --out $(SEARCH_OUT)
	$(BIN)/hwnas codesign --space nb201 --mode nested --strategy nsga2 --evaluator tabular \
		--objective accuracy,edp --budget-evals $(CODESIGN_EVALS) --area-budget-mm2 10 --power-budget-mw 600 \
		--seed $(SEED) --out $(CODESIGN_OUT)
	@echo "reports: $(SEARCH_OUT)/report.html $(CODESIGN_OUT)/report.html (open in a browser; or: $(BIN)/hwnas dashboard --db $(DB) --runs $(HWNAS_HOME))"

## services: Debian's OpenSSH server and PostgreSQL, which the tests start on 127.0.0.1 themselves, and chromium for the dashboard's browser tests.
## Under CI=true one that cannot be installed stops here (its tests would fail: tests/conftest.py require)
MISSING_SERVICE = { if [ "$$CI" = true ]; then echo "$(1) could not be installed; CI=true needs it: apt-get install $(1)"; exit 1; \
	else echo "$(1) could not be installed: its tests will be skipped (under CI=true they fail)"; fi; }
services:
	@test -x /usr/sbin/sshd || (DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q openssh-server \
		|| ($(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q openssh-server)) \
		|| $(call MISSING_SERVICE,openssh-server)
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || (DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q postgresql \
		|| ($(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q postgresql)) \
		|| $(call MISSING_SERVICE,postgresql)
	@command -v chromium >/dev/null 2>&1 || (DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium \
		|| ($(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium)) \
		|| $(call MISSING_SERVICE,chromium)

## test: install with the dev extra and run the test suite, then the device-side tests agent-only
test: install-dev services
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)
	$(MAKE) test-agent

## test-agent: the device-side tests in $(AGENT_VENV) (numpy + onnxruntime only), from committed ONNX files
test-agent: $(AGENT_VENV)/.installed
	$(AGENT_VENV)/bin/python -m pytest -q -p no:cacheprovider $(AGENT_TESTS)

## bench: agent overhead against a bare onnxruntime loop
bench: install
	$(BIN)/python bench/agent_overhead.py

clean:
	rm -rf $(HWNAS_HOME) .pytest_cache build *.egg-info
