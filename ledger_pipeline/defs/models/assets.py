"""Every SQL file in dbt_like_sql/ becomes an asset; its upstream assets are the tables its SQL reads.

Mirror models are refreshed per tenant from the log, validated by their
pandera contract and checked against the log in the same step, so the check
results belong to the run that produced the rows.
"""


from datetime import UTC, datetime

import dagster as dg

from ledger_pipeline.defs.models.checks import MIRROR_CHECKS, mirror_check_results
from ledger_pipeline.defs.partitions import DUCKDB_POOL, SINGLE_RUN_BACKFILL, TENANTS
from ledger_pipeline.defs.resources import LedgerDuckDB
from ledger_pipeline.lib.mirrors import RefreshStats, refresh_mirror
from ledger_pipeline.lib.sql_models import SqlModel, load_models
from ledger_pipeline.lib.validation import row_failures
from ledger_pipeline.lib.warehouse import WarehouseError
from ledger_pipeline.rails.qbo.schemas import MIRROR_SCHEMAS


class MirrorConfig(dg.Config):
    """Per-run knobs of a mirror refresh."""

    full_rebuild: bool = False  # recompute every row of the tenant from the log instead of the changed ones


def _description(model: SqlModel) -> str:
    first = model.sql.splitlines()[0].lstrip("- ").strip()
    return f"{first}\n\nBuilt by `{model.path.parent.name}/{model.path.name}` into `{model.name}`."


def _column_schema(model: SqlModel) -> dg.TableSchema:
    schema = MIRROR_SCHEMAS[model.name].to_schema()
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name, str(column.dtype), constraints=dg.TableColumnConstraints(nullable=column.nullable))
            for name, column in schema.columns.items()
        ]
    )


def build_mirror_asset(model: SqlModel) -> dg.AssetsDefinition:
    key = dg.AssetKey([model.schema, model.table])
    contract = MIRROR_SCHEMAS[model.name]

    @dg.asset(
        key=key,
        deps=[dg.AssetKey(list(dep)) for dep in model.depends_on],
        partitions_def=TENANTS,
        backfill_policy=SINGLE_RUN_BACKFILL,
        pool=DUCKDB_POOL,
        group_name=model.schema,
        kinds={"duckdb", "sql"},
        description=_description(model),
        metadata={"dagster/column_schema": _column_schema(model), "sql_path": str(model.path.name)},
        check_specs=[dg.AssetCheckSpec(name, asset=key, description=text) for name, text in MIRROR_CHECKS.items()],
    )
    def _mirror_asset(
        context: dg.AssetExecutionContext, config: MirrorConfig, warehouse: LedgerDuckDB
    ) -> dg.MaterializeResult:
        stats: list[RefreshStats] = []
        try:
            with warehouse.ledger() as conn:
                for tenant_id in context.partition_keys:
                    s = refresh_mirror(
                        conn, model, tenant_id,
                        validate=lambda frame: row_failures(contract, frame),
                        run_id=context.run.run_id, now=datetime.now(UTC), full=config.full_rebuild,
                    )  # fmt: skip
                    context.log.info(
                        f"{model.name} tenant {tenant_id}: {s.entities_refreshed} entities refreshed, "
                        f"{s.rows_written} rows written, {s.rows_quarantined} quarantined"
                    )
                    stats.append(s)
                checks = mirror_check_results(conn, model, list(context.partition_keys))
        except WarehouseError as exc:
            raise dg.Failure(description=f"{model.name}: {exc}") from exc
        return dg.MaterializeResult(
            metadata={
                "entities_refreshed": dg.MetadataValue.int(sum(s.entities_refreshed for s in stats)),
                "rows_written": dg.MetadataValue.int(sum(s.rows_written for s in stats)),
                "rows_quarantined": dg.MetadataValue.int(sum(s.rows_quarantined for s in stats)),
                "full_rebuild": dg.MetadataValue.bool(config.full_rebuild),
                "log_watermarks": dg.MetadataValue.json({s.tenant_id: s.watermark for s in stats}),
            },
            check_results=checks,
        )

    return _mirror_asset


MODEL_ASSETS = [build_mirror_asset(m) for m in load_models() if m.materialized == "mirror"]
