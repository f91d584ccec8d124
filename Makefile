# Everything runs from .venv/bin; nothing needs an activated virtualenv.
SHELL := /bin/bash

VENV := .venv
BIN := $(VENV)/bin
# The first Python 3.11+ on PATH; override with `make run PYTHON=/path/to/python3.12`.
PYTHON ?= $(shell for p in python3 python3.13 python3.12 python3.11; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& { echo $$p; break; }; done)
PORT ?= 8000
TEST_DATABASE_URL := postgres://postgres@127.0.0.1:5432/test
PYTEST_ARGS ?=
# Two pytest processes, each module whole in one of them (its servers and fixtures started once): most of the
# suite waits on the processes it starts, so two share 2 cores well. TEST_PROCESSES=0 runs in one process.
TEST_PROCESSES ?= 2
PYTEST_PARALLEL := $(if $(filter 0,$(TEST_PROCESSES)),,-n $(TEST_PROCESSES) --dist loadfile)

.DEFAULT_GOAL := help
.PHONY: help run test lint install install-dev migrate seed clean

help:
	@echo "make run      venv + install + migrate + demo data, then the app on http://localhost:$(PORT)"
	@echo "              (with DATABASE_URL and REDIS_URL set: also a Celery worker and beat)"
	@echo "make test     the whole test suite; installs what it needs (as root, with apt-get) and starts"
	@echo "              PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379 when they are stopped"
	@echo "make lint     ruff check and ruff format --check (LINT_PATHS); make test runs it first"
	@echo "make install  create .venv and install requirements.txt (install-dev: requirements-dev.txt)"
	@echo "make migrate  apply database migrations"
	@echo "make seed     create the demo admin, number and conversations (idempotent)"
	@echo "make clean    remove .venv, .run/, staticfiles/ and caches (keeps db.sqlite3 and media/)"

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is required (none found; set PYTHON=...)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamp files: pip runs again only when a requirements file changed since the last install.
$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

migrate: install
	$(BIN)/python manage.py migrate --noinput

seed: install
	$(BIN)/python manage.py seed_demo

run: install
	PORT=$(PORT) config/bin/run

# What `make lint` checks: the whole tree.
LINT_PATHS ?= .

lint: install-dev
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

# config/bin/test-setup: the Debian packages the suite runs, PostgreSQL and Redis up (see the script).
test: install-dev lint
	DATABASE_URL="$${DATABASE_URL:-$(TEST_DATABASE_URL)}" config/bin/test-setup
	DATABASE_URL="$${DATABASE_URL:-$(TEST_DATABASE_URL)}" $(BIN)/pytest tests/ $(PYTEST_PARALLEL) $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .run staticfiles .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# Benchmarks: starts its own gunicorn, Daphne, Celery worker, redis-server and PostgreSQL database
# (whatsapp_bench, dropped and recreated), prints a table against the targets, stops all it started.
# ~4 minutes on 2 cores; pass flags with `make bench BENCH_ARGS="--quick"` or "--backlog 50000 --sockets 5000".
BENCH_ARGS ?=
.PHONY: bench
bench: install-dev
	$(BIN)/python manage.py bench $(BENCH_ARGS)
