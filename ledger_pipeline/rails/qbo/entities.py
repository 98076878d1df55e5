"""The QBO entities the pipeline mirrors, declared as data: adding one is one row here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QboEntity:
    """One QBO entity type as the pipeline sees it.

    `name` is QBO's own spelling (query language, JSON keys, CDC `entities=`).
    Name lists (Vendor, Customer, Account) are never deleted in QBO, only
    deactivated, and their queries return active rows only unless
    `Active IN (true,false)` is asked; transactions can be hard-deleted and
    then show up only as CDC tombstones.
    """

    name: str
    table: str  # physical table suffix: raw.qbo_<table>, mirror.qbo_<table>
    is_name_list: bool


ENTITIES: tuple[QboEntity, ...] = (
    QboEntity("Vendor", "vendors", is_name_list=True),
    QboEntity("Customer", "customers", is_name_list=True),
    QboEntity("Account", "accounts", is_name_list=True),
    QboEntity("Bill", "bills", is_name_list=False),
    QboEntity("Invoice", "invoices", is_name_list=False),
    QboEntity("BillPayment", "bill_payments", is_name_list=False),
    QboEntity("Payment", "payments", is_name_list=False),
    QboEntity("Deposit", "deposits", is_name_list=False),
    QboEntity("Purchase", "purchases", is_name_list=False),
)

BY_NAME: dict[str, QboEntity] = {e.name: e for e in ENTITIES}


def entity(name: str) -> QboEntity:
    """Look up an entity by QBO name, failing with the list of known ones."""
    try:
        return BY_NAME[name]
    except KeyError:
        known = ", ".join(BY_NAME)
        raise ValueError(f"unknown QBO entity {name!r}; known entities: {known}") from None
