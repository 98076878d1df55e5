"""What the CLI's commands do, beyond parsing: kept apart so tests and the demo call them directly."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ledger_pipeline.lib import dagster_home, settings, warehouse
from ledger_pipeline.lib.verify import VerifyReport, compare_heads, verify

if TYPE_CHECKING:
    import dagster as dg


def dagster_instance() -> dg.DagsterInstance:
    """The Dagster instance under DAGSTER_HOME, checked first: a bad DAGSTER_HOME (unset, relative, not a folder,
    a dagster.yaml that is not settings) is one DagsterHomeError naming it and the fix, not a Dagster traceback."""
    home = dagster_home.check()
    import dagster as dg

    try:
        return dg.DagsterInstance.get()
    except (dg.DagsterInvalidConfigError, dg.DagsterInvariantViolationError) as exc:
        errors = getattr(exc, "errors", None)
        reason = errors[0].message.split(" Expected:")[0] if errors else warehouse.one_line(exc)
        raise dagster_home.DagsterHomeError(
            f"Dagster refuses the settings in {home / dagster_home.CONFIG_FILE} (DAGSTER_HOME): "
            f"{' '.join(reason.split()).rstrip('.')}; fix it or replace it with deploy/dagster.yaml"
        ) from None


def verify_command(tenant_id: str | None) -> int:
    """Print the verification of every chain (or one tenant's); 0 when intact, 1 when not (or when the tenant
    has nothing in the log: a misspelt tenant must not pass as a clean audit).

    Besides recomputing the chains in DuckDB, compares them with the chain heads
    that log materialisations recorded in Dagster's event log (DAGSTER_HOME), so
    a log rewritten wholesale with fresh hashes is caught too. A bad DAGSTER_HOME
    is refused before the ledger is read.
    """
    home, not_compared = _home_to_compare()
    report = run_verify(tenant_id)
    scope = f"tenant {tenant_id}" if tenant_id else "all tenants"
    if tenant_id is not None and report.rows == 0:
        with warehouse.reading(settings.duckdb_path()) as conn:
            rows = conn.execute("select distinct tenant_id from raw.entity_log order by 1").fetchall()
        logged = [row[0] for row in rows]
        print(
            f"verify: FAILED - tenant {tenant_id!r} has no rows in the log of {settings.duckdb_path()}, so there is "
            f"nothing to verify (logged tenants: {', '.join(logged) or 'none'})",
            file=sys.stderr,
        )
        return 1
    if not_compared:  # said after the audit: a ledger that cannot be read, or an unknown tenant, is the one line
        print(f"verify: {not_compared}", file=sys.stderr)
    for problem in report.problems:
        print(f"verify: BROKEN - {problem}", file=sys.stderr)
    head_problems, heads = compare_recorded_heads(tenant_id) if home is not None else ([], None)
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
    home, not_compared = _home_to_compare()
    if home is None:
        print(f"verify: {not_compared}", file=sys.stderr)
        return [], None
    from ledger_pipeline.defs.heads import recorded_heads
    from ledger_pipeline.defs.rails import LOG_ASSETS

    with dagster_instance() as instance:
        heads = recorded_heads(instance, [a.key for a in LOG_ASSETS], None if tenant_id is None else [tenant_id])
    with warehouse.reading(settings.duckdb_path()) as conn:
        return compare_heads(conn, heads), len(heads)


def _home_to_compare() -> tuple[Path | None, str | None]:
    """(DAGSTER_HOME, None) when it holds an instance to compare with; (None, why not) when it is unset or holds
    no instance yet (opening one there would create Dagster's database files: an audit creates nothing). A bad
    DAGSTER_HOME is a DagsterHomeError."""
    if dagster_home.configured() is None:
        return None, "DAGSTER_HOME is not set, so chain heads recorded by Dagster were not compared"
    home = dagster_home.check()
    if not dagster_home.holds_instance(home):
        return None, (
            f"DAGSTER_HOME ({home}) holds no Dagster instance (no {dagster_home.CONFIG_FILE}, no history/), "
            "so chain heads recorded by Dagster were not compared"
        )
    return home, None


def run_verify(tenant_id: str | None = None) -> VerifyReport:
    from ledger_pipeline.lib import ids

    if tenant_id is not None:
        ids.tenant_id(tenant_id)
    with warehouse.reading(settings.duckdb_path()) as conn:
        return verify(conn, tenant_id)


def add_partition(tenant_id: str, instance: dg.DagsterInstance | None = None) -> bool:
    """Add the tenant's Dagster partition now when an instance is configured (or given); otherwise the sensor will.

    A DAGSTER_HOME that is set but unusable is a DagsterHomeError (`dagster_instance`)."""
    if instance is None:
        if dagster_home.configured() is None:
            print("DAGSTER_HOME is not set: the tenant sensor adds the partition when Dagster runs")
            return False
        with dagster_instance() as own:
            return add_partition(tenant_id, own)
    from ledger_pipeline.defs.partitions import TENANTS

    if instance.has_dynamic_partition(TENANTS.name, tenant_id):
        return False
    instance.add_dynamic_partitions(TENANTS.name, [tenant_id])
    return True


def remove_partition(tenant_id: str) -> bool:
    """Drop a retired tenant's Dagster partition (its runs and materialisations stay in the event log)."""
    if dagster_home.configured() is None:
        print("DAGSTER_HOME is not set: delete the tenant's partition in Dagster, or its syncs fail as unknown")
        return False
    from ledger_pipeline.defs.partitions import TENANTS

    with dagster_instance() as instance:
        if not instance.has_dynamic_partition(TENANTS.name, tenant_id):
            return False
        instance.delete_dynamic_partition(TENANTS.name, tenant_id)
    return True


def decide_command(
    action: str, tenant_id: str, subject_id: str, by: str, why: str, instance: dg.DagsterInstance | None = None
) -> int:
    """Record a person's decision by running `record_decision` on the Dagster instance (DAGSTER_HOME's, or the one
    given) so the UI shows the run, then print it and its subject as the refreshed recon tables show it. A refused
    decision (a subject the tenant's recon tables do not show, an unregistered tenant, a bad field) writes nothing:
    InvalidInput, exit 2."""
    import dagster as dg

    from ledger_pipeline.definitions import build_definitions
    from ledger_pipeline.lib import decisions, ids
    from ledger_pipeline.lib.tenants import TenantRegistry

    if instance is None:
        with dagster_instance() as own:
            return decide_command(action, tenant_id, subject_id, by, why, own)
    made = decisions.decision(tenant_id, action, subject_id, by, why)
    TenantRegistry(settings.tenants_path()).get(made.tenant_id)
    run_config = {
        "ops": {"raw__recon_decisions": {"config": {"action": made.action, "subject_id": made.subject_id,
                                                    "by": made.by, "why": made.why}}},
        "loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
    }  # fmt: skip
    add_partition(made.tenant_id, instance)
    job = build_definitions().resolve_job_def("record_decision")
    result = job.execute_in_process(
        partition_key=made.tenant_id, instance=instance, run_config=run_config, raise_on_error=False
    )
    if not result.success:
        failures = [e.step_failure_data for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
        failure = failures[0] if failures else None
        if failure is None:
            reason = "decision not recorded: the run failed before any step"
        else:
            reason = failure.user_failure_data.description if failure.user_failure_data else failure.error.message
        raise ids.InvalidInput(f"{reason} (run {result.run_id})")
    table, column = decisions.SUBJECT_TABLES[made.subject_type]
    with warehouse.reading(settings.duckdb_path()) as conn:
        seq = conn.execute(
            "select max(seq) from raw.recon_decisions where tenant_id = ? and entity_id = ?",
            [made.tenant_id, made.entity_id],
        ).fetchone()[0]
        status = conn.execute(
            f"select any_value(status) from {table} where tenant_id = ? and {column} = ?",
            [made.tenant_id, made.subject_id],
        ).fetchone()[0]
    print(f"decision recorded in the log (seq {seq}, run {result.run_id[:8]}): {made.action} {made.subject_type} "
          f"{made.subject_id} of tenant {made.tenant_id}, by {made.by}; {table} now shows it {status}")  # fmt: skip
    return 0
