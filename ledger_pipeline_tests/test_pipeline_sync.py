"""End to end through real Dagster runs: sandbox -> client -> log -> mirrors -> checks."""

from __future__ import annotations

from datetime import timedelta

from ledger_pipeline.defs.jobs import rails_selection
from ledger_pipeline.defs.qbo.assets import LOG_ASSETS
from ledger_pipeline.lib import warehouse
from ledger_pipeline.lib.verify import verify
from ledger_pipeline.rails.qbo.entities import ENTITIES
from ledger_pipeline.rails.qbo.sandbox import DEMO_COMPANIES
from ledger_pipeline.rails.qbo.sync import FIRST_DELETIONS
from ledger_pipeline_tests.helpers import all_truth, log_count, mirror, truth

ACME_REALM = DEMO_COMPANIES[0].realm_id  # the company the synced_acme fixture's acme is on
QBO_LOGS = [a.key for a in LOG_ASSETS]


def test_initial_sync_mirrors_every_entity_and_passes_checks(project):
    realm = project.add_tenant("acme")

    result = project.sync("acme")

    assert result.success
    expected = all_truth(project, realm)
    for entity in ENTITIES:
        assert expected[entity.name], f"sandbox has no {entity.name}"
        assert mirror(project, "acme", entity) == expected[entity.name], entity.name
    # Besides every live object, a first sync logs the tombstones of the deletions CDC still shows (30 days), and
    # only those: the bank may show such a payment's money (rails/qbo/sync.py).
    since = project.sandbox.now - FIRST_DELETIONS
    tombstones = {(entity.name, i) for entity in ENTITIES
                  for i, at in project.sandbox.deletions(realm, entity.name).items() if at >= since}
    assert tombstones, "no deletion in the 30 days before the first sync"
    assert log_count(project, "acme") == sum(len(v) for v in expected.values()) + len(tombstones)
    assert set(project.query("select entity_type, entity_id from raw.entity_log where op = 'deleted' "
                             "and source = 'cdc' and payload ->> '$.status' = 'Deleted'")) == tombstones
    logged = {m.step_materialization_data.materialization.asset_key.path[-1]:
              m.step_materialization_data.materialization.metadata["tenants"].value["acme"]
              for m in result.get_asset_materialization_events()
              if "tenants" in m.step_materialization_data.materialization.metadata}
    for entity in ENTITIES:  # deletions of what no sync saw live, apart from those the circuit breaker weighs
        counts = logged[f"qbo_{entity.table}"]
        assert counts["deleted"] == 0 and counts["deleted_unseen"] == sum(e == entity.name for e, _ in tombstones)
    checks = result.get_asset_check_evaluations()
    qbo_part = rails_selection(["qbo"]).resolve(project.defs.resolve_asset_graph())  # what project.sync ran
    job = project.defs.resolve_job_def("sync_tenants").get_subset(asset_selection=qbo_part)
    in_job = job.asset_layer.asset_graph.asset_check_keys
    assert {c.asset_check_key for c in checks} == set(in_job) and len(in_job) >= 40
    assert all(c.passed for c in checks), [c.check_name for c in checks if not c.passed]
    assert project.query("select count(*) from raw.entity_log where op not in ('created', 'deleted')") == [(0,)]
    # Every step costs Dagster events: 9 logs, 1 for the history tables, 9 mirrors, 3 marts, 1 for the SQL
    # assertions, 1 for the rail counts, 2 for the (blocking) control totals, 1 for the cross-rail tables (over
    # what the tenant's rails show), 1 that publishes the read side; the stg views have no step.
    steps = {e.step_key for e in result.get_step_success_events()}
    expected = {"history_tables", "sql_assertions", "rail_counts_match", "reconciliation", "read_side__generation"}
    assert expected <= steps, sorted(steps)
    assert len(steps) == 28, sorted(steps)


def test_incremental_sync_appends_only_changed_objects(synced_acme):
    project, realm = synced_acme, ACME_REALM  # acme synced once
    before = all_truth(project, realm)
    deleted_before = {entity.name: set(project.sandbox.deletions(realm, entity.name)) for entity in ENTITIES}
    logged_before = log_count(project, "acme")

    project.sandbox.advance(timedelta(days=4))
    after = all_truth(project, realm)
    result = project.sync("acme")

    assert result.success
    # what changed, and what was made and deleted meanwhile (logged as its tombstone)
    changed = {
        name: {i for i in before[name].keys() | after[name].keys() if before[name].get(i) != after[name].get(i)}
        | (set(project.sandbox.deletions(realm, name)) - set(before[name]) - deleted_before[name])
        for name in before
    }
    assert sum(map(len, changed.values())) > 0, "the sandbox clock moved but nothing changed"
    appended = dict(
        project.query(
            "select entity_type, count(*) from raw.entity_log where tenant_id = 'acme' and seq > ? group by 1",
            [logged_before],
        )
    )
    assert appended == {k: len(v) for k, v in changed.items() if v}
    for entity in ENTITIES:
        assert mirror(project, "acme", entity) == after[entity.name], entity.name
    ops = dict(project.query("select op, count(*) from raw.entity_log where seq > ? group by op", [logged_before]))
    assert ops.get("updated", 0) > 0 and ops.get("deleted", 0) > 0, ops
    deleted_sources = project.query(
        "select distinct source from raw.entity_log where op = 'deleted' and seq > ?", [logged_before]
    )
    assert ("cdc",) in deleted_sources
    changes = project.query(
        "select changes from raw.entity_log where op = 'updated' and seq > ? limit 1", [logged_before]
    )[0][0]
    assert '"old"' in changes and '"new"' in changes


def test_rerun_and_multi_tenant_backfill_append_nothing(shared_ledger_copy):
    project = shared_ledger_copy  # acme, globex and initech synced; the books unchanged since acme's and globex's last
    logged = log_count(project)

    rerun = project.sync("acme")
    backfill = project.job().execute_in_process(
        instance=project.instance,
        tags={"dagster/asset_partition_range_start": "acme", "dagster/asset_partition_range_end": "globex"},
    )

    assert rerun.success and backfill.success
    assert log_count(project) == logged
    materialized = backfill.get_asset_materialization_events()
    assert {e.partition for e in materialized} == {"acme", "globex"}
    assert all(c.passed for c in backfill.get_asset_check_evaluations())


def test_deletes_older_than_cdc_window_are_found_by_the_sweep(synced_acme):
    project, realm = synced_acme, ACME_REALM  # acme synced once
    logged = log_count(project)

    project.sandbox.advance(timedelta(days=40))
    result = project.sync("acme")

    assert result.success
    swept = project.query(
        "select count(*) from raw.entity_log where op = 'deleted' and source = 'sweep' and seq > ?", [logged]
    )[0][0]
    assert swept > 0
    for entity in ENTITIES:
        assert mirror(project, "acme", entity) == truth(project, realm, entity), entity.name


def test_tenants_do_not_see_each_others_rows(shared_ledger):
    project = shared_ledger.project  # acme and globex synced (companies 0 and 1) in runs of their own; read only
    realm_a, realm_b = (project.registry.get(t).connection("qbo").realm_id for t in ("acme", "globex"))

    for entity in ENTITIES:
        assert mirror(project, "acme", entity) == truth(project, realm_a, entity)
        assert mirror(project, "globex", entity) == truth(project, realm_b, entity)
    shared_ids = project.query(
        "select count(*) from mirror.qbo_bills a join mirror.qbo_bills b using (qbo_id) "
        "where a.tenant_id = 'acme' and b.tenant_id = 'globex'"
    )[0][0]
    assert shared_ids > 0, "QBO ids are per realm, so both tenants should reuse some"
    conn = warehouse.connect(project.db_path, read_only=True)
    try:
        assert verify(conn).ok
        assert verify(conn, "acme").chains == len(ENTITIES)
    finally:
        conn.close()


def test_log_materialisations_record_chain_heads(project):
    project.add_tenant("acme")
    result = project.sync("acme", asset_selection=QBO_LOGS)  # the heads are the log steps'; mirrors add no evidence

    heads = {}
    for event in result.get_asset_materialization_events():
        mat = event.step_materialization_data.materialization
        if mat.asset_key.path[0] == "raw" and mat.asset_key.path[1].startswith("qbo_"):  # Stripe: not connected
            heads[mat.asset_key.path[1]] = mat.metadata["chain_head_hash"].value
    assert len(heads) == len(ENTITIES)
    stored = dict(
        project.query(
            "select 'qbo_' || entity_type, arg_max(row_hash, seq) from raw.entity_log group by entity_type"
        )
    )
    by_table = {f"qbo_{e.table}": stored[f"qbo_{e.name}"] for e in ENTITIES}
    assert heads == by_table
