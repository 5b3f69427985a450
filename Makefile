# Two commands a new user needs: `make run` and `make test`. Both set up .venv when it is missing
# or when pyproject.toml changed since the last install.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck bench clean browser console-vendor

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# The console's browser tests drive Debian's chromium through Playwright (never Playwright's
# own browser download). Installed here when missing and we are root; otherwise those tests
# skip and say why.
CHROMIUM := /usr/bin/chromium
browser:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's chromium for the console's browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else echo "no $(CHROMIUM) and not root: the console's browser tests will be skipped"; fi

# Copies the pinned browser libraries (console/package-lock.json) into the package: the chart
# library, and the YAML editor and line diff of the Configuration page. The copy is committed,
# so `make run` needs neither node nor the network.
CONSOLE_VENDOR := src/cliproxy/console/static/vendor
CONSOLE_NODE := console/node_modules
console-vendor:
	cd console && npm ci --no-audit --no-fund --ignore-scripts
	cp $(CONSOLE_NODE)/chart.js/dist/chart.umd.min.js $(CONSOLE_VENDOR)/chart.umd.min.js
	cp $(CONSOLE_NODE)/chart.js/LICENSE.md $(CONSOLE_VENDOR)/chart.js.LICENSE.md
	cp $(CONSOLE_NODE)/codemirror/lib/codemirror.js $(CONSOLE_VENDOR)/codemirror.js
	cp $(CONSOLE_NODE)/codemirror/lib/codemirror.css $(CONSOLE_VENDOR)/codemirror.css
	cp $(CONSOLE_NODE)/codemirror/mode/yaml/yaml.js $(CONSOLE_VENDOR)/codemirror-mode-yaml.js
	cp $(CONSOLE_NODE)/codemirror/LICENSE $(CONSOLE_VENDOR)/codemirror.LICENSE
	cp $(CONSOLE_NODE)/diff/dist/diff.min.js $(CONSOLE_VENDOR)/diff.min.js
	cp $(CONSOLE_NODE)/diff/LICENSE $(CONSOLE_VENDOR)/diff.LICENSE

run: $(STAMP)
	$(BIN)/cliproxy serve $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) browser lint typecheck
	$(BIN)/pytest

# `make bench`: direct vs cliproxy vs LiteLLM on a local simulator (bench/README.md). Not part of
# `make test`; LiteLLM goes into its own venv under build/, never into .venv.
BENCH_DURATION ?= 5
LITELLM_VENV := build/litellm-venv

bench: $(STAMP)
	$(BIN)/python bench/run.py --duration $(BENCH_DURATION) --litellm-venv $(LITELLM_VENV) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
