# cryptochart: `make run` brings the whole product up; `make test` runs every test.
# Both install what a fresh machine lacks first (scripts/setup.sh; downloads cached in .cache/).
SHELL := /bin/bash
VENV := .venv/bin

.PHONY: setup run test test-faults lint bench services-up services-down clean

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

bench:
	@scripts/setup.sh --bench
	@$(VENV)/cryptochart services up
	$(VENV)/python -m bench

services-up:
	@$(VENV)/cryptochart services up

services-down:
	@$(VENV)/cryptochart services down

clean: services-down
	rm -rf .data frontend/dist
