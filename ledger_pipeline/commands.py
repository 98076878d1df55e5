"""What the CLI's commands do, beyond parsing: kept apart so tests and the demo call them directly."""

from __future__ import annotations

import os
import sys

from ledger_pipeline.lib import settings, warehouse
from ledger_pipeline.lib.verify import VerifyReport, verify


def verify_command(tenant_id: str | None) -> int:
    """Print the verification of every chain (or one tenant's); 0 when intact, 1 when not."""
    report = run_verify(tenant_id)
    scope = f"tenant {tenant_id}" if tenant_id else "all tenants"
    if report.ok:
        print(f"verify: OK - {report.rows} log rows in {report.chains} chains intact ({scope})")
        return 0
    for problem in report.problems:
        print(f"verify: BROKEN - {problem}", file=sys.stderr)
    print(f"verify: FAILED - {len(report.problems)} broken chain(s) among {report.chains} ({scope})", file=sys.stderr)
    return 1


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
