"""`make demo`: three sandbox companies synced, changed, synced again, verified and summarised.

Runs go into the Dagster instance under DAGSTER_HOME, so `make ui` afterwards
shows them with their partitions, materialisations and check results.
"""

from __future__ import annotations

import re
import textwrap
from datetime import timedelta

import dagster as dg

from ledger_pipeline.commands import add_partition, run_verify
from ledger_pipeline.definitions import build_definitions
from ledger_pipeline.defs.resources import shared_sandbox
from ledger_pipeline.lib import settings, warehouse
from ledger_pipeline.lib.tenants import QboConnection, Tenant, TenantRegistry
from ledger_pipeline.rails.qbo.entities import ENTITIES
from ledger_pipeline.rails.qbo.sandbox import DEMO_COMPANIES

CHANGE_DAYS = 3
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # the full event log is in the UI
EXAMPLE_QUERY = """
select vendor_name, count(*) as open_bills, sum(balance) as open_balance, currency
from mirror.qbo_bills
where tenant_id = ? and balance > 0 and not is_voided
group by vendor_name, currency
order by open_balance desc
limit 5
"""


def demo_tenants() -> list[Tenant]:
    """One tenant per sandbox demo company, named after the company's first word."""
    return [
        Tenant(re.sub(r"[^a-z0-9]+", "-", c.name.split()[0].lower()).strip("-"), QboConnection(c.realm_id))
        for c in DEMO_COMPANIES
    ]


def run_demo() -> int:
    instance = dg.DagsterInstance.get()
    registry = TenantRegistry(settings.tenants_path())
    tenants = demo_tenants()
    for tenant in tenants:
        registry.add(tenant)
        add_partition(tenant.tenant_id)
    print(f"Registered {len(tenants)} demo tenants: {', '.join(t.tenant_id for t in tenants)}")
    job = build_definitions().resolve_job_def("sync_tenants")
    checks: dict[str, list[bool]] = {t.tenant_id: [] for t in tenants}

    for round_no, label in ((1, "initial sync"), (2, "incremental sync")):
        if round_no == 2:
            box = shared_sandbox(settings.state_dir())
            box.advance(timedelta(days=CHANGE_DAYS))
            print(f"\nSandbox clock advanced {CHANGE_DAYS} days to {box.now:%Y-%m-%d %H:%M} UTC: the books changed.")
        print(f"\n== {label} ==")
        for tenant in tenants:
            result = job.execute_in_process(partition_key=tenant.tenant_id, instance=instance, run_config=QUIET)
            evaluations = result.get_asset_check_evaluations()
            checks[tenant.tenant_id] = [e.passed for e in evaluations]
            appended = sum(
                e.step_materialization_data.materialization.metadata["appended"].value
                for e in result.get_asset_materialization_events()
                if "appended" in e.step_materialization_data.materialization.metadata
            )
            print(f"  {tenant.tenant_id:<10} run {result.run_id[:8]}: {appended:>6} versions appended to the log")

    report = run_verify()
    print(f"\n== verify ==\n  {'OK' if report.ok else 'BROKEN'}: {report.rows} log rows in {report.chains} hash chains")
    for problem in report.problems:
        print(f"  {problem}")
    _summary(tenants, checks)
    return 0 if report.ok and all(all(v) for v in checks.values()) else 1


def _summary(tenants: list[Tenant], checks: dict[str, list[bool]]) -> None:
    conn = warehouse.connect(settings.duckdb_path(), read_only=True)
    try:
        print("\n== summary: mirror rows per entity (log versions, checks passed) ==")
        print("  " + f"{'tenant':<11}" + "".join(f"{e.table:>14}" for e in ENTITIES) + f"{'log':>8}{'checks':>9}")
        for tenant in tenants:
            params = [tenant.tenant_id]
            versions = conn.execute("select count(*) from raw.entity_log where tenant_id = ?", params).fetchall()[0][0]
            counts = [
                conn.execute(f"select count(*) from mirror.qbo_{e.table} where tenant_id = ?", params).fetchall()[0][0]
                for e in ENTITIES
            ]
            passed = checks[tenant.tenant_id]
            print(
                "  " + f"{tenant.tenant_id:<11}" + "".join(f"{n:>14}" for n in counts)
                + f"{versions:>8}{sum(passed):>5} of {len(passed)}"
            )
        sample = conn.execute(
            "select entity_id, source_version, payload, changes from raw.qbo_bills "
            "where tenant_id = ? and op = 'updated' order by seq desc limit 1",
            [tenants[0].tenant_id],
        ).fetchall()
        if sample:
            bill_id, version, payload, changes = sample[0]
            print(f"\n== bill {bill_id} of {tenants[0].tenant_id}, SyncToken {version}, as QBO returned it ==")
            print(textwrap.fill(payload, 110, initial_indent="  ", subsequent_indent="  ", break_on_hyphens=False))
            print(textwrap.fill(
                f"changes logged: {changes}", 110, initial_indent="  ", subsequent_indent="  ", break_on_hyphens=False
            ))
        first = tenants[0].tenant_id
        print(f"\n== example analyst query: open payables by vendor for {first} ==")
        print("  " + " ".join(EXAMPLE_QUERY.split()))
        frame = conn.sql(EXAMPLE_QUERY, params=[first]).pl()
        print("  " + str(frame).replace("\n", "\n  "))
        print(f"\nDuckDB file: {settings.duckdb_path()}  -  `make ui` shows these runs in Dagster.")
    finally:
        conn.close()
