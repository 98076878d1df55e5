"""History views, as-of macros and the `as-of` / `history` commands, through real Dagster syncs.

The session's shared ledger (shared_ledger.py): three tenants synced, every
mirror snapshotted, the sandbox moved 3 days, acme and globex synced again.
The as-of macro must give back the snapshot at the instant between the syncs
and the mirror now.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from ledger_pipeline import cli
from ledger_pipeline.lib import warehouse
from ledger_pipeline.rails.qbo.entities import ENTITIES, QboEntity
from ledger_pipeline_tests.conftest import Project
from ledger_pipeline_tests.shared_ledger import RESYNCED, SharedLedger
from ledger_pipeline_tests.shared_ledger import TENANTS as LOGGED_TENANTS

TENANTS = RESYNCED  # the tenants synced both before and after the clock moved
ALL_ROWS = "select * from {table} where tenant_id = ? order by all"
AS_OF = "select * from history.qbo_{t}_as_of(?, ?) order by all"


@dataclass
class Books:
    project: Project
    before_first_sync: datetime
    t1: datetime  # after sync 1, before sync 2
    snapshot: dict[tuple[str, str], list[tuple]]  # (tenant, entity table) -> mirror rows after sync 1
    runs: dict[str, tuple[str, str]]  # tenant -> (run id of sync 1, run id of sync 2)

    def mirror_now(self, tenant: str, entity: QboEntity) -> list[tuple]:
        return self.project.query(ALL_ROWS.format(table=f"mirror.qbo_{entity.table}"), [tenant])

    def as_of(self, tenant: str, entity: QboEntity, at: datetime) -> list[tuple]:
        return self.project.query(AS_OF.format(t=entity.table), [tenant, at])


@pytest.fixture(scope="module")
def books(shared_ledger: SharedLedger) -> Books:
    facts = shared_ledger.facts
    return Books(
        shared_ledger.project,
        facts.before_first_sync,
        facts.between_syncs,
        {key: rows for key, rows in facts.first_mirrors.items() if key[0] in TENANTS},
        {t: facts.runs[t] for t in TENANTS},
    )


# --- the as-of guarantee ---------------------------------------------------------------------


@pytest.mark.parametrize("entity", ENTITIES, ids=lambda e: e.table)
def test_as_of_between_syncs_is_the_first_sync_and_as_of_now_is_the_mirror(books, entity):
    now = datetime.now(UTC)
    for tenant in TENANTS:
        snapshot = books.snapshot[(tenant, entity.table)]
        assert snapshot, f"{tenant} has no {entity.table} after the first sync"
        assert books.as_of(tenant, entity, books.t1) == snapshot, (tenant, entity.table)
        assert books.as_of(tenant, entity, now) == books.mirror_now(tenant, entity), (tenant, entity.table)
        assert books.as_of(tenant, entity, books.before_first_sync) == [], (tenant, entity.table)


@pytest.mark.parametrize("table", ["bills", "invoices"])
def test_second_sync_changed_rows_so_the_as_of_check_has_teeth(books, table):
    entity = next(e for e in ENTITIES if e.table == table)
    for tenant in TENANTS:
        before, after = set(books.snapshot[(tenant, table)]), set(books.mirror_now(tenant, entity))
        assert before - after and after - before, f"sync 2 changed no {table} of {tenant}"


# --- history view invariants ----------------------------------------------------------------


@pytest.mark.parametrize("entity", ENTITIES, ids=lambda e: e.table)
def test_history_view_invariants(books, entity):
    view = f"history.qbo_{entity.table}"
    q = books.project.query
    several_current = q(f"select tenant_id, qbo_id from {view} group by all having count(*) filter (is_current) > 1")
    assert several_current == []
    deleted_but_current = q(
        f"select tenant_id, qbo_id from {view} group by all "
        "having arg_max(op, log_seq) = 'deleted' and bool_or(is_current)"
    )
    assert deleted_but_current == []
    assert q(f"select count(*) from {view} where op = 'deleted' and is_current") == [(0,)]
    overlapping = q(
        f"select tenant_id, qbo_id, log_seq from (select *, lead(valid_from) over w as next_from, "
        f"count(*) over (partition by tenant_id, qbo_id) as n, row_number() over w as i from {view} "
        "window w as (partition by tenant_id, qbo_id order by log_seq)) "
        "where valid_to < valid_from or next_from < valid_to or (valid_to is null) <> (i = n)"
    )
    assert overlapping == []
    current = q(f"select * exclude (op, valid_from, valid_to, is_current) from {view} where is_current order by all")
    assert current == q(f"select * from mirror.qbo_{entity.table} order by all")


def test_history_holds_deletes_and_updates(books):
    ops = dict(books.project.query("select op, count(*) from raw.entity_log group by op"))
    assert ops.get("deleted", 0) > 0 and ops.get("updated", 0) > 0, ops


# --- `ledger-pipeline as-of` ----------------------------------------------------------------


@pytest.fixture
def ledger_env(books, monkeypatch) -> Books:
    monkeypatch.setenv("LEDGER_DUCKDB_PATH", str(books.project.db_path))
    return books


@pytest.mark.parametrize("spelling", ["bills", "Bill", "bill", "BILL"])
def test_cli_as_of_prints_the_table_and_a_row_count(ledger_env, capsys, spelling):
    at = ledger_env.t1.isoformat().replace("+00:00", "Z")
    assert cli.main(["as-of", "--tenant", "acme", "--entity", spelling, "--at", at]) == 0
    out = capsys.readouterr().out
    rows = len(ledger_env.snapshot[("acme", "bills")])
    assert f"shape: ({rows}, " in out
    assert f"\n{rows} bills of tenant acme as of {ledger_env.t1.isoformat()}\n" in out


def test_cli_as_of_accepts_an_offset(ledger_env, capsys):
    at = ledger_env.t1.astimezone(UTC).replace(tzinfo=None).isoformat() + "+00:00"
    shifted = (ledger_env.t1 + timedelta(hours=2)).replace(tzinfo=None).isoformat() + "+02:00"
    assert cli.main(["as-of", "--tenant", "acme", "--entity", "Vendor", "--at", at]) == 0
    assert cli.main(["as-of", "--tenant", "acme", "--entity", "Vendor", "--at", shifted]) == 0
    first, second = [line for line in capsys.readouterr().out.splitlines() if "vendors of tenant" in line]
    assert first == second


@pytest.mark.parametrize("table", ["bills", "bill_payments"])  # bill payments carry a list column
@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_cli_as_of_writes_parquet_and_csv_equal_to_the_macro(ledger_env, tmp_path, capsys, table, suffix):
    out = tmp_path / f"{table}{suffix}"
    at = ledger_env.t1.isoformat()
    assert cli.main(["as-of", "--tenant", "globex", "--entity", table, "--at", at, "--output", str(out)]) == 0
    conn = warehouse.connect(ledger_env.project.db_path, read_only=True)
    try:
        expected = warehouse.fetch_polars(conn, AS_OF.format(t=table), ["globex", ledger_env.t1]).sort("log_seq")
    finally:
        conn.close()
    assert expected.height == len(ledger_env.snapshot[("globex", table)]) > 0
    if suffix == ".parquet":
        back = pl.read_parquet(out)
    else:
        lists = {k: v for k, v in expected.schema.items() if isinstance(v, pl.List)}
        back = pl.read_csv(out, schema={k: pl.String if k in lists else v for k, v in expected.schema.items()})
        back = back.with_columns(pl.col(k).str.json_decode(v) for k, v in lists.items())
    assert back.sort("log_seq").equals(expected)
    assert f"wrote {expected.height} {table} of tenant globex" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--at", "2026-03-31T23:59:59"], "has no timezone"),
        (["--at", "2026-03-31"], "invalid timestamp '2026-03-31'"),
        (["--at", "2026-02-30T00:00:00Z"], "invalid timestamp"),
        (["--at", "yesterday"], "invalid timestamp 'yesterday'"),
        (["--entity", "Bills; drop table raw.entity_log"], "unknown entity"),
        (["--entity", "Item"], "unknown entity 'Item'"),
        (["--tenant", "Acme"], "invalid tenant id 'Acme'"),
        (["--tenant", "acme' or 1=1 --"], "invalid tenant id"),
        (["--output", "x.exe"], "must end in .parquet or .csv"),
        (["--output", "{tmp}/missing/x.csv"], "does not exist"),
        (["--output", "{tmp}/folder.csv"], "is a directory"),
    ],
)
def test_cli_as_of_refuses_bad_input(ledger_env, tmp_path, capsys, args, expected):
    (tmp_path / "folder.csv").mkdir()
    argv = {"--tenant": "acme", "--entity": "bills", "--at": "2026-03-31T23:59:59Z"}
    argv.update(dict(zip(args[::2], (a.format(tmp=tmp_path) for a in args[1::2]), strict=True)))
    assert cli.main(["as-of", *[x for pair in argv.items() for x in pair]]) == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1, err


def test_cli_as_of_names_an_unknown_tenant(ledger_env, capsys):
    assert cli.main(["as-of", "--tenant", "hooli", "--entity", "bills", "--at", "2026-03-31T23:59:59Z"]) == 1
    logged = ", ".join(LOGGED_TENANTS)  # acme, globex, initech
    assert f"tenant 'hooli' has nothing in the log (logged tenants: {logged})" in capsys.readouterr().err


# --- `ledger-pipeline history` --------------------------------------------------------------


def _history(capsys, tenant: str, entity: str, object_id: str) -> tuple[int, str, str]:
    code = cli.main(["history", "--tenant", tenant, "--entity", entity, "--id", object_id])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_history_shows_created_then_updated_with_changes_and_runs(ledger_env, capsys):
    run1, run2 = ledger_env.runs["acme"]
    bill_id = ledger_env.project.query(
        "select entity_id from raw.qbo_bills where tenant_id = 'acme' group by entity_id "
        "having count(*) filter (op = 'created' and run_id = ?) = 1 and count(*) filter (op = 'updated' and run_id = ?) = 1 "
        "and count(*) = 2 order by entity_id limit 1",
        [run1, run2],
    )[0][0]
    changes = json.loads(
        ledger_env.project.query(
            "select changes from raw.qbo_bills where tenant_id = 'acme' and entity_id = ? and op = 'updated'", [bill_id]
        )[0][0]
    )

    code, out, _ = _history(capsys, "acme", "bill", bill_id)

    assert code == 0
    headers = [line for line in out.splitlines() if line.startswith("seq ")]
    assert len(headers) == 2
    assert "  created  source=query" in headers[0] and f"run={run1}" in headers[0]
    assert "  updated  source=query" in headers[1] and f"run={run2}" in headers[1]
    assert "\n    created\n" in out
    updated_part = out.split(headers[1], 1)[1]
    assert "Balance" in changes or "SyncToken" in changes
    for path, change in changes.items():
        old, new = (json.dumps(change[k], separators=(",", ":")) for k in ("old", "new"))
        assert f"    {path}: {old} -> {new}" in updated_part


def test_cli_history_ends_a_deleted_object_with_its_delete(ledger_env, capsys):
    tenant, entity_type, object_id, source = ledger_env.project.query(
        "select tenant_id, entity_type, entity_id, arg_max(source, seq) from raw.entity_log "
        "group by all having arg_max(op, seq) = 'deleted' and arg_min(op, seq) = 'created' order by all limit 1"
    )[0]

    code, out, _ = _history(capsys, tenant, entity_type, object_id)

    assert code == 0
    headers = [line for line in out.splitlines() if line.startswith("seq ")]
    assert f"  deleted  source={source}" in headers[-1]
    assert out.rstrip().endswith("    deleted")
    assert "  created  " in headers[0]


def test_cli_history_unknown_object_exits_1(ledger_env, capsys):
    code, out, err = _history(capsys, "acme", "bills", "987654321")
    assert code == 1 and out == ""
    assert "no Bill with Id 987654321 in the log of tenant 'acme'" in err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--tenant", "acme", "--entity", "bills", "--id", "12 or 1=1"], "invalid QBO id"),
        (["--tenant", "acme", "--entity", "items", "--id", "12"], "unknown entity 'items'"),
        (["--tenant", "ACME", "--entity", "bills", "--id", "12"], "invalid tenant id"),
    ],
)
def test_cli_history_refuses_bad_input(ledger_env, capsys, argv, expected):
    assert cli.main(["history", *argv]) == 2
    assert expected in capsys.readouterr().err


def test_cli_refuses_a_missing_ledger(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("LEDGER_DUCKDB_PATH", str(tmp_path / "none.duckdb"))
    assert cli.main(["history", "--tenant", "acme", "--entity", "bills", "--id", "1"]) == 2
    assert "no ledger database" in capsys.readouterr().err
