"""Guard rails around the ledger file (issue 20): an export is never a sync target, an unknown tenant never
passes as a clean audit, a damaged or unusable ledger is one line and a non-zero exit from every command that
reads it, and a failed blocking check ends `demo` with a summary, never a traceback.

Read-only cases use the session's shared ledger (shared_ledger.py) or a copy of its file; the damaged copies
are made by overwriting 4 KiB of one DuckDB block with 0xFF, the block found by probing (DuckDB checksums each
block, and notices a damaged one only when a query reads it).
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from ledger_pipeline import audit, cli, commands, demo, export
from ledger_pipeline.definitions import build_definitions
from ledger_pipeline.defs.resources import LedgerDuckDB
from ledger_pipeline.defs.qbo.resources import QboResource, shared_sandbox
from ledger_pipeline.lib import rails, warehouse
from ledger_pipeline.lib.tenants import Tenant
from ledger_pipeline.rails.qbo.rail import QboConnection
from ledger_pipeline.rails.qbo.sandbox import DEMO_COMPANIES
from ledger_pipeline_tests.conftest import TEST_SCALE, Project
from ledger_pipeline_tests.helpers import failure_text
from ledger_pipeline_tests.shared_ledger import TENANTS, SharedLedger

AT = "2030-01-01T00:00:00Z"  # after every sync: as-of reads every version of the tenant's bills
HEADER = 3 * 4096  # DuckDB's file header and its two database headers
BLOCK = 256 * 1024  # DuckDB's default block size
DEMO_SCALE = 0.01  # the demo test's companies: the smallest the sandbox makes (50 objects each)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Registry and state in tmp_path; no DAGSTER_HOME. Tests point LEDGER_DUCKDB_PATH where they need."""
    monkeypatch.setenv("LEDGER_TENANTS_PATH", str(tmp_path / "tenants.json"))
    monkeypatch.setenv("LEDGER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("LEDGER_DUCKDB_PATH", str(tmp_path / "ledger.duckdb"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return tmp_path


def _cli(capsys, argv: list[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_commands(tenant: str, bill_id: str, output: Path) -> list[list[str]]:
    """Every command that reads the ledger, each reading acme's bills."""
    return [
        ["verify"],
        ["verify", "--tenant", tenant],
        ["as-of", "--tenant", tenant, "--entity", "bills", "--at", AT],
        ["history", "--tenant", tenant, "--entity", "bill", "--id", bill_id],
        ["export-tenant", tenant, "--output", str(output)],
    ]


def _first_bill(path: Path, tenant: str = "acme") -> str:
    conn = duckdb.connect(str(path), read_only=True)
    try:
        return conn.execute(
            "select entity_id from raw.entity_log where tenant_id = ? and entity_type = 'Bill' order by seq limit 1",
            [tenant],
        ).fetchall()[0][0]
    finally:
        conn.close()


# -- 1. an export is never a sync target ------------------------------------------------------------------


def test_a_sync_pointed_at_an_export_is_refused_and_leaves_it_byte_for_byte(shared_ledger: SharedLedger, project):
    target = project.db_path  # the project's ledger path holds acme's export instead of a ledger
    export.export_tenant(shared_ledger.project.db_path, "acme", target)
    before = _digest(target)
    project.add_tenant("globex", company=1)  # another tenant's rows must not land in acme's export

    result = project.sync("globex", raise_on_error=False)

    assert not result.success
    text = failure_text(result)
    assert f"{target} is an export of tenant acme" in text and "point LEDGER_DUCKDB_PATH at the ledger" in text, text
    assert _digest(target) == before
    assert sorted(p.name for p in target.parent.iterdir() if p.name.startswith(target.name)) == [target.name]
    with pytest.raises(warehouse.WarehouseError, match="is an export of tenant acme") as refused:
        warehouse.connect(target)
    assert "\n" not in str(refused.value)
    with warehouse.reading(target) as conn:  # reading an export stays allowed
        assert conn.execute("select count(distinct tenant_id) from raw.entity_log").fetchall() == [(1,)]
    assert _digest(target) == before


# -- 2. an unknown tenant, and a damaged ledger ---------------------------------------------------------


def test_verify_of_a_tenant_with_no_log_rows_fails_naming_the_logged_tenants(
    shared_ledger: SharedLedger, env, monkeypatch, capsys
):
    monkeypatch.setenv("LEDGER_DUCKDB_PATH", str(shared_ledger.project.db_path))
    code, out, err = _cli(capsys, ["verify", "--tenant", "nosuchco"])
    assert code == 1 and "OK" not in out, out
    line = _one_error_line(err)
    assert "'nosuchco' has no rows in the log" in line and f"logged tenants: {', '.join(sorted(TENANTS))}" in line
    code, out, _ = _cli(capsys, ["verify", "--tenant", "acme"])
    assert code == 0 and "verify: OK" in out


def _damaged_copy(src: Path, dest: Path, broken: Callable[[duckdb.DuckDBPyConnection | None], bool]) -> int:
    """Copy src to dest with 4 KiB of 0xFF written into the first block for which `broken` holds.

    `broken` gets a read-only connection to the damaged file (None when DuckDB refuses to open it).
    Returns the offset written.
    """
    shutil.copyfile(src, dest)
    blocks = (dest.stat().st_size - HEADER) // BLOCK
    for block in range(blocks):
        offset = HEADER + block * BLOCK + 4096  # past the block's checksum, inside its data
        with dest.open("r+b") as fh:
            fh.seek(offset)
            original = fh.read(4096)
            fh.seek(offset)
            fh.write(b"\xff" * 4096)
        try:
            conn = duckdb.connect(str(dest), read_only=True)
        except duckdb.Error:
            conn = None
        try:
            if broken(conn):
                return offset
        finally:
            if conn is not None:
                conn.close()
        with dest.open("r+b") as fh:
            fh.seek(offset)
            fh.write(original)
    pytest.fail(f"no block of {src} ({blocks} blocks) could be damaged as the test needs")


def _fails(action: Callable[[], object]) -> bool:
    try:
        action()
    except duckdb.Error:
        return True
    return False


def test_a_damaged_block_is_one_line_and_exit_2_from_every_command_that_reads_it(
    shared_ledger: SharedLedger, env, monkeypatch, capsys
):
    ledger = env / "damaged.duckdb"
    bill_id = _first_bill(shared_ledger.project.db_path)
    qbo = rails.rail("qbo")
    bills = audit.entity_named(qbo, "bills")

    def acme_bills_unreadable(conn) -> bool:  # opens, but acme's bills (and that bill's history) cannot be read
        return conn is not None and _fails(
            lambda: conn.execute("select * from raw.entity_log where tenant_id = 'acme' and entity_type = 'Bill'")
            .fetchall()
        ) and _fails(lambda: audit.object_history(conn, "acme", qbo, bills, bill_id))

    _damaged_copy(shared_ledger.project.db_path, ledger, acme_bills_unreadable)
    monkeypatch.setenv("LEDGER_DUCKDB_PATH", str(ledger))
    before = _digest(ledger)
    output = env / "acme-export.duckdb"
    for argv in _read_commands("acme", bill_id, output):
        code, out, err = _cli(capsys, argv)
        assert code == 2, (argv, out, err)
        line = _one_error_line(err)
        assert line.startswith("ledger-pipeline: error: ") and "Corrupt database file" in line, (argv, line)
        if argv[0] != "export-tenant":  # export.py words its own failure (it names the tenant)
            assert f"cannot read the ledger {ledger}" in line and "restore it from a backup" in line, (argv, line)
        assert "OK" not in out and not output.exists(), (argv, out)
    assert _digest(ledger) == before
    assert sorted(p.name for p in env.iterdir() if p.suffix != ".json") == ["damaged.duckdb"]


def test_a_ledger_duckdb_cannot_open_is_one_line_and_exit_2(shared_ledger: SharedLedger, env, monkeypatch, capsys):
    ledger = env / "damaged.duckdb"
    _damaged_copy(shared_ledger.project.db_path, ledger, lambda conn: conn is None)
    monkeypatch.setenv("LEDGER_DUCKDB_PATH", str(ledger))
    for argv in _read_commands("acme", "1", env / "acme-export.duckdb"):
        code, _, err = _cli(capsys, argv)
        assert code == 2, argv
        assert str(ledger) in _one_error_line(err), argv


# -- 4. a ledger path that cannot be a ledger ----------------------------------------------------------


@pytest.mark.parametrize("where", ["a folder", "under a file", "two levels under a file"])
def test_a_ledger_path_that_cannot_hold_a_ledger_is_one_line_and_exit_2(env, monkeypatch, capsys, where):
    (env / "afile").write_text("not a folder\n")
    path = {
        "a folder": env,
        "under a file": env / "afile" / "ledger.duckdb",
        "two levels under a file": env / "afile" / "sub" / "ledger.duckdb",
    }[where]
    expected = "is a directory" if where == "a folder" else f"{env / 'afile'} is a file, not a folder"
    monkeypatch.setenv("LEDGER_DUCKDB_PATH", str(path))
    for argv in _read_commands("acme", "1", env / "acme-export.duckdb")[:4]:
        code, _, err = _cli(capsys, argv)
        assert code == 2, argv
        line = _one_error_line(err)
        assert str(path) in line and expected in line, (argv, line)
    with pytest.raises(warehouse.WarehouseError, match=expected):  # a writer too
        warehouse.connect(path)
    assert (env / "afile").read_text() == "not a folder\n"


def test_a_sync_into_a_ledger_path_under_a_file_fails_naming_it(project):
    (project.root / "afile").write_text("not a folder\n")
    path = project.root / "afile" / "ledger.duckdb"
    defs = build_definitions(
        warehouse=LedgerDuckDB(database=str(path)), qbo=project.qbo, tenants=project.defs.resources["tenants"]
    )
    project.add_tenant("acme")
    result = Project(project.root, project.instance, project.qbo, defs).sync("acme", raise_on_error=False)
    assert not result.success
    text = failure_text(result)
    assert f"cannot use {path} as the ledger: {project.root / 'afile'} is a file, not a folder" in text, text
    assert "FileExistsError" not in text


# -- 6. the last resort for a file problem --------------------------------------------------------------


def test_an_os_error_is_one_line_naming_the_file(env, monkeypatch, capsys):
    def unreadable(tenant_id):
        raise PermissionError(13, "Permission denied", str(env / "somewhere"))

    monkeypatch.setattr(commands, "verify_command", unreadable)
    code, _, err = _cli(capsys, ["verify"])
    assert code == 2
    assert _one_error_line(err) == f"ledger-pipeline: error: {env / 'somewhere'}: Permission denied"


# -- 5. `demo` when a blocking check fails ----------------------------------------------------------------


def test_demo_with_a_failed_blocking_check_ends_with_a_summary_naming_it(env, monkeypatch, capsys):
    """One small tenant; between the rounds a log row's hash is overwritten, so round 2's chain check fails
    (blocking: the run fails, which ended the demo in a traceback)."""
    home = env / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    qbo = QboResource(state_dir=str(env / "state"), sandbox_scale=DEMO_SCALE, sandbox_rate_limit=False)
    monkeypatch.setattr(demo, "build_definitions", lambda: build_definitions(qbo=qbo))
    monkeypatch.setattr(demo, "demo_tenants", lambda: [Tenant("acme", QboConnection(DEMO_COMPANIES[0].realm_id))])

    def tamper_then_advance(state_dir: Path, delta):
        conn = warehouse.connect(env / "ledger.duckdb")
        try:
            conn.execute(
                "update raw.entity_log set row_hash = repeat('0', 64) where seq = (select max(seq) "
                "from raw.entity_log where tenant_id = 'acme' and entity_type = 'Bill')"
            )
        finally:
            conn.close()
        box = shared_sandbox(state_dir, DEMO_SCALE, False)
        box.advance(delta)
        return box.now

    monkeypatch.setattr(demo, "advance_shared_clock", tamper_then_advance)
    # An in-memory instance: a sqlite one under DAGSTER_HOME makes this test three times slower. DAGSTER_HOME
    # (empty) is still checked first; verify then says it holds no instance to compare heads with.
    monkeypatch.setattr(demo, "dagster_instance", dg.DagsterInstance.ephemeral)
    code, out, err = _cli(capsys, ["demo"])
    assert code == 1, out + err
    assert "Traceback" not in out + err
    summary = out.split("== demo FAILED ==", 1)[1]
    assert "tenant acme, asset raw/qbo_bills, check chain_intact: FAILED (incremental sync; the run failed)" in summary
    assert "verify: the log does not verify" in summary
    assert len(summary.strip().splitlines()) <= 5, summary
