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
