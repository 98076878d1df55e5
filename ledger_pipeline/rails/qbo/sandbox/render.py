"""QBO JSON payloads of the sandbox's objects, with QBO's field names, nesting and quirks.

Static parts (names, lines, dates, memos) come from a per-object RNG seeded by (seed, realm, entity,
Id) and are drawn in a fixed order before any mutable fact is consulted, so an object looks the same
in every version except for what actually changed. Fields without a value are absent, never null;
zero money is written as 0 like QBO does, other amounts as numbers with at most two decimals.
"""

from __future__ import annotations

import random
import zlib
from datetime import timedelta
from typing import Any

from . import names as N
from .books import INACTIVE, VOIDED, Table
from .history import Company, stable_seed
from .timefmt import iso_seconds, local_date

USD = {"value": "USD", "name": "United States Dollar"}
NON_TAXABLE = {"value": "NON"}


def money(cents: int) -> float | int:
    return 0 if cents == 0 else cents / 100


def _crc(*parts: object) -> int:
    return zlib.crc32("|".join(str(p) for p in parts).encode())


def head(c: Company, table: Table, slot: int) -> dict[str, Any]:
    off = c.spec.offset_minutes
    return {"domain": "QBO", "sparse": False, "Id": str(slot + 1), "SyncToken": str(table.sync[slot]),
            "MetaData": {"CreateTime": iso_seconds(table.created[slot], off),
                         "LastUpdatedTime": iso_seconds(table.updated[slot], off)}}


def object_rng(c: Company, entity: str, slot: int) -> random.Random:
    return random.Random(stable_seed(c.seed, c.spec.realm_id, entity, slot + 1))


def _phone(*parts: object) -> str:
    digits = _crc("phone", *parts) % 10_000_000
    return f"(555) {digits // 10_000 % 1000:03d}-{digits % 10_000:04d}"


def account_ref(c: Company, account_id: int) -> dict[str, str]:
    return {"value": str(account_id), "name": c.chart[account_id - 1].fully_qualified_name}


def vendor_ref(slot: int) -> dict[str, str]:
    return {"value": str(slot + 1), "name": N.vendor_name(slot + 1)}


def customer_display(c: Company, slot: int) -> str:
    rng = object_rng(c, "Customer", slot)
    if rng.random() < 0.55:
        return N.customer_company(slot + 1)
    return " ".join(N.person_name(slot + 1))


def customer_ref(c: Company, slot: int) -> dict[str, str]:
    return {"value": str(slot + 1), "name": customer_display(c, slot)}


def txn_dates(c: Company, rng: random.Random, table: Table, slot: int) -> tuple[str, str, str]:
    """TxnDate (the local creation date, sometimes back-dated), DueDate and the SalesTermRef value."""
    txn = local_date(table.created[slot], c.spec.offset_minutes) - timedelta(days=rng.choice((0, 0, 0, 1, 2, 4)))
    term, days = N.TERMS[rng.randrange(len(N.TERMS))]
    return txn.isoformat(), (txn + timedelta(days=days + edit_push_days(table, slot))).isoformat(), term


def edit_push_days(table: Table, slot: int) -> int:
    """Days an edit pushed a document's due date (every other edit does)."""
    return 7 if table.edits[slot] % 2 else 0


def split_amount(rng: random.Random, total: int, parts: int) -> list[int]:
    cuts = sorted(rng.randrange(1, total) for _ in range(parts - 1)) if total > parts else []
    bounds = [0, *cuts, total]
    amounts = [b - a for a, b in zip(bounds, bounds[1:])]
    return amounts if all(amounts) else [total]


def private_note(table: Table, slot: int, base: str | None) -> dict[str, str]:
    if table.flags[slot] & VOIDED:
        return {"PrivateNote": "Voided"}
    if table.edits[slot]:
        return {"PrivateNote": N.EDIT_NOTES[_crc(table.name, slot, table.edits[slot]) % len(N.EDIT_NOTES)]}
    return {"PrivateNote": base} if base else {}


def render_vendor(c: Company, t: Table, slot: int) -> dict[str, Any]:
    rng, name = object_rng(c, "Vendor", slot), N.vendor_name(slot + 1)
    mailbox, has_mail = rng.choice(("ap", "billing", "accounts", "orders")), rng.random() < 0.8
    has_company, is_1099 = rng.random() < 0.9, rng.random() < 0.2
    obj: dict[str, Any] = {}
    if has_mail:
        obj["PrimaryEmailAddr"] = {"Address": f"{mailbox}@{N.slug(name)}.example"}
    if t.edits[slot] or rng.random() < 0.6:
        obj["PrimaryPhone"] = {"FreeFormNumber": _phone("Vendor", slot, t.edits[slot])}
    obj["Vendor1099"] = is_1099
    obj.update(head(c, t, slot))
    if has_company:
        obj["CompanyName"] = name
    obj.update({"DisplayName": name, "PrintOnCheckName": name, "Active": not t.flags[slot] & INACTIVE,
                "Balance": money(t.balance[slot]), "CurrencyRef": USD})
    return obj


def render_customer(c: Company, t: Table, slot: int) -> dict[str, Any]:
    rng = object_rng(c, "Customer", slot)
    is_business, has_mail, taxable = rng.random() < 0.55, rng.random() < 0.85, rng.random() < 0.3
    given, family = N.person_name(slot + 1)
    display = N.customer_company(slot + 1) if is_business else f"{given} {family}"
    obj: dict[str, Any] = {"Taxable": taxable, "Job": False, "BillWithParent": False}
    obj.update(head(c, t, slot))
    obj.update({"GivenName": given, "FamilyName": family})
    if is_business:
        obj["CompanyName"] = display
    obj.update({"DisplayName": display, "FullyQualifiedName": display, "PrintOnCheckName": display})
    if has_mail:
        obj["PrimaryEmailAddr"] = {"Address": f"{given.lower()}.{N.slug(family)}@{N.slug(display)}.example"}
    if t.edits[slot]:
        obj["PrimaryPhone"] = {"FreeFormNumber": _phone("Customer", slot, t.edits[slot])}
    balance = money(t.balance[slot])
    obj.update({"Active": not t.flags[slot] & INACTIVE, "Balance": balance, "BalanceWithJobs": balance,
                "CurrencyRef": USD, "PreferredDeliveryMethod": "Print"})
    return obj


def render_account(c: Company, t: Table, slot: int) -> dict[str, Any]:
    row = c.chart[slot]
    cents = _crc("bal", c.seed, c.spec.realm_id, slot, t.edits[slot]) % 5_000_000
    if row.classification == "Equity":
        cents = 0
    obj: dict[str, Any] = {"Name": row.name, "SubAccount": row.parent is not None}
    if row.parent is not None:
        obj["ParentRef"] = {"value": str(row.parent)}
    obj.update({"FullyQualifiedName": row.fully_qualified_name, "Active": not t.flags[slot] & INACTIVE,
                "Classification": row.classification, "AccountType": row.account_type,
                "AccountSubType": row.sub_type, "CurrentBalance": money(cents),
                "CurrentBalanceWithSubAccounts": money(cents), "CurrencyRef": USD})
    if t.edits[slot]:
        obj["Description"] = N.EDIT_NOTES[_crc("acct", slot, t.edits[slot]) % len(N.EDIT_NOTES)]
    obj.update(head(c, t, slot))
    return obj
