"""Each `dbt_like_sql/<schema>/assert_<table>__<name>.sql` becomes asset check `<name>` on `<schema>/<table>`.

The query returns the rows that break the invariant; the check fails when the
run's tenants have any, with their count and the first few rows as metadata.
"""

import dagster as dg

from ledger_pipeline.defs.partitions import DUCKDB_POOL, tenants_in_run
from ledger_pipeline.defs.resources import LedgerDuckDB, TenantRegistryResource
from ledger_pipeline.lib.reconcile import assertion_violations
from ledger_pipeline.lib.sql_models import SqlAssertion, load_assertions


def build_assertion_check(assertion: SqlAssertion) -> dg.AssetChecksDefinition:
    target = dg.AssetKey([assertion.schema, assertion.table])
    others = [dg.AssetKey(list(dep)) for dep in assertion.depends_on if dep != (assertion.schema, assertion.table)]

    @dg.asset_check(
        asset=target,
        name=assertion.name,
        description=f"{assertion.description} (dbt_like_sql/{assertion.schema}/{assertion.path.name})",
        additional_deps=others,
        pool=DUCKDB_POOL,
    )
    def _assertion(
        context: dg.AssetCheckExecutionContext, warehouse: LedgerDuckDB, tenants: TenantRegistryResource
    ) -> dg.AssetCheckResult:
        found: dict[str, dict] = {}
        with warehouse.ledger() as conn:
            for tenant_id in tenants_in_run(context, list(tenants.registry().load())):
                count, sample = assertion_violations(conn, assertion.body, tenant_id)
                found[tenant_id] = {"violations": count, "sample": sample}
        total = sum(v["violations"] for v in found.values())
        return dg.AssetCheckResult(
            passed=total == 0,
            metadata={"violations": dg.MetadataValue.int(total), "tenants": dg.MetadataValue.json(found)},
        )

    return _assertion


ASSERTION_CHECKS = [build_assertion_check(a) for a in load_assertions()]
