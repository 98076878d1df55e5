"""matches_log per run is proportional to the change and keeps its promise; the nightly audit checks everything.

Per run, missing / extra / stale / duplicated rows are looked for in every entity of the tenant, and rows are
compared column for column with the model for the entities the run's refresh touched. With full_check (the
nightly audit) every row is compared.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from ledger_pipeline.defs.models import assets as model_assets
from ledger_pipeline.defs.rails import LOG_ASSETS
from ledger_pipeline.defs.resources import TenantRegistryResource
from ledger_pipeline.defs.schedules import nightly_audit
from ledger_pipeline.rails.qbo.sandbox import DEMO_COMPANIES

LOG = dg.AssetKey(["raw", "qbo_bills"])
BILLS = dg.AssetKey(["mirror", "qbo_bills"])
BILLS_AFTER_LOG = [LOG, BILLS]


def _matches_log(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    (check,) = [
        c for c in result.get_asset_check_evaluations() if c.asset_key == BILLS and c.check_name == "matches_log"
    ]
    return check


def _bill_ids(project, count: int) -> list[str]:
    return [r[0] for r in project.query("select qbo_id from mirror.qbo_bills order by qbo_id limit ?", [count])]


def test_a_wrong_row_written_by_this_refresh_fails_the_incremental_check(synced_acme, monkeypatch):
    project, realm = synced_acme, DEMO_COMPANIES[0].realm_id  # acme synced once, on company 0
    for bill_id in _bill_ids(project, 3):
        project.sandbox.touch(realm, "Bill", bill_id)
    broken, refreshed = [], []
    real_refresh = model_assets.refresh_tenants

    def refresh_writing_one_wrong_row(conn, model, tenant_ids, **kwargs):
        """A refresh with a bug: one of the bills it just refreshed gets a wrong total."""
        all_stats = real_refresh(conn, model, tenant_ids, **kwargs)
        if model.name == "mirror.qbo_bills":
            (stats,) = all_stats
            (bill_id,) = conn.execute(
                "select min(qbo_id) from mirror.qbo_bills where tenant_id = ? and qbo_id in "
                "(select entity_id from raw.qbo_bills where tenant_id = ? and seq > ? and seq <= ?)",
                [stats.tenant_id, stats.tenant_id, stats.since, stats.watermark],
            ).fetchone()
            conn.execute("update mirror.qbo_bills set total_amt = total_amt + 1 where qbo_id = ?", [bill_id])
            broken.append(bill_id)
            refreshed.append(stats)
        return all_stats

    monkeypatch.setattr(model_assets, "refresh_tenants", refresh_writing_one_wrong_row)
    result = project.sync("acme", asset_selection=BILLS_AFTER_LOG, raise_on_error=False)

    check = _matches_log(result)
    meta = check.metadata["tenants"].value["acme"]
    (stats,) = refreshed
    touched = project.query(
        "select count(distinct entity_id) from raw.qbo_bills where tenant_id = ? and seq > ? and seq <= ?",
        ["acme", stats.since, stats.watermark],
    )[0][0]
    assert broken[0] is not None and 0 <= stats.since and touched == 3
    assert not check.passed
    assert meta["scope"] == "incremental" and meta["compared_column_for_column"] == touched
    assert check.metadata["scope"].value == f"incremental: {touched} entities compared column for column"
    assert meta["differing_ids"] == broken and meta["differing_from_rebuild"] == 1
    assert (meta["missing"], meta["extra"], meta["stale"], meta["duplicated"]) == (0, 0, 0, 0)


def test_missing_extra_stale_and_duplicated_rows_are_caught_for_any_entity_incrementally(synced_acme):
    project = synced_acme  # acme synced once
    gone, copied, stale, doubled = _bill_ids(project, 4)
    conn = project.connect()
    try:
        conn.execute("delete from mirror.qbo_bills where qbo_id = ?", [gone])
        conn.execute(
            "insert into mirror.qbo_bills select * replace ('no-such-bill' as qbo_id) from mirror.qbo_bills "
            "where qbo_id = ?",
            [copied],
        )
        conn.execute("update mirror.qbo_bills set payload_hash = md5(payload_hash) where qbo_id = ?", [stale])
        conn.execute("insert into mirror.qbo_bills select * from mirror.qbo_bills where qbo_id = ?", [doubled])
    finally:
        conn.close()

    # Nothing changed on the rail: this run refreshes no bill and compares none column for column.
    result = project.sync("acme", asset_selection=BILLS_AFTER_LOG, raise_on_error=False)

    check = _matches_log(result)
    meta = check.metadata["tenants"].value["acme"]
    assert not check.passed
    assert check.metadata["scope"].value == "incremental: 0 entities compared column for column"
    assert meta["missing_ids"] == [gone] and meta["missing"] == 1
    assert meta["extra_ids"] == ["no-such-bill"] and meta["extra"] == 1
    assert meta["stale_ids"] == [stale] and meta["stale"] == 1
    assert meta["duplicated"] == 1
    assert BILLS in {e.asset_key for e in result.get_asset_materialization_events()}


def _nightly_audit_request(tenants: list[str]) -> dg.RunRequest:
    """What the schedule asks for with these tenants' partitions (schedules evaluate on a persistent instance) and
    definitions it is not told about: the whole job."""
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("tenants", tenants)
        return _audit_tick(instance)


def _audit_tick(instance: dg.DagsterInstance) -> dg.RunRequest | dg.SkipReason:
    registry = TenantRegistryResource(path=str(Path(instance.root_directory) / "tenants.json"))
    with dg.build_schedule_context(instance, datetime.now(UTC), resources={"tenants": registry}) as tick:
        return nightly_audit(tick)


def test_an_untouched_row_edited_in_place_is_caught_by_the_nightly_audit(synced_acme):
    project = synced_acme  # acme synced once
    (bill_id,) = _bill_ids(project, 1)
    conn = project.connect()
    try:
        conn.execute("update mirror.qbo_bills set doc_number = 'edited' where qbo_id = ?", [bill_id])
    finally:
        conn.close()

    hourly = project.sync("acme", asset_selection=BILLS_AFTER_LOG, raise_on_error=False)
    request = _nightly_audit_request(["acme"])
    audit = project.defs.resolve_job_def("sync_tenants").execute_in_process(
        instance=project.instance, run_config=request.run_config, tags=request.tags,
        asset_selection=BILLS_AFTER_LOG, raise_on_error=False,
    )  # fmt: skip

    assert _matches_log(hourly).passed, "a column edit of a bill no run refreshed is outside the per-run scope"
    check = _matches_log(audit)
    assert not check.passed and check.metadata["scope"].value == "full"
    assert check.metadata["tenants"].value["acme"]["differing_ids"] == [bill_id]


def test_nightly_audit_is_one_run_over_every_tenant_with_full_checks():
    with dg.instance_for_test() as instance:
        assert isinstance(_audit_tick(instance), dg.SkipReason)

    request = _nightly_audit_request(["acme", "globex", "initech"])

    assert request.tags["dagster/asset_partition_range_start"] == "acme"
    assert request.tags["dagster/asset_partition_range_end"] == "initech"
    refreshed_ops = {a.op.name for a in model_assets.REFRESHED_ASSETS}
    # 26 mirrors (9 QBO, 7 Stripe, 3 Plaid, 7 Ramp) and the history step
    assert len(refreshed_ops) == 27 and "history_tables" in refreshed_ops
    assert {name for name, op in request.run_config["ops"].items() if op["config"].get("full_check")} == refreshed_ops
    log_ops = {a.op.name for a in LOG_ASSETS}
    assert len(log_ops) == 9 + 7 + 3 + 7  # every rail's log assets
    assert {name for name, op in request.run_config["ops"].items() if op["config"].get("full_audit")} == log_ops


def test_in_a_run_over_many_tenants_each_difference_is_named_under_its_own_tenant(project):
    tenants = ["acme", "globex", "initech"]
    for company, tenant in enumerate(tenants):
        project.add_tenant(tenant, company)
    history = dg.AssetKey(["history", "qbo_bills"])
    job = project.job()
    tags = {"dagster/asset_partition_range_start": tenants[0], "dagster/asset_partition_range_end": tenants[-1]}
    assert job.execute_in_process(instance=project.instance, tags=tags).success
    conn = project.connect()
    try:
        (gone,) = conn.execute("select min(qbo_id) from mirror.qbo_bills where tenant_id = 'globex'").fetchone()
        conn.execute("delete from mirror.qbo_bills where tenant_id = 'globex' and qbo_id = ?", [gone])
        (lost,) = conn.execute("select min(log_seq) from history.qbo_bills where tenant_id = 'initech'").fetchone()
        conn.execute("delete from history.qbo_bills where log_seq = ?", [lost])
    finally:
        conn.close()

    result = job.execute_in_process(
        instance=project.instance, tags=tags, asset_selection=[LOG, BILLS, history], raise_on_error=False
    )

    mirror = _matches_log(result).metadata["tenants"].value
    assert {t: (m["missing"], m["missing_ids"]) for t, m in mirror.items()} == {
        "acme": (0, []), "globex": (1, [gone]), "initech": (0, [])}  # fmt: skip
    (check,) = [c for c in result.get_asset_check_evaluations() if c.asset_key == history]
    kept = check.metadata["tenants"].value
    assert not check.passed
    assert {t: (m["missing"], m["missing_seqs"]) for t, m in kept.items()} == {
        "acme": (0, []), "globex": (0, []), "initech": (1, [lost])}  # fmt: skip
    assert all(m["versions_in_log"] == m["rows"] + (t == "initech") for t, m in kept.items())
