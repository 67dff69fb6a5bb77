# One target per habit; CI (.ci/run) calls `make test` unchanged.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
VENDOR := signalling/static/vendor/.built
PORT ?= 8080
DATA_DIR ?= .livecore

.PHONY: run test lint types unit system vendor clean help lock speedups

help:
	@echo "make run   - install into .venv and start a node on 127.0.0.1:$(PORT) (embedded Valkey)"
	@echo "make test  - install, then lint, type-check and run the whole test suite"

# Exactly the committed lock (every package, transitive ones too, hash-checked),
# then livecore itself without touching its dependencies. `make lock` is the
# only way the lock changes (see README: upgrading a dependency).
$(STAMP): requirements.lock pyproject.toml setup.py media/_rtpfast.c
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

# Re-resolve the lock from pyproject.toml's ranges (and its build-system
# requirements) with a pinned uv; commit the result with the reason.
UV_VERSION := 0.13.9
lock:
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	$(BIN)/python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['build-system']['requires'], sep='\n')" > $(VENV)/build.in
	$(BIN)/uv pip compile pyproject.toml $(VENV)/build.in --extra dev --generate-hashes \
	  --python-version 3.11 --python-platform x86_64-manylinux_2_28 --no-header $(LOCK_ARGS) -o requirements.lock

# Front-end packages from the committed lockfile, bundled into
# signalling/static/vendor/ and served by the node itself (no CDN).
$(VENDOR): package.json package-lock.json signalling/vendor/build.mjs
	npm ci --no-audit --no-fund --loglevel=error
	node signalling/vendor/build.mjs
	touch $(VENDOR)

vendor: $(VENDOR)

# Debian packages the tests need: Chromium for the browser tests (pages,
# WHIP/WHEP from a real browser), a Chinese font, so the pages' screenshots
# show text rather than boxes, coturn (the TURN relay the TURN tests play
# through), GStreamer's WebRTC stack for Debian's python3 (webrtcbin, libnice,
# x264 and OpenH264, Opus, VP8: the second WebRTC client of tests/interop/,
# which behaves as OBS does) and, for the network lab (tests/netlab/, as root),
# iproute2 and nftables. Installed once; skipped where apt is absent.
GSTREAMER := python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 \
  gir1.2-gst-plugins-bad-1.0 gir1.2-nice-0.1 gstreamer1.0-plugins-base \
  gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly \
  gstreamer1.0-nice
system:
	@{ command -v chromium >/dev/null 2>&1 && [ -n "$$(fc-list :lang=zh 2>/dev/null)" ] && \
	   command -v nft >/dev/null 2>&1 && command -v turnserver >/dev/null 2>&1 && \
	   command -v ip >/dev/null 2>&1 && command -v tc >/dev/null 2>&1 && \
	   { command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; } && \
	   /usr/bin/python3 tests/interop/gstpeer.py check >/dev/null 2>&1; } || { \
	  if command -v apt-get >/dev/null 2>&1; then \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
	      chromium fonts-wqy-microhei nftables coturn iproute2 nginx $(GSTREAMER) >/dev/null; \
	  else echo "no apt-get: browser tests will be skipped (install Chromium to run them)"; fi; }

run: $(STAMP) $(VENDOR)
	$(BIN)/livecore serve --demo --port $(PORT) --data-dir $(DATA_DIR)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

# Four workers (WORKERS), a test module each at a time (module fixtures start
# real nodes), the longest modules first (tests/schedule.py; xdist keeps that
# order, so no long module starts while the other worker runs out of work);
# then the tests that hold a wall-clock budget, away from the rest: the network
# lab's tests three at a time, test by test (labs never collide, they mostly
# wait on outages they made: 0.6 of a core with two at a time; with them the
# adaptive benchmark's short form, whose verdict is validity only), then the
# others alone on the machine. Every process the
# tests start (a node, a worker, a load generator) imports the project: its
# bytecode is compiled once here, not by each of them. pytest keeps its
# assertion-rewritten test modules only where bytecode may be written, so it
# runs without PYTHONDONTWRITEBYTECODE (which CI images often set): with it,
# every test process rewrote the 330 test modules again, 9 of its 11 s of
# collection. Four workers on two cores: most tests wait on
# real time (segments, graces, browsers), and a fresh clone's quiet run used
# 1.3 cores with four (0.8 with two); the parallel phase took 9 min against
# 13.5. Tests that hold a wall-clock budget are marked `alone` for this reason.
WORKERS ?= 4
LABS = tests/netlab tests/loadtests/test_adaptive.py
PYTEST = env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest
unit: $(STAMP) $(VENDOR) system
	$(BIN)/python -m compileall -q -j 0 livecore signalling media clients loadtests tests
	$(PYTEST) -q -n $(WORKERS) --dist loadfile --no-loadscope-reorder -m "not alone"
	$(PYTEST) -q -n 3 --dist load -m alone $(LABS)
	$(PYTEST) -q -m alone $(LABS:%=--ignore=%)

test: lint types unit

clean:
	rm -rf $(VENV) node_modules signalling/static/vendor .pytest_cache .mypy_cache .ruff_cache build *.egg-info
