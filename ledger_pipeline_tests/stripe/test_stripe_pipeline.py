"""The Stripe rail through Dagster: a Stripe-only and a QBO-only tenant in one run, incremental syncs through
events equal a whole re-read, events aged out fall back to a re-list and sweep, and disconnecting keeps the log."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from ledger_pipeline.defs.partitions import TENANTS
from ledger_pipeline.defs.schedules import range_tags
from ledger_pipeline.lib.tenants import TenantRegistry
from ledger_pipeline.rails.stripe.entities import ENTITIES
from ledger_pipeline.rails.stripe.sandbox import DEMO_ACCOUNTS, PLATFORM_KEY, SANDBOX_BASE_URL
from ledger_pipeline.rails.stripe.sandbox.shared import shared_sandbox
from ledger_pipeline.rails.stripe.client import StripeClient
from ledger_pipeline.rails.stripe.sync import listed
from ledger_pipeline_tests.conftest import TEST_SCALE
from ledger_pipeline_tests.helpers import failure_text


def _rail_objects(project, company: int, entity) -> dict[str, dict]:
    """Every object of the entity Stripe shows now for the demo account, read straight from the sandbox."""
    box = shared_sandbox(project.qbo.state_path, TEST_SCALE, False)
    with StripeClient(DEMO_ACCOUNTS[company].account_id, PLATFORM_KEY, base_url=SANDBOX_BASE_URL,
                      transport=box.transport()) as client:  # fmt: skip
        return {o["id"]: o for o in listed(client, entity)}


def _logged_current(project, tenant: str, entity) -> dict[str, dict]:
    """The newest logged payload of every live object: what the mirror is a function of."""
    import json

    rows = project.query(
        "select entity_id, payload, op from raw.entity_log where tenant_id = ? and rail = 'stripe' and "
        "entity_type = ? qualify row_number() over (partition by entity_id order by seq desc) = 1",
        [tenant, entity.name],
    )
    return {i: json.loads(p) for i, p, op in rows if op != "deleted"}


def _sync(project, tenants: list[str]) -> dg.ExecuteInProcessResult:
    job = project.defs.resolve_job_def("sync_tenants")
    return job.execute_in_process(instance=project.instance, tags=range_tags(tenants), raise_on_error=False)


def test_a_stripe_only_and_a_qbo_only_tenant_sync_in_one_run(project):
    project.add_tenant("books", 0, rails=("qbo",))
    project.add_tenant("shop", 1, rails=("stripe",))
    result = _sync(project, ["books", "shop"])
    assert result.success, failure_text(result)

    rails = dict(project.query("select tenant_id, list(distinct rail order by rail) from raw.entity_log group by 1"))
    assert rails == {"books": ["qbo"], "shop": ["stripe"]}
    for entity in ENTITIES:
        assert _logged_current(project, "shop", entity) == _rail_objects(project, 1, entity), entity.name
    assert all(c.passed for c in result.get_asset_check_evaluations()), [
        (c.asset_key.to_user_string(), c.check_name) for c in result.get_asset_check_evaluations() if not c.passed
    ]
    skipped = [
        e.step_materialization_data.materialization.metadata.get("skipped_not_connected")
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(["raw", "stripe_charges"])
    ]
    assert skipped and skipped[0].value == ["books"]
    statuses = project.instance.get_status_by_partition(dg.AssetKey(["raw", "qbo_bills"]), ["shop"], TENANTS)
    assert statuses.get("shop") != dg.AssetPartitionStatus.FAILED


def test_incremental_via_events_equals_a_whole_read_and_aged_out_events_relist(project):
    project.add_tenant("shop", 1, rails=("stripe",))  # the books move on all the same: one world, one clock
    assert project.sync("shop").success
    sandbox = project.sandbox
    for days in (3, 40):  # 40: past Stripe's 30 days of events, so the saved position is refused
        sandbox.advance(timedelta(days=days))
        result = project.sync("shop", raise_on_error=False)
        assert result.success, failure_text(result)
        for entity in ENTITIES:
            assert _logged_current(project, "shop", entity) == _rail_objects(project, 1, entity), entity.name
    sources = dict(project.query(
        "select source, count(*) from raw.entity_log where tenant_id = 'shop' and rail = 'stripe' group by 1"
    ))  # fmt: skip
    assert sources.get("event", 0) > 0  # the 3-day step went through the events feed
    twice = project.query(  # a version logged again right after itself would be a duplicate
        "select count(*) from (select payload_hash = lag(payload_hash) over w and op = lag(op) over w as again "
        "from raw.entity_log where rail = 'stripe' "
        "window w as (partition by tenant_id, entity_type, entity_id order by seq)) where again"
    )[0][0]
    assert twice == 0


def test_disconnecting_stripe_stops_its_syncs_and_keeps_its_log(project):
    project.add_tenant("shop", 1, rails=("qbo", "stripe"))
    assert project.sync("shop").success
    logged = project.query("select count(*) from raw.entity_log where rail = 'stripe'")[0][0]
    assert logged > 0
    TenantRegistry(project.root / "tenants.json").disconnect("shop", "stripe")
    project.sandbox.advance(timedelta(days=5))
    result = project.sync("shop")
    assert result.success
    assert project.query("select count(*) from raw.entity_log where rail = 'stripe'")[0][0] == logged
    assert project.query("select count(*) from mirror.stripe_charges where tenant_id = 'shop'")[0][0] > 0
