# cryptochart: `make run` brings the whole product up; `make test` runs every test.
# Both install what a fresh machine lacks first (scripts/setup.sh; downloads cached in .cache/).
SHELL := /bin/bash
VENV := .venv/bin

.PHONY: setup run test test-faults lint lock bench soak services-up services-down clean

setup:
	@scripts/setup.sh

run:
	@scripts/setup.sh
	@$(VENV)/cryptochart run

test:
	@scripts/setup.sh --test
	@$(VENV)/cryptochart services up
	cd frontend && npm run --silent typecheck && npm test --silent
	$(VENV)/pytest

test-faults:
	@scripts/setup.sh --test
	@$(VENV)/cryptochart services up
	$(VENV)/pytest -m slow tests/faults

lint:
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(VENV)/mypy
	cd frontend && npm run --silent lint && npm run --silent format:check

# Re-resolve requirements.lock (every Python package pinned, with hashes) from pyproject.toml,
# keeping the current pins where they still fit; `make lock ARGS=--upgrade` moves all to the newest,
# `ARGS="--upgrade-package uvicorn"` one. scripts/setup.sh installs the new lock on its next run.
lock:
	@[ -x $(VENV)/uv ] || scripts/setup.sh
	UV_CACHE_DIR=$(CURDIR)/.cache/uv $(VENV)/uv -q pip compile pyproject.toml --extra dev --extra bench --universal \
	  --python-version 3.11 --generate-hashes --custom-compile-command "make lock" \
	  -o requirements.lock $(ARGS)

bench:
	@scripts/setup.sh --bench
	@$(VENV)/cryptochart services up
	$(VENV)/python -m bench

# The whole product (`cryptochart run`, simulated source, 1,000 symbols) for MINUTES minutes on a
# database of its own, sampled every 5 s: bench/results/soak-timescaledb.{csv,png,md}.
MINUTES ?= 30
soak:
	@scripts/setup.sh --bench
	@$(VENV)/cryptochart services up
	$(VENV)/python -m bench.soak --minutes $(MINUTES)

services-up:
	@$(VENV)/cryptochart services up

services-down:
	@$(VENV)/cryptochart services down

clean: services-down
	rm -rf .data frontend/dist
