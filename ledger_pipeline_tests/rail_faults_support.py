"""What the rail-fault and hostile-data tests share: a wire recorder around the pipeline's QBO clients, the
Payment selection, and readers of what a run left in the log."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import dagster as dg
import httpx
import pytest

from ledger_pipeline.defs.qbo import resources
from ledger_pipeline.lib.verify import verify
from ledger_pipeline.rails.qbo.client import QboClient
from ledger_pipeline.rails.qbo.entities import BY_NAME
from ledger_pipeline_tests.helpers import mirror, truth

# Payments alone (their checks read no other mirror), log then mirror: the smallest selection that
# extracts, logs, mirrors and checks a transaction entity with deletes.
PAYMENT_ASSETS = [dg.AssetKey([layer, "qbo_payments"]) for layer in ("raw", "mirror")]
PAYMENT = BY_NAME["Payment"]


@dataclass
class Wire:
    """Every request the pipeline's QBO clients sent, and every retry delay they slept (really)."""

    requests: list[httpx.Request] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        time.sleep(seconds)

    def count(self, path_suffix: str, about: str | None = None) -> int:
        """Requests whose path ends with the suffix and (if given) whose query or CDC `entities` name `about`."""

        def mentions(request: httpx.Request) -> bool:
            params = request.url.params
            return about in (params.get("query") or "").split() or about in (params.get("entities") or "").split(",")

        return sum(1 for r in self.requests if r.url.path.endswith(path_suffix) and (about is None or mentions(r)))


class _Recording(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport, wire: Wire) -> None:
        self.inner, self.wire = inner, wire

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.wire.requests.append(request)
        return self.inner.handle_request(request)


@pytest.fixture
def wire(monkeypatch) -> Wire:
    """Record the pipeline's QBO traffic: the resource builds every client through this."""
    recorded = Wire()

    def client(*args, transport: httpx.BaseTransport | None = None, **kwargs) -> QboClient:
        assert transport is not None, "these tests drive the in-process sandbox"
        return QboClient(*args, transport=_Recording(transport, recorded), sleep=recorded.sleep, **kwargs)

    monkeypatch.setattr(resources, "QboClient", client)
    return recorded


def log_rows(project, tenant_id: str, entity: str, run_id: str | None = None) -> list[tuple[str, str, str]]:
    """(entity_id, op, payload_hash) of an entity's log rows, in order; only one run's if given."""
    sql = "select entity_id, op, payload_hash from raw.entity_log where tenant_id = ? and entity_type = ?"
    params = [tenant_id, entity]
    if run_id is not None:
        sql += " and run_id = ?"
        params.append(run_id)
    return project.query(sql + " order by seq", params)


def latest_live(project, tenant_id: str, entity: str) -> dict[str, str]:
    """{id: payload hash} of the newest logged version of every entity whose newest version is not a delete."""
    latest: dict[str, tuple[str, str]] = {}
    for entity_id, op, payload_hash in log_rows(project, tenant_id, entity):
        latest[entity_id] = (op, payload_hash)
    return {i: h for i, (op, h) in latest.items() if op != "deleted"}


def assert_no_version_twice(project, tenant_id: str) -> None:
    """Nothing doubled: no (entity, id, payload) is logged twice in a row of its history."""
    doubled = project.query(
        "select entity_type, entity_id, count(*) from (select entity_type, entity_id, payload_hash, "
        "lag(payload_hash) over (partition by entity_type, entity_id order by seq) as before "
        "from raw.entity_log where tenant_id = ?) where payload_hash = before group by all",
        [tenant_id],
    )
    assert doubled == []


def assert_log_verifies(project) -> None:
    conn = project.connect()
    try:
        report = verify(conn)
    finally:
        conn.close()
    assert report.ok, [str(p) for p in report.problems]


def assert_payments_complete(project, realm: str, tenant_id: str = "acme") -> None:
    """The log's live Payments and the mirror both equal what the sandbox holds; nothing logged twice."""
    expected = truth(project, realm, PAYMENT)
    assert latest_live(project, tenant_id, "Payment") == expected
    assert mirror(project, tenant_id, PAYMENT) == expected
    assert_no_version_twice(project, tenant_id)
    assert_log_verifies(project)


def cursor(project, tenant_id: str, entity: str) -> tuple | None:
    rows = project.query(
        "select updated_since, cdc_since, last_synced_at, run_id from meta.sync_cursors "
        "where tenant_id = ? and entity_type = ?",
        [tenant_id, entity],
    )
    return rows[0] if rows else None
