# Newsroom Forecasts. `make demo` runs the product; `make test` runs the test suite.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.12 2>/dev/null || command -v python3 2>/dev/null || echo python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo test install check-python lint format lock clean audit mutation bench

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null || { \
	  echo ""; \
	  echo "This project needs Python 3.12 or newer; '$(PYTHON)' is $$($(PYTHON) --version 2>&1 || echo 'missing')."; \
	  echo "  - with pyenv: 'pyenv install 3.12' (the .python-version file here then selects it), or"; \
	  echo "  - point make at one: 'make demo PYTHON=/path/to/python3.12'."; \
	  echo ""; exit 1; }

$(STAMP): requirements.lock pyproject.toml
	@$(MAKE) --no-print-directory check-python
	@if [ -x $(BIN)/python ] && ! $(BIN)/python -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then \
	  echo "Recreating $(VENV): it was made with an older Python."; rm -rf $(VENV); fi
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	HOST=$(HOST) PORT=$(PORT) bash bin/demo

# Lint first: ruff and the architecture's import contracts must hold before the tests run.
test: lint
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Known vulnerabilities in the locked requirements (pip-audit; needs the advisory service, so the
# network). AUDIT_FLAGS=--offline-ok (CI) passes with an "audit skipped: no network" line without it.
audit: install
	$(BIN)/python bin/audit.py $(AUDIT_FLAGS) requirements.lock

# Mutation testing of the pure cores (docs/testing.md): mutmut changes each core listed under
# [tool.mutation] in pyproject.toml one small step at a time and runs only that core's own unit tests;
# writes var/mutation/results.json and prints the survivors. Not part of `make test` (~10 minutes).
# MODULES="forecasting/scoring.py market/lmsr.py" runs only those cores.
mutation: install
	nice -n 10 $(BIN)/python bin/mutation.py $(MODULES)

# Every benchmark, each figure beside a baseline measured in the same run (bench/run.py): writes
# var/bench/results.json and results.md. Needs PostgreSQL and Redis on loopback (`sudo bash
# bin/services` starts them; as root the runner does it). QUICK=1: smaller sizes, the same rows.
# ONLY=market,export runs only those steps.
bench: install
	$(BIN)/python bench/run.py $(if $(QUICK),--quick) $(if $(ONLY),--only $(ONLY))

# Re-resolve the pinned versions from pyproject.toml in a throw-away environment.
lock: check-python
	rm -rf /tmp/lock-venv && $(PYTHON) -m venv /tmp/lock-venv
	/tmp/lock-venv/bin/python -m pip install --quiet --upgrade pip
	/tmp/lock-venv/bin/python -m pip install --quiet ".[dev]"
	/tmp/lock-venv/bin/python -m pip freeze --exclude newsroom-forecasts > requirements.lock

clean:
	rm -rf $(VENV) var
