# The first two commands a newcomer needs: `make demo` and `make test`. Both set themselves up.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The versions CI tested, for every dependency (hatchling, the build backend, included):
# pip installs within them. `make lock` rewrites the file (see README, Development).
LOCK := constraints.txt
UV_VERSION := 0.13.9
# The site checks' tools (tests/test_site_browser.py, test_site_html.py): Chromium and CJK
# fonts from Debian, the Nu Html Checker from npm into .tools/. The tests skip without them, and
# fail without them in CI.
TOOLS := .tools
VNU_VERSION := 26.9.27
VNU_JAR := $(TOOLS)/node_modules/vnu-jar/build/dist/vnu.jar

.PHONY: demo test bench lint format typecheck clean lock browser-deps

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

# Installs only what is missing; apt-get needs root (CI's container has it).
browser-deps:
	test -x /usr/bin/chromium && dpkg -s fonts-noto-cjk >/dev/null 2>&1 || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends chromium fonts-noto-cjk; }
	command -v java >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends default-jre-headless; }
	test -f $(VNU_JAR) || command -v npm >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm; }
	test -f $(VNU_JAR) || npm install --prefix $(TOOLS) --no-save --no-audit --no-fund \
		vnu-jar@$(VNU_VERSION)

clean:
	rm -rf $(VENV) site data .pytest_cache .mypy_cache .ruff_cache $(TOOLS) test-artifacts
