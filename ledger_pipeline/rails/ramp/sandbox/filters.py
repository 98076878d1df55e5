"""The filters and orderings of each Ramp list, with Ramp's defaults: declined transactions, archived bills and
terminated or unactivated cards are left out unless asked for; newest first (by the list's date) unless a
transaction ordering says otherwise. Each function reads the query and answers a `Plan` (lists.py)."""

from __future__ import annotations

from ledger_pipeline.rails.qbo.sandbox import names as N
from ledger_pipeline.world.card_spend import MERCHANTS

from .lists import Plan, Query, window
from .render import SK_CATEGORY_IDS, department_id, merchant_id, sync
from .render import card as render_card
from .responses import invalid_input
from .sources import RampView

TRANSACTION_STATES = ("ALL", "CLEARED", "COMPLETION", "DECLINED", "ERROR", "PENDING", "PENDING_INITIATION")
ORDERINGS = ("order_by_date_asc", "order_by_date_desc", "order_by_amount_asc", "order_by_amount_desc")
APPROVAL_STATUSES = ("APPROVED", "INITIALIZED", "PENDING", "REJECTED", "TERMINATED")
PAYMENT_METHODS = ("ACH", "CARD", "CHECK", "DOMESTIC_WIRE", "INTERNATIONAL", "ONE_TIME_CARD", "ONE_TIME_CARD_DELIVERY",
                   "PAID_MANUALLY", "SWIFT", "UNSPECIFIED", "VENDOR_CREDIT")  # fmt: skip
ROLES = ("AUDITOR", "BUSINESS_ADMIN", "BUSINESS_BOOKKEEPER", "BUSINESS_OWNER", "BUSINESS_USER", "GUEST_USER",
         "IT_ADMIN")  # fmt: skip


def _entity(view: RampView, q: Query) -> bool:
    """False when `entity_id` names another entity than the business's one (nothing matches)."""
    wanted = q.uuid("entity_id")
    return wanted is None or wanted == view.business.entity_id


def transactions(view: RampView, q: Query) -> Plan:
    q.refuse(("approval_status", "awaiting_approval_by_user_id", "sync_ready", "has_no_sync_commits",
              "requires_memo"))  # fmt: skip
    # Ids no sandbox transaction has (no limits, locations, spend programs, trips, accounting selections).
    unmatched = any(q.uuid(name) is not None for name in ("limit_id", "location_id", "spend_program_id", "trip_id",
                                                           "accounting_field_selection_id"))  # fmt: skip
    sync_status = q.choice("sync_status", ("NOT_SYNC_READY", "SYNCED", "SYNC_READY"))
    synced_after = q.instant("synced_after")
    state = q.choice("state", TRANSACTION_STATES)
    orders = [name for name in ORDERINGS if q.flag(name)]
    if len(orders) > 1:
        raise invalid_input("Only one ordering parameter is supported")
    when = window(q, "from_date", "to_date", high_inclusive=False)
    updated_after = q.instant("updated_after")
    user_id, card_id, merchant = q.uuid("user_id"), q.uuid("card_id"), q.uuid("merchant_id")
    statement_id, department = q.uuid("statement_id"), q.uuid("department_id")
    low, high = q.cents("min_amount"), q.cents("max_amount")
    category = q.text("sk_category_id")
    entity = _entity(view, q)
    now, people = view.now, view.spend.people
    holders = {u.user_id: u.index for u in people}
    categories = {str(i): name for name, i in SK_CATEGORY_IDS.items()}

    def keep(t) -> bool:
        s = t.state(now)
        if (s == "DECLINED") if state is None else (state != "ALL" and s != state):
            return False
        if unmatched or not entity or not when(t.authorized):
            return False
        if sync_status is not None or synced_after is not None:
            booked, status = sync(t, now)
            if (sync_status is not None and status != sync_status) or (
                    synced_after is not None and (booked is None or booked <= synced_after)):
                return False
        if updated_after is not None and view.updated(t) <= updated_after:
            return False
        if user_id is not None and holders.get(user_id) != t.holder:
            return False
        if card_id is not None and t.card_id != card_id:
            return False
        if merchant is not None and merchant_id(t.merchant) != merchant:
            return False
        if statement_id is not None:
            on = view.statement_of.get(t.transaction_id)
            if on is None or on.statement_id != statement_id:
                return False
        if department is not None and department_id(view, people[t.holder].department) != department:
            return False
        if category is not None and categories.get(category) != MERCHANTS[t.merchant][1]:
            return False
        cents = t.cents_at(now)
        return (low is None or cents >= low) and (high is None or cents <= high)

    by_amount = bool(orders) and "amount" in orders[0]
    listing = view.transactions_by_amount if by_amount else view.transactions
    return Plan(listing, keep, descending=not orders or orders[0].endswith("desc"))


def bills(view: RampView, q: Query) -> Plan:
    q.refuse(("accounting_field_selection_id", "sync_status", "sync_ready"))
    archived = bool(q.flag("is_archived"))
    payment_status = q.choice("payment_status", ("OPEN", "PAID"))
    approval = q.choice("approval_status", APPROVAL_STATUSES)
    method = q.choice("payment_method", PAYMENT_METHODS)
    vendor_id = q.uuid("vendor_id")
    issued = window(q, "from_issued_date", "to_issued_date", high_inclusive=True)
    created = window(q, "from_created_at", "to_created_at", high_inclusive=True)
    due = window(q, "from_due_date", "to_due_date", high_inclusive=True)
    paid = window(q, "from_paid_at", "to_paid_at", high_inclusive=True)
    low, high = q.cents("min_amount"), q.cents("max_amount")
    entity = _entity(view, q)

    def keep(b) -> bool:
        f = b.facts
        if not entity or (b.archived_at is not None) != archived:
            return False
        status = "PAID" if b.paid_at is not None else "OPEN"
        if payment_status is not None and status != payment_status:
            return False
        if approval is not None and ("APPROVED" if b.approved else "PENDING") != approval:
            return False
        if method is not None and (b.paid_at is None or method != "ACH"):
            return False
        if vendor_id is not None and view.vendor_of(b).vendor_id != vendor_id:
            return False
        if not (issued(f.issued) and created(f.created) and due(f.due) and paid(b.paid_at)):
            return False
        return (low is None or f.cents >= low) and (high is None or f.cents <= high)

    return Plan(view.bills, keep)


def vendors(view: RampView, q: Query) -> Plan:
    q.refuse(("sk_category_ids",))
    since = q.instant("from_created_at")
    active = q.flag("is_active")
    owner = q.uuid("vendor_owner_id")
    name = q.text("name")

    def keep(v) -> bool:
        if owner is not None or (since is not None and v.created < since):
            return False
        if active is not None and v.active != active:
            return False
        return name is None or N.vendor_name(v.slot + 1).lower() == name.lower()

    return Plan(view.vendors, keep)


def users(view: RampView, q: Query) -> Plan:
    role, email, employee_id = q.choice("role", ROLES), q.text("email"), q.text("employee_id")
    department, location_id = q.uuid("department_id"), q.uuid("location_id")
    entity = _entity(view, q)

    def keep(u) -> bool:
        if not entity or location_id is not None or (role is not None and u.role != role):
            return False
        if email is not None and u.email != email.lower():
            return False
        if employee_id is not None and employee_id != f"E{u.index + 1:04d}":
            return False
        return department is None or department_id(view, u.department) == department

    return Plan(view.users, keep)


def cards(view: RampView, q: Query) -> Plan:
    activated = q.flag("is_activated")
    terminated = q.flag("is_terminated")
    activated, terminated = True if activated is None else activated, bool(terminated)
    user_id, program, display_name = q.uuid("user_id"), q.uuid("card_program_id"), q.text("display_name")
    entity = _entity(view, q)
    now = view.now
    holders = {u.user_id: u.index for u in view.spend.people}

    def keep(c) -> bool:
        is_activated = c.activated is not None and c.activated <= now
        if not entity or program is not None or is_activated != activated:
            return False
        if (c.state(now) == "TERMINATED") != terminated:
            return False
        if user_id is not None and holders.get(user_id) != c.holder:
            return False
        return display_name is None or render_card(view, c)["display_name"] == display_name

    return Plan(view.cards, keep)


def reimbursements(view: RampView, q: Query) -> Plan:
    q.refuse(("sync_status", "from_transaction_date", "to_transaction_date", "awaiting_approval_by_user_id",
              "trip_id", "accounting_field_selection_id", "from_submitted_at", "to_submitted_at", "synced_after",
              "sync_ready", "has_no_sync_commits"))  # fmt: skip
    direction = q.choice("direction", ("BUSINESS_TO_USER", "USER_TO_BUSINESS")) or "BUSINESS_TO_USER"
    created = window(q, "from_date", "to_date", high_inclusive=False)
    updated_after = q.instant("updated_after")
    user_id = q.uuid("user_id")
    entity = _entity(view, q)
    now = view.now
    holders = {u.user_id: u.index for u in view.spend.people}

    def keep(r) -> bool:
        if not entity or direction != "BUSINESS_TO_USER" or not created(r.created):
            return False
        if updated_after is not None and r.updated_at(now) <= updated_after:
            return False
        return user_id is None or holders.get(user_id) == r.user

    return Plan(view.reimbursements, keep)


def statements(view: RampView, q: Query) -> Plan:
    ended = window(q, "from_date", "to_date", high_inclusive=True)
    return Plan(view.statements, lambda s: ended(s.end))
