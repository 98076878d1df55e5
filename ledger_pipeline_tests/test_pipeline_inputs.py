"""The Dagster project as a whole: it loads, the sensor adds tenants, bad input fails clearly and writes nothing."""

from __future__ import annotations

import json

import dagster as dg
import duckdb
import pytest

from ledger_pipeline import cli
from ledger_pipeline.defs.partitions import TENANTS
from ledger_pipeline.defs.resources import LedgerDuckDB, TenantRegistryResource
from ledger_pipeline.defs.sensors import tenant_registry_sensor
from ledger_pipeline.definitions import build_definitions, defs
from ledger_pipeline.lib import warehouse
from ledger_pipeline.lib.tenants import Tenant
from ledger_pipeline.rails.qbo.rail import QboConnection
from ledger_pipeline.rails.qbo.sandbox import DEMO_COMPANIES
from ledger_pipeline_tests.conftest import Project
from ledger_pipeline_tests.helpers import failure_text


def test_definitions_load_with_every_asset_check_job_schedule_and_sensor():
    repo = defs.get_repository_def()
    keys = {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()}
    assert {"raw/qbo_bills", "mirror/qbo_bills", "raw/qbo_vendors", "mirror/qbo_payments"} <= keys
    # raw, stg, mirror, history per QBO, Stripe, Plaid and Ramp entity; 5 marts; the cursors; the 3 core tables;
    # recon's horizons, link keys, links, exceptions, breaks, pending and bill custody, and the people's decisions
    # they read; the read side
    assert len(keys) == 4 * (9 + 7 + 3 + 7) + 5 + 1 + 3 + 7 + 1 + 1
    assert "read_side/generation" in keys
    assert repo.has_job("record_decision")
    assert "raw/recon_decisions" not in {k.to_user_string() for k in defs.resolve_job_def("sync_tenants").asset_layer
                                         .executable_asset_keys}  # fmt: skip
    bills = repo.asset_graph.get(dg.AssetKey(["mirror", "qbo_bills"]))
    # The view it reads (lineage) and the log asset under that view (the step the mirror's step waits for).
    assert bills.parent_keys == {dg.AssetKey(["stg", "qbo_bills"]), dg.AssetKey(["raw", "qbo_bills"])}
    assert not repo.asset_graph.get(dg.AssetKey(["stg", "qbo_bills"])).is_executable
    assert repo.asset_graph.get(dg.AssetKey(["stg", "qbo_bills"])).parent_keys == {dg.AssetKey(["raw", "qbo_bills"])}
    assert {c.name for c in bills.check_keys} == {
        "rows_valid", "matches_log", "rail_count_matches", "matches_agedpayables",
        "balance_matches_payments", "lines_sum_to_total", "voided_is_zero",
    }  # fmt: skip
    assert defs.resolve_job_def("sync_tenants").partitions_def == TENANTS
    assert repo.has_schedule_def("hourly_sync") and repo.has_sensor_def("tenant_registry_sensor")


def test_sensor_turns_new_registry_entries_into_partitions_and_first_runs(project):
    project.add_tenant("acme")
    for company, tenant in ((1, "initech"), (2, "globex")):
        project.registry.add(Tenant(tenant, QboConnection(DEMO_COMPANIES[company].realm_id)))
    resource = TenantRegistryResource(path=str(project.root / "tenants.json"))

    result = tenant_registry_sensor(dg.build_sensor_context(instance=project.instance, resources={"tenants": resource}))

    (request,) = result.dynamic_partitions_requests
    assert list(request.partition_keys) == ["globex", "initech"]
    (first_sync,) = result.run_requests  # the new tenants share one run: a range over the partitions just added
    assert first_sync.tags == {"dagster/asset_partition_range_start": "globex",
                               "dagster/asset_partition_range_end": "initech"}  # fmt: skip
    project.instance.add_dynamic_partitions(TENANTS.name, list(request.partition_keys))  # as the daemon does first
    vendors = dg.AssetKey(["raw", "qbo_vendors"])
    run = project.defs.resolve_job_def("sync_tenants").execute_in_process(
        instance=project.instance, tags=first_sync.tags, asset_selection=[vendors]
    )
    assert run.success and {e.partition for e in run.get_asset_materialization_events()} == {"globex", "initech"}
    again = tenant_registry_sensor(dg.build_sensor_context(instance=project.instance, resources={"tenants": resource}))
    assert isinstance(again, dg.SkipReason)


def test_unknown_tenant_partition_fails_naming_it_and_writes_nothing(project):
    project.instance.add_dynamic_partitions(TENANTS.name, ["ghost"])

    result = project.sync("ghost", raise_on_error=False)

    assert not result.success
    assert "unknown tenant 'ghost'" in failure_text(result)
    assert project.query("select count(*) from raw.entity_log") == [(0,)]


def test_missing_live_credentials_fail_naming_the_variable(project, monkeypatch):
    monkeypatch.delenv("QBO_CLIENT_ID", raising=False)
    project.registry.add(Tenant("live", QboConnection("123145", "env", "QBO_REFRESH_TOKEN_LIVE")))
    project.instance.add_dynamic_partitions(TENANTS.name, ["live"])

    result = project.sync("live", raise_on_error=False)

    assert not result.success
    assert "QBO_CLIENT_ID is not set" in failure_text(result)
    assert project.query("select count(*) from raw.entity_log") == [(0,)]


def test_bad_sync_config_is_refused_before_running(project):
    project.add_tenant("acme")
    with pytest.raises(dg.DagsterInvalidConfigError, match="sweep"):
        project.sync("acme", run_config={"ops": {"raw__qbo_bills": {"config": {"sweep": "sometimes"}}}})
    assert not project.db_path.exists()


@pytest.mark.parametrize("field, value", [("batch_size", 0), ("tenants_ahead", -1), ("tenants_ahead", 33)])
def test_out_of_range_config_fails_its_step_naming_the_field(project, field, value):
    project.add_tenant("acme")

    result = project.sync(
        "acme", run_config={"ops": {"raw__qbo_bills": {"config": {field: value}}}}, raise_on_error=False
    )

    assert not result.success and field in failure_text(result)
    assert project.query("select count(*) from raw.entity_log where entity_type = 'Bill'") == [(0,)]


@pytest.mark.parametrize("content", ["text", "foreign"])
def test_unusable_database_file_fails_clearly(project, content):
    bad = project.root / "other.duckdb"
    if content == "text":
        bad.write_text("this is a spreadsheet export\n" * 10)
        expected = "not a DuckDB database"
    else:
        conn = duckdb.connect(str(bad))
        conn.execute("create table invoices (id integer)")
        conn.close()
        expected = "not a ledger_pipeline one"
    project.add_tenant("acme")
    defs_bad = build_definitions(
        warehouse=LedgerDuckDB(database=str(bad)), qbo=project.qbo, tenants=project.defs.resources["tenants"]
    )
    broken = Project(project.root, project.instance, project.qbo, defs_bad)

    result = broken.sync("acme", raise_on_error=False)

    assert not result.success and expected in failure_text(result)
    with pytest.raises(warehouse.WarehouseError, match=expected):
        warehouse.connect(bad)
    if content == "foreign":
        conn = duckdb.connect(str(bad), read_only=True)
        assert conn.execute("select table_name from information_schema.tables").fetchall() == [("invoices",)]
        conn.close()


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["tenants", "add", "Acme;drop table x", "--qbo-realm", "1"], "invalid tenant id"),
        (["tenants", "add", "../../etc", "--qbo-realm", "1"], "invalid tenant id"),
        (["tenants", "add", "acme", "--qbo-realm", "1 or 1=1"], "invalid QBO realm id"),
        (["tenants", "add", "acme", "--qbo-realm", "1", "--credentials", "env"], "environment variable name"),
        (["tenants", "add", "acme", "--qbo-realm", "42"], "not a sandbox account"),
        (["verify", "--tenant", "x' or '1'='1"], "invalid tenant id"),
    ],
)
def test_cli_rejects_malformed_input(tmp_path, monkeypatch, capsys, argv, expected):
    monkeypatch.setenv("LEDGER_TENANTS_PATH", str(tmp_path / "tenants.json"))
    monkeypatch.setenv("LEDGER_DUCKDB_PATH", str(tmp_path / "ledger.duckdb"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)

    assert cli.main(argv) == 2
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "tenants.json").exists()


def test_cli_registers_and_lists_tenants(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LEDGER_TENANTS_PATH", str(tmp_path / "tenants.json"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    realm = DEMO_COMPANIES[0].realm_id

    assert cli.main(["tenants", "add", "acme", "--qbo-realm", realm]) == 0
    assert cli.main(["tenants", "add", "acme", "--qbo-realm", realm]) == 0
    assert cli.main(["tenants", "add", "acme", "--qbo-realm", DEMO_COMPANIES[1].realm_id]) == 2
    assert cli.main(["tenants", "list"]) == 0

    out = capsys.readouterr().out
    assert "already registered" in out and f"acme\tqbo realm {realm}" in out
    stored = json.loads((tmp_path / "tenants.json").read_text())
    assert stored == {"tenants": {"acme": {"qbo": {"realm_id": realm, "credentials": "sandbox"}}}}
