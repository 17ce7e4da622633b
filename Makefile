# The project's commands. Each target installs what it needs into .venv first,
# so `make demo` and `make test` work on a fresh machine with only Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit services docs docs-serve bench bench-quick clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "searchcans_async needs Python 3.11 or newer (set PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## demo: a batch against the embedded emulator, with progress, a budget stop and a resume
demo: $(STAMP)
	$(BIN)/searchcans-async demo

## test: every quality gate CI runs (lint, format, types, tests with coverage, docs)
test: lint typecheck unit docs

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy --strict searchcans_async

## services: what the tests need beyond Python. The shared-backend tests start (and stop)
## their own redis-server on 127.0.0.1; this makes sure the binary is there.
services:
	@command -v redis-server >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing redis-server (Debian package) for the shared-backend tests"; \
	    apt-get install -y -q redis-server >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null && apt-get install -y -q redis-server >/dev/null; }; \
	  else \
	    echo "the shared-backend tests need redis-server: apt-get install redis-server" >&2; \
	    exit 1; \
	  fi; }

unit: $(STAMP) services
	$(BIN)/coverage erase
	$(BIN)/coverage run -m pytest -W error
	$(BIN)/coverage report --fail-under=90

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

docs-serve: $(STAMP)
	$(BIN)/mkdocs serve

bench: $(STAMP)
	$(BIN)/python -m benchmarks

bench-quick: $(STAMP)
	$(BIN)/python -m benchmarks --quick

clean:
	rm -rf $(VENV) site .coverage .mypy_cache .ruff_cache .pytest_cache
