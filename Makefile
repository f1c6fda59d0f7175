# Developer entry points. `make` lists them; `make run` starts the whole stack locally.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Re-install only when the dependencies change.
STAMP := $(VENV)/.install-stamp
PYTEST_ARGS ?=
# Options of `make bench` (python -m benchmarks --help), e.g. BENCH_ARGS='--quick --database sqlite'.
BENCH_ARGS ?=
# The folder of `make record-histories`: the commit the workflows are at ("-dirty" when the
# checkout has uncommitted changes, which are then recorded too).
LABEL ?= $(shell git describe --always --dirty 2>/dev/null)
TYPED_PACKAGES := payments workflows activities api workers cli devtools tests benchmarks

.DEFAULT_GOAL := help
.PHONY: help install run test record-histories lint fmt typecheck check bench bench-fraud clean distclean

help: ## List the targets
	@echo "Targets (PYTHON=$(PYTHON), PYTEST_ARGS='$(PYTEST_ARGS)'):"
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z-]*:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: $(STAMP) ## Create .venv and install the project with its dev tools (again only when pyproject.toml changes)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
		echo "error: Python 3.11 or newer is needed; '$(PYTHON)' is $$($(PYTHON) --version 2>/dev/null || echo 'not found')." >&2; \
		echo "       Run e.g. 'make install PYTHON=python3.12'." >&2; \
		exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[dev]'
	@touch $@

run: install ## Start the whole stack in the foreground (URLs printed when ready); Ctrl-C stops it
	$(BIN)/payments dev

test: install ## Run the tests (extra pytest arguments: PYTEST_ARGS='-k refund -x')
	$(BIN)/pytest $(PYTEST_ARGS)

record-histories: install ## Record this version's workflow histories for the replay tests (LABEL=...), then commit them
	@test -n "$(LABEL)" || { echo "error: no git commit to name the histories after: give LABEL=..." >&2; exit 1; }
	$(BIN)/python -m tests.replay.record $(LABEL)

lint: install ## Check lint and formatting (ruff)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: install ## Sort imports and format the code (ruff)
	$(BIN)/ruff check --select I --fix .
	$(BIN)/ruff format .

typecheck: install ## Type-check with mypy --strict
	$(BIN)/mypy $(TYPED_PACKAGES)

check: lint typecheck ## lint + typecheck (what CI runs before the tests)

bench: install ## Run the benchmarks against a whole stack, SQLite and PostgreSQL (BENCH_ARGS='--quick', '--scaling', '--help')
	$(BIN)/python -m benchmarks.fraud_scoring
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

bench-fraud: install ## The fraud step's parts: learned score, rules+db on SQLite and PostgreSQL, gateway look-up (~1.5 min, no stack)
	$(BIN)/python -m benchmarks.fraud_scoring

clean: ## Remove local state (.data: databases, Temporal state) and caches; keeps .venv
	rm -rf .data .pytest_cache .mypy_cache .ruff_cache build dist
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +

distclean: clean ## clean, and remove .venv and the build metadata too
	rm -rf $(VENV) *.egg-info
