"""The published read side (lib/read_side/, defs/read_side.py): analysts never block syncs, syncs never block them.

Real runs of the sync job on a real ledger file; readers are other processes with nothing but DuckDB, as an
analyst's notebook is.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import dagster as dg
import duckdb

from ledger_pipeline import cli
from ledger_pipeline.defs.read_side import MATCHES_LEDGER, READ_SIDE_KEY
from ledger_pipeline.lib.read_side import retention
from ledger_pipeline.lib.read_side.layout import ReadSide, point
from ledger_pipeline_tests.conftest import Project
from ledger_pipeline_tests.shared_ledger import SharedLedger

REPO = Path(__file__).resolve().parents[1]
# What a reader compares per generation: counts of a table of each layer, and every chain's head.
COUNTED = ("raw.entity_log", "mirror.qbo_bills", "history.qbo_bills", "marts.ap_aging", "meta.sync_cursors")
SNAPSHOT = (
    "select (select generation from meta.read_side), "
    + ", ".join(f"(select count(*) from {t})" for t in COUNTED)
    + ", (select list(h order by h) from (select rail || entity_type || arg_max(row_hash, seq) h "
    "from raw.entity_log group by rail, entity_type))"
)
# A reader process: `hold` keeps one connection and re-reads it; `poll` opens the entry point afresh each time.
READER = textwrap.dedent("""
    import json, sys, time, duckdb
    mode, entry, stop, sql = sys.argv[1:]
    seen, errors, conn = [], [], None
    print("ready", flush=True)
    while True:
        try:
            if conn is None or mode == "poll":
                conn = duckdb.connect(entry, read_only=True)
            seen.append(list(conn.execute(sql).fetchall()[0]))
            if mode == "poll":
                conn.close()
        except Exception as exc:
            errors.append(str(exc))
        try:
            open(stop).close()
            break
        except FileNotFoundError:
            time.sleep(0.25)
    print(json.dumps({"seen": seen, "errors": errors}), flush=True)
""")


def _reader(mode: str, entry: Path, stop: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", READER, mode, str(entry), str(stop), SNAPSHOT],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _finish(proc: subprocess.Popen) -> dict:
    out, _ = proc.communicate(timeout=60)
    return json.loads(out.strip().splitlines()[-1])


def _ledger_values(project: Project) -> list:
    """What SNAPSHOT gives on the read side, but the generation, computed on the ledger."""
    return list(project.query("select " + SNAPSHOT.split(", ", 1)[1])[0])


def _publication(result: dg.ExecuteInProcessResult) -> tuple[int, bool]:
    """The generation a run published and whether its check passed."""
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == READ_SIDE_KEY]
    (check,) = [c for c in result.get_asset_check_evaluations() if c.check_name == MATCHES_LEDGER]
    return event.step_materialization_data.materialization.metadata["generation"].value, check.passed


def assert_read_side_equals_ledger(project: Project, tenant_id: str) -> None:
    """Every published table of the tenant holds the same rows on the read side as in the ledger."""
    read_side = ReadSide(project.root / "read")
    conn = duckdb.connect()
    try:
        conn.execute("attach ? as ledger (read_only)", [str(project.db_path)])
        conn.execute("attach ? as published (read_only)", [str(read_side.entry)])
        tables = read_side.latest()["columns"]
        for name in tables:
            differing = conn.execute(
                f"select count(*) from ((select * from ledger.{name} where tenant_id = $t except all "
                f"select * from published.{name} where tenant_id = $t) union all (select * from published.{name} "
                f"where tenant_id = $t except all select * from ledger.{name} where tenant_id = $t))",
                {"t": tenant_id},
            ).fetchall()[0][0]
            assert differing == 0, f"{name}: {differing} rows differ between the ledger and the read side"
    finally:
        conn.close()


def _linked(read_side: ReadSide) -> int:
    """A copied read side's entry point is a copy, not a name of the newest generation's views file: make it one
    again, as the next publication would; returns that generation."""
    generation = read_side.published()[-1]
    point(read_side.entry, read_side.views_path(generation))
    return generation


def test_readers_never_block_syncs_and_always_see_whole_generations(synced_acme: Project, tmp_path: Path):
    read_side = ReadSide(synced_acme.root / "read")
    first = _linked(read_side)
    expected = {first: [first, *_ledger_values(synced_acme)]}
    stop = tmp_path / "stop"
    holder = _reader("hold", read_side.entry, stop)  # an analyst's notebook left open on it
    poller = _reader("poll", read_side.entry, stop)
    try:
        for day in (1, 2):
            synced_acme.sandbox.advance(timedelta(days=1))
            started = time.monotonic()
            result = synced_acme.sync("acme")
            assert result.success and time.monotonic() - started < 60  # no wait for the reader's lock
            generation, passed = _publication(result)
            assert (generation, passed) == (first + day, True)
            expected[generation] = [generation, *_ledger_values(synced_acme)]  # its check compared it with the ledger
        assert read_side.published() == [first, first + 1, first + 2]  # the holder's is kept: it is open
    finally:
        stop.touch()
        held, polled = _finish(holder), _finish(poller)
    assert_read_side_equals_ledger(synced_acme, "acme")
    assert held["errors"] == [] and polled["errors"] == []
    assert {json.dumps(s) for s in held["seen"]} == {json.dumps(expected[first])}
    assert first in {s[0] for s in polled["seen"]} and len({s[0] for s in polled["seen"]}) >= 2  # it followed them
    for seen in polled["seen"]:
        assert seen == expected[seen[0]], f"generation {seen[0]} seen mixed or incomplete"
    # Nobody holds the first generation any more: the next publication's clean-up removes it.
    assert retention.collect(read_side) > 0
    assert read_side.published() == [first + 1, first + 2]
    assert not any(p.name.startswith(f"{first:08d}") for p in read_side.generations.iterdir())


KILLED_CHILD = textwrap.dedent("""
    import sys, time
    from datetime import timedelta
    from pathlib import Path
    import dagster as dg
    from ledger_pipeline.lib.read_side import publish
    from ledger_pipeline_tests.conftest import project_at
    from ledger_pipeline.defs.partitions import TENANTS

    root, marker = Path(sys.argv[1]), Path(sys.argv[2])
    BILLS, READ_SIDE = dg.AssetKey(["raw", "qbo_bills"]), dg.AssetKey(["read_side", "generation"])

    def stall(path, data):  # every file of the new generation is written; its manifest is next
        marker.touch()
        time.sleep(120)

    publish.write_json = stall
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(TENANTS.name, ["acme"])
        project = project_at(root, instance)
        project.sandbox.advance(timedelta(days=4))
        project.sync("acme", asset_selection=[BILLS])  # new bill versions
        project.sync("acme", asset_selection=[READ_SIDE])  # and their publication
""")


def test_a_publication_killed_half_way_leaves_the_last_generation_and_the_next_run_repairs(synced_acme: Project):
    read_side = ReadSide(synced_acme.root / "read")
    first = read_side.published()[-1]
    before = [first, *_ledger_values(synced_acme)]
    marker = synced_acme.root / "publishing"
    child = subprocess.Popen([sys.executable, "-c", KILLED_CHILD, str(synced_acme.root), str(marker)], cwd=REPO,
                             env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert child.poll() is None and time.monotonic() < deadline, "the child never reached the manifest"
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    conn = duckdb.connect(str(read_side.entry), read_only=True)
    try:  # the previous generation, whole, though the ledger has moved on
        assert list(conn.execute(SNAPSHOT).fetchall()[0]) == before
    finally:
        conn.close()
    assert read_side.published()[-1] == first
    assert _ledger_values(synced_acme) != before[1:]
    killed = set((read_side.root / "tenants").rglob("*.parquet")) - _named(read_side)
    assert killed, "the killed publication had written files of its own"
    assert _publication(synced_acme.sync("acme", asset_selection=[READ_SIDE_KEY])) == (first + 1, True)
    assert_read_side_equals_ledger(synced_acme, "acme")
    assert set((read_side.root / "tenants").rglob("*.parquet")) == _named(read_side)  # what no generation needs: gone
    assert not list(read_side.root.rglob("*.tmp"))


def _named(read_side: ReadSide) -> set[Path]:
    """The Parquet files the kept generations name."""
    return {read_side.root / f for g in read_side.published() for t in read_side.manifest(g)["tenants"].values()
            for e in t["tables"].values() for f in e["files"]}  # fmt: skip


def test_a_tenants_share_holds_that_tenant_alone(shared_ledger: SharedLedger):
    read_side = ReadSide(shared_ledger.root / "read")
    folder = read_side.tenant_dir("acme")
    files = list(folder.rglob("*.parquet"))
    conn = duckdb.connect()
    try:
        tenants = conn.execute("select distinct tenant_id from read_parquet(?, union_by_name = true)",
                               [[str(f) for f in files]]).fetchall()  # fmt: skip
        assert tenants == [("acme",)]
    finally:
        conn.close()
    conn = duckdb.connect(str(read_side.tenant_entry("acme")), read_only=True)
    try:
        conn.execute("set file_search_path = ?", [str(folder)])  # its views name files relative to its folder
        relations = conn.execute(
            "select distinct schema_name || '.' || table_name from duckdb_columns() "
            "where database_name = current_database() and column_name = 'tenant_id'"
        ).fetchall()
        assert len(relations) > 60
        with duckdb.connect(str(shared_ledger.project.db_path), read_only=True) as ledger:
            for (name,) in relations:
                shown = conn.execute(f"select tenant_id, count(*) from {name} group by all").fetchall()
                assert {t for t, _ in shown} <= {"acme"}, name
                if name.split(".")[0] in ("raw", "mirror", "history", "marts"):
                    expected = ledger.execute(f"select count(*) from {name} where tenant_id = ?", ["acme"]).fetchall()
                    assert sum(n for _, n in shown) == expected[0][0], name
        as_of = "select count(*) from history.qbo_bills_as_of(?, now())"
        assert conn.execute(as_of, ["acme"]).fetchall()[0][0] > 0
        assert conn.execute(as_of, ["globex"]).fetchall()[0][0] == 0
    finally:
        conn.close()


def test_analyst_db_prints_the_file_to_open(shared_ledger: SharedLedger, monkeypatch, capsys):
    monkeypatch.setenv("LEDGER_DUCKDB_PATH", str(shared_ledger.project.db_path))
    assert cli.main(["analyst-db"]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path == shared_ledger.root / "read" / "analyst.duckdb"
    with duckdb.connect(str(path), read_only=True) as conn:
        assert conn.execute("select list(distinct tenant_id order by tenant_id) from mirror.qbo_bills").fetchall() == [
            (["acme", "globex", "initech"],)
        ]
    assert cli.main(["analyst-db", "--tenant", "globex"]) == 0
    shown = capsys.readouterr()
    assert Path(shown.out.strip()) == shared_ledger.root / "read" / "tenants" / "globex" / "globex.duckdb"
    assert "cd " in shown.err
    assert cli.main(["analyst-db", "--tenant", "nobody"]) == 1
    monkeypatch.setenv("LEDGER_DUCKDB_PATH", str(shared_ledger.root / "elsewhere" / "ledger.duckdb"))
    assert cli.main(["analyst-db"]) == 1
