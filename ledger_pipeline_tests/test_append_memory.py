"""A sync is one transaction; what it appends must not stay in Python's Arrow memory until the commit.

DuckDB keeps a registered Arrow table referenced until the transaction ends: a first sync of 267k bills
then held 316 MB of batches it had already copied. Appends go through `warehouse.insert_arrow` as a stream,
so the Arrow pool is back to (nearly) empty after each append while the transaction is still open.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from ledger_pipeline.defs.resources import LedgerDuckDB
from ledger_pipeline.lib import entity_log
from ledger_pipeline.lib.entity_log import LogWriter, Observation

ROWS = 4_000
PAYLOAD_BYTES = 2_000  # ~8 MB of payload text per append: far above what may stay behind


def _observations(start: int) -> list[Observation]:
    return [
        Observation(str(i), {"Id": str(i), "PrivateNote": "n" * PAYLOAD_BYTES}, "query") for i in range(start, start + ROWS)
    ]


def test_log_appends_leave_no_arrow_memory_behind_inside_the_transaction(tmp_path: Path) -> None:
    pool = pa.default_memory_pool()
    with LedgerDuckDB(database=str(tmp_path / "ledger.duckdb")).ledger() as conn:
        conn.execute("begin")
        writer = LogWriter(conn, "acme", "qbo", "Bill", "run-1", datetime(2026, 1, 1, tzinfo=UTC))
        held = []
        for start in (0, ROWS, 2 * ROWS):
            assert writer.append(_observations(start)) == ROWS
            held.append(pool.bytes_allocated())
        logged = conn.execute("select count(*), sum(strlen(cast(payload as varchar))) from raw.entity_log").fetchall()[0]
        conn.execute("commit")
    assert logged[0] == 3 * ROWS and logged[1] > 3 * ROWS * PAYLOAD_BYTES
    assert max(held) < 2**20, f"Arrow bytes still allocated after each append: {held}"


def test_a_sync_of_large_objects_inserts_once_two_megabytes_of_payload_are_staged(tmp_path: Path) -> None:
    """Well before `batch_size` rows: what waits in Python for an insert is bounded by its size, not its count."""
    page = 500  # 1 MB of payload a page (2,000-character notes)
    assert page * PAYLOAD_BYTES * 2 >= entity_log.BATCH_PAYLOAD_CHARS > page * PAYLOAD_BYTES
    with LedgerDuckDB(database=str(tmp_path / "ledger.duckdb")).ledger() as conn:
        conn.execute("begin")
        writer = LogWriter(conn, "acme", "qbo", "Bill", "run-1", datetime(2026, 1, 1, tzinfo=UTC), batch_size=5_000)
        in_log = []
        for start in range(0, 3 * page, page):
            assert writer.stage(_observations(start)[:page]) == page
            in_log.append(conn.execute("select count(*) from raw.entity_log").fetchall()[0][0])
        writer.flush()
        logged = conn.execute("select count(*), count(distinct seq) from raw.entity_log").fetchall()[0]
        conn.execute("commit")
    assert in_log == [0, 2 * page, 2 * page]  # the second page reached 2 MB: both went in, the third waits
    assert logged == (3 * page, 3 * page)
