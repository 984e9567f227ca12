# Two entry points for a new machine: `make run` and `make test`. Both install into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
APP ?= examples/counter
# --ui: the chat page at /ui/default/APP for applications with a chat gateway.
RUN_ARGS ?= --ui

.PHONY: install run test unit lint bench chromium

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/sluice run $(APP) $(RUN_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# The chat page's browser test drives Debian's chromium package: installed when missing
# (apt-get as root, else through sudo).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser test"; \
	  sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium </dev/null; }

# Tests run under coverage (settings in pyproject.toml: the worker, gateway and CLI processes
# the tests start are measured too); its total is printed last, `.venv/bin/coverage report`
# or `coverage html` give the detail afterwards.
# pytest exits 5 when it collected no test: that is a failure here, not a pass.
define run_tests
	@rm -f .coverage .coverage.*
	$(BIN)/coverage run -m pytest $(1); status=$$?; \
	$(BIN)/coverage combine -q >/dev/null 2>&1; \
	echo "coverage: $$($(BIN)/coverage report --format=total 2>/dev/null || echo '?')% of the lines of sluice, gateway, workers, knative, auth and langstream"; \
	if [ $$status -eq 5 ]; then echo "error: pytest ran no test" >&2; exit 1; fi; exit $$status
endef

test: lint chromium
	$(call run_tests,$(PYTEST_ARGS))

# The tests that need no Kafka broker, no Java, no kube-apiserver (Go), no local chat model (C++)
# and no browser: seconds. Markers are set in tests/conftest.py by the fixtures a test uses and by
# folder.
UNIT_MARKERS := not kafka and not java and not kube and not llm and not browser
unit: install
	$(call run_tests,-m "$(UNIT_MARKERS)" $(PYTEST_ARGS))

# Benchmarks (docs/benchmarks.md): each figure against a baseline measured in the same run.
# Results (<date>.json, .md, .png) go to benchmarks/results/. BENCH_ARGS="--quick" for a smoke
# run (< 2 min). Peaks need wrk (Debian package); without it a slower Python client stands in.
bench: install
	@command -v wrk >/dev/null || echo "bench: wrk not found (apt-get install wrk): peaks come from a Python client" >&2
	$(BIN)/python -m benchmarks $(BENCH_ARGS)
