"""`ledger-pipeline export-tenant`: one tenant's read-only slice of the ledger, and nothing of anyone else.

The session's shared ledger (shared_ledger.py): three tenants on three sandbox
companies synced, the sandbox moved three days, acme and globex synced again
(so acme's history has updates and deletes). Every test exports acme (or reads
the module's one export) and compares it with the ledger.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from ledger_pipeline import cli
from ledger_pipeline.lib import warehouse
from ledger_pipeline.rails.qbo.entities import ENTITIES
from ledger_pipeline_tests.conftest import Project
from ledger_pipeline_tests.shared_ledger import TENANTS, SharedLedger

EXPORTED = "acme"
OTHERS = tuple(t for t in TENANTS if t != EXPORTED)  # globex, initech


@dataclass
class Ledger:
    project: Project  # the session's shared ledger: read only
    between_syncs: datetime  # after the first sync of every tenant, before the second of acme and globex
    runs: dict[str, tuple[str, ...]]  # tenant -> run ids of its syncs
    export: Path  # acme's export, written once through the CLI
    cli_out: str


@pytest.fixture(scope="module")
def ledger(shared_ledger: SharedLedger, tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    project = shared_ledger.project
    export = tmp_path_factory.mktemp("exports") / "acme.duckdb"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("DAGSTER_HOME", raising=False)  # module fixtures run before conftest's hermetic_environment
        mp.setenv("LEDGER_DUCKDB_PATH", str(project.db_path))
        code, out = _run_cli(["export-tenant", EXPORTED, "--output", str(export)])
    assert code == 0, out
    return Ledger(project, shared_ledger.facts.between_syncs, shared_ledger.facts.runs, export, out)


def _run_cli(argv: list[str]) -> tuple[int, str]:
    """cli.main with its stdout and stderr captured outside pytest's per-test capture (for module fixtures)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue() + err.getvalue()


def _read(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    with _opened(path) as read:
        return read(sql, params)


@contextlib.contextmanager
def _opened(path: Path, *, ledger: bool = False) -> Iterator[Callable[..., list[tuple]]]:
    """One read-only connection for many queries (each open costs about a tenth of a second): a plain one in UTC, as
    `_read` opens the export, or with `ledger` the pipeline's own, as `project.query` opens the ledger."""
    conn = warehouse.connect(path, read_only=True) if ledger else duckdb.connect(str(path), read_only=True)
    try:
        if not ledger:
            conn.execute("set TimeZone = 'UTC'")
        yield lambda sql, params=None: conn.execute(sql, params or []).fetchall()
    finally:
        conn.close()


def _tenant_relations(path: Path) -> set[str]:
    """Every table and view of a database file that has a tenant_id column."""
    query = "select distinct schema_name || '.' || table_name from duckdb_columns() where column_name = 'tenant_id'"
    rows = _read(path, query)
    return {r[0] for r in rows}


def _contents(path: Path) -> tuple[str, set[str]]:
    """Every value of every table and view (as one text, and the text values as a set of cells: a number that reads
    like another tenant's DocNumber, an amount in cents, is no leak), plus view and macro definitions."""
    conn = duckdb.connect(str(path), read_only=True)
    try:
        parts, cells = [], set()
        relations = conn.execute(
            "select schema_name, table_name, null from duckdb_tables() union all "
            "select schema_name, view_name, sql from duckdb_views() where not internal"
        ).fetchall()
        for schema, name, sql in relations:
            rows = conn.execute(f'select * from "{schema}"."{name}"').fetchall()
            parts += [sql or "", repr(rows)]
            cells.update(value for row in rows for value in row if isinstance(value, str))
        parts.append(repr(conn.execute("select * from duckdb_functions() where not internal").fetchall()))
        return "\n".join(parts), cells
    finally:
        conn.close()


def test_export_holds_exactly_the_tenants_rows_of_every_table_and_view(ledger):
    source = ledger.project.db_path
    relations = _tenant_relations(source)
    assert _tenant_relations(ledger.export) == relations
    tables = {r[0] for r in _read(ledger.export, "select schema_name || '.' || table_name from duckdb_tables()")}
    assert tables - relations == {"meta.ledger_info"}  # the one table without tenant rows: the export's own settings
    assert dict(_read(ledger.export, "select * from meta.ledger_info"))["export_tenant_id"] == EXPORTED
    assert {"raw.entity_log", "meta.sync_cursors", "quarantine.mirror_rows", "marts.ap_aging"} <= relations
    assert {f"{layer}.qbo_{e.table}" for e in ENTITIES for layer in ("raw", "stg", "mirror", "history")} <= relations
    with _opened(source, ledger=True) as in_ledger, _opened(ledger.export) as in_export:
        for name in sorted(relations):
            query = f"select * from {name} where tenant_id = ? order by all"
            expected = in_ledger(query, [EXPORTED])
            assert in_export(query, [EXPORTED]) == expected, name
            assert in_export(f"select count(*) from {name}") == [(len(expected),)], name
    log_rows = ledger.project.query("select count(*) from raw.entity_log where tenant_id = ?", [EXPORTED])[0][0]
    assert log_rows > 0 and f"tenant acme, {log_rows} log rows" in ledger.cli_out
    ops = dict(ledger.project.query("select op, count(*) from raw.qbo_bills where tenant_id = ? group by 1", ["acme"]))
    assert ops.get("updated") and ops.get("deleted"), ops  # history with more than one version per object


def test_no_row_id_or_value_of_another_tenant_reaches_the_export(ledger):
    p = ledger.project
    only_others = (
        "select distinct {col} from {rel} where tenant_id <> 'acme' and {col} is not null "
        "and {col} not in (select {col} from {rel} where tenant_id = 'acme' and {col} is not null)"
    )
    long_values = {  # unique strings: searched for anywhere in the export's text
        "payload_hash": only_others.format(col="payload_hash", rel="raw.entity_log"),
        "row_hash": only_others.format(col="row_hash", rel="raw.entity_log"),
        "run_id": only_others.format(col="run_id", rel="raw.entity_log"),
    }
    short_values = {  # short strings: searched for as whole values and as JSON fields of payloads
        "DocNumber": only_others.format(col="doc_number", rel="stg.qbo_bills"),
        "DisplayName": only_others.format(col="display_name", rel="stg.qbo_vendors"),
    }
    long_needles = {kind: [r[0] for r in p.query(sql)] for kind, sql in long_values.items()}
    short_needles = {kind: [r[0] for r in p.query(sql)] for kind, sql in short_values.items()}
    counts = {k: len(v) for k, v in {**long_needles, **short_needles}.items()}
    other_runs = {run for tenant in OTHERS for run in ledger.runs[tenant]}
    assert set(long_needles["run_id"]) == other_runs and counts.pop("run_id") == len(other_runs) >= len(OTHERS)
    assert min(counts.values()) >= 5, counts
    long_needles["tenant id"] = list(OTHERS)
    long_needles["realm id"] = [p.registry.get(t).connection("qbo").realm_id for t in OTHERS]

    text, cells = _contents(ledger.export)
    found = {kind: [v for v in values if v in text] for kind, values in long_needles.items()}
    found |= {
        kind: [v for v in values if v in cells or f'"{kind}":{json.dumps(v, ensure_ascii=False)}' in text]
        for kind, values in short_needles.items()
    }
    assert not any(found.values()), {k: v[:3] for k, v in found.items() if v}
    ours = p.query("select payload_hash, doc_number from stg.qbo_bills where tenant_id = 'acme' and doc_number > ''")[0]
    assert ours[0] in text and ours[1] in cells  # the scan does see the exported tenant's values
    with _opened(ledger.export) as in_export:
        for name in _tenant_relations(ledger.export):
            assert in_export(f"select distinct tenant_id from {name}") in ([], [(EXPORTED,)]), name
    raw = ledger.export.read_bytes()
    assert not [t for t in OTHERS if t.encode() in raw]


def test_as_of_macros_work_in_the_export_and_see_only_the_tenant(ledger, monkeypatch, capsys):
    now = datetime.now(UTC)
    with _opened(ledger.project.db_path, ledger=True) as in_ledger, _opened(ledger.export) as in_export:
        for entity in ENTITIES:
            query = f"select * from history.qbo_{entity.table}_as_of(?, ?) order by all"
            for at in (ledger.between_syncs, now):
                expected = in_ledger(query, [EXPORTED, at])
                assert in_export(query, [EXPORTED, at]) == expected, (entity.table, at)
            assert in_ledger(query, ["globex", now]) and not in_export(query, ["globex", now])
    assert ledger.project.query("select * from history.qbo_bills_as_of(?, ?)", [EXPORTED, ledger.between_syncs]) != (
        ledger.project.query("select * from history.qbo_bills_as_of(?, ?)", [EXPORTED, now])
    )

    monkeypatch.setenv("LEDGER_DUCKDB_PATH", str(ledger.export))
    assert cli.main(["as-of", "--tenant", EXPORTED, "--entity", "bills", "--at", now.isoformat()]) == 0
    bills = ledger.project.query("select count(*) from mirror.qbo_bills where tenant_id = ?", [EXPORTED])[0][0]
    assert f"{bills} bills of tenant acme" in capsys.readouterr().out
    assert cli.main(["as-of", "--tenant", "globex", "--entity", "bills", "--at", now.isoformat()]) == 1
    assert "logged tenants: acme)" in capsys.readouterr().err


def test_export_verifies_and_is_read_only(ledger, monkeypatch, capsys):
    log_rows = ledger.project.query("select count(*) from raw.entity_log where tenant_id = ?", [EXPORTED])[0][0]
    verified = f"verify: OK - {log_rows} log rows in {len(ENTITIES)} chains intact (export of tenant acme)"
    assert verified in ledger.cli_out
    assert "is read-only (mode 444)" in ledger.cli_out
    assert stat.S_IMODE(ledger.export.stat().st_mode) == 0o444
    assert sorted(p.name for p in ledger.export.parent.iterdir()) == ["acme.duckdb"]  # no temp file or WAL left

    monkeypatch.setenv("LEDGER_DUCKDB_PATH", str(ledger.export))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert cli.main(["verify"]) == 0
    assert f"verify: OK - {log_rows} log rows in {len(ENTITIES)} chains intact" in capsys.readouterr().out

    shared = Path(tempfile.mkdtemp())  # reachable by an unprivileged user, for the root case below
    try:
        shared.chmod(0o755)
        copy = shared / "acme.duckdb"
        shutil.copy2(ledger.export, copy)
        assert _open_for_writing(copy).startswith("refused: IOException")
        assert _open_for_writing(copy, read_only=True) == "opened"
    finally:
        shutil.rmtree(shared)


def _open_for_writing(path: Path, *, read_only: bool = False) -> str:
    """Try duckdb.connect on the file as an ordinary user (a forked child drops root first, since root ignores 0444)."""
    if os.geteuid() != 0:
        return _try_open(path, read_only)
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(reader)
        try:
            os.setgid(65534)
            os.setuid(65534)
            os.write(writer, _try_open(path, read_only).encode())
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as fh:
        outcome = fh.read()
    os.waitpid(pid, 0)
    return outcome


def _try_open(path: Path, read_only: bool) -> str:
    try:
        duckdb.connect(str(path), read_only=read_only).close()
    except duckdb.Error as exc:
        return f"refused: {type(exc).__name__}: {exc}"
    return "opened"


def test_an_existing_output_is_refused_unless_forced(ledger, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LEDGER_DUCKDB_PATH", str(ledger.project.db_path))
    target = tmp_path / "acme.duckdb"
    target.write_text("an analyst's earlier file\n")

    assert cli.main(["export-tenant", EXPORTED, "--output", str(target)]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--force" in err and len(err.strip().splitlines()) == 1
    assert target.read_text() == "an analyst's earlier file\n"

    assert cli.main(["export-tenant", "globex", "--output", str(target), "--force"]) == 0
    assert f"replaced {target}: tenant globex" in capsys.readouterr().out
    assert stat.S_IMODE(target.stat().st_mode) == 0o444
    assert _read(target, "select distinct tenant_id from raw.entity_log") == [("globex",)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acme.duckdb"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["acme' or '1'='1", "--output", "{tmp}/x.duckdb"], "invalid tenant id"),
        (["acme; drop table raw.entity_log", "--output", "{tmp}/x.duckdb"], "invalid tenant id"),
        (["../../etc/passwd", "--output", "{tmp}/x.duckdb"], "invalid tenant id"),
        (["acme", "--output", "../../etc/passwd"], "must end in .duckdb"),
        (["acme", "--output", "/etc/acme.duckdb"], "system directory"),
        (["acme", "--output", "{tmp}/../../../../../../usr/lib/acme.duckdb"], "system directory"),
        (["acme", "--output", "{tmp}/missing/acme.duckdb"], "does not exist"),
        (["acme", "--output", "{tmp}/folder.duckdb"], "is a directory"),
        (["acme", "--output", "{tmp}/link.duckdb"], "not a regular file"),
        (["acme", "--output", "{ledger}"], "is the ledger itself"),
        (["acme", "--output", "{ledger}", "--force"], "is the ledger itself"),
        (["acme", "--output", "{tmp}/acme\n.duckdb"], "control characters"),
        (["acme"], "required: --output"),
    ],
)
def test_bad_export_arguments_are_refused_and_nothing_is_written(ledger, tmp_path, monkeypatch, capsys, argv, expected):
    monkeypatch.setenv("LEDGER_DUCKDB_PATH", str(ledger.project.db_path))
    (tmp_path / "folder.duckdb").mkdir()
    (tmp_path / "link.duckdb").symlink_to(tmp_path / "elsewhere.duckdb")
    before = sorted(tmp_path.iterdir()), ledger.project.db_path.stat().st_mtime_ns
    argv = [a.format(tmp=tmp_path, ledger=ledger.project.db_path) for a in argv]

    assert cli.main(["export-tenant", *argv]) == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1, err
    assert (sorted(tmp_path.iterdir()), ledger.project.db_path.stat().st_mtime_ns) == before
    assert not (tmp_path / "elsewhere.duckdb").exists()


def test_a_tenant_with_nothing_logged_exports_nothing(ledger, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LEDGER_DUCKDB_PATH", str(ledger.project.db_path))
    assert cli.main(["export-tenant", "hooli", "--output", str(tmp_path / "hooli.duckdb")]) == 1
    assert "tenant 'hooli' has nothing in the log" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
