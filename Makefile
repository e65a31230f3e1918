# The commands a user types; each is a thin wrapper around a script in scripts/.
SHELL := /bin/bash
DATE ?= $(shell date -u +%Y-%m-%d)
SCALE ?= 1000

.PHONY: setup run prune slot-status restore migrate test lint modules bench airflow airflow-init ui-test compose-test docker-lint

setup:  ## .env and .env.admin (0600), venv, plugins, source files, databases and roles (idempotent)
	scripts/setup.sh

run:  ## the three jobs for DATE (default: today, UTC), in order; FORCE=1: also a day older than RETENTION_DAYS; REEXTRACT=1: read a past day's INCREMENTAL windows again
	$(if $(FORCE),PIPELINE_FORCE_OLD_DAY=1) $(if $(REEXTRACT),PIPELINE_REEXTRACT=1) scripts/run_day.sh $(DATE)

prune:  ## remove the days older than RETENTION_DAYS (.env) days before today, UTC, that reached analytics (FORCE=1: all)
	.venv/bin/meltano invoke pipeline prune $(if $(FORCE),--force)

slot-status:  ## the LOG_BASED replication slot: WAL it holds, when a run last read it; fails when stale (PIPELINE_SLOT_STALE_DAYS)
	.venv/bin/meltano invoke pipeline slot-status

restore:  ## publish a kept version of a step-1 day again: make restore JOB=csv-to-lfs DATE=2024-01-02 [VERSION=...]
	.venv/bin/meltano invoke pipeline restore --job "$(JOB)" --date "$(DATE)" $(if $(VERSION),--version "$(VERSION)")

migrate:  ## give an analytics table the column types of DATE's load, converting every day: make migrate DATE=2024-01-02 SCHEMA=postgres TABLE=orders
	.venv/bin/meltano invoke pipeline migrate --date "$(DATE)" --schema "$(SCHEMA)" --table "$(TABLE)"

# `docker compose` (v2) when there is one, else docker-compose (v1).
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

test:  ## the whole test suite (real Postgres, real Meltano); in Docker when there is no local .venv
	@if [ -x .venv/bin/pytest ]; then .venv/bin/pytest; else $(COMPOSE) run --rm test; fi

bench:  ## ours against COPY, Sling, dlt and the stock MeltanoLabs path at SCALE (default 1000), memory also at SCALES=1000,3000; a day through Airflow; data/bench/latest.html (BENCH_ARGS=--no-peers --no-airflow); docs/performance.md
	.venv/bin/python -m bench --scales $(or $(SCALES),$(SCALE)) $(BENCH_ARGS)

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

modules:  ## the import graph of pipeline/ as Mermaid, lazy imports dashed (docs/architecture.md: Module graph); scripts/module_graph.py --check lists its circles
	@python3 scripts/module_graph.py

airflow:  ## local Airflow on 127.0.0.1:8080 (AIRFLOW_API_PORT), login from .env: db migrate, api-server, dag-processor, scheduler
	scripts/airflow.sh

ui-test:  ## the Airflow UI in Debian's chromium (Playwright): log in, trigger a day, see step 2 succeed
	scripts/ui_test.sh

airflow-init:  ## only migrate Airflow's metadata DB
	scripts/airflow.sh init

compose-test:  ## docker-compose.yml for real: up, one day through Airflow's REST API, files, result, down -v; then the same on the distributed profile, workers on S3 (COMPOSE_TEST_DISTRIBUTED=0 skips it; needs an engine; CI: .ci/docker.sh)
	COMPOSE="$(COMPOSE)" COMPOSE_TEST_DISTRIBUTED=0 tests/compose/test.sh
	$(if $(filter 0,$(COMPOSE_TEST_DISTRIBUTED)),,COMPOSE="$(COMPOSE)" COMPOSE_TEST_DISTRIBUTED=1 tests/compose/test.sh)

docker-lint:  ## hadolint the Dockerfiles, validate docker-compose.yml offline (with the celery and distributed profiles)
	hadolint Dockerfile .ci/stand-ins/*/Dockerfile
	$(COMPOSE) config -q
	$(COMPOSE) --profile celery config -q
	$(COMPOSE) --profile distributed config -q
