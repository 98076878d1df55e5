# Everything runs from a project-local virtualenv built from the hash-pinned lock file.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export LEDGER_DUCKDB_PATH ?= $(CURDIR)/data/ledger.duckdb
export LEDGER_STATE_DIR ?= $(CURDIR)/data/state
export LEDGER_TENANTS_PATH ?= $(CURDIR)/data/tenants.json

.PHONY: install demo test ui sandbox lock clean

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: deploy/dagster.yaml
	@mkdir -p $(DAGSTER_HOME)
	cp deploy/dagster.yaml $@

demo: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/ledger-pipeline demo

test: install
	$(BIN)/python -m pytest -n 2 -q

ui: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml

sandbox: install
	$(BIN)/ledger-pipeline sandbox serve --port 8765

# Regenerate the lock after changing pyproject.toml (needs uv on the PATH).
lock:
	uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --no-header -q -o requirements.lock

clean:
	rm -rf $(VENV) data .dagster_home
