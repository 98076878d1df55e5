"""Hostile and odd data: deterministic rewrites of one object's payload, switched on per realm.

A drift names (entity, Id, kind). Every answer that shows the object (query pages, CDC, reads, the
Id sweep, `live_objects`) shows it rewritten, so every process agrees on it; switching one on also
gives the object a new version (SyncToken + 1, LastUpdatedTime = the clock) so incremental readers
see it. Some kinds are schema drift QBO might ship in a later minor version, some are valid but odd
values, one is an Id no QBO company has. See docs/sandbox.md for the table.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

TRANSACTIONS = frozenset({"Bill", "Invoice", "BillPayment", "Payment", "Deposit", "Purchase"})
NAME_LISTS = frozenset({"Vendor", "Customer", "Account"})
ALL = TRANSACTIONS | NAME_LISTS

NEW_FIELD = "LedgerSandboxDriftField"
UNICODE_TEXT = "Café Ünïcødé — 東京 مرحبا 👩‍👩‍👧 🍣🚀"
SQL_LOOKING_ID = "1'; drop table raw.entity_log; --"
SHARED_DOC_NUMBER = "DUP-0001"
LONG_NOTE_LENGTH = 4000
FAR_PAST, FAR_FUTURE = ("0001-01-01", "0001-01-31"), ("9999-12-01", "9999-12-31")

# kind -> entities it applies to
DRIFT_KINDS: dict[str, frozenset[str]] = {
    "new_field": ALL,  # a field the mirrors do not know
    "type_change": ALL,  # TotalAmt and a line's Amount (transactions) or a balance (name lists) as "12.50 USD"
    "missing_required": ALL,  # the party ref (transactions) or DisplayName/Name (name lists) left out
    "unicode": ALL,  # names (name lists) or PrivateNote (transactions) with accents, CJK, RTL, emoji
    "long_note": TRANSACTIONS,  # a 4000-character PrivateNote (QBO's maximum)
    "extra_decimals": ALL,  # TotalAmt and the first line's Amount (or a balance) with a third decimal
    "negative": ALL,  # every amount negated (a name list's balance becomes a credit)
    "zero": TRANSACTIONS,  # every amount 0
    "far_past": TRANSACTIONS,  # TxnDate 0001-01-01 (DueDate 0001-01-31)
    "far_future": TRANSACTIONS,  # TxnDate 9999-12-01 (DueDate 9999-12-31)
    "shared_doc_number": TRANSACTIONS,  # DocNumber DUP-0001 (drift two objects to duplicate it)
    "sql_id": ALL,  # the Id becomes SQL_LOOKING_ID everywhere the object appears
}

# What `missing_required` leaves out of a transaction: its party, where a deposit lands or the account a purchase
# is paid from (QBO requires them).
_PARTY_REF = {"Bill": "VendorRef", "BillPayment": "VendorRef", "Invoice": "CustomerRef", "Payment": "CustomerRef",
              "Deposit": "DepositToAccountRef", "Purchase": "AccountRef"}  # fmt: skip
_NAME_FIELDS = {
    "Vendor": ("DisplayName", "PrintOnCheckName", "CompanyName"),
    "Customer": ("DisplayName", "FullyQualifiedName", "PrintOnCheckName", "CompanyName"),
    "Account": ("Name", "FullyQualifiedName"),
}
_BALANCE = {"Vendor": "Balance", "Customer": "Balance", "Account": "CurrentBalance"}
_DOC_AMOUNTS = ("TotalAmt", "Balance", "UnappliedAmt")


def check_drift(entity: str, kind: str) -> None:
    if kind not in DRIFT_KINDS:
        raise ValueError(f"unknown drift kind {kind!r}; known: {', '.join(sorted(DRIFT_KINDS))}")
    if entity not in DRIFT_KINDS[kind]:
        applies = ", ".join(sorted(DRIFT_KINDS[kind]))
        raise ValueError(f"drift {kind!r} does not apply to {entity}; it applies to {applies}")


def _money(value: Decimal) -> float | int:
    return 0 if value == 0 else float(value)


def _shift_amounts(obj: dict[str, Any], fields: tuple[str, ...], change) -> None:
    for name in fields:
        if isinstance(obj.get(name), (int, float)):
            obj[name] = _money(change(Decimal(str(obj[name]))))


def _lines(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return [line for line in obj.get("Line", []) if line.get("DetailType") != "SubTotalLineDetail"]


def _rewrite(obj: dict[str, Any], entity: str, kind: str) -> None:
    is_txn = entity in TRANSACTIONS
    if kind == "new_field":
        obj[NEW_FIELD] = {"Value": "added by a later minor version", "Enabled": True}
    elif kind == "type_change":
        name = "TotalAmt" if is_txn else _BALANCE[entity]
        obj[name] = f"{Decimal(str(obj.get(name, 0))):.2f} USD"
        for line in _lines(obj)[:1] if is_txn else ():
            line["Amount"] = f"{Decimal(str(line.get('Amount', 0))):.2f} USD"
    elif kind == "missing_required":
        obj.pop(_PARTY_REF[entity] if is_txn else _NAME_FIELDS[entity][0], None)
    elif kind == "unicode":
        if is_txn:
            obj["PrivateNote"] = f"{UNICODE_TEXT} #{obj['Id']}"
        for name in () if is_txn else _NAME_FIELDS[entity]:
            if name in obj or name == _NAME_FIELDS[entity][0]:
                obj[name] = f"{UNICODE_TEXT} #{obj['Id']}"
    elif kind == "long_note":
        obj["PrivateNote"] = (f"Memo for #{obj['Id']}: paid by check, see attached. " * 100)[:LONG_NOTE_LENGTH]
    elif kind == "extra_decimals":
        third = Decimal("0.005")
        if is_txn:
            _shift_amounts(obj, ("TotalAmt",), lambda v: v + third)
            for line in _lines(obj)[:1]:
                _shift_amounts(line, ("Amount",), lambda v: v + third)
        else:
            _shift_amounts(obj, (_BALANCE[entity],), lambda v: v + third)
    elif kind == "negative":
        if is_txn:
            _shift_amounts(obj, _DOC_AMOUNTS, lambda v: -v)
            for line in obj.get("Line", []):
                _shift_amounts(line, ("Amount",), lambda v: -v)
        else:
            _shift_amounts(obj, (_BALANCE[entity],), lambda v: -(abs(v) or Decimal("42.50")))
    elif kind == "zero":
        _shift_amounts(obj, _DOC_AMOUNTS, lambda v: Decimal(0))
        for line in obj.get("Line", []):
            _shift_amounts(line, ("Amount",), lambda v: Decimal(0))
    elif kind in ("far_past", "far_future"):
        txn_date, due_date = FAR_PAST if kind == "far_past" else FAR_FUTURE
        obj["TxnDate"] = txn_date
        if "DueDate" in obj:
            obj["DueDate"] = due_date
    elif kind == "shared_doc_number":
        obj["DocNumber"] = SHARED_DOC_NUMBER
    elif kind == "sql_id":
        obj["Id"] = SQL_LOOKING_ID


def apply(obj: dict[str, Any], entity: str, kinds: list[str]) -> dict[str, Any]:
    """The object as the drifted books show it (a copy). A CDC tombstone only takes the Id rewrite."""
    if not kinds:
        return obj
    out = copy.deepcopy(obj)
    tombstone = out.get("status") == "Deleted" or set(out) == {"Id"}
    for kind in kinds:
        if not tombstone or kind == "sql_id":
            _rewrite(out, entity, kind)
    return out


def balance_delta_cents(real: dict[str, Any], drifted: dict[str, Any]) -> int:
    """How far a drift moved a document's Balance (0 when either side is not a number)."""
    old, new = real.get("Balance"), drifted.get("Balance")
    if not isinstance(old, (int, float)) or not isinstance(new, (int, float)):
        return 0
    return int((Decimal(str(new)) - Decimal(str(old))) * 100)
