"""What the CLI's commands do, beyond parsing: kept apart so tests and the demo call them directly."""

from __future__ import annotations

import os
import sys

from ledger_pipeline.lib import settings, warehouse
from ledger_pipeline.lib.verify import VerifyReport, compare_heads, verify


def verify_command(tenant_id: str | None) -> int:
    """Print the verification of every chain (or one tenant's); 0 when intact, 1 when not.

    Besides recomputing the chains in DuckDB, compares them with the chain heads
    that log materialisations recorded in Dagster's event log (DAGSTER_HOME), so
    a log rewritten wholesale with fresh hashes is caught too.
    """
    report = run_verify(tenant_id)
    scope = f"tenant {tenant_id}" if tenant_id else "all tenants"
    for problem in report.problems:
        print(f"verify: BROKEN - {problem}", file=sys.stderr)
    head_problems, heads = compare_recorded_heads(tenant_id)
    for problem in head_problems:
        print(f"verify: BROKEN - {problem}", file=sys.stderr)
    if report.ok and not head_problems:
        evidence = f"; {heads} chain heads recorded in Dagster's event log match" if heads is not None else ""
        print(f"verify: OK - {report.rows} log rows in {report.chains} chains intact ({scope}){evidence}")
        return 0
    broken = len(report.problems) + len(head_problems)
    print(f"verify: FAILED - {broken} problem(s) among {report.chains} chains ({scope})", file=sys.stderr)
    return 1


def compare_recorded_heads(tenant_id: str | None) -> tuple[list[str], int | None]:
    """Problems found against Dagster's recorded chain heads, and how many heads were compared (None: no instance)."""
    home = os.environ.get("DAGSTER_HOME")
    if not home or not os.path.isdir(home):
        why = "is not set" if not home else f"({home}) is not a directory"
        print(f"verify: DAGSTER_HOME {why}, so chain heads recorded by Dagster were not compared", file=sys.stderr)
        return [], None
    import dagster as dg

    from ledger_pipeline.defs.heads import recorded_heads
    from ledger_pipeline.defs.qbo.assets import LOG_ASSETS

    with dg.DagsterInstance.get() as instance:
        heads = recorded_heads(instance, [a.key for a in LOG_ASSETS], None if tenant_id is None else [tenant_id])
    conn = warehouse.connect(settings.duckdb_path(), read_only=True)
    try:
        return compare_heads(conn, heads), len(heads)
    finally:
        conn.close()


def run_verify(tenant_id: str | None = None) -> VerifyReport:
    from ledger_pipeline.lib import ids

    if tenant_id is not None:
        ids.tenant_id(tenant_id)
    conn = warehouse.connect(settings.duckdb_path(), read_only=True)
    try:
        return verify(conn, tenant_id)
    finally:
        conn.close()


def add_partition(tenant_id: str) -> bool:
    """Add the tenant's Dagster partition now when an instance is configured; otherwise the sensor will."""
    if not os.environ.get("DAGSTER_HOME"):
        print("DAGSTER_HOME is not set: the tenant sensor adds the partition when Dagster runs")
        return False
    import dagster as dg

    from ledger_pipeline.defs.partitions import TENANTS

    instance = dg.DagsterInstance.get()
    if instance.has_dynamic_partition(TENANTS.name, tenant_id):
        return False
    instance.add_dynamic_partitions(TENANTS.name, [tenant_id])
    return True
