# Two commands a new user needs: `make run` and `make test`. Both set up .venv when it is missing
# or when pyproject.toml changed since the last install.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/cliproxy serve $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) lint typecheck
	$(BIN)/pytest

# `make bench`: direct vs cliproxy vs LiteLLM on a local simulator (bench/README.md). Not part of
# `make test`; LiteLLM goes into its own venv under build/, never into .venv.
BENCH_DURATION ?= 5
LITELLM_VENV := build/litellm-venv

bench: $(STAMP)
	$(BIN)/python bench/run.py --duration $(BENCH_DURATION) --litellm-venv $(LITELLM_VENV) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
