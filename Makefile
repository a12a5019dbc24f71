# The two commands a newcomer needs: `make up` runs the platform, `make test` runs the suite.
UV ?= uv
export UV_LINK_MODE ?= copy
# Compile every installed module once at install time: the environment may forbid writing
# bytecode on import (PYTHONDONTWRITEBYTECODE), and then each process start compiled
# FastAPI, SQLAlchemy and pydantic from source again (1.7 s of CPU per process).
export UV_COMPILE_BYTECODE ?= 1

.PHONY: up test lint typecheck check schemas bench bench-full sync infra status clean

sync:
	@$(UV) sync --all-packages --frozen 2>/dev/null || $(UV) sync --all-packages

up: sync ## Run Kafka, PostgreSQL, Redis and every service in the foreground; Ctrl-C stops all
	$(UV) run cadre-stack up

infra: sync ## Only the servers (Kafka, PostgreSQL, Redis), in the foreground
	$(UV) run cadre-stack infra

status:
	@$(UV) run cadre-stack status

test: sync ## The whole suite; starts the servers it needs (or reuses a running stack)
	$(UV) run pytest $(PYTEST_ARGS)

lint: sync
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run lint-imports

typecheck: sync
	$(UV) run mypy libs services bench tests

check: lint typecheck test

schemas: sync ## JSON Schema per event in docs/schemas/ and the catalogue page docs/events.md
	$(UV) run cadre-events schemas --out docs

bench: sync ## Small benchmark profile (< 10 min); results in bench/results/*.json
	$(UV) run python -m bench.spine $(BENCH_ARGS)
	$(UV) run python -m bench.journal --entries 200000 $(JOURNAL_BENCH_ARGS)
	$(UV) run python -m bench.replay --sizes 500,1000,2000 --days 30 $(REPLAY_BENCH_ARGS)
	$(UV) run python -m bench.ingest --seconds 60 $(INGEST_BENCH_ARGS)
	$(UV) run python -m bench.summary

bench-full: sync ## The full profile (about 40 minutes): 10k cadres × 90 days, 1k/10k/50k curve
	$(UV) run python -m bench.replay --sizes 10000 --days 90 --out replay-10k-90d
	$(UV) run python -m bench.replay --sizes 1000,10000,50000 --days 14 --headline 10000 --out replay-curve
	$(UV) run python -m bench.ingest --seconds 60
	$(UV) run python -m bench.summary --replay replay-10k-90d

clean: ## Remove the local stack's data (stop `make up` first)
	rm -rf .stack
