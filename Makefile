# make run   - the service on this machine: Azurite, the local function host, a Graph sandbox
# make test  - the whole suite (lint, type checks, unit, functional and integration tests)
# make bench - the benchmark table (about two minutes)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed

.PHONY: install run test lint bench clean

$(PY_STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(TOOLS_STAMP): requirements-tools.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-tools.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(PY_STAMP) $(NODE_STAMP)

run: install
	$(BIN)/python -m local_runner

lint: $(PY_STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy meeting_cancel cancel_function queue_trigger function_app.py local_runner

test: install $(TOOLS_STAMP) lint
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) $(TOOLS) node_modules .local .pytest_cache .mypy_cache .ruff_cache
