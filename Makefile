# ai-trader: the user's entry points. `make run` and `make test` set up whatever is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help setup venv deps-ui infra-install run stop test lint unit bench soak status clean lock

help:
	@echo "make run    - set up, start bus + database + pipeline + API + UI, until Ctrl-C"
	@echo "make stop   - stop everything 'make run' started"
	@echo "make test   - set up, lint, and run the test suite against the real bus and database"
	@echo "make bench  - benchmarks (tests/bench), not part of make test"
	@echo "make soak   - the long reliability run (tests/soak), SOAK_ARGS=\"--minutes 10 ...\""
	@echo "make lint   - ruff and mypy"
	@echo "make lock   - resolve the newest allowed dependencies into constraints.txt (then make test)"

# Every install takes the versions in constraints.txt: the set the suite last passed with,
# so a clean clone installs what was tested, not whatever PyPI serves that day.
INSTALL := $(PY) -m pip install -q -c constraints.txt

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(INSTALL) -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

$(VENV)/.installed-ui: $(STAMP)
	$(INSTALL) -e '.[dev,ui]'
	@touch $@

deps-ui: $(VENV)/.installed-ui

infra-install:
	@bash infra/kafka.sh install
	@bash infra/postgres.sh install
	@bash infra/pglite/install.sh
	@bash infra/browser.sh install

setup: venv infra-install

run: setup deps-ui
	@bash infra/run.sh

stop:
	@bash infra/run.sh stop

lint: venv deps-ui  # mypy checks ui/, which needs streamlit's types
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

unit: venv deps-ui
	$(VENV)/bin/pytest -m "not integration" $(PYTEST_ARGS)

test: setup deps-ui lint
	@bash infra/with-stack.sh $(VENV)/bin/pytest $(PYTEST_ARGS)

soak: setup
	@bash infra/with-stack.sh $(PY) -m tests.soak $(SOAK_ARGS)

bench: setup deps-ui
	@bash infra/with-stack.sh bash tests/bench/run.sh

status:
	@bash infra/stack.sh status || true
	@if [ -f .state/run.pid ]; then echo "supervisor: pid $$(cat .state/run.pid)"; fi

lock:
	@bash infra/lock.sh

clean: stop
	rm -rf .state
