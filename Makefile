# The first two commands a newcomer needs: `make demo` and `make test`. Both set themselves up.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint format typecheck clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,embeddings]'
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

clean:
	rm -rf $(VENV) site data .pytest_cache .mypy_cache .ruff_cache
