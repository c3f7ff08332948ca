# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint container-test bench-write bench-latency bench-memory bench-mock clean

$(BIN)/datasync: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

## Full ingest from a local simulator into a PostgreSQL it finds or starts, then verify.
demo: $(BIN)/datasync
	$(BIN)/datasync demo

## Lint, type-check and run every test (unit, database, end to end).
test: $(BIN)/datasync
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/vulture
	$(BIN)/pytest -q

lint: $(BIN)/datasync
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/vulture

## Build the image and run docker-compose.yml's rehearsal in real containers (Docker, or podman
## with podman-compose): see docs/containers.md, "Container test".
CONTAINER_VENV ?= .venv-containers

$(CONTAINER_VENV)/bin/podman-compose: tests/containers/requirements.txt
	$(PYTHON) -m venv $(CONTAINER_VENV)
	$(CONTAINER_VENV)/bin/pip install -q -r tests/containers/requirements.txt
	touch $@

container-test: $(CONTAINER_VENV)/bin/podman-compose
	$(PYTHON) tests/containers/run.py

bench-write: $(BIN)/datasync
	$(BIN)/python bench/write_path.py

bench-latency: $(BIN)/datasync
	$(BIN)/python bench/latency_bound.py

bench-memory: $(BIN)/datasync
	$(BIN)/python bench/memory.py

bench-mock: $(BIN)/datasync
	$(BIN)/python bench/mockapi_pages.py

clean:
	rm -rf $(VENV) $(CONTAINER_VENV) .container-test .datasync build dist *.egg-info
