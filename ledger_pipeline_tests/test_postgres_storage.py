"""deploy/dagster-postgres.yaml, the instance settings for many tenants, runs the real sync on a real
Postgres server: each tenant's materialisations and chain heads land in Postgres, written in batches,
and the next run's chain checks start from the heads read back from there."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest

from ledger_pipeline.defs.heads import recorded_heads
from ledger_pipeline.defs.models.assets import REFRESHED_ASSETS, TABLE_ASSETS
from ledger_pipeline.defs.qbo.assets import LOG_ASSETS
from ledger_pipeline.lib.verify import compare_heads
from ledger_pipeline_tests.conftest import Project
from ledger_pipeline_tests.test_dagster_dev_backfill import REPO, _free_port

TENANTS = ["acme", "globex"]


def _server_binaries() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    installed = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return installed[-1].parent if installed else None


@pytest.fixture(scope="module")
def postgres_settings() -> Iterator[dict[str, str]]:
    """A throwaway Postgres server on loopback, from the machine's initdb and pg_ctl, as DAGSTER_PG_* values."""
    binaries = _server_binaries()
    if binaries is None:
        pytest.skip("no PostgreSQL server (initdb) on this machine")
    as_owner: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="ledger-pg-"))  # not under pytest's 0700 folders: the server must reach it
    if os.geteuid() == 0:  # the server refuses to run as root
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root, and no postgres user to run the server as")
        os.chown(root, owner.pw_uid, owner.pw_gid)
        as_owner = ["runuser", "-u", "postgres", "--"]
    port, data = _free_port(), str(root / "data")
    server = [*as_owner, binaries / "pg_ctl", "-D", data, "-l", str(root / "server.log"), "-w"]
    try:
        subprocess.run([*as_owner, binaries / "initdb", "-D", data, "-A", "trust", "-U", "postgres"],
                       check=True, capture_output=True, text=True)  # fmt: skip
        # a throwaway server: durability across a power cut is not what the tests look at, fsyncs only cost time
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off -c synchronous_commit=off"
        subprocess.run([*server, "-o", options, "start"], check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:  # the machine cannot host a server; the settings are not at fault
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"could not start a throwaway Postgres server: {(exc.stderr or exc.stdout).strip()[-300:]}")
    try:
        yield {"DAGSTER_PG_USER": "postgres", "DAGSTER_PG_PASSWORD": "", "DAGSTER_PG_HOST": "127.0.0.1",
               "DAGSTER_PG_PORT": str(port), "DAGSTER_PG_DB": "postgres"}  # fmt: skip
    finally:
        subprocess.run([*server, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_project(project, postgres_settings, tmp_path, monkeypatch) -> Iterator[Project]:
    """The test project on an instance made from deploy/dagster-postgres.yaml, events written in batches."""
    for name, value in postgres_settings.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "50")
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster-postgres.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.wipe()
        yield Project(project.root, instance, project.qbo, project.defs)


def _sync_range(project: Project) -> dg.ExecuteInProcessResult:
    tags = {"dagster/asset_partition_range_start": TENANTS[0], "dagster/asset_partition_range_end": TENANTS[-1]}
    return project.job().execute_in_process(instance=project.instance, tags=tags)


def _synced_keys(project: Project) -> list[dg.AssetKey]:
    """Every log, mirror, history and mart asset of the rails the tenants connected (what `_sync_range` ran)."""
    in_run = project.job().asset_layer.asset_graph.materializable_asset_keys
    return [key for a in [*LOG_ASSETS, *REFRESHED_ASSETS, *TABLE_ASSETS] for key in a.keys if key in in_run]


def test_a_run_over_two_tenants_records_every_partition_and_chain_head_in_postgres(postgres_project):
    project = postgres_project
    storage = project.instance.event_log_storage
    assert type(storage).__name__ == "PostgresEventLogStorage", "deploy/dagster-postgres.yaml gives Postgres storage"
    for company, tenant in enumerate(TENANTS):
        project.add_tenant(tenant, company)

    assert _sync_range(project).success
    for key in _synced_keys(project):
        assert project.instance.get_materialized_partitions(key) == set(TENANTS), key.to_user_string()
    heads = recorded_heads(project.instance, [a.key for a in LOG_ASSETS], TENANTS)
    assert {h.tenant_id for h in heads} == set(TENANTS)
    assert {(h.tenant_id, h.entity_type) for h in heads} == set(
        project.query("select distinct tenant_id, entity_type from raw.entity_log")
    ), "one recorded head per chain"
    conn = project.connect()
    try:
        assert compare_heads(conn, heads) == []
    finally:
        conn.close()

    project.sandbox.advance(timedelta(days=2))
    again = project.sync("acme", asset_selection=[a.key for a in LOG_ASSETS])  # the chain checks are the logs'
    chain_checks = [c for c in again.get_asset_check_evaluations() if c.check_name == "chain_intact"]
    assert chain_checks and all(c.passed for c in chain_checks)
    assert all(c.metadata["scope"].value.startswith("incremental: rows after") for c in chain_checks), [
        c.metadata["scope"].value for c in chain_checks
    ]


def test_planned_events_as_one_subset_per_asset_keep_partitions_and_heads(postgres_project, monkeypatch):
    """The opt-in that cuts a range run's events (docs/architecture.md): one planned event per asset, not per tenant."""
    monkeypatch.setenv("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "1")
    project = postgres_project
    for company, tenant in enumerate(TENANTS):
        project.add_tenant(tenant, company)

    result = _sync_range(project)
    assert result.success
    planned = project.instance.all_logs(result.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
    planned_keys = [e.dagster_event.event_specific_data.asset_key for e in planned]
    assert len(planned_keys) == len(set(planned_keys)), "one planned event per asset"
    for key in _synced_keys(project):
        assert project.instance.get_materialized_partitions(key) == set(TENANTS), key.to_user_string()
    assert {h.tenant_id for h in recorded_heads(project.instance, [a.key for a in LOG_ASSETS], TENANTS)} == set(
        TENANTS
    )
