"""Reconciliation of the QBO mirrors against QBO itself: object counts, and AP/AR control totals.

Standalone checks on the mirror assets: they run after the mirror in every
sync run (or alone from the UI) and ask the rail, per tenant of the run.
The counts are compared every run. The control totals compare the parties
whose documents changed since the tenant's last comparison that passed
(`meta.check_marks`), so a sync pays for what changed, not for the book;
the whole book is compared on a tenant's first run, once a day and in the
nightly audit, which is what finds a change the syncs missed.
"""

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import dagster as dg
import duckdb
from pydantic import Field

from ledger_pipeline.defs.partitions import DUCKDB_POOL, tenants_in_run
from ledger_pipeline.defs.resources import LedgerDuckDB, TenantRegistryResource
from ledger_pipeline.defs.qbo.resources import QboResource
from ledger_pipeline.lib.reconcile import (
    AmountDifference,
    CheckMark,
    changed_parties,
    check_marks,
    compare_amounts,
    log_heads,
    open_balances,
    published_counts,
    published_ids,
    set_check_marks,
)
from ledger_pipeline.lib.prefetch import read_ahead
from ledger_pipeline.lib.sql_models import SqlModel, load_models
from ledger_pipeline.rails.qbo.client import QboClient, QboReport
from ledger_pipeline.rails.qbo.entities import ENTITIES, QboEntity, entity
from ledger_pipeline.rails.qbo.errors import QboError
from ledger_pipeline.rails.qbo.rail import NAME

COUNT_REREADS = 3
TENANTS_AHEAD = 4  # tenants whose rail answers are read in threads ahead of the one being compared
SAMPLE = 10


def _count_until_stable(client: QboClient, entity: str, published: int) -> tuple[int, int]:
    """The rail's count, re-read while it moves between reads (a sync may be racing the check)."""
    count = client.count(entity)
    rereads = 0
    while count != published and rereads < COUNT_REREADS:
        again = client.count(entity)
        rereads += 1
        if again == count:
            break
        count = again
    return count, rereads


def build_rail_count_checks(entities: list[QboEntity]) -> dg.AssetChecksDefinition:
    """One step for every entity's count check: one ledger open and one QBO client per tenant, not per entity."""
    models = {m.name: m for m in load_models()}
    specs = {
        dg.AssetCheckKey(dg.AssetKey(["mirror", f"qbo_{e.table}"]), "rail_count_matches"): e for e in entities
    }

    @dg.multi_asset_check(
        specs=[
            dg.AssetCheckSpec(
                "rail_count_matches",
                asset=key.asset_key,
                description=f"QBO's own COUNT(*) of {entity.name} (inactive included) equals mirror plus quarantine "
                "rows; a count that moves while checking is re-read; on a mismatch the first differing ids are listed.",
            )
            for key, entity in specs.items()
        ],
        name="rail_counts_match",
        can_subset=True,
        pool=DUCKDB_POOL,
    )
    def _rail_counts(
        context: dg.AssetCheckExecutionContext,
        warehouse: LedgerDuckDB,
        qbo: QboResource,
        tenants: TenantRegistryResource,
    ) -> Iterator[dg.AssetCheckResult]:
        selected = [key for key in specs if key in context.selected_asset_check_keys]
        selected_models = {key: models[f"mirror.qbo_{specs[key].table}"] for key in selected}

        def comparisons(conn: duckdb.DuckDBPyConnection, tenant_ids: list[str]) -> RailComparison:
            published = {key: published_counts(conn, model, tenant_ids) for key, model in selected_models.items()}

            def ask(client: QboClient, tenant_id: str) -> dict[dg.AssetCheckKey, tuple[int, int]]:
                return {
                    key: _count_until_stable(client, specs[key].name, published[key][tenant_id])
                    for key in selected_models
                }

            def judge(client: QboClient, tenant_id: str, counts: dict[dg.AssetCheckKey, tuple[int, int]]) -> dict:
                return {
                    key: _count_matches(
                        conn, client, model, specs[key], tenant_id, published[key][tenant_id], counts[key]
                    )
                    for key, model in selected_models.items()
                }

            return RailComparison(ask, judge)

        per_tenant = _per_tenant(context, warehouse, qbo, tenants, "rail_count_matches", comparisons)
        for key in selected:
            yield _result(key, {tenant_id: results[key] for tenant_id, results in per_tenant.items()})

    return _rail_counts


def _count_matches(
    conn: duckdb.DuckDBPyConnection,
    client: QboClient,
    model: SqlModel,
    entity: QboEntity,
    tenant_id: str,
    published: int,
    counted: tuple[int, int],
) -> dict:
    """The count check's verdict for one tenant and entity; on a mismatch, the first ids that differ."""
    rail, rereads = counted
    result = {"rail_count": rail, "mirror_and_quarantine": published, "rereads": rereads, "ok": rail == published}
    if rail != published:
        ids = published_ids(conn, model, tenant_id)
        on_rail = client.ids(entity.name)
        result["missing_from_mirror"] = sorted(on_rail - ids, key=_id_order)[:SAMPLE]
        result["not_on_rail"] = sorted(ids - on_rail, key=_id_order)[:SAMPLE]
    return result


@dataclass(frozen=True)
class ControlTotal:
    """A control total: a mirror's open balance per party against a QBO aging report's Total column."""

    table: str  # mirror table of the documents
    party_column: str
    report: str
    documents: tuple[str, ...]  # QBO entities whose versions move a party's open balance
    party_path: str  # JSON path of the party's Id in those entities' payloads


CONTROL_TOTALS = (
    ControlTotal("bills", "vendor_id", "AgedPayables", ("Bill", "BillPayment"), "$.VendorRef.value"),
    ControlTotal("invoices", "customer_id", "AgedReceivables", ("Invoice", "Payment"), "$.CustomerRef.value"),
)
WHOLE_BOOK_EVERY = timedelta(hours=24)
MAX_PARTIES_COMPARED = 5_000  # more changed parties than this: one whole-book report costs less


class ControlTotalConfig(dg.Config):
    whole_book: bool = Field(
        default=False,
        description="compare every party's open balance with the whole report, not only the parties whose "
        "documents changed since the last comparison that passed (the nightly audit sets it)",
    )


def build_control_total_check(total: ControlTotal) -> dg.AssetChecksDefinition:
    party = total.party_column.removesuffix("_id")
    name = f"matches_{total.report.lower()}"

    @dg.asset_check(
        asset=dg.AssetKey(["mirror", f"qbo_{total.table}"]),
        name=name,
        description=f"Open balance per {party} in mirror.qbo_{total.table} equals the Total column of QBO's "
        f"{total.report} report, to the cent, for every {party} whose {' or '.join(total.documents)} versions "
        "changed since the tenant's last comparison that passed (QBO's report filtered to them); the whole "
        f"book on a tenant's first comparison, once a day, in the nightly audit and past "
        f"{MAX_PARTIES_COMPARED:,} changed {party}s. Blocking: the aging marts wait for it.",
        pool=DUCKDB_POOL,
        blocking=True,
    )
    def _control_total(
        context: dg.AssetCheckExecutionContext,
        config: ControlTotalConfig,
        warehouse: LedgerDuckDB,
        qbo: QboResource,
        tenants: TenantRegistryResource,
    ) -> dg.AssetCheckResult:
        def comparisons(conn: duckdb.DuckDBPyConnection, tenant_ids: list[str]) -> RailComparison:
            now = datetime.now(UTC)
            marks = check_marks(conn, name, tenant_ids)
            heads = log_heads(conn, "qbo", list(total.documents), tenant_ids)
            since = {
                t: mark.log_seq
                for t, mark in marks.items()
                if not config.whole_book and now - mark.whole_book_at < WHOLE_BOOK_EVERY
            }
            views = [f"raw.qbo_{entity(name).table}" for name in total.documents]
            scoped = changed_parties(conn, views, total.party_path, since)
            scoped = {t: parties for t, parties in scoped.items() if len(parties) <= MAX_PARTIES_COMPARED}
            balances = open_balances(conn, f"mirror.qbo_{total.table}", total.party_column, tenant_ids, scoped)
            passed: dict[str, CheckMark] = {}

            def ask(client: QboClient, tenant_id: str) -> QboReport | None:
                if tenant_id not in scoped:
                    return client.report(total.report)
                return client.report(total.report, parties=list(scoped[tenant_id])) if scoped[tenant_id] else None

            def judge(_client: QboClient, tenant_id: str, report: QboReport | None) -> dict:
                mirror = balances[tenant_id]
                rows = report.rows if report is not None else []
                whole = tenant_id not in scoped
                kept = None if whole else scoped[tenant_id]  # a realm ignoring the filter costs more, not a false alarm
                rail = {
                    row.entity_id: row.amounts.get("Total", Decimal(0))
                    for row in rows
                    if row.entity_id and (kept is None or row.entity_id in kept)
                }
                differences = compare_amounts(mirror, rail)
                if not differences:
                    passed[tenant_id] = CheckMark(heads[tenant_id], now if whole else marks[tenant_id].whole_book_at)
                compared = "whole book" if whole else f"{party}s changed after log seq {since[tenant_id]}"
                return {
                    "ok": not differences,
                    "compared": compared,
                    f"{party}s_compared": len(rail.keys() | mirror.keys()) if whole else len(scoped[tenant_id]),
                    "report_date": str(report.report_date) if report is not None else None,
                    "mirror_total": str(sum(mirror.values(), Decimal(0))),
                    "report_total": str(report.total.get("Total", Decimal(0))) if report is not None else "0",
                    "parties_differing": len(differences),
                    "first_differences": [_difference(d) for d in differences[:SAMPLE]],
                }

            return RailComparison(ask, judge, lambda: set_check_marks(conn, name, passed, datetime.now(UTC)))

        return _result(None, _per_tenant(context, warehouse, qbo, tenants, total.report, comparisons))

    return _control_total


@dataclass(frozen=True)
class RailComparison:
    """One check's comparison of a tenant with its rail: what to ask QBO, and the verdict on the answer.

    `ask` runs in a thread, ahead of the tenant's turn, and uses only the client; `judge` runs in the
    step's thread (it may use the ledger, and the client again) and returns the tenant's check metadata.
    """

    ask: Callable[[QboClient, str], Any]
    judge: Callable[[QboClient, str, Any], dict]
    finish: Callable[[], None] = lambda: None  # after every tenant is judged, with the ledger still open


def _per_tenant(
    context: dg.AssetCheckExecutionContext,
    warehouse: LedgerDuckDB,
    qbo: QboResource,
    tenants: TenantRegistryResource,
    what: str,
    comparisons: Callable[[duckdb.DuckDBPyConnection, list[str]], RailComparison],
) -> dict[str, dict]:
    """Compare every tenant of the run with the rail, through one ledger connection and one client per tenant.

    `comparisons` reads the ledger's side for all the run's tenants at once (one query, not one per tenant).
    The next tenants' questions to QBO are asked in threads while one tenant is judged. A rail fault fails
    the step naming the tenant and the cause, like a sync would."""
    registry = tenants.registry()
    per_tenant: dict[str, dict] = {}
    pool = ThreadPoolExecutor(max_workers=TENANTS_AHEAD + 1, thread_name_prefix="rail-check")
    registered = registry.load()
    with warehouse.ledger() as conn:
        # Tenants that have not connected QBO have nothing to compare (an unknown one fails at its turn).
        tenant_ids = [
            t for t in tenants_in_run(context, list(registered)) if t not in registered or registered[t].connection(NAME)
        ]
        comparison = comparisons(conn, tenant_ids)

        def start(tenant_id: str) -> tuple[QboClient, Future]:
            client = qbo.client(registry.get(tenant_id))
            return client, pool.submit(comparison.ask, client, tenant_id)

        def close(started: tuple[QboClient, Future]) -> None:
            started[1].cancel()
            started[0].close()

        try:
            with closing(read_ahead(tenant_ids, start, close, ahead=TENANTS_AHEAD)) as asked:
                for tenant_id, taken in asked:
                    client, answer = taken()
                    try:
                        per_tenant[tenant_id] = comparison.judge(client, tenant_id, answer.result())
                    except QboError as exc:
                        raise dg.Failure(
                            description=f"tenant {tenant_id}, rail qbo, reconciliation {what}: {exc}"
                        ) from exc
                    finally:
                        client.close()
            comparison.finish()
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
    return per_tenant


def _result(key: dg.AssetCheckKey | None, per_tenant: dict[str, dict]) -> dg.AssetCheckResult:
    """Passes when every tenant's comparison says ok; `key` names the check when a step evaluates several."""
    bad = [t for t, result in per_tenant.items() if not result["ok"]]
    target = {} if key is None else {"asset_key": key.asset_key, "check_name": key.name}
    return dg.AssetCheckResult(
        **target,
        passed=not bad,
        metadata={"tenants": dg.MetadataValue.json(per_tenant), "mismatched_tenants": dg.MetadataValue.int(len(bad))},
    )


def _difference(d: AmountDifference) -> dict[str, str]:
    return {"id": d.party_id, "mirror": str(d.mirror), "report": str(d.rail), "difference": str(d.difference)}


def _id_order(value: str) -> tuple[int, str]:
    return (len(value), value)


CONTROL_TOTAL_CHECKS = [build_control_total_check(c) for c in CONTROL_TOTALS]


def whole_book_ops() -> dict[str, dict]:
    """The `ops` run config that has every control total compare the whole book (the nightly audit's)."""
    return {check.node_def.name: {"config": {"whole_book": True}} for check in CONTROL_TOTAL_CHECKS}


RAIL_CHECKS = [build_rail_count_checks(list(ENTITIES)), *CONTROL_TOTAL_CHECKS]
