# The two commands a newcomer needs: `make up` runs the platform, `make test` runs the suite.
UV ?= uv
export UV_LINK_MODE ?= copy

.PHONY: up test lint typecheck check schemas bench sync infra status clean

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
	$(UV) run python -m bench.journal $(JOURNAL_BENCH_ARGS)

clean: ## Remove the local stack's data (stop `make up` first)
	rm -rf .stack
