# Everything runs from a project-local virtualenv built from the hash-pinned lock file.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export LEDGER_DUCKDB_PATH ?= $(CURDIR)/data/ledger.duckdb
export LEDGER_STATE_DIR ?= $(CURDIR)/data/state
export LEDGER_TENANTS_PATH ?= $(CURDIR)/data/tenants.json

.PHONY: install demo test ui sandbox lock clean bench bench-large bench-recon bench-read soak soak-recon

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

# The crash-storm soak (docs/reliability.md): real syncs SIGKILLed SOAK_KILLS times, then every invariant
# checked; prints the table. Stops by itself (kill, attempt and time bounds); exits 1 if anything was lost.
SOAK_KILLS ?= 500
SOAK_SEED ?= 1
soak: install
	$(BIN)/python -m ledger_pipeline_tests.storm --kills $(SOAK_KILLS) --seed $(SOAK_SEED)

# The reconciliation's scoring (recall and precision against the sandbox's ground truth: mixed businesses and each
# kind alone) under SOAK_SEEDS worlds instead of the suite's one or two; two tests per seed, ~1-2 minutes each.
SOAK_SEEDS ?= 1 2 3 4 5 6 8 9 10 11
soak-recon: install
	LEDGER_TEST_WORLD_SEEDS="$(SOAK_SEEDS)" $(BIN)/python -m pytest -n 2 -q \
		ledger_pipeline_tests/test_recon_breaks.py ledger_pipeline_tests/test_recon_kinds_alone.py -k "found"

# The performance benchmark against dlt and the fetch-and-parse floor (docs/performance.md).
# bench: 4 tenants x 25k objects, a few minutes on 2 cores; writes bench/results.json, exits 1 if verify or a check fails.
bench: install
	$(BIN)/python -m bench

# bench-large: one 1M-object tenant (dlt at its defaults would need tens of GB there, so only tuned dlt races).
bench-large: install
	$(BIN)/python -m bench --tenants 1 --objects 1000000 --dlt tuned --out bench/out-large \
	  --results bench/results-large.json

# bench-recon: what the recon tables and cross-rail marts cost in the demo's two syncs (docs/performance.md);
# writes bench/results-recon.json, exits 1 if they are 10 % or more of the initial sync. Then re-matching against
# matching everything at 40k-800k objects (bench/results-rematch.json), exits 1 if they differ.
bench-recon: install
	$(BIN)/python -m bench.recon_cost
	$(BIN)/python -m bench.rematch_scale

# bench-read: what publishing the read side costs in the demo's syncs (initial, incremental, nothing new) and the
# analysts' queries on it next to the ledger (docs/performance.md); writes bench/results-read.json, exits 1 if
# publishing is 5 % or more of the incremental sync.
bench-read: install
	$(BIN)/python -m bench.read_side

# Regenerate the lock after changing pyproject.toml (needs uv on the PATH).
lock:
	uv pip compile pyproject.toml --extra dev --extra bench --generate-hashes --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --no-header -q -o requirements.lock

clean:
	rm -rf $(VENV) data .dagster_home
