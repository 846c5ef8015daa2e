# steamwatch: `make run` runs the whole system, `make test` runs the tests.
# Both bootstrap .venv from nothing but Python >= 3.11 on the machine.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# promtool checks the alert rules and every service's /metrics in the tests; checkov the
# Kubernetes manifests (in a venv of its own: it pins versions the project's tools outgrew).
PROMTOOL := $(VENV)/tools/promtool
CHECKOV  := $(VENV)/tools/checkov
CHECKOV_VERSION := 3.3.30

.PHONY: run test bench soak lint typecheck venv clean help

help:
	@echo "make run        run everything (embedded PostgreSQL/Redis unless STEAMWATCH_*_URL are set)"
	@echo "make test       run the test suite against real PostgreSQL and Redis"
	@echo "make bench      benchmarks (SCENARIO=name for one); writes bench/results.json"
	@echo "make soak       2,000 tasks for 10 minutes with random faults; prints the invariants"
	@echo "make lint       ruff check, ruff format --check, mypy"
	@echo "make clean      remove .venv and caches (not the data in .steamwatch/)"

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "make: no python3.11 or python3 on PATH" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "make: $(PYTHON) is older than Python 3.11" >&2; exit 1; }
	@test -x $(BIN)/python || { echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,embedded]'
	@rm -f $(VENV)/.installed-*
	@touch $@

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/steamwatch dev

$(PROMTOOL): | $(STAMP)
	scripts/install-promtool $@

$(CHECKOV): | $(STAMP)
	@echo "installing checkov $(CHECKOV_VERSION) in $(VENV)/tools/checkov-env"
	$(BIN)/python -m venv $(VENV)/tools/checkov-env
	$(VENV)/tools/checkov-env/bin/python -m pip install --quiet 'checkov==$(CHECKOV_VERSION)'
	ln -sf checkov-env/bin/checkov $@

test: $(STAMP) $(PROMTOOL) $(CHECKOV)
	PATH="$(CURDIR)/$(VENV)/tools:$$PATH" $(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m bench $(if $(SCENARIO),--scenario $(SCENARIO))

soak: $(STAMP)
	$(BIN)/python -m tests.system.faults.soak $(SOAK_ARGS)

LINTED := shared services steamwatch simulator tests bench testbed

lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis *.egg-info
