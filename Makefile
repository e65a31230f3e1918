# The commands a user types; each is a thin wrapper around a script in scripts/.
SHELL := /bin/bash
DATE ?= $(shell date -u +%Y-%m-%d)
SCALE ?= 1000

.PHONY: setup run test lint bench airflow airflow-init

setup:  ## venv, plugins, source files, databases (idempotent)
	scripts/setup.sh

run:  ## the three jobs for DATE (default: today, UTC), in order
	scripts/run_day.sh $(DATE)

test:  ## the whole test suite (real Postgres, real Meltano)
	.venv/bin/pytest

bench:  ## throughput at SCALE (default 1000: ~2M detail rows) against Postgres COPY; see docs/performance.md
	.venv/bin/python scripts/bench.py --scale $(SCALE)

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

airflow:  ## local Airflow on 127.0.0.1:8080: db migrate, dag-processor, scheduler, api-server
	scripts/airflow.sh

airflow-init:  ## only migrate Airflow's metadata DB
	scripts/airflow.sh init
