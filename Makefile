# Two entry points, both idempotent: the environment is rebuilt only when pyproject.toml changes.
#   make run   set up, then run the default study with `dvc repro`
#   make test  set up, then run the whole test suite

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Nothing here may reach a model hub or phone home.
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export DVC_NO_ANALYTICS := 1

.PHONY: setup run test lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

run: setup
	# the stages call `mixmerge`, from the environment; a warm worker spares each of them
	# the import of torch, transformers and TRL
	PATH="$(abspath $(BIN)):$$PATH" mixmerge warm -- dvc repro

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/python -m pip install --quiet ruff
	$(BIN)/ruff check stages tests

clean:
	rm -rf $(VENV)
