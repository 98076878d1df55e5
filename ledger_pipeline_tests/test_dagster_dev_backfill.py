"""`dagster dev` on workspace.yaml: the code location loads without warnings, and a backfill over every
tenant launched through GraphQL (what the UI's backfill button sends) runs to success as one run."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import httpx
import pytest

from ledger_pipeline.defs.partitions import TENANTS
from ledger_pipeline.demo import demo_tenants
from ledger_pipeline.lib.tenants import TenantRegistry
from ledger_pipeline.rails.qbo.entities import ENTITIES

REPO = Path(__file__).resolve().parents[1]
LAUNCH = """mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }"""
STATUS = """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
  ... on PartitionBackfill { status numPartitions runs { runId status } } } }"""
LOCATION = """{ workspaceOrError { ... on Workspace { locationEntries { name
  locationOrLoadError { __typename ... on PythonError { message } } } } } }"""

# `dagster dev`'s daemon acts on backfills once every 30 s (dagster._daemon.controller.DEFAULT_DAEMON_INTERVAL_SECONDS,
# hard-coded, no instance setting): waiting for it to launch the backfill's run, then to mark the backfill complete,
# was half of this test. Every Python process `dagster dev` starts here finds this sitecustomize.py on PYTHONPATH;
# in the daemon alone it makes that loop look every second. Nothing the test asserts (the location loads without
# warnings, the GraphQL launch, one successful run, the backfill's final status) depends on how often the daemon
# looks; should an interpreter skip sitecustomize, the test only takes longer.
DAEMON_LOOP_SECONDS = 1
SITECUSTOMIZE = f"""import sys

if "dagster._daemon" in sys.orig_argv:  # `dagster dev` runs the daemon as `python -m dagster._daemon run ...`
    import dagster._daemon.controller

    dagster._daemon.controller.DEFAULT_DAEMON_INTERVAL_SECONDS = {DAEMON_LOOP_SECONDS}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(url: str, query: str, variables: dict | None = None) -> dict:
    response = httpx.post(url, json={"query": query, "variables": variables or {}}, timeout=30)
    response.raise_for_status()
    return response.json()["data"]


@pytest.mark.slow
def test_backfill_over_all_tenants_through_graphql_completes(fast_tmp_path):
    tmp_path = fast_tmp_path  # Dagster's SQLite storage, written by the webserver, the daemon and the run
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    registry = TenantRegistry(tmp_path / "tenants.json")
    tenants = demo_tenants()[:2]
    for tenant in tenants:
        registry.add(tenant)
    with dg.DagsterInstance.from_config(str(home)) as instance:  # as `ledger-pipeline tenants add` does
        instance.add_dynamic_partitions(TENANTS.name, [t.tenant_id for t in tenants])
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(SITECUSTOMIZE)
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(hooks), os.environ.get("PYTHONPATH")) if p),
        "DAGSTER_HOME": str(home),
        "LEDGER_DUCKDB_PATH": str(tmp_path / "ledger.duckdb"),
        "LEDGER_STATE_DIR": str(tmp_path / "state"),
        "LEDGER_TENANTS_PATH": str(tmp_path / "tenants.json"),
    }
    log_path = tmp_path / "dagster_dev.log"
    dagster = Path(sys.executable).with_name("dagster")
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [str(dagster), "dev", "-w", "workspace.yaml", "-p", str(port)],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}/graphql"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                entries = _graphql(url, LOCATION)["workspaceOrError"]["locationEntries"]
                if entries and entries[0]["locationOrLoadError"]:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(1)
        assert entries[0]["locationOrLoadError"]["__typename"] == "RepositoryLocation", entries

        keys = [["raw", f"qbo_{e.table}"] for e in ENTITIES] + [["mirror", f"qbo_{e.table}"] for e in ENTITIES]
        params = {
            "assetSelection": [{"path": k} for k in keys],
            "partitionNames": [t.tenant_id for t in tenants],
        }
        while True:
            launched = _graphql(url, LAUNCH, {"p": params})["launchPartitionBackfill"]
            if launched["__typename"] == "LaunchBackfillSuccess":
                break
            assert time.monotonic() < deadline, launched
            time.sleep(2)
        while True:
            backfill = _graphql(url, STATUS, {"id": launched["backfillId"]})["partitionBackfillOrError"]
            if backfill["status"] not in ("REQUESTED",):
                break
            assert time.monotonic() < deadline + 120, backfill
            time.sleep(1)
        assert backfill["status"] == "COMPLETED_SUCCESS", (backfill, log_path.read_text()[-3000:])
        assert backfill["numPartitions"] == len(tenants)
        assert [r["status"] for r in backfill["runs"]] == ["SUCCESS"]
        # Read before stopping: the group-wide SIGTERM can reach the code server before `dagster dev` notices it is
        # shutting down, which then warns that the code server exited; that is the test's own shutdown, not the code's.
        log_text = log_path.read_text()
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=60)
    warnings = [
        line for line in log_text.splitlines()
        if ("WARNING" in line or "Warning:" in line) and "dev_command" not in line
    ]  # fmt: skip
    assert not warnings, warnings
