# The first two commands a newcomer needs: `make demo` and `make test`. Both set themselves up.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The versions CI tested, for every dependency (hatchling, the build backend, included):
# pip installs within them. `make lock` rewrites the file (see README, Development).
LOCK := constraints.txt
UV_VERSION := 0.13.9

.PHONY: demo test bench lint format typecheck clean lock

$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(LOCK) --build-constraint $(LOCK) -e '.[dev,embeddings]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/aggregator demo --out site

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m benchmarks

lint: $(STAMP)
	$(BIN)/ruff check aggregator tests benchmarks
	$(BIN)/ruff format --check aggregator tests benchmarks
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format aggregator tests benchmarks
	$(BIN)/ruff check --fix aggregator tests benchmarks

# Re-resolve the lock after a change to pyproject.toml's dependencies, keeping every pin that
# still fits; LOCK_ARGS=--upgrade moves all to their newest, --upgrade-package NAME one.
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra embeddings --universal \
		--python-version 3.11 --quiet $(LOCK_ARGS) -o $(LOCK)

clean:
	rm -rf $(VENV) site data .pytest_cache .mypy_cache .ruff_cache
