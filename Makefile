# One entry point for humans and CI. `make test` works from a fresh clone: it creates the
# virtualenv, installs ckm with its dev extras, and runs the whole suite.
VENV   ?= .venv
PYTHON ?= python3
BIN     = $(VENV)/bin

.PHONY: venv test lint demo redis-server clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	# The official Contrail client judges our emulator; its own pins (gevent, lxml) are
	# ancient and unused by the REST client, hence --no-deps.
	$(BIN)/python -m pip install -q --no-deps 'contrail-api-client==2005'
	touch $@

venv: $(VENV)/.installed

test: venv
	$(BIN)/pytest

# The demo starts a private redis-server; install Debian's when none is on PATH.
redis-server:
	@command -v redis-server >/dev/null || { echo "installing redis-server"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; }

demo: venv redis-server
	$(BIN)/ckm demo

lint: venv
	$(BIN)/ruff check .
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
