"""Each `dbt_like_sql/<schema>/assert_<table>__<name>.sql` becomes asset check `<name>` on `<schema>/<table>`.

The query returns the rows that break the invariant; a check fails when the
run's tenants have any, with their count and the first few rows as metadata.
One query per assertion counts every tenant of the run.
All of them run in one step (one ledger open, one Dagster step per run rather
than one per assertion); the UI can still run any subset.
"""

from collections.abc import Iterator

import dagster as dg
import duckdb

from ledger_pipeline.defs.partitions import DUCKDB_POOL, tenants_in_run
from ledger_pipeline.defs.resources import LedgerDuckDB, TenantRegistryResource
from ledger_pipeline.lib.reconcile import assertion_violations
from ledger_pipeline.lib.sql_models import SqlAssertion, load_assertions


def _spec(assertion: SqlAssertion) -> dg.AssetCheckSpec:
    target = dg.AssetKey([assertion.schema, assertion.table])
    return dg.AssetCheckSpec(
        assertion.name,
        asset=target,
        description=f"{assertion.description} (dbt_like_sql/{assertion.schema}/{assertion.path.name})"
        + (" Warns: a finding about the business, not a failure of the pipeline." if assertion.warns else ""),
        additional_deps=[dg.AssetKey(list(dep)) for dep in assertion.depends_on if list(dep) != target.path],
    )


def build_assertion_checks(assertions: list[SqlAssertion]) -> dg.AssetChecksDefinition:
    by_key = {_spec(a).key: a for a in assertions}

    @dg.multi_asset_check(
        specs=[_spec(a) for a in assertions],
        name="sql_assertions",
        can_subset=True,
        pool=DUCKDB_POOL,
    )
    def _assertions(
        context: dg.AssetCheckExecutionContext, warehouse: LedgerDuckDB, tenants: TenantRegistryResource
    ) -> Iterator[dg.AssetCheckResult]:
        tenant_ids = tenants_in_run(context, list(tenants.registry().load()))
        with warehouse.ledger() as conn:
            for key in sorted(context.selected_asset_check_keys, key=str):
                assertion = by_key[key]
                found = {
                    tenant_id: {"violations": count, "sample": sample} | ({"by": by} if assertion.count_by else {})
                    for tenant_id, (count, sample, by) in _violations(conn, assertion, tenant_ids).items()
                }
                total = sum(v["violations"] for v in found.values())
                yield dg.AssetCheckResult(
                    asset_key=key.asset_key,
                    check_name=key.name,
                    passed=total == 0,
                    severity=dg.AssetCheckSeverity.WARN if assertion.warns else dg.AssetCheckSeverity.ERROR,
                    metadata={"violations": dg.MetadataValue.int(total), "tenants": dg.MetadataValue.json(found)},
                )

    return _assertions


def _violations(
    conn: duckdb.DuckDBPyConnection, assertion: SqlAssertion, tenant_ids: list[str]
) -> dict[str, tuple[int, list[dict], dict[str, int]]]:
    """The assertion's violations per tenant; a table it reads that was never built fails the step naming it."""
    try:
        return assertion_violations(conn, assertion.body, tenant_ids, count_by=assertion.count_by)
    except duckdb.CatalogException as exc:
        reads = ", ".join(".".join(dep) for dep in assertion.depends_on)
        raise dg.Failure(
            description=f"SQL assertion {assertion.name} on {assertion.target} ({assertion.path.name}) reads {reads}, "
            f"and the ledger does not have all of them yet: materialise them first ({exc})"
        ) from exc


ASSERTION_CHECKS = [build_assertion_checks(load_assertions())]
