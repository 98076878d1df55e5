"""Every ```sql block of docs/analysts.md runs on a synced multi-tenant ledger and returns rows, and unchanged on its
published read side (`ledger-pipeline analyst-db`) with the same rows (the cross-rail ones, which need the four
rails, run in test_recon_decisions.py).

The ledger: a copy of the session's shared ledger (shared_ledger.py: three
tenants synced, the sandbox moved 3 days, acme and globex synced again) with
one bill version that breaks its contract logged for globex, so the
quarantine query has something to show. The doc's column tables are checked
against the columns DuckDB derives from the SQL models, so the reference
cannot drift.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

import duckdb

from ledger_pipeline.defs.read_side import READ_SIDE_KEY
from ledger_pipeline.lib import warehouse
from ledger_pipeline.lib.catalog import model_columns
from ledger_pipeline.lib.entity_log import LogWriter, Observation
from ledger_pipeline.lib.sql_models import load_models
from ledger_pipeline_tests.conftest import Project
from ledger_pipeline_tests.shared_ledger import SharedLedger

DOC = Path(__file__).resolve().parents[1] / "docs" / "analysts.md"
TEXT = DOC.read_text()
ALL_QUERIES = re.findall(r"```sql\n(.*?)```", TEXT, flags=re.DOTALL)
CROSS_RAIL = "-- cross-rail\n"  # the first line of a query that reads the reconciliation of four rails
QUERIES = [q for q in ALL_QUERIES if not q.startswith(CROSS_RAIL)]
CROSS_RAIL_QUERIES = [q for q in ALL_QUERIES if q.startswith(CROSS_RAIL)]
PARAM = re.compile(r"\$([A-Za-z_]\w*)")
BILL_MIRROR = dg.AssetKey(["mirror", "qbo_bills"])


def _end_of_month(now: datetime) -> datetime:
    """The last microsecond of now's month (UTC): the close the doc's month-end queries look at."""
    first_next = (now.replace(day=1) + timedelta(days=32)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return first_next - timedelta(microseconds=1)


@pytest.fixture(scope="module")
def ledger(shared_ledger: SharedLedger, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, dict]]:
    """A copy of the shared ledger with one broken globex bill logged and the bill mirror refreshed (quarantined)."""
    with shared_ledger.copy(tmp_path_factory.mktemp("analysts") / "ledger") as project:
        _log_a_broken_bill(project, "globex")
        project.sync("globex", asset_selection=[BILL_MIRROR], raise_on_error=False)
        project.sync("globex", asset_selection=[READ_SIDE_KEY])  # after it: the mirror is no table it depends on
        bill_id = project.query(
            "select entity_id from raw.qbo_bills where tenant_id = 'acme' and op = 'updated' order by seq limit 1"
        )[0][0]
        params = {"tenant": "acme", "bill_id": bill_id, "month_end": _end_of_month(datetime.now(UTC))}
        yield project, params


def _log_a_broken_bill(project: Project, tenant: str) -> None:
    """A new version of one bill whose TotalAmt is text: the mirror refresh must quarantine it."""
    conn = project.connect()
    try:
        bill_id, payload = conn.execute(
            "select entity_id, payload from raw.qbo_bills where tenant_id = ? and op <> 'deleted' order by seq limit 1",
            [tenant],
        ).fetchall()[0]
        broken = json.loads(payload) | {"TotalAmt": "a lot"}
        conn.execute("begin")
        LogWriter(conn, tenant, "qbo", "Bill", "analyst-doc-test", datetime.now(UTC)).append(
            [Observation(bill_id, broken, "query", source_version=broken["SyncToken"])]
        )
        conn.execute("commit")
    finally:
        conn.close()


def test_the_doc_has_ten_example_queries_and_four_cross_rail_ones():
    assert (len(QUERIES), len(CROSS_RAIL_QUERIES)) == (10, 4)


@pytest.mark.parametrize("sql", QUERIES, ids=[f"query-{i}" for i in range(1, len(QUERIES) + 1)])
def test_doc_query_returns_rows_on_the_ledger_and_the_same_on_the_read_side(ledger, sql):
    project, values = ledger
    rows = run_doc_query(project.db_path, sql, values)
    assert sorted(map(repr, run_doc_query(project.root / "read" / "analyst.duckdb", sql, values, ledger=False))) == (
        sorted(map(repr, rows))
    )


def run_doc_query(db_path: Path, sql: str, values: dict, *, ledger: bool = True) -> list[tuple]:
    """Run one of the doc's queries with the parameters it names; it must return rows, of `$tenant` alone. `ledger`
    False: db_path is a views file of the read side, opened as an analyst does (DuckDB alone, read-only)."""
    names = set(PARAM.findall(sql))
    assert names <= values.keys(), f"the doc uses parameters the test does not know: {names - values.keys()}"
    conn = warehouse.connect(db_path, read_only=True) if ledger else duckdb.connect(str(db_path), read_only=True)
    try:
        conn.execute("set TimeZone = 'UTC'")
        cursor = conn.execute(sql, {name: values[name] for name in names})
        columns = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
    finally:
        conn.close()
    assert rows, "the query returned no rows"
    if "tenant" in names and "tenant_id" in columns:
        assert {row[columns.index("tenant_id")] for row in rows} == {values["tenant"]}
    return rows


def _doc_tables() -> dict[str, list[str]]:
    """{`#### `name`` heading: column names listed in the first table under it}.

    Only that first table counts: text after it (the Stripe intro and its common-columns table follow
    mirror.qbo_deposits with no heading between) belongs to no model.
    """
    tables: dict[str, list[str]] = {}
    current = None
    in_table = False
    for line in TEXT.splitlines():
        heading = re.fullmatch(r"#### `([a-z_]+\.[a-z_]+)`", line)
        if heading:
            current, in_table = tables.setdefault(heading.group(1), []), False
        elif line.startswith("#"):
            current = None
        elif current is not None and line.startswith("|"):
            in_table = True
            if cell := re.match(r"\| `(\w+)` \|", line):
                current.append(cell.group(1))
        elif current is not None and in_table:
            current = None  # the first line after the table ends it
    return tables


RAILS = {"qbo": "QBO", "stripe": "Stripe", "plaid": "Plaid", "ramp": "Ramp"}  # mirror.<rail>_<table> -> the doc's name for the rail


def _common_mirror_columns(rail: str) -> list[str]:
    """The columns of the doc's "Every <rail> mirror has these columns:" table."""
    section = TEXT.split(f"Every {RAILS[rail]} mirror has these columns:", 1)[1].split("####", 1)[0]
    return re.findall(r"^\| `(\w+)` \|", section, flags=re.MULTILINE)


def test_doc_column_tables_match_the_models():
    actual = model_columns(list(load_models()))
    tables, common = _doc_tables(), {rail: _common_mirror_columns(rail) for rail in RAILS}
    expected = {name for name in actual if name.startswith(("mirror.", "marts.", "core.", "recon."))}
    assert set(tables) == expected
    for name, listed in tables.items():
        columns = [c for c, _ in actual[name]]
        if name.startswith("mirror."):
            rail = name.removeprefix("mirror.").split("_", 1)[0]
            assert rail in common, f"{name}: no common-columns table for rail {rail!r} in the doc"
            assert sorted(listed + common[rail]) == sorted(columns), name
        else:
            assert listed == columns, name
