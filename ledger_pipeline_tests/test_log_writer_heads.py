"""The log writer reads each entity's previous version from the log at most once per sync.

A sync is one transaction with one writer per chain, so what the writer has read or appended stays
its entities' last version: a first sync (empty chain) reads no heads at all, a later one each
entity's head once, and an update's payload only when it is diffed. These tests hold the outcome
(ops, diffs, chain) to what a writer that asked the log every batch would log, and count the reads.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from ledger_pipeline.defs.resources import LedgerDuckDB
from ledger_pipeline.lib import entity_log
from ledger_pipeline.lib.entity_log import LogWriter, Observation
from ledger_pipeline.lib.verify import verify

NOW = datetime(2026, 1, 1, tzinfo=UTC)
HEAD_READ = "arg_max(l.payload_hash, l.seq)"
PAYLOAD_READ = "cast(payload as varchar) from raw.entity_log"


class CountingConnection:
    """The ledger connection, recording each statement the writer sends."""

    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self._conn = conn
        self.statements: list[str] = []

    def execute(self, sql: str, *args: object) -> duckdb.DuckDBPyConnection:
        self.statements.append(sql)
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self._conn, name)

    def count(self, fragment: str) -> int:
        return sum(fragment in sql for sql in self.statements)


def bill(entity_id: str, amount: int, note: str = "") -> Observation:
    return Observation(entity_id, {"Id": entity_id, "TotalAmt": amount, "PrivateNote": note}, "query")


def gone(entity_id: str) -> Observation:
    return Observation(entity_id, {"Id": entity_id, "status": "Deleted"}, "cdc", deleted=True)


def logged(conn: duckdb.DuckDBPyConnection) -> list[tuple]:
    rows = conn.execute("select entity_id, op, cast(changes as varchar) from raw.entity_log order by seq").fetchall()
    return [(entity_id, op, json.loads(changes) if changes else None) for entity_id, op, changes in rows]


WRITING = {"mode": "append"}


@pytest.fixture(autouse=True, params=["append", "staged", "head given"])
def writing(request: pytest.FixtureRequest) -> None:
    """How `sync` drives the writer: `append` per batch (inserted at once); `stage` per batch as a sync does
    (inserted in batches of 2, at the end, or before the log is read); the same with the chain's head read
    beforehand for many tenants (`chain_heads`, as a log step does). The log must come out the same."""
    WRITING["mode"] = request.param


def sync(conn: duckdb.DuckDBPyConnection, batches: list[list[Observation]], run_id: str) -> CountingConnection:
    counting = CountingConnection(conn)
    mode = WRITING["mode"]
    head = entity_log.chain_heads(conn, "qbo", "Bill", ["acme", "other"])["acme"] if mode == "head given" else None
    conn.execute("begin")
    if mode == "append":
        writer = LogWriter(counting, "acme", "qbo", "Bill", run_id, NOW)
        for batch in batches:
            writer.append(batch)
    else:
        writer = LogWriter(counting, "acme", "qbo", "Bill", run_id, NOW, batch_size=2, head=head)
        for batch in batches:
            writer.stage(batch)
        writer.flush()
    conn.execute("commit")
    return counting


@pytest.fixture(params=[(20_000, 1_000), (2, 1_000), (20_000, 0)], ids=["heads kept", "cache overflows", "ids joined"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """(heads a writer keeps, most ids read as a list): the outcome is the same; only the reads differ."""
    cache, as_list = request.param
    monkeypatch.setattr(entity_log, "HEAD_CACHE_ENTITIES", cache)
    monkeypatch.setattr(entity_log, "HEAD_IDS_AS_LIST", as_list)
    with LedgerDuckDB(database=str(tmp_path / "ledger.duckdb")).ledger() as conn:
        yield conn, cache == 2


def test_a_first_sync_compares_later_batches_with_what_it_logged_earlier(ledger) -> None:
    conn, overflows = ledger
    counting = sync(
        conn,
        [[bill("1", 10), bill("2", 20), bill("3", 30)], [bill("2", 25), bill("3", 30), gone("4")], [gone("1")]],
        "first",
    )
    assert logged(conn) == [
        ("1", "created", None),
        ("2", "created", None),
        ("3", "created", None),
        ("2", "updated", {"TotalAmt": {"old": 20, "new": 25}}),
        ("1", "deleted", None),
    ]
    assert verify(conn).ok
    # The chain was empty: every head is the writer's own, until more entities than it keeps (then it asks the log).
    assert counting.count(HEAD_READ) == (2 if overflows else 0)
    assert counting.count(PAYLOAD_READ) == 1  # the update's diff; a delete is not diffed


def test_a_later_sync_reads_each_head_once_and_a_payload_only_for_a_diff(ledger) -> None:
    conn, overflows = ledger
    sync(conn, [[bill("1", 10), bill("2", 20), bill("3", 30, "a")]], "first")
    counting = sync(
        conn,
        [
            [bill("1", 10), bill("2", 20)],  # re-read, unchanged: no payload read
            [bill("1", 10), bill("3", 30, "b"), bill("5", 50)],  # 3 and 5 new to this sync; 3's update is diffed
            [bill("3", 31, "b"), bill("2", 20)],  # 3 again: diffed against the version this sync logged
        ],
        "second",
    )
    assert logged(conn)[3:] == [
        ("3", "updated", {"PrivateNote": {"old": "a", "new": "b"}}),
        ("5", "created", None),
        ("3", "updated", {"TotalAmt": {"old": 30, "new": 31}}),
    ]
    assert verify(conn).ok
    assert counting.count(HEAD_READ) == (3 if overflows else 2)  # kept: only batches 1 and 2 meet unknown entities
    assert counting.count(PAYLOAD_READ) == 2  # the diff of batch 2 (logged 3 of the first sync), of batch 3 (its own)


def test_a_delete_or_a_return_carrying_the_last_logged_payload_is_still_logged(ledger) -> None:
    """Stripe's `customer.deleted` event carries the customer as it was: the same payload as its last version.
    Found by `make soak`: the hash alone called it unchanged, and the deleted customer stayed live."""
    conn, _ = ledger
    sync(conn, [[bill("1", 100), bill("2", 200)]], "r1")
    same_as_logged = Observation("1", {"Id": "1", "TotalAmt": 100, "PrivateNote": ""}, "event", deleted=True)
    sync(conn, [[same_as_logged], [same_as_logged]], "r2")  # the second is the same delete seen again
    sync(conn, [[bill("1", 100)]], "r3")  # back, as it was before the delete
    assert logged(conn) == [("1", "created", None), ("2", "created", None), ("1", "deleted", None),
                            ("1", "created", None)]  # fmt: skip
    assert verify(conn, ["acme"]).ok


def test_staged_rows_wait_for_a_full_batch_and_the_head_given_spares_the_read(tmp_path: Path) -> None:
    """Staged rows reach the log in batches, at flush, or before the writer reads the log; with the head given,
    the writer reads nothing until its first row needs a seq. It inserts by position: LOG_COLUMNS is the
    table's column order."""

    def rows() -> int:
        return conn.execute("select count(*) from raw.entity_log").fetchall()[0][0]

    with LedgerDuckDB(database=str(tmp_path / "ledger.duckdb")).ledger() as conn:
        columns = conn.execute("select column_name from duckdb_columns() where schema_name = 'raw' "
                               "and table_name = 'entity_log' order by column_index").fetchall()  # fmt: skip
        assert tuple(c for (c,) in columns) == entity_log.LOG_COLUMNS
        for run_id in ("first", "second"):
            counting = CountingConnection(conn)
            head = entity_log.chain_heads(conn, "qbo", "Bill", ["acme"])["acme"]
            conn.execute("begin")
            writer = LogWriter(counting, "acme", "qbo", "Bill", run_id, NOW, batch_size=2, head=head)
            assert writer.stage([bill("1", 10)]) == (1 if run_id == "first" else 0)
            if run_id == "second":  # unchanged: its head was read, and no seq was needed
                assert counting.count("max(seq)") == 0
                conn.execute("commit")
                break
            # The chain was empty: no head to read; the first row's seq is the only read, once.
            assert len(counting.statements) == counting.count("max(seq)") == 1 and rows() == 0
            assert writer.stage([bill("2", 20)]) == 1  # the batch is full: in it goes
            assert rows() == 2 and counting.count("max(seq)") == 1
            writer.stage([bill("3", 30)])
            assert rows() == 2
            writer.flush()
            conn.execute("commit")
        assert rows() == 3
        assert verify(conn).ok
