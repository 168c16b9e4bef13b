# The two commands: `make run` (the platform) and `make test` (the whole suite).
# Both install what they need: uv (from PyPI), the Python workspace, Kafka jars and FerretDB
# (cached under ~/.cache/mentorship, outside the repo).

PYTHON ?= python3
UV := $(PYTHON) -m uv
INFRA := $(PYTHON) deploy/local/infra.py
PYTEST_ARGS ?=

.PHONY: sync help install run demo test test-unit lint typecheck format schemas bench bench-company chaos docs compose-config chart-check clean

help:
	@echo "make run      - start Kafka, FerretDB and all four services (Ctrl-C stops everything)"
	@echo "make test     - install, start Kafka and FerretDB once, run the whole suite, stop them"
	@echo "make test-unit- unit and contract tests only (no infrastructure)"
	@echo "make lint     - ruff: lint rules and formatting (make format rewrites)"
	@echo "make typecheck- mypy: strict on kit/ and contracts/, default on services, ops, tests"
	@echo "make schemas  - refresh the committed JSON Schema snapshots of every event (on purpose)"
	@echo "make bench    - benchmarks (figures and ratios against a baseline from the same run; ends with a summary table)"
	@echo "make bench-company - company-scale scenario (100k profiles, 20k x 5k cohort; BENCH_SCALE=0.05 scales it down)"
	@echo "make chaos    - faults under load: two replicas of everything, kills, poison; invariants (CHAOS_ARGS=\"--duration 300 --seed 1\")"
	@echo "make demo     - with the platform up (make run), play the mentoring journey"
	@echo "make docs     - generate the event catalog (AsyncAPI, JSON Schemas, event pages, OpenAPI)"
	@echo "make compose-config - validate docker-compose.yml (needs Docker Compose)"
	@echo "make chart-check - helm lint/template + kubeconform, promtool rule tests, dashboard check (no cluster)"

install:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check uv
	@$(UV) sync --frozen --quiet
	@$(INFRA) install

run: install
	@$(UV) run --frozen python deploy/local/run_platform.py

test: install lint typecheck
	@bash deploy/local/with_infra.sh $(UV) run --frozen pytest $(PYTEST_ARGS)

test-unit:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check uv
	@$(UV) sync --frozen --quiet
	@$(UV) run --frozen pytest tests/unit tests/contract $(PYTEST_ARGS)

lint: sync
	@$(UV) run --frozen ruff check .
	@$(UV) run --frozen ruff format --check --quiet . || { echo "ruff format would change files: run make format"; exit 1; }

format: sync
	@$(UV) run --frozen ruff check --fix --quiet . || true
	@$(UV) run --frozen ruff format --quiet .

typecheck: sync
	@$(UV) run --frozen mypy contracts/src kit/src
	@$(UV) run --frozen mypy services/profile/src services/matching/src services/scheduling/src services/notification/src services/insights/src ops/src

sync:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check uv
	@$(UV) sync --frozen --quiet

demo:
	@$(UV) run --frozen mentorship demo

docs:
	@$(UV) run --frozen mentorship docs --out docs/catalog

schemas:
	@$(UV) run --frozen python -m mentorship_contracts.snapshots write

# Figures only: a missed target never fails the build; a benchmark that crashes does (exit 1).
bench: install
	@bash deploy/local/with_infra.sh --service-stores $(UV) run --frozen python -m bench

BENCH_SCALE ?= 1
bench-company: install
	@bash deploy/local/with_infra.sh --service-stores $(UV) run --frozen python -m bench company --scale $(BENCH_SCALE)

# Starts its own Kafka and store (it kills them): never the ones `make test` or others use.
CHAOS_ARGS ?=
chaos: install
	@$(UV) run --frozen python -m mentorship_ops.chaos $(CHAOS_ARGS)

compose-config:
	@# JWT_SECRET has no default in the file (it must be set to run): a placeholder to validate
	@export JWT_SECRET="$${JWT_SECRET:-placeholder-for-validation-only-0123456789}"; \
	if docker compose version >/dev/null 2>&1; then docker compose config --quiet; \
	else docker-compose -f docker-compose.yml config -q; fi && echo "docker-compose.yml is valid"

# Builds helm, kubeconform and promtool once (go install, cached under ~/.cache/mentorship/tools).
chart-check:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check uv
	@$(UV) sync --frozen --quiet
	@$(PYTHON) deploy/tools/install.py >/dev/null
	@$(UV) run --frozen pytest tests/deploy/test_chart.py $(PYTEST_ARGS)

clean:
	rm -rf .run
