"""Opening the ledger for writing is cheap (an ATTACH to a DuckDB instance kept per process), and closing it
still lets go of the file: checkpointed, unlocked, usable by the next process, also when a writer is dropped."""

from __future__ import annotations

import dataclasses
import gc
import subprocess
import sys
from pathlib import Path

import pytest

from ledger_pipeline.defs.resources import LedgerDuckDB
from ledger_pipeline.lib import duckdb_host, ledger_views, sql_models, warehouse

ROOT = Path(__file__).resolve().parents[1]
# Another process opens the file read-write at once (wait=0: no retrying on DuckDB's file lock) and counts.
_OTHER_WRITER = """
import sys
from ledger_pipeline.lib import warehouse
conn = warehouse.connect(sys.argv[1], wait=0)
print(conn.execute("select count(*) from meta.probe").fetchall()[0][0])
conn.close()
"""


def _count_from_another_process(path: Path) -> int:
    done = subprocess.run([sys.executable, "-c", _OTHER_WRITER, str(path)], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout.strip())


def test_writers_share_one_instance_and_closing_lets_go_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ledger.duckdb"
    resource = LedgerDuckDB(database=str(path))
    with resource.ledger() as conn:
        conn.execute("create table meta.probe (n integer)")
        conn.execute("insert into meta.probe values (1)")
        first = duckdb_host._hosts[str(path.resolve())].instance
    assert not Path(f"{path}.wal").exists(), "closing a writer checkpoints its writes into the file"
    assert _count_from_another_process(path) == 1  # and the file is free at once for another process's writer
    with resource.ledger() as conn:
        conn.execute("insert into meta.probe values (2)")
        assert duckdb_host._hosts[str(path.resolve())].instance is first, "a new DuckDB instance was built per open"
        assert conn.execute("select current_setting('temp_directory')").fetchall() == [(f"{path.resolve()}.tmp",)]
    assert _count_from_another_process(path) == 2


def test_a_writer_dropped_without_closing_is_detached_and_unlocked(tmp_path: Path) -> None:
    path = tmp_path / "ledger.duckdb"
    conn = warehouse.connect(path)
    conn.execute("create table meta.probe (n integer)")
    conn.execute("insert into meta.probe values (7)")
    del conn
    gc.collect()
    assert _count_from_another_process(path) == 1
    again = warehouse.connect(path, wait=0)  # this process can attach it again too
    again.close()


def test_an_uncommitted_transaction_is_rolled_back_on_close(tmp_path: Path) -> None:
    path = tmp_path / "ledger.duckdb"
    with LedgerDuckDB(database=str(path)).ledger() as conn:
        conn.execute("create table meta.probe (n integer)")
    conn = warehouse.connect(path)
    conn.execute("begin")
    conn.execute("insert into meta.probe values (1)")
    conn.close()
    assert _count_from_another_process(path) == 0


def test_a_reader_in_the_writers_own_process_is_refused_while_the_writer_is_open(tmp_path: Path) -> None:
    path = tmp_path / "ledger.duckdb"
    writer = warehouse.connect(path)
    try:
        with pytest.raises(warehouse.WarehouseError, match="open for writing"):
            warehouse.connect(path, read_only=True)
    finally:
        writer.close()
    reader = warehouse.connect(path, read_only=True)  # fine once the writer let go
    reader.close()


def test_duckdb_memory_is_capped_by_the_setting_and_a_bad_setting_is_named(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LEDGER_DUCKDB_MEMORY_LIMIT", "300MB")
    path = tmp_path / "ledger.duckdb"
    with LedgerDuckDB(database=str(path)).ledger() as conn:
        assert conn.execute("select current_setting('memory_limit')").fetchall() == [("286.1 MiB",)]
    with LedgerDuckDB(database=str(path)).ledger(read_only=True) as conn:
        assert conn.execute("select current_setting('memory_limit')").fetchall() == [("286.1 MiB",)]

    monkeypatch.setenv("LEDGER_DUCKDB_MEMORY_LIMIT", "lots")
    with pytest.raises(ValueError, match="LEDGER_DUCKDB_MEMORY_LIMIT='lots'"):
        warehouse.connect(tmp_path / "other.duckdb")


# Another process opens a ledger whose views are current, as a sync or an operator command does, and tells
# whether it parsed the models' SQL (ordering them does: most of a second a process).
_OPEN_CURRENT = """
import sys
from ledger_pipeline.lib import ledger_views, sql_models, warehouse
conn = warehouse.connect(sys.argv[1], wait=0)
ledger_views.ensure(conn)
conn.close()
print(sql_models.load_models.cache_info().currsize)
"""


def test_a_writer_finds_its_views_current_without_parsing_the_models(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "ledger.duckdb"
    conn = warehouse.connect(path)
    ledger_views.ensure(conn)
    conn.close()
    done = subprocess.run([sys.executable, "-c", _OPEN_CURRENT, str(path)], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["0"]

    # ... and the fingerprint still follows every model's text: one comment more makes the views outdated.
    models = sql_models.read_models()
    edited = (dataclasses.replace(models[-1], sql=models[-1].sql + "\n-- edited\n"), *models[:-1])
    current = ledger_views.fingerprint()
    monkeypatch.setattr(ledger_views, "read_models", lambda: edited)
    ledger_views.fingerprint.cache_clear()
    try:
        assert ledger_views.fingerprint() != current
    finally:
        ledger_views.fingerprint.cache_clear()
