"""How the stg views type odd payloads: each payload is parsed once (json_transform), and every column must
still read its field exactly as `payload ->> '$.Field'` would: a number where text is expected keeps its text,
an object keeps its JSON text, a scalar where an object is expected reads as null, key case matters, and
'$.Line[*].LinkedTxn[*].TxnId' keeps a JSON-null TxnId but skips a missing one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from ledger_pipeline.lib import model_views, rails, warehouse
from ledger_pipeline.lib.entity_log import LogWriter, Observation
from ledger_pipeline.lib.sql_models import load_models

ODD_BILLS: dict[str, dict[str, Any]] = {
    "numbers-as-text": {
        "SyncToken": 3, "DocNumber": 1e16, "TxnDate": "2024-02-30",
        "VendorRef": {"value": 42, "name": "Café 東京 \"q\"\n"},
        "TotalAmt": 12.5, "Balance": "12.50", "PrivateNote": None, "totalamt": 5,
        "Line": [None, 7, {"Amount": "3.00 USD"}, {"Amount": 1.5, "DetailType": "SubTotalLineDetail"}],
    },
    "objects-as-scalars": {
        "SyncToken": "x", "DocNumber": {"a": [1, 2]}, "VendorRef": "7", "APAccountRef": {"value": {"b": True}},
        "TotalAmt": 12.345, "Balance": -0.0, "PrivateNote": "was Voided", "Line": {"Amount": 1},
        "MetaData": {"CreateTime": "2024-01-05T10:00:00-08:00"},
    },
    "missing-everything": {},
}
PAYMENT_LINES = [
    {"Amount": 10, "LinkedTxn": [{"TxnId": "5"}, {}, {"TxnId": None}, 7, {"TxnId": 9}]},
    {"Amount": 2.25, "LinkedTxn": {"TxnId": "object, not a list"}},
]


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    """A ledger whose log holds the odd payloads, with the log views and model views built as a writer builds them."""
    conn = warehouse.connect(Path(tmp_path_factory.mktemp("stg")) / "ledger.duckdb")
    warehouse.create_entity_views(conn, rails.log_views())
    model_views.ensure_views(conn, load_models(), rails.macros())
    now = datetime.now(UTC)
    conn.execute("begin")
    LogWriter(conn, "t1", "qbo", "Bill", "typing", now).append(
        [Observation(entity_id, payload, "query") for entity_id, payload in ODD_BILLS.items()]
    )
    LogWriter(conn, "t1", "qbo", "Payment", "typing", now).append([
        Observation("linked", {"Line": PAYMENT_LINES}, "query"), Observation("no-lines", {"TotalAmt": 1}, "query"),
    ])  # fmt: skip
    LogWriter(conn, "t1", "qbo", "Vendor", "typing", now).append([
        Observation("text-bool", {"Active": "false", "Vendor1099": "t", "Balance": 1e-05}, "query"),
        Observation("object-bool", {"Active": {"a": 1}, "PrimaryEmailAddr": ["a@b.c"], "DisplayName": 2**64}, "query"),
    ])  # fmt: skip
    conn.execute("commit")
    yield conn
    conn.close()


def bill(conn: duckdb.DuckDBPyConnection, entity_id: str) -> dict[str, Any]:
    cursor = conn.execute("select * from stg.qbo_bills where qbo_id = ?", [entity_id])
    names = [d[0] for d in cursor.description]
    return dict(zip(names, cursor.fetchone(), strict=True))


def test_numbers_where_text_is_expected_keep_their_json_text(ledger):
    row = bill(ledger, "numbers-as-text")
    assert (row["sync_token"], row["doc_number"], row["txn_date"]) == (3, "10000000000000000.0", None)
    assert (row["vendor_id"], row["vendor_name"]) == ("42", "Café 東京 \"q\"\n")
    assert (row["total_amt"], row["balance"]) == (Decimal("12.50"), None)
    assert (row["private_note"], row["is_voided"]) == (None, False)
    # a null line, a scalar line and a line with a string amount count as lines; the string amount nulls the total
    assert (row["line_count"], row["line_amount_total"]) == (4, None)


def test_objects_and_scalars_in_the_wrong_place(ledger):
    row = bill(ledger, "objects-as-scalars")
    assert (row["sync_token"], row["doc_number"]) == (None, '{"a":[1,2]}')
    assert (row["vendor_id"], row["vendor_name"], row["ap_account_id"]) == (None, None, '{"b":true}')
    assert (row["total_amt"], row["balance"], row["is_voided"]) == (None, Decimal("0.00"), True)
    assert (row["line_count"], row["line_amount_total"]) == (0, Decimal("0.00"))
    assert row["created_at"] == datetime(2024, 1, 5, 18, 0, tzinfo=UTC) and row["updated_at"] is None
    row = bill(ledger, "missing-everything")
    assert (row["sync_token"], row["doc_number"], row["total_amt"], row["line_count"]) == (None, None, None, 0)
    assert (row["line_amount_total"], row["is_voided"], row["due_date"]) == (Decimal("0.00"), False, None)


def test_linked_ids_keep_json_null_ids_and_skip_missing_ones(ledger):
    rows = {r[0]: r[1:] for r in ledger.execute(
        "select qbo_id, linked_invoice_ids, line_amount_total from stg.qbo_payments").fetchall()}
    assert rows["linked"] == (["5", None, "9"], Decimal("12.25"))
    assert rows["no-lines"] == ([], Decimal("0.00"))


def test_booleans_and_name_lists(ledger):
    rows = {r[0]: r[1:] for r in ledger.execute(
        "select qbo_id, is_active, is_1099, balance, email, display_name from stg.qbo_vendors").fetchall()}
    assert rows["text-bool"] == (False, True, None, None, None)
    assert rows["object-bool"] == (True, False, None, None, str(2**64))
