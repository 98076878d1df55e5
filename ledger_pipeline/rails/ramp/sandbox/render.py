"""Ramp Developer API JSON of users, cards, transactions, statements, reimbursements, bills and vendors, as of
the view's instant.

Money follows Ramp's two representations: `{amount, currency_code}` objects carry integer minor units (cents),
the legacy plain numbers (a transaction's `amount`, a reimbursement's `amount`, card limits) decimal dollars.
Times are ISO 8601 in UTC with `+00:00`. What never changes about an object is built once and kept in the
business cache; each answer copies it and sets what the clock changes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from ledger_pipeline.rails.qbo.sandbox import names as N
from ledger_pipeline.world.bill_pay import ach_trace, own_payment
from ledger_pipeline.world.card_spend import MERCHANTS, Card, CardTransaction, Reimbursement, Statement, User
from ledger_pipeline.world.calendar import DAY, seeded_rng

from .sources import BillState, RampView, VendorState
from .spec import ramp_uuid

USD = "USD"
CATEGORIES = sorted({m[1] for m in MERCHANTS})
# Ramp category codes are Ramp's own integers; the sandbox numbers its categories in alphabetical order.
SK_CATEGORY_IDS = {name: i + 1 for i, name in enumerate(CATEGORIES)}
MCC = {"Advertising": ("7311", "Advertising Services"), "Airlines": ("4511", "Airlines, Air Carriers"),
       "Fuel": ("5541", "Service Stations"), "Hardware": ("5251", "Hardware Stores"),
       "Lodging": ("7011", "Hotels, Motels, Resorts"), "Office Supplies": ("5111", "Stationery, Office Supplies"),
       "Printing": ("7338", "Quick Copy, Repro, and Blueprint"), "Restaurants": ("5812", "Eating Places, Restaurants"),
       "Shipping": ("4215", "Courier Services"), "Software": ("5734", "Computer Software Stores"),
       "Taxi & Rideshare": ("4121", "Taxicabs/Limousines")}  # fmt: skip
ONLINE = frozenset({"Advertising", "Airlines", "Software", "Taxi & Rideshare"})  # never card-present
# The world's decline reasons as Ramp names them (ApiTransactionDeclineDetails.reason).
DECLINE_REASONS = {"INSUFFICIENT_FUNDS": "INSUFFICIENT_FUNDS", "SUSPECTED_FRAUD": "SUSPECTED_FRAUD",
                   "MERCHANT_BLOCKED": "AUTHORIZER_CARD_VENDOR_BLACKLIST",
                   "CARD_LIMIT_EXCEEDED": "AUTHORIZER_CARD_LIMIT", "AUTHORIZATION_REVERSED": "OTHER"}  # fmt: skip


@lru_cache(maxsize=1 << 16)  # a page renders a few instants per object, most of them again on the next read
def iso(sec: int | None) -> str | None:
    return None if sec is None else datetime.fromtimestamp(sec, tz=UTC).isoformat()


def money(cents: int) -> dict[str, Any]:
    return {"amount": cents, "currency_code": USD}


def dollars(cents: int) -> float:
    return cents / 100


def merchant_id(merchant: int) -> str:
    return ramp_uuid("merchant", MERCHANTS[merchant][0])


def department_id(view: RampView, name: str) -> str:
    return ramp_uuid(view.business.business_id, "department", name)


def _static(view: RampView, object_id: str, build) -> dict[str, Any]:
    found = view.cache.static.get(object_id)
    if found is None:
        found = view.cache.static[object_id] = build()
    return dict(found)


# --- people and cards ---------------------------------------------------------------------------------
def user(view: RampView, u: User) -> dict[str, Any]:
    people = view.spend.people
    return {"business_id": view.business.business_id, "custom_fields": [],
            "department_id": department_id(view, u.department), "email": u.email,
            "employee_id": f"E{u.index + 1:04d}", "entity_id": view.business.entity_id,
            "first_name": u.first_name, "id": u.user_id, "is_manager": u.index == 0, "last_name": u.last_name,
            "location_id": None, "manager_id": None if u.index == 0 else people[0].user_id, "phone": None,
            "role": u.role, "status": "USER_ACTIVE"}  # fmt: skip


def card(view: RampView, c: Card) -> dict[str, Any]:
    holder, now = view.spend.people[c.holder], view.now
    expires = datetime.fromtimestamp(c.created + 4 * 365 * DAY, tz=UTC)
    fulfillment = None
    if c.physical:
        delivered = c.activated is not None and c.activated <= now
        fulfillment = {"card_personalization": None, "cardholder_uuid": holder.user_id,
                       "fulfillment_status": "DELIVERED" if delivered else "SHIPPED", "shipping": None,
                       "shipping_date": iso(c.created + DAY), "shipping_eta": iso(c.created + 2 * DAY),
                       "shipping_tracking_url": None}
    name = f"{holder.first_name}'s card" if c.physical else f"{holder.first_name}'s subscriptions"
    return {"card_program_id": None, "cardholder_id": holder.user_id,
            "cardholder_name": f"{holder.first_name} {holder.last_name}", "created_at": iso(c.created),
            "display_name": name, "entity_id": view.business.entity_id, "expiration": expires.strftime("%m%y"),
            "fulfillment": fulfillment, "has_program_overridden": False, "id": c.card_id, "is_physical": c.physical,
            "last_four": c.last_four,
            "spending_restrictions": {"amount": dollars(c.limit_cents), "auto_lock_date": None,
                                      "blocked_categories": [], "categories": [], "interval": "MONTHLY",
                                      "suspended": False, "transaction_amount_limit": None},
            "state": c.state(now)}  # fmt: skip


# --- transactions -------------------------------------------------------------------------------------
def _transaction_static(view: RampView, t: CardTransaction) -> dict[str, Any]:
    name, category, _, _, _ = MERCHANTS[t.merchant]
    holder = view.spend.people[t.holder]
    physical = next(c.physical for c in view.spend.all_cards if c.card_id == t.card_id)
    mcc, mcc_text = MCC[category]
    return {"accounting_categories": [], "accounting_date": None, "accounting_field_selections": [], "amount": None,
            "attendees": [], "card_holder": {"department_id": department_id(view, holder.department),
                                             "department_name": holder.department,
                                             "employee_id": f"E{holder.index + 1:04d}",
                                             "first_name": holder.first_name, "last_name": holder.last_name,
                                             "location_id": None, "location_name": None, "user_id": holder.user_id},
            "card_id": t.card_id, "card_present": physical and category not in ONLINE, "currency_code": USD,
            "decline_details": None, "disputes": [], "entity_id": view.business.entity_id, "id": t.transaction_id,
            "limit_id": None, "line_items": None, "memo": None, "merchant_category_code": mcc,
            "merchant_category_code_description": mcc_text, "merchant_descriptor": name.upper(),
            "merchant_id": merchant_id(t.merchant), "merchant_location": None, "merchant_name": name,
            "original_transaction_amount": None, "policy_violations": [], "receipts": [],
            "settlement_date": None, "sk_category_id": SK_CATEGORY_IDS[category], "sk_category_name": category,
            "spend_program_id": None, "state": None, "statement_id": None, "sync_status": None, "synced_at": None,
            "trip_id": None, "trip_name": None, "user_transaction_time": iso(t.authorized)}  # fmt: skip


def sync(t: CardTransaction, now: int) -> tuple[int | None, str]:
    """(synced_at, sync_status): a cleared transaction is synced when the QBO books record it as a Purchase."""
    booked = t.booked if t.booked is not None and t.booked <= now else None
    return booked, "SYNCED" if booked else "SYNC_READY" if t.state(now) == "CLEARED" else "NOT_SYNC_READY"


def transaction(view: RampView, t: CardTransaction) -> dict[str, Any]:
    now = view.now
    out = _static(view, t.transaction_id, lambda: _transaction_static(view, t))
    state, cents = t.state(now), t.cents_at(now)
    cleared = t.cleared if state == "CLEARED" else None
    booked, synced = sync(t, now)
    statement = view.statement_of.get(t.transaction_id)
    out.update(amount=dollars(cents), original_transaction_amount=money(cents), state=state,
               settlement_date=iso(cleared), accounting_date=iso(cleared), synced_at=iso(booked),
               statement_id=None if statement is None else statement.statement_id,
               sync_status=synced,
               line_items=[{"accounting_field_selections": [], "amount": money(cents), "converted_amount": money(cents),
                            "memo": None}])  # fmt: skip
    if state == "DECLINED":
        out["decline_details"] = {"amount": dollars(cents), "reason": DECLINE_REASONS.get(t.decline_reason, "OTHER")}
    return out


# --- statements and reimbursements ---------------------------------------------------------------------
def statement(view: RampView, s: Statement) -> dict[str, Any]:
    opening, payments, ending, paid = view.balances[s.statement_id]
    txns = view.transactions
    lines = []
    for tid in s.transaction_ids:
        t = txns.get(tid)
        assert t is not None
        lines.append({"cleared_at": iso(t.cleared), "created_at": iso(t.authorized), "id": tid,
                      "type": "CARD_TRANSACTION"})
    lines += [{"created_at": iso(at), "id": line_id, "type": "TRANSFER_PAYMENT"} for line_id, at in paid]
    sums = {"charges": money(s.charges_cents), "credits": money(0), "ending_balance": money(ending),
            "opening_balance": money(opening), "payments": money(payments)}
    items = view.statements
    position = items.ids[s.statement_id]
    return {"balance_sections": [{**sums, "entity_id": view.business.entity_id,
                                  "id": ramp_uuid("balance section", s.statement_id)}],
            **sums, "end_date": iso(s.end), "id": s.statement_id,
            "preceding_statement_id": items.items[position - 1].statement_id if position else None,
            "start_date": iso(s.start), "statement_lines": lines, "statement_url": None}  # fmt: skip


def _reimbursement_static(view: RampView, r: Reimbursement) -> dict[str, Any]:
    person = view.spend.people[r.user]
    spent = r.created - seeded_rng(view.cache.seed, r.reimbursement_id, "spent").randrange(4) * DAY
    return {"accounting_date": None, "accounting_field_selections": [], "amount": dollars(r.cents), "approved_at": None,
            "attendees": [], "created_at": iso(r.created), "currency": USD, "direction": "BUSINESS_TO_USER",
            "distance": None, "employee_id": f"E{person.index + 1:04d}", "end_location": None,
            "entity_id": view.business.entity_id, "id": r.reimbursement_id,
            "line_items": [{"accounting_field_selections": [], "amount": money(r.cents), "memo": None}], "memo": None,
            "merchant": MERCHANTS[r.merchant][0], "merchant_id": merchant_id(r.merchant),
            "original_reimbursement_amount": money(r.cents), "payee_amount": money(r.cents), "payment_id": None,
            "receipts": [ramp_uuid("receipt", r.reimbursement_id)], "spend_limit_id": None, "start_location": None,
            "state": None, "submitted_at": iso(r.created), "sync_status": "NOT_SYNC_READY", "synced_at": None,
            "transaction_date": iso(spent)[:10], "trip_id": None, "type": "OUT_OF_POCKET", "updated_at": None,
            "user_email": person.email, "user_full_name": f"{person.first_name} {person.last_name}",
            "user_id": person.user_id, "waypoints": []}  # fmt: skip


def reimbursement(view: RampView, r: Reimbursement) -> dict[str, Any]:
    now = view.now
    out = _static(view, r.reimbursement_id, lambda: _reimbursement_static(view, r))
    state = r.state(now)
    out.update(state=state, updated_at=iso(r.updated_at(now)),
               approved_at=iso(r.approved) if r.approved <= now else None,
               payment_id=ramp_uuid("reimbursement payment", r.reimbursement_id) if state == "REIMBURSED" else None)
    return out


# --- bill pay -----------------------------------------------------------------------------------------
def bill(view: RampView, b: BillState, *, single: bool = False) -> dict[str, Any]:
    """A bill; `single` for GET /bills/{id}, the only answer carrying the payment's trace id (as Ramp does)."""
    f, vendor = b.facts, view.vendor_of(b)
    owner = view.spend.people[0]
    name = N.vendor_name(f.vendor_slot + 1)
    payment = None
    if b.paid_at is not None:
        seed, realm = view.cache.seed, view.company.spec.realm_id
        trace_id = (own_payment(seed, realm, f.slot, view.company.books.tables["Bill"].created[f.slot])[1]
                    if b.payment_slot is None else ach_trace(seed, realm, b.payment_slot))
        trace = {"descriptor": "ACH Trace ID", "trace_id": trace_id}
        payment = {"amount": money(f.cents),
                   "details": {"approval_status": "APPROVED", "schema_type": "VendorPaymentDetailsSchema",
                               "source_bank_account_id": ramp_uuid(view.business.business_id, "bill pay account"),
                               "vendor_account_id": ramp_uuid(vendor.vendor_id, "bank account")},
                   "effective_date": iso(b.paid_at), "payment_date": iso(b.paid_at), "payment_method": "ACH",
                   "trace_id": trace if single else None}
    return {"accounting_date": iso(f.issued), "accounting_field_selections": [], "amount": money(f.cents),
            "approval_status": "APPROVED" if b.approved else "PENDING", "archived_at": iso(b.archived_at),
            "bill_owner": {"first_name": owner.first_name, "id": owner.user_id, "last_name": owner.last_name},
            "created_at": iso(f.created), "deep_link_url": None, "due_at": iso(f.due),
            "entity_id": view.business.entity_id, "fx_conversion_rate": None, "id": f.bill_id,
            "inventory_line_items": [], "invoice_number": f.invoice_number, "invoice_urls": [],
            "issued_at": iso(f.issued),
            "line_items": [{"accounting_field_selections": [], "amount": money(f.cents), "memo": f.memo}],
            "memo": f.memo, "paid_at": iso(b.paid_at), "payment": payment, "remote_id": str(f.slot + 1),
            "status": "PAID" if b.paid_at is not None else "OPEN",
            "sync_status": "BILL_AND_PAYMENT_SYNCED" if b.payment_slot is not None else "BILL_SYNCED",
            "vendor": {"id": vendor.vendor_id, "name": name, "remote_code": None, "remote_id": str(f.vendor_slot + 1),
                       "remote_name": name, "type": "BUSINESS"},
            "vendor_contact_id": None, "vendor_memo": None}  # fmt: skip


def vendor(view: RampView, v: VendorState) -> dict[str, Any]:
    now = view.now
    year = int(datetime(datetime.fromtimestamp(now, tz=UTC).year, 1, 1, tzinfo=UTC).timestamp())

    def spent(since: int) -> dict[str, Any]:
        return money(sum(cents for at, cents in v.paid if at >= since))

    name = N.vendor_name(v.slot + 1)
    return {"accounting_vendor_remote_id": str(v.slot + 1), "contacts": [], "country": "US",
            "created_at": iso(v.created), "description": None, "id": v.vendor_id, "is_active": v.active,
            "is_deletable": False, "merchant_id": None, "name": name, "name_legal": name, "sk_category_id": None,
            "sk_category_name": None, "total_spend_all_time": spent(0),
            "total_spend_last_30_days": spent(now - 30 * DAY),
            "total_spend_last_365_days": spent(now - 365 * DAY), "total_spend_ytd": spent(year),
            "vendor_owner_id": None, "vendor_type": "BUSINESS"}  # fmt: skip
