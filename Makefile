# Targets for people and CI; `make help` lists them. Tools come from .venv (make install).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed
TYPED := meeting_cancel cancel_function queue_trigger sweep_timer retention_function function_app.py local_runner bench tests

.PHONY: help install run unit test lint fmt schemas bench clean

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

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

install: $(PY_STAMP) $(NODE_STAMP) ## the Python and Node packages (Azurite)

run: install ## the service on this machine: Azurite, the local function host, a Graph sandbox
	$(BIN)/python -m local_runner

unit: $(PY_STAMP) ## the fast tier: no Azurite, no sandbox, no sockets (seconds)
	$(BIN)/python -m pytest tests/unit -q

# The suite waits far more than it computes (hosts, queues, leases): three pytest-xdist workers,
# each with its own Azurite on free ports, halve its time on a 2-core machine.
TEST_WORKERS ?= 3

test: install $(TOOLS_STAMP) lint ## everything: lint, type checks, unit and integration tests
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

lint: $(PY_STAMP) ## ruff and mypy (strict) over the code, the tests and the benchmark
	$(BIN)/ruff check .
	$(BIN)/mypy $(TYPED)

fmt: $(PY_STAMP) ## format and fix what ruff can fix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

schemas: $(PY_STAMP) ## regenerate schemas/queue-message.schema.json from the models
	$(BIN)/python -m meeting_cancel.models > schemas/queue-message.schema.json

bench: install ## the benchmark table with targets (about ten minutes)
	$(BIN)/python -m bench

clean: ## remove the environments, Azurite's data and caches
	rm -rf $(VENV) $(TOOLS) node_modules .local .pytest_cache .mypy_cache .ruff_cache
