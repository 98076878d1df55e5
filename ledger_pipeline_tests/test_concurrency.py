"""Two writers on one DuckDB file at once, with Dagster's pool bypassed: they take turns or one fails clearly.

DuckDB keeps a second process out of a file it has open for writing, but two
connections of one process may write it side by side, and the log writer's
`max(seq) + 1` would then fork chains. The writer lock in lib/writer_lock.py
(threads and processes alike) and the unique index on seq stop that.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from ledger_pipeline.defs.resources import LedgerDuckDB
from ledger_pipeline.lib import cursors, warehouse
from ledger_pipeline.lib.canonical import canonical_json, sha256_hex
from ledger_pipeline.lib.entity_log import LogWriter, Observation
from ledger_pipeline.lib.verify import verify
from ledger_pipeline.lib.writer_lock import WriterLock
from ledger_pipeline.rails.qbo.entities import ENTITIES
from ledger_pipeline.rails.qbo.entities import entity as entity_named
from ledger_pipeline.rails.qbo.sandbox import Fault
from ledger_pipeline.rails.qbo.sync import sync_entity
from ledger_pipeline_tests.storm.child import SyncSettings, sync_once
from ledger_pipeline_tests.storm.layout import StormProject, fast_folder

ROOT = Path(__file__).resolve().parents[1]
DOUBLED_SQL = """
select count(*) from (
    select tenant_id, entity_type, entity_id, payload_hash from raw.entity_log group by all having count(*) > 1
)
"""


def _log_is_sound(conn) -> None:
    """Chains verify, seq is unique and no version of an entity is logged twice."""
    report = verify(conn)
    assert report.ok, [str(p) for p in report.problems]
    assert conn.execute("select count(*) = count(distinct seq) from raw.entity_log").fetchall() == [(True,)]
    assert conn.execute(DOUBLED_SQL).fetchall() == [(0,)]


@pytest.fixture
def fast_dir(tmp_path):
    with fast_folder(tmp_path) as folder:
        yield folder


@pytest.fixture
def lock_spans(monkeypatch):
    """(thread name, acquired, released) of every writer lock taken, by wrapping the lock's two methods."""
    spans: list[list] = []
    acquire, release = WriterLock.acquire.__func__, WriterLock.release

    def tracked_acquire(cls, db_path, deadline):
        lock = acquire(cls, db_path, deadline)
        lock.span = [threading.current_thread().name, time.monotonic(), None]
        spans.append(lock.span)
        return lock

    def tracked_release(self):
        if getattr(self, "span", None) and self.span[2] is None:
            self.span[2] = time.monotonic()
        release(self)

    monkeypatch.setattr(WriterLock, "acquire", classmethod(tracked_acquire))
    monkeypatch.setattr(WriterLock, "release", tracked_release)
    return spans


def _in_threads(*targets) -> list:
    """Run the callables at the same instant in their own threads; their results (or exceptions)."""
    results: list = [None] * len(targets)
    start = threading.Barrier(len(targets))

    def run(i, target):
        start.wait()
        try:
            results[i] = target()
        except BaseException as exc:  # reported by the caller
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, t), name=f"writer-{i}") for i, t in enumerate(targets)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def _expect_sandbox_state(project: StormProject) -> None:
    """The log verifies, and every mirror holds exactly what the sandbox holds now."""
    conn = warehouse.connect(project.db_path, read_only=True)
    try:
        _log_is_sound(conn)
        for entity in ENTITIES:
            mirrored = conn.execute(
                f"select qbo_id, payload_hash from mirror.qbo_{entity.table} where tenant_id = ?", [project.tenant_id]
            ).fetchall()
            live = project.sandbox().live_objects(project.realm_id, entity.name)
            assert dict(mirrored) == {i: sha256_hex(canonical_json(p)) for i, p in live.items()}, entity.name
    finally:
        conn.close()


def test_two_threads_running_the_sync_job_take_turns(fast_dir, lock_spans):
    # An on-disk Dagster instance without pools: nothing in Dagster keeps the two runs apart.
    project = StormProject(str(fast_dir / "project"), scale=0.04).create(pools=False)
    # Slow pages keep each log step's transaction open long enough for the other run to collide with it.
    project.sandbox().inject(project.realm_id, Fault("slow", endpoint="query", count=-1, delay=0.01))

    def run():
        return sync_once(project, SyncSettings(page_size=20, batch_size=20))

    outcomes = _in_threads(run, run)

    for outcome in outcomes:
        assert not isinstance(outcome, BaseException), repr(outcome)
        assert outcome["success"], outcome["failure"]
        assert all(outcome["checks"].values()), outcome["checks"]
    assert {name for name, _, _ in lock_spans} == {"writer-0", "writer-1"}  # both runs wrote, each in its thread
    spans = sorted(lock_spans, key=lambda s: s[1])
    assert all(before[2] <= after[1] for before, after in zip(spans, spans[1:])), "two writers held the file at once"
    _expect_sandbox_state(project)


def _append(conn, tenant: str, ids: range, note: str) -> int:
    """One writer's transaction: a batch of bills for the tenant, logged through LogWriter."""
    conn.execute("begin")
    writer = LogWriter(conn, tenant, "qbo", "Bill", f"run-{note}", datetime.now(UTC))
    appended = writer.append([Observation(str(i), {"Id": str(i), "PrivateNote": note}, "query") for i in ids])
    time.sleep(0.2)  # hold the transaction open while the other writer starts
    conn.execute("commit")
    return appended


def test_two_ledger_writers_in_one_process_never_fork_a_chain(tmp_path, lock_spans):
    resource = LedgerDuckDB(database=str(tmp_path / "ledger.duckdb"))
    with resource.ledger():
        pass  # create the file

    def write(note: str):
        with resource.ledger() as conn:
            return _append(conn, "acme", range(1, 51), note)

    results = _in_threads(lambda: write("first"), lambda: write("second"))

    assert results == [50, 50], results  # both committed: the second waited, then logged its own versions
    spans = sorted(lock_spans[1:], key=lambda s: s[1])
    assert spans[0][2] <= spans[1][1], "the second writer did not wait for the first"
    conn = warehouse.connect(tmp_path / "ledger.duckdb", read_only=True)
    try:
        _log_is_sound(conn)
        # One chain of 100 rows: the later writer appended after the earlier one's head, not beside it.
        assert conn.execute("select count(*), count(distinct prev_hash) from raw.entity_log").fetchall() == [(100, 99)]
    finally:
        conn.close()


def test_writers_that_bypass_the_lock_still_cannot_duplicate_a_seq(tmp_path):
    path = tmp_path / "ledger.duckdb"
    warehouse.connect(path).close()  # the ledger's tables and its unique index on seq
    raw = [duckdb.connect(str(path)), duckdb.connect(str(path))]  # straight to DuckDB: no writer lock
    for conn in raw:
        conn.execute("begin")
    LogWriter(raw[0], "acme", "qbo", "Bill", "run-a", datetime.now(UTC)).append(
        [Observation("1", {"Id": "1", "PrivateNote": "a"}, "query")]
    )
    LogWriter(raw[1], "acme", "qbo", "Bill", "run-b", datetime.now(UTC)).append(
        [Observation("1", {"Id": "1", "PrivateNote": "b"}, "query")]
    )
    raw[0].execute("commit")
    with pytest.raises(duckdb.TransactionException, match="(?i)duplicate key"):
        raw[1].execute("commit")  # same seq, same prev_hash: committing it would fork the chain
    for conn in raw:
        conn.close()
    conn = warehouse.connect(path, read_only=True)
    try:
        _log_is_sound(conn)
        assert conn.execute("select count(*) from raw.entity_log").fetchall() == [(1,)]
    finally:
        conn.close()


def test_a_writer_that_cannot_get_the_file_fails_naming_the_holder(tmp_path):
    path = tmp_path / "ledger.duckdb"
    holder = warehouse.connect(path)
    try:
        errors = _in_threads(lambda: warehouse.connect(path, wait=0.3))
        assert isinstance(errors[0], warehouse.WarehouseError), errors
        message = str(errors[0])
        assert f"another writer holds {path}" in message and f"pid {os.getpid()}" in message, message
        assert "thread MainThread" in message, message
        with pytest.raises(warehouse.WarehouseError, match="this thread already has .* open for writing"):
            warehouse.connect(path, wait=0.3)
    finally:
        holder.close()
    warehouse.connect(path, wait=0.3).close()  # released on close


def test_readers_take_no_writer_lock(tmp_path):
    path = tmp_path / "ledger.duckdb"
    warehouse.connect(path).close()
    lock = WriterLock.acquire(path, deadline=time.monotonic())  # as a writer between two of its steps
    try:
        reader = warehouse.connect(path, read_only=True, wait=0)
        assert reader.execute("select count(*) from raw.entity_log").fetchall() == [(0,)]
        reader.close()
    finally:
        lock.release()


_HOLD = """
import sys, time
from ledger_pipeline.lib import cursors, warehouse
conn = warehouse.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(60)
"""


def test_a_writer_process_blocks_another_until_it_dies(tmp_path):
    path = tmp_path / "ledger.duckdb"
    warehouse.connect(path).close()
    other = subprocess.Popen([sys.executable, "-c", _HOLD, str(path)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert other.stdout.readline().strip() == "holding"
        started = time.monotonic()
        with pytest.raises(warehouse.WarehouseError) as refused:
            warehouse.connect(path, wait=0.5)
        assert time.monotonic() - started >= 0.5  # it waited before giving up
        assert f"another writer holds {path} (pid {other.pid}, thread MainThread" in str(refused.value)
    finally:
        other.send_signal(signal.SIGKILL)
        other.wait()
    conn = warehouse.connect(path, wait=5)  # the kernel dropped the dead writer's lock
    try:
        _log_is_sound(conn)
    finally:
        conn.close()


def test_two_processes_syncing_the_same_tenant_take_turns(fast_dir):
    project = StormProject(str(fast_dir / "project"), scale=0.04).create(pools=False)  # no Dagster queueing
    project.sandbox().inject(project.realm_id, Fault("slow", endpoint="query", count=-1, delay=0.01))
    command = [sys.executable, "-m", "ledger_pipeline_tests.storm.child", project.root, "--scale", "0.04"]
    children = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
        for _ in range(2)
    ]

    outcomes = [json.loads(child.communicate(timeout=240)[0]) for child in children]

    assert all(o["success"] for o in outcomes), [o["failure"] for o in outcomes]
    assert all(all(o["checks"].values()) for o in outcomes), [o["checks"] for o in outcomes]
    _expect_sandbox_state(project)


@pytest.mark.parametrize("rival_commits", ["before the sync inserts", "before the sync commits"])
def test_a_write_refused_mid_sync_fails_with_its_own_reason(project, rival_commits, monkeypatch):
    """A refused insert aborts the transaction and a refused commit rolls it back: the sync must say why it was
    refused, not fail again while cleaning up (unregistering a batch, rolling back) and report that instead."""
    project.add_tenant("acme")
    path = project.db_path
    warehouse.connect(path).close()
    client = project.qbo.client(project.registry.get("acme"))
    rival = duckdb.connect(str(path))  # a writer that bypassed every lock ...
    rival.execute("begin")
    LogWriter(rival, "rival", "qbo", "Bill", "run-rival", datetime.now(UTC)).append(
        [Observation("1", {"Id": "1"}, "query")]
    )  # ... holds seq 1 uncommitted, the seq the sync is about to take
    pages, save_cursor = client.pages, cursors.save

    def pages_then_rival_commit(*args, **kwargs):
        yield from pages(*args, **kwargs)
        rival.execute("commit")  # the sync appends its batch after the last page: its insert is refused

    def rival_commit_then_save(*args, **kwargs):
        rival.execute("commit")  # the sync's rows are in; its cursor and commit come next: the commit is refused
        return save_cursor(*args, **kwargs)

    if rival_commits == "before the sync inserts":
        client.pages = pages_then_rival_commit
    else:
        monkeypatch.setattr(cursors, "save", rival_commit_then_save)
    conn = duckdb.connect(str(path))
    try:
        with pytest.raises(duckdb.Error, match="(?i)duplicate key") as refused:
            sync_entity(conn, client, "acme", entity_named("Bill"), run_id="run-acme", observed_at=datetime.now(UTC))
        assert "transaction is aborted" not in str(refused.value) and "no transaction" not in str(refused.value)
        assert conn.execute("select count(*) from raw.entity_log where tenant_id = 'acme'").fetchall() == [(0,)]
        assert conn.execute("select count(*) from meta.sync_cursors").fetchall() == [(0,)]
    finally:
        conn.close()
        rival.close()
        client.close()
