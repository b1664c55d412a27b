# The front door. `make run` and `make test` need nothing but python3 on the machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROJECT_FILES := requirements.txt requirements-dev.txt $(wildcard */pyproject.toml */*/pyproject.toml)

.PHONY: run test e2e bench lint fmt migrate clean

$(STAMP): $(PROJECT_FILES)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

## Start the whole system on embedded PostgreSQL and NATS; Ctrl-C stops it.
run: $(STAMP)
	$(PY) -m portal_deploy.launcher

## Run the whole suite against real PostgreSQL and NATS.
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

## Only the cross-service journeys through the gateway.
e2e: $(STAMP)
	$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

## Apply every service's migrations to the databases named by PORTAL_*_DATABASE_URL.
migrate: $(STAMP)
	$(PY) -m portal_deploy.migrate

## Throughput benchmarks (not part of the test suite).
bench: $(STAMP)
	$(PY) -m portal_deploy.bench

## Static checks and formatting.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) var .pytest_cache
