"""Plaid API JSON of items, accounts and transactions, as of an instant.

Amounts are floats in major units (cents / 100) with Plaid's sign (positive = money out); dates are ISO dates
and times ISO 8601 in UTC. Transactions carry every field plaid-python's `Transaction` model requires; a
transaction the bank enriches later reads plainer before (no merchant, no counterparty, LOW confidence).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from .feed import Txn
from .spec import PlaidAccountSpec, PlaidItem, plaid_id

# look kind -> (payment_channel, transaction_type, category primary, detailed)
KINDS: dict[str, tuple[str, str, str, str]] = {
    "payout": ("other", "special", "TRANSFER_IN", "TRANSFER_IN_ACCOUNT_TRANSFER"),
    "deposit_check": ("other", "special", "TRANSFER_IN", "TRANSFER_IN_DEPOSIT"),
    "ach_credit": ("other", "special", "INCOME", "INCOME_OTHER_INCOME"),
    "check": ("other", "special", "TRANSFER_OUT", "TRANSFER_OUT_WITHDRAWAL"),
    "ach_debit": ("other", "special", "GENERAL_SERVICES", "GENERAL_SERVICES_OTHER_GENERAL_SERVICES"),
    "fee": ("other", "special", "BANK_FEES", "BANK_FEES_OTHER_BANK_FEES"),
    "transfer_out": ("other", "special", "TRANSFER_OUT", "TRANSFER_OUT_SAVINGS"),
    "transfer_in": ("other", "special", "TRANSFER_IN", "TRANSFER_IN_SAVINGS"),
    "interest": ("other", "special", "INCOME", "INCOME_INTEREST_EARNED"),
    "restaurant": ("in store", "place", "FOOD_AND_DRINK", "FOOD_AND_DRINK_RESTAURANT"),
    "coffee": ("in store", "place", "FOOD_AND_DRINK", "FOOD_AND_DRINK_COFFEE"),
    "gas": ("in store", "place", "TRANSPORTATION", "TRANSPORTATION_GAS"),
    "office": ("in store", "place", "GENERAL_MERCHANDISE", "GENERAL_MERCHANDISE_OFFICE_SUPPLIES"),
    "shipping": ("in store", "place", "GENERAL_SERVICES", "GENERAL_SERVICES_POSTAGE_AND_SHIPPING"),
    "hardware": ("in store", "place", "HOME_IMPROVEMENT", "HOME_IMPROVEMENT_HARDWARE"),
    "software": ("online", "digital", "GENERAL_SERVICES", "GENERAL_SERVICES_OTHER_GENERAL_SERVICES"),
    "travel": ("online", "digital", "TRAVEL", "TRAVEL_FLIGHTS"),
    "lodging": ("in store", "place", "TRAVEL", "TRAVEL_LODGING"),
    "printing": ("in store", "place", "GENERAL_SERVICES", "GENERAL_SERVICES_OTHER_GENERAL_SERVICES"),
    "card_payment_in": ("other", "special", "LOAN_PAYMENTS", "LOAN_PAYMENTS_CREDIT_CARD_PAYMENT"),
    "card_payment_out": ("other", "special", "LOAN_PAYMENTS", "LOAN_PAYMENTS_CREDIT_CARD_PAYMENT"),
}
ICON = "https://plaid-category-icons.plaid.com/PFC_{}.png"
NULL_LOCATION = {"address": None, "city": None, "country": None, "lat": None, "lon": None, "postal_code": None,
                 "region": None, "store_number": None}
NULL_PAYMENT_META = {"by_order_of": None, "payee": None, "payer": None, "payment_method": None,
                     "payment_processor": None, "ppd_id": None, "reason": None, "reference_number": None}
PRODUCTS = ["transactions"]


def iso_time(sec: int) -> str:
    return datetime.fromtimestamp(sec, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_date(sec: int) -> str:
    return datetime.fromtimestamp(sec, tz=timezone.utc).strftime("%Y-%m-%d")


def money(cents: int) -> float:
    return cents / 100


def transaction(txn: Txn, account_id: str, at: int, *, with_times: bool, original: bool) -> dict[str, Any]:
    """One transaction as of `at` (the only thing that changes is the posted one's enrichment)."""
    m, look = txn.movement, txn.movement.look
    channel, txn_type, primary, detailed = KINDS[look.kind]
    plain = not txn.pending and m.enriched_at is not None and m.enriched_at > at
    merchant = None if plain else look.merchant
    counterparties = [] if plain or look.counterparty is None else [_counterparty(*look.counterparty)]
    confidence = "LOW" if plain else "MEDIUM" if txn.pending else "VERY_HIGH" if m.enriched_at else "HIGH"
    cents = m.pending_amount if txn.pending else m.amount
    when = txn.appear
    return {
        "account_id": account_id, "account_owner": None, "amount": money(cents),
        "authorized_date": iso_date(m.authorized),
        "authorized_datetime": iso_time(m.authorized) if with_times else None,
        "category": None, "category_id": None, "check_number": look.check_number, "counterparties": counterparties,
        "date": iso_date(m.authorized if txn.pending else when),
        "datetime": iso_time(when) if with_times else None, "iso_currency_code": "USD", "location": dict(NULL_LOCATION),
        "logo_url": None, "merchant_entity_id": _entity(merchant) if merchant else None, "merchant_name": merchant,
        "name": (look.pending_name or look.name) if txn.pending else look.name,
        "original_description": look.original if original else None, "payment_channel": channel,
        "payment_meta": dict(NULL_PAYMENT_META), "pending": txn.pending, "pending_transaction_id": txn.pending_id,
        "personal_finance_category": {"confidence_level": confidence, "detailed": detailed, "primary": primary},
        "personal_finance_category_icon_url": ICON.format(primary), "transaction_code": None,
        "transaction_id": txn.txn_id, "transaction_type": txn_type, "unofficial_currency_code": None, "website": None,
    }


def _entity(name: str) -> str:
    return plaid_id("entity", name)


def _counterparty(name: str, kind: str) -> dict[str, Any]:
    return {"confidence_level": "HIGH", "entity_id": _entity(name), "logo_url": None, "name": name,
            "phone_number": None, "type": kind, "website": None}


def removed(txn: Txn, account_id: str) -> dict[str, str]:
    return {"account_id": account_id, "transaction_id": txn.txn_id}


def account(spec: PlaidAccountSpec, posted: int, pending_debits: int, updated: str | None) -> dict[str, Any]:
    """An AccountBase: depository current = opening - posted amounts (in minus out), available = current minus
    pending debits; credit current = amount owed, available = limit - current."""
    if spec.type == "credit":
        current = spec.opening_cents + posted
        available = (spec.limit_cents or 0) - current
    else:
        current = spec.opening_cents - posted
        available = current - pending_debits
    return {
        "account_id": spec.account_id,
        "balances": {"available": money(available), "current": money(current),
                     "iso_currency_code": "USD", "last_updated_datetime": updated,
                     "limit": money(spec.limit_cents) if spec.limit_cents is not None else None,
                     "unofficial_currency_code": None},
        "holder_category": "business", "mask": spec.mask, "name": spec.name, "official_name": spec.official_name,
        "subtype": spec.subtype, "type": spec.type,
    }


def item(spec: PlaidItem, error: dict[str, Any] | None, *, created: str | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "available_products": ["balance"], "billed_products": list(PRODUCTS), "consent_expiration_time": None,
        "consented_products": list(PRODUCTS), "error": error, "institution_id": spec.institution_id,
        "institution_name": spec.institution_name, "item_id": spec.item_id, "products": list(PRODUCTS),
        "update_type": "background", "webhook": None,
    }
    if created is not None:
        obj["created_at"] = created
    return obj
