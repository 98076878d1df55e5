"""Every SQL model in dbt_like_sql/ (a file, or a mirror or history a stg view derives from a template) becomes an
asset; its upstream assets are the tables its SQL reads.

All are tenant-partitioned. Views (stg) are recreated whenever a writer opens
the ledger, so no step materialises them: they are asset specs that show the
lineage, and the models reading them also depend on the log assets under them,
which orders their steps (and lets a blocking chain check hold them back).
Mirrors are refreshed per tenant from the log, validated by their pandera
contract and checked against the log in the same step; history tables likewise,
without a contract. Marts replace the tenant's rows.
"""

from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg
from pydantic import Field

from ledger_pipeline.defs.models.checks import (
    BLOCKING_CHECKS,
    HISTORY_CHECKS,
    MIRROR_CHECKS,
    CheckScope,
    history_check_result,
    mirror_check_results,
)
from ledger_pipeline.defs.partitions import (
    DUCKDB_POOL,
    SINGLE_RUN_BACKFILL,
    TENANTS,
    per_tenant_metadata,
    run_tenant_ids,
)
from ledger_pipeline.defs.resources import LedgerDuckDB
from ledger_pipeline.lib import rails, rematch
from ledger_pipeline.lib.catalog import model_columns
from ledger_pipeline.lib.marts import TableRefresh, refresh_tenant_tables
from ledger_pipeline.lib.mirrors import refresh_tenants
from ledger_pipeline.lib.sql_models import SqlModel, load_models, log_source
from ledger_pipeline.lib.validation import row_failures
from ledger_pipeline.lib.warehouse import WarehouseError

MODELS = load_models()
# Model name -> pandera contract, from every rail's declaration.
MIRROR_CONTRACTS = {name: c for rail in rails.all_rails().values() for name, c in rail.mirror_contracts().items()}
COLUMNS = model_columns(list(MODELS))
CROSS_RAIL_SCHEMAS = ("core", "recon")


class MirrorConfig(dg.Config):
    """Per-run knobs of a mirror refresh."""

    full_rebuild: bool = False  # recompute every row of the tenant from the log instead of the changed ones
    # Missing, extra and stale rows are looked for in every entity on every run either way.
    full_check: bool = Field(
        default=False,
        description="compare every mirror row with the model recomputed from the whole log, not only the "
        "entities this run refreshed (the nightly audit sets it; full_rebuild implies it)",
    )


def _description(model: SqlModel) -> str:
    lines = [line.lstrip("- ").strip() for line in model.sql.splitlines() if line.startswith("--")]
    text = " ".join(line for line in lines if not line.startswith("config:"))
    return f"{text}\n\nBuilt by `dbt_like_sql/{model.schema}/{model.path.name}` ({model.materialized})."


def _deps(model: SqlModel) -> list[dg.AssetKey]:
    """The tables the model reads, and the log asset under each view it reads (views have no step to wait for)."""
    by_name = {m.name: m for m in MODELS}
    # Not the re-match scope: a work table of the refresh itself (lib/rematch.py), empty between runs.
    deps = {dg.AssetKey(list(dep)) for dep in model.depends_on if ".".join(dep) != rematch.SCOPE}
    for schema, table in model.depends_on:
        view = by_name.get(f"{schema}.{table}")
        if view is not None and view.materialized == "view":
            deps.add(dg.AssetKey(log_source(view, by_name).split(".")))
    return sorted(deps, key=lambda key: key.to_user_string())


def _spec_kwargs(model: SqlModel) -> dict:
    """What the UI shows of a model's asset: key, upstream tables, group, column schema, description."""
    schema = dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in COLUMNS[model.name]])
    return dict(
        key=dg.AssetKey([model.schema, model.table]),
        deps=_deps(model),
        group_name=model.schema,
        kinds={"duckdb", "sql"},
        description=_description(model),
        metadata={"dagster/column_schema": schema, "materialized": model.materialized},
    )


# How every step of a model runs: per tenant, a backfill in one run, one DuckDB writer at a time.
_STEP_KWARGS = dict(partitions_def=TENANTS, backfill_policy=SINGLE_RUN_BACKFILL, pool=DUCKDB_POOL)


def _asset_kwargs(model: SqlModel) -> dict:
    return _spec_kwargs(model) | _STEP_KWARGS


def _failure(model: SqlModel, exc: WarehouseError) -> dg.Failure:
    return dg.Failure(description=f"{model.name}: {exc}")


def view_spec(model: SqlModel) -> dg.AssetSpec:
    """A view model: no step, since every writer's open recreates it (lib/model_views.py)."""
    return dg.AssetSpec(**_spec_kwargs(model), partitions_def=TENANTS)


def build_mirror_asset(model: SqlModel) -> dg.AssetsDefinition:
    contract = MIRROR_CONTRACTS[model.name]
    source = log_source(model, {m.name: m for m in MODELS})
    kwargs = _asset_kwargs(model)
    kwargs["check_specs"] = [
        dg.AssetCheckSpec(name, asset=kwargs["key"], description=text, blocking=name in BLOCKING_CHECKS)
        for name, text in MIRROR_CHECKS.items()
    ]

    @dg.asset(**kwargs)
    def _mirror_asset(
        context: dg.AssetExecutionContext, config: MirrorConfig, warehouse: LedgerDuckDB
    ) -> dg.MaterializeResult:
        try:
            with warehouse.ledger() as conn:
                stats = refresh_tenants(
                    conn, model, run_tenant_ids(context), source=source,
                    validate=lambda frame: row_failures(contract, frame),
                    run_id=context.run.run_id, now=datetime.now(UTC), full=config.full_rebuild,
                )  # fmt: skip
                context.log.info("\n".join(  # one event per step: every event is a write to Dagster's event log
                    f"{model.name} tenant {s.tenant_id}: {s.entities_refreshed} entities refreshed, "
                    f"{s.rows_written} rows written, {s.rows_quarantined} quarantined, log watermark {s.watermark}"
                    for s in stats
                ))  # fmt: skip
                full_check = config.full_check or config.full_rebuild
                scopes = [CheckScope.after_refresh(s, full_check=full_check) for s in stats]
                checks = mirror_check_results(conn, model, source, scopes)
        except WarehouseError as exc:
            raise _failure(model, exc) from exc
        return dg.MaterializeResult(
            metadata={
                "entities_refreshed": dg.MetadataValue.int(sum(s.entities_refreshed for s in stats)),
                "rows_written": dg.MetadataValue.int(sum(s.rows_written for s in stats)),
                "rows_quarantined": dg.MetadataValue.int(sum(s.rows_quarantined for s in stats)),
                "full_rebuild": dg.MetadataValue.bool(config.full_rebuild),
                "full_check": dg.MetadataValue.bool(config.full_check or config.full_rebuild),
                **per_tenant_metadata("log_watermarks", {s.tenant_id: s.watermark for s in stats}),
            },
            check_results=checks,
        )

    return _mirror_asset


def _no_contract(frame: object) -> dict[int, str]:
    """History keeps every logged version as typed, valid or not: nothing is quarantined from it."""
    return {}


def build_history_asset(models: list[SqlModel], name: str) -> dg.AssetsDefinition:
    """History tables in one step (they feed no other asset), each refreshed per tenant like a mirror."""
    by_key = {dg.AssetKey([m.schema, m.table]): m for m in models}
    sources = {m.name: log_source(m, {x.name: x for x in MODELS}) for m in models}

    @dg.multi_asset(
        specs=[dg.AssetSpec(**_spec_kwargs(m)) for m in models],
        check_specs=[
            dg.AssetCheckSpec(check, asset=key, description=text)
            for key in by_key
            for check, text in HISTORY_CHECKS.items()
        ],
        name=name,
        can_subset=True,
        **_STEP_KWARGS,
    )
    def _history(
        context: dg.AssetExecutionContext, config: MirrorConfig, warehouse: LedgerDuckDB
    ) -> Iterator[dg.MaterializeResult]:
        tenant_ids = run_tenant_ids(context)
        full_check = config.full_check or config.full_rebuild
        results = []
        model = models[0]
        try:
            with warehouse.ledger() as conn:
                for key, model in by_key.items():
                    if key not in context.selected_asset_keys:
                        continue
                    stats = refresh_tenants(
                        conn, model, tenant_ids, source=sources[model.name], validate=_no_contract,
                        run_id=context.run.run_id, now=datetime.now(UTC), full=config.full_rebuild,
                    )  # fmt: skip
                    scopes = [CheckScope.after_refresh(s, full_check=full_check) for s in stats]
                    check = history_check_result(conn, model, sources[model.name], scopes)
                    results.append((key, stats, check))
        except WarehouseError as exc:
            raise _failure(model, exc) from exc
        for key, stats, check in results:
            yield dg.MaterializeResult(
                asset_key=key,
                metadata={
                    "entities_refreshed": dg.MetadataValue.int(sum(s.entities_refreshed for s in stats)),
                    "rows_written": dg.MetadataValue.int(sum(s.rows_written for s in stats)),
                    "full_rebuild": dg.MetadataValue.bool(config.full_rebuild),
                    **per_tenant_metadata("log_watermarks", {s.tenant_id: s.watermark for s in stats}),
                },
                check_results=[check],
            )

    return _history


def _tables_under(model: SqlModel) -> list[SqlModel]:
    """The tables a model reads, directly or through other models, each after the ones it reads: a tenant table
    over every rail creates them empty when no run made them (a tenant that connected only some rails)."""
    by_name = {m.name: m for m in MODELS}
    ordered: list[SqlModel] = []

    def visit(current: SqlModel) -> None:
        for schema, table in current.depends_on:
            upstream = by_name.get(f"{schema}.{table}")
            if upstream is not None and upstream not in ordered:
                visit(upstream)
                if upstream.materialized != "view":
                    ordered.append(upstream)

    visit(model)
    return ordered


def _table_metadata(refresh: TableRefresh) -> dict[str, dg.MetadataValue]:
    rematched = {}
    if refresh.rematch is not None:
        rematched = {
            "objects": dg.MetadataValue.int(refresh.rematch.objects),
            "objects_changed": dg.MetadataValue.int(refresh.rematch.changed),
            "objects_rematched": dg.MetadataValue.int(refresh.rematch.rematched),
        }
    return {
        "dagster/row_count": dg.MetadataValue.int(sum(refresh.rows.values())),
        "seconds": dg.MetadataValue.float(round(refresh.seconds, 4)),
        **rematched,
        **per_tenant_metadata("rows", refresh.rows),
    }


class ReconciliationConfig(dg.Config):
    """Per-run knobs of the reconciliation step."""

    full_rebuild: bool = Field(
        default=False,
        description="match every object of the tenant again, not only those near a change since the last run "
        "(the result is the same: lib/rematch.py)",
    )


def build_tenant_table_asset(model: SqlModel) -> dg.AssetsDefinition:
    tables = _tables_under(model)

    @dg.asset(**_asset_kwargs(model))
    def _tenant_table_asset(context: dg.AssetExecutionContext, warehouse: LedgerDuckDB) -> dg.MaterializeResult:
        try:
            with warehouse.ledger() as conn:
                refreshed = refresh_tenant_tables(conn, [model], run_tenant_ids(context), tables)
        except WarehouseError as exc:
            raise _failure(model, exc) from exc
        return dg.MaterializeResult(metadata=_table_metadata(refreshed[model.name]))

    return _tenant_table_asset


def _reads_across_rails(model: SqlModel) -> bool:
    """A model of the cross-rail layer (core, recon), or one that reads it or the tables of more than one rail."""
    under = _tables_under(model)
    rails_read = {rail for t in under for rail in rails.all_rails() if t.table.startswith(f"{rail}_")}
    reads_core = any(t.schema in CROSS_RAIL_SCHEMAS for t in under)
    return model.schema in CROSS_RAIL_SCHEMAS or reads_core or len(rails_read) > 1


def in_run_order(models: list[SqlModel]) -> list[SqlModel]:
    """The models, each after those of them it reads."""
    return list(dict.fromkeys(t for m in models for t in [*_tables_under(m), m] if t in models))


def build_tenant_tables_asset(models: list[SqlModel], name: str) -> dg.AssetsDefinition:
    """Tenant tables (in run order) refreshed in one step and one transaction: one Dagster step's
    fixed cost per run instead of one per table, and links, breaks and marts always of the same run. The UI can still
    refresh any subset; the tables the selected ones read are then used as they stand (created empty if missing)."""
    by_key = {dg.AssetKey([m.schema, m.table]): m for m in models}

    @dg.multi_asset(
        specs=[dg.AssetSpec(**_spec_kwargs(m)) for m in models],
        name=name,
        can_subset=True,
        **_STEP_KWARGS,
    )
    def _tenant_tables(
        context: dg.AssetExecutionContext, config: ReconciliationConfig, warehouse: LedgerDuckDB
    ) -> Iterator[dg.MaterializeResult]:
        selected = [m for key, m in by_key.items() if key in context.selected_asset_keys]
        upstream = list(dict.fromkeys(t for m in selected for t in _tables_under(m) if t not in selected))
        try:
            with warehouse.ledger() as conn:
                refreshed = refresh_tenant_tables(
                    conn, selected, run_tenant_ids(context), upstream, full=config.full_rebuild
                )
        except WarehouseError as exc:
            raise dg.Failure(description=f"{name} ({', '.join(m.name for m in selected)}): {exc}") from exc
        for model in selected:
            yield dg.MaterializeResult(
                asset_key=dg.AssetKey([model.schema, model.table]), metadata=_table_metadata(refreshed[model.name])
            )

    return _tenant_tables


# A blocking chain_intact check on one entity's log holds back that entity's mirror only (its direct
# dependent). The history tables feed no other asset, so they share one step.
VIEW_ASSETS = [view_spec(m) for m in MODELS if m.materialized == "view"]
MIRROR_ASSETS = [build_mirror_asset(m) for m in MODELS if m.materialized == "mirror"]
HISTORY_ASSETS = [build_history_asset([m for m in MODELS if m.materialized == "history"], "history_tables")]
# The steps that refresh a table from the log and take MirrorConfig (full_rebuild, full_check).
REFRESHED_ASSETS = [*MIRROR_ASSETS, *HISTORY_ASSETS]
TENANT_TABLES = [m for m in MODELS if m.materialized == "tenant_table"]
# The cross-rail layer and the marts over it share one step; a mart over one rail keeps its own, so a blocking check
# on another rail's mirror does not hold it back.
RECONCILIATION_STEP = "reconciliation"
RECONCILIATION_MODELS = in_run_order([m for m in TENANT_TABLES if _reads_across_rails(m)])
TABLE_ASSETS = [
    *(build_tenant_table_asset(m) for m in TENANT_TABLES if not _reads_across_rails(m)),
    build_tenant_tables_asset(RECONCILIATION_MODELS, RECONCILIATION_STEP),
]
MODEL_ASSETS = [*VIEW_ASSETS, *REFRESHED_ASSETS, *TABLE_ASSETS]
