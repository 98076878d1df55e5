"""The published read side as an asset: the last step of every run that writes the ledger (sync, rebuild, decision).

It publishes the run's tenants' changes as a new generation of Parquet files and views files
(lib/read_side/), which analysts open with no lock on the ledger (`ledger-pipeline analyst-db`), and checks in
the same step that the new generation equals the ledger for those tenants.
"""

import time
from datetime import UTC, datetime

import dagster as dg
import duckdb

from ledger_pipeline.defs.decisions import recon_decisions
from ledger_pipeline.defs.log_assets import SYNC_CURSORS
from ledger_pipeline.defs.models.assets import MODEL_ASSETS
from ledger_pipeline.defs.partitions import DUCKDB_POOL, SINGLE_RUN_BACKFILL, TENANTS, run_tenant_ids
from ledger_pipeline.defs.rails import LOG_ASSETS
from ledger_pipeline.defs.resources import LedgerDuckDB
from ledger_pipeline.lib.read_side.compare import differences
from ledger_pipeline.lib.read_side.fingerprint import ReadSideError
from ledger_pipeline.lib.read_side.layout import ReadSide
from ledger_pipeline.lib.read_side.publish import Publication, publish
from ledger_pipeline.lib.warehouse import WarehouseError, one_line

READ_SIDE_KEY = dg.AssetKey(["read_side", "generation"])
MATCHES_LEDGER = "matches_ledger"
_SAMPLE = 20


def _upstream() -> list[dg.AssetKey]:
    """Tables no other asset reads, one per step and rail. Every asset is upstream of such a table, so in a
    selection closed downstream (`sync_tenants`, `rails_selection`, `record_decision`) the publication runs after
    every step (the history step, which refreshes the selected rails' tables, by one table of each rail). Dagster
    reads each dependency's data version when the step starts (~20 ms a key on the demo's instance under load):
    these 21 keys rather than all 89 tables took the step from 2.5 s to ~1.3 s with nothing to publish."""
    steps: dict[dg.AssetKey, str] = {}
    read: set[dg.AssetKey] = set()
    for a in (*LOG_ASSETS, *MODEL_ASSETS, SYNC_CURSORS, recon_decisions):
        specs = a.specs if isinstance(a, dg.AssetsDefinition) else [a]
        for spec in specs:
            steps[spec.key] = a.node_def.name if isinstance(a, dg.AssetsDefinition) else spec.key.to_user_string()
            read.update(dep.asset_key for dep in spec.deps)
    chosen: dict[tuple[str, str], dg.AssetKey] = {}
    for key in sorted(set(steps) - read, key=lambda key: key.to_user_string()):
        chosen.setdefault((steps[key], key.path[-1].split("_")[0]), key)
    return sorted(chosen.values(), key=lambda key: key.to_user_string())


@dg.asset(
    key=READ_SIDE_KEY,
    deps=_upstream(),
    partitions_def=TENANTS,
    backfill_policy=SINGLE_RUN_BACKFILL,
    pool=DUCKDB_POOL,  # it reads the ledger in one snapshot, as a writer between the run's other writers
    group_name="read_side",
    kinds={"duckdb", "parquet"},
    check_specs=[dg.AssetCheckSpec(MATCHES_LEDGER, asset=READ_SIDE_KEY,
                                   description="The published generation equals the ledger for the run's tenants: "
                                   "rows and content per table, chain heads of the log.")],  # fmt: skip
    description="What analysts query, published after the run: the log, mirrors, history with its as-of macros, "
    "marts, core, recon, quarantine and sync cursors as Parquet per tenant and table, with a read-only DuckDB "
    "file of views and macros over them, swapped in one rename per generation. Readers never lock the ledger; "
    "`ledger-pipeline analyst-db` prints the file to open.",
)
def read_side_generation(context: dg.AssetExecutionContext, warehouse: LedgerDuckDB) -> dg.MaterializeResult:
    tenant_ids = run_tenant_ids(context)
    read_side = ReadSide(warehouse.read_path)
    started = time.monotonic()
    try:
        with warehouse.ledger() as conn:
            publication = publish(conn, read_side, tenant_ids, datetime.now(UTC))
    except (WarehouseError, ReadSideError, duckdb.Error, OSError) as exc:
        raise dg.Failure(description=f"the read side was not published: {one_line(exc)}") from exc
    problems = differences(read_side.views_path(publication.generation), publication)
    context.log.info(
        f"read side generation {publication.generation} ({'new' if publication.published else 'unchanged'}): "
        f"{publication.files_written} files written, {publication.files_reused} reused, "
        f"{publication.files_removed} removed, in {time.monotonic() - started:.2f}s"
    )
    return dg.MaterializeResult(
        metadata=_metadata(context, read_side, publication),
        check_results=[dg.AssetCheckResult(
            check_name=MATCHES_LEDGER, passed=not problems,
            metadata={"tables_read_back": dg.MetadataValue.int(len(publication.moved)),
                      "tenants": dg.MetadataValue.int(len(publication.tenant_ids)),
                      "differences": dg.MetadataValue.int(len(problems)),
                      "sample": dg.MetadataValue.json(problems[:_SAMPLE])},
        )],  # fmt: skip
    )


def _metadata(
    context: dg.AssetExecutionContext, read_side: ReadSide, publication: Publication
) -> dict[str, dg.MetadataValue]:
    rows: dict[str, int] = {}
    for (_, table), (count, _) in publication.expected.items():
        rows[table] = rows.get(table, 0) + count
    record = context.instance.get_run_record_by_id(context.run.run_id)
    start = record.start_time if record is not None else None
    lag = time.time() - start if start is not None else None  # the run's changes reached readers this much later
    return {
        "generation": dg.MetadataValue.int(publication.generation),
        "new_generation": dg.MetadataValue.bool(publication.published),
        "dagster/row_count": dg.MetadataValue.int(sum(rows.values())),
        "rows": dg.MetadataValue.json(dict(sorted(rows.items()))),
        "files_written": dg.MetadataValue.int(publication.files_written),
        "files_reused": dg.MetadataValue.int(publication.files_reused),
        "bytes_written": dg.MetadataValue.int(publication.bytes_written),
        "files_removed": dg.MetadataValue.int(publication.files_removed),
        "lag_seconds": dg.MetadataValue.float(lag) if lag is not None else dg.MetadataValue.null(),
        "analyst_db": dg.MetadataValue.path(str(read_side.entry)),
    }
