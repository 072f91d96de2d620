# OneClass Migration Services — `make run` brings the system up, `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export PATH := $(HOME)/.local/bin:$(PATH)
UV := uv
MIGRATION_WORKERS ?= 1
NOTIFICATION_WORKERS ?= 1
ROLE ?= school_admin
SCHOOL ?=
PYTEST_ARGS ?=

.PHONY: help tools deps infra db setup run test lint format docs bench bench-tools test-tools demo token fuzz soak clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

tools: ## install uv if missing (from the package registry, with pip)
	@command -v $(UV) >/dev/null 2>&1 || python3 -m pip install --quiet uv || python3 -m pip install --quiet --user uv
	@$(UV) --version >&2  # to stderr: `TOKEN=$$(make -s token)` must capture the token alone

deps: tools ## install the locked dependencies of the whole workspace
	@$(UV) sync --locked --quiet

infra: ## make sure PostgreSQL and RabbitMQ are up (start or install them)
	@bash deploy/local/ensure-services.sh

db: deps infra ## create each service's database and apply its migrations
	@$(UV) run --quiet python deploy/local/prepare_databases.py

setup: deps infra db

run: setup ## start every service and the provider sandbox (Ctrl-C stops them all)
	@$(UV) run --quiet python deploy/local/procfile.py var/Procfile >/dev/null
	@echo "orders        http://127.0.0.1:8000  (API docs /docs)"
	@echo "payments      http://127.0.0.1:8001"
	@echo "notifications http://127.0.0.1:8002  ($(NOTIFICATION_WORKERS) replica(s))"
	@echo "migrations    http://127.0.0.1:8003  ($(MIGRATION_WORKERS) worker replica(s); status page /)"
	@echo "sandbox       http://127.0.0.1:8010  (SMTP sink 127.0.0.1:8025)"
	@MIGRATION_WORKERS=$(MIGRATION_WORKERS) NOTIFICATION_WORKERS=$(NOTIFICATION_WORKERS) \
		$(UV) run --quiet honcho -f var/Procfile -d . start

test: deps infra test-tools ## run the whole test suite against the real PostgreSQL and RabbitMQ
	@$(UV) run pytest $(PYTEST_ARGS)

lint: deps ## ruff and mypy
	@$(UV) run ruff check .
	@$(UV) run ruff format --check .
	@$(UV) run mypy -p contracts -p servicekit -p orders -p payments -p notifications -p migration_worker -p sandbox

format: deps
	@$(UV) run ruff format .
	@$(UV) run ruff check --fix .

docs: deps ## regenerate AsyncAPI, OpenAPI and contract snapshots under docs/ and contracts
	@$(UV) run python deploy/local/gen_docs.py

bench: setup bench-tools ## run every benchmark; each prints its figure beside a baseline from the same run
	@$(UV) run python -m bench

bench-tools: ## install the load generator (wrk) the HTTP benchmarks drive
	@bash deploy/local/ensure-os-tools.sh wrk

test-tools: ## install kubectl (its kustomize renders the manifests the deploy tests validate)
	@bash deploy/local/ensure-os-tools.sh kubectl

demo: setup ## a scripted walk through the whole system against running services
	@$(UV) run python deploy/local/demo.py

token: deps ## print a development JWT: make token ROLE=school_admin SCHOOL=<uuid>
	@$(UV) run --quiet python deploy/local/dev_token.py --role $(ROLE) $(if $(SCHOOL),--school $(SCHOOL))

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache

fuzz: deps infra ## longer API fuzzing (schemathesis, FUZZ_EXAMPLES per operation) and broker poison messages
	@FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-200} $(UV) run pytest tests/fuzz $(PYTEST_ARGS)

soak: setup bench-tools ## ten minutes of mixed load (SOAK_SECONDS to change); figures in docs/soak-latest.md, plot docs/soak.png
	@$(UV) run python -m bench.soak
