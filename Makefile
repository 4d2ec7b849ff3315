# selfmart: `make run` serves the console with demo data; `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
WEB_STAMP := web/node_modules/.installed

.PHONY: run test bench install web lint fmt api-client clean help
.DEFAULT_GOAL := help

help:
	@echo "make run    - set up, build the console, load demo data, serve http://127.0.0.1:8000"
	@echo "make test   - lint, types, unit and API tests (SQLite + PostgreSQL), console and browser tests"
	@echo "make bench  - benchmarks (ratios against a baseline measured in the same run)"
	@echo "make fmt    - format the code"

$(PY_STAMP): requirements.lock pyproject.toml
	@test -n "$(PYTHON)" || { echo "selfmart needs Python 3.11 or newer on PATH"; exit 1; }
	@echo "== Python environment ($(PYTHON))"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	@touch $@

install: $(PY_STAMP)

$(WEB_STAMP): web/package.json web/package-lock.json
	@command -v npm >/dev/null || { echo "selfmart's console needs Node.js 20+ and npm"; exit 1; }
	@echo "== Console dependencies"
	cd web && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

web: $(WEB_STAMP)
	@echo "== Building the console"
	@cd web && npm run build --silent -- --logLevel warn

run: install web
	@mkdir -p var
	@echo "== Database and demo data"
	@$(BIN)/selfmart migrate
	@SELFMART_DEMO=true $(BIN)/selfmart seed-demo
	@SELFMART_DEMO=true exec $(BIN)/selfmart serve --print-logins

test: install
	@bash scripts/test.sh

bench: install
	$(BIN)/python bench/run.py

fmt: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

api-client: install $(WEB_STAMP)
	$(BIN)/selfmart openapi > web/openapi.json
	cd web && npm run gen:api --silent

clean:
	rm -rf $(VENV) web/node_modules web/dist
