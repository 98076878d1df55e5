"""Stripe API JSON of the world's card objects, as of an instant (event payloads show objects as they were).

Ids are stable per (seed, realm, object); amounts are integer cents, times epoch seconds, currency "usd".
Customer names and emails come from the QBO customer the Stripe customer stands for.
"""

from __future__ import annotations

from typing import Any

from ledger_pipeline.rails.qbo.sandbox import names as N
from ledger_pipeline.rails.qbo.sandbox.history import Company
from ledger_pipeline.rails.qbo.sandbox.render import customer_display
from ledger_pipeline.rails.qbo.sandbox.render_txn import payout_id
from ledger_pipeline.world.flows import Flows
from ledger_pipeline.world.ids import stable_id

BRANDS = (("visa", "4242"), ("mastercard", "4444"), ("amex", "8431"), ("discover", "1117"), ("visa", "1881"))
PREFIX = {"customer": "cus", "charge": "ch", "refund": "re", "dispute": "dp", "payout": "po"}
TXN_TYPE = {"charge": ("charge", "charge"), "refund": ("refund", "refund"), "dispute": ("adjustment", "dispute"),
            "payout": ("payout", "payout")}  # kind -> (type, reporting_category)


class View:
    """One connected account's world, rendered the way Stripe shows it."""

    def __init__(self, account_id: str, company: Company, cache: dict | None = None) -> None:
        self.account_id = account_id
        self.company = company
        self.cache = {} if cache is None else cache  # (kind, index) -> the object's parts that never change
        self.flows: Flows = company.world
        self.seed, self.realm = company.seed, company.spec.realm_id

    # --- ids --------------------------------------------------------------------------------
    def id_of(self, kind: str, index: int) -> str:
        if kind == "payout":
            return payout_id(self.company, index)
        return stable_id(PREFIX[kind], self.seed, self.realm, kind, index, length=14 if kind == "customer" else 24)

    def txn_id(self, kind: str, index: int) -> str:
        return stable_id("txn", self.seed, self.realm, "txn", kind, index)

    def _extra_id(self, prefix: str, *parts: object) -> str:
        return stable_id(prefix, self.seed, self.realm, *parts)

    def _static(self, kind: str, index: int, build) -> dict[str, Any]:
        """A fresh copy of the object's static fields, built once per account (nested values are shared)."""
        base = self.cache.get((kind, index))
        if base is None:
            base = self.cache[(kind, index)] = build(index)
        return dict(base)

    # --- objects ----------------------------------------------------------------------------
    def customer(self, index: int, at: int) -> dict[str, Any]:
        c = self.flows.customers[index]
        obj = self._static("customer", index, self._customer)
        updated = c.updated is not None and c.updated <= at
        obj["email"] = f"{'billing' if updated else 'pay'}@{N.slug(obj['name'])}.example"
        return obj

    def _customer(self, index: int) -> dict[str, Any]:
        c = self.flows.customers[index]
        name = customer_display(self.company, c.qbo_slot)
        return {
            "id": self.id_of("customer", index), "object": "customer", "address": None, "balance": 0,
            "created": c.created, "currency": "usd", "default_source": None, "delinquent": False,
            "description": None, "discount": None, "email": None,
            "invoice_prefix": self.id_of("customer", index)[4:12].upper(),
            "invoice_settings": {"custom_fields": None, "default_payment_method": None, "footer": None,
                                 "rendering_options": None},
            "livemode": False, "metadata": {"qbo_customer_id": str(c.qbo_slot + 1)}, "name": name,
            "next_invoice_sequence": 1, "phone": None, "preferred_locales": [], "shipping": None,
            "tax_exempt": "none", "test_clock": None,
        }

    def deleted_customer(self, index: int) -> dict[str, Any]:
        return {"id": self.id_of("customer", index), "object": "customer", "deleted": True}

    def charge(self, index: int, at: int) -> dict[str, Any]:
        ch = self.flows.charges[index]
        refund = self.flows.refunds[ch.refund] if ch.refund is not None else None
        refunded = refund.amount if refund is not None and refund.created <= at else 0
        obj = self._static("charge", index, self._charge)
        obj["amount_refunded"], obj["refunded"] = refunded, refunded == ch.amount
        obj["disputed"] = ch.dispute is not None and self.flows.disputes[ch.dispute].created <= at
        return obj

    def _charge(self, index: int) -> dict[str, Any]:
        ch = self.flows.charges[index]
        customer = self.flows.customers[ch.customer]
        brand, last4 = BRANDS[ch.payment_slot % len(BRANDS)]
        name = customer_display(self.company, customer.qbo_slot)
        return {
            "id": self.id_of("charge", index), "object": "charge", "amount": ch.amount, "amount_captured": ch.amount,
            "amount_refunded": 0, "application": None, "application_fee": None,
            "application_fee_amount": None, "balance_transaction": self.txn_id("charge", index),
            "billing_details": {"address": None, "email": None, "name": name, "phone": None},
            "calculated_statement_descriptor": "LEDGER SANDBOX", "captured": True, "created": ch.created,
            "currency": "usd", "customer": self.id_of("customer", ch.customer),
            "description": f"QBO payment {ch.payment_slot + 1}", "disputed": False, "failure_balance_transaction": None,
            "failure_code": None, "failure_message": None, "fraud_details": {}, "livemode": False,
            "metadata": {"qbo_payment_id": str(ch.payment_slot + 1), "qbo_customer_id": str(customer.qbo_slot + 1),
                         "qbo_realm_id": self.realm},
            "on_behalf_of": None,
            "outcome": {"network_status": "approved_by_network", "reason": None, "risk_level": "normal",
                        "seller_message": "Payment complete.", "type": "authorized"},
            "paid": True, "payment_intent": self._extra_id("pi", "charge", index),
            "payment_method": self._extra_id("pm", "charge", index),
            "payment_method_details": {"card": {"brand": brand, "country": "US", "exp_month": 1 + ch.payment_slot % 12,
                                                "exp_year": 2028 + ch.payment_slot % 4, "funding": "credit",
                                                "last4": last4}, "type": "card"},
            "receipt_email": None, "receipt_url": None, "refunded": False, "review": None,
            "shipping": None, "source_transfer": None, "statement_descriptor": None,
            "statement_descriptor_suffix": None, "status": "succeeded", "transfer_data": None, "transfer_group": None,
        }

    def refund(self, index: int, at: int) -> dict[str, Any]:
        r = self.flows.refunds[index]
        return {
            "id": self.id_of("refund", index), "object": "refund", "amount": r.amount,
            "balance_transaction": self.txn_id("refund", index), "charge": self.id_of("charge", r.charge),
            "created": r.created, "currency": "usd", "metadata": {},
            "payment_intent": self._extra_id("pi", "charge", r.charge), "reason": "requested_by_customer",
            "receipt_number": None, "source_transfer_reversal": None, "status": "succeeded",
            "transfer_reversal": None,
        }

    def dispute(self, index: int, at: int) -> dict[str, Any]:
        d = self.flows.disputes[index]
        return {
            "id": self.id_of("dispute", index), "object": "dispute", "amount": d.amount,
            "balance_transactions": [self.balance_transaction("dispute", index, at)],
            "charge": self.id_of("charge", d.charge), "created": d.created, "currency": "usd",
            "evidence_details": {"due_by": d.created + 7 * 86400, "has_evidence": False, "past_due": False,
                                 "submission_count": 0},
            "is_charge_refundable": False, "livemode": False, "metadata": {},
            "payment_intent": self._extra_id("pi", "charge", d.charge), "reason": "fraudulent",
            "status": "needs_response",
        }

    def payout(self, index: int, at: int) -> dict[str, Any]:
        p = self.flows.payouts[index]
        status = p.status(at)
        return {
            "id": self.id_of("payout", index), "object": "payout", "amount": p.amount, "application_fee": None,
            "application_fee_amount": None, "arrival_date": p.arrival, "automatic": True,
            "balance_transaction": self.txn_id("payout", index), "created": p.created, "currency": "usd",
            "description": "STRIPE PAYOUT", "destination": self._extra_id("ba", "bank account"),
            "failure_balance_transaction": None, "failure_code": None, "failure_message": None, "livemode": False,
            "metadata": {}, "method": "standard", "original_payout": None,
            "reconciliation_status": "completed" if status == "paid" else "in_progress", "reversed_by": None,
            "source_type": "card", "statement_descriptor": None, "status": status, "type": "bank_account",
        }

    def balance_transaction(self, kind: str, index: int, at: int) -> dict[str, Any]:
        obj = self.flows.obj(kind, index)
        if kind == "charge":
            amount, fee, available_on = obj.amount, obj.fee, obj.available_on
        elif kind == "payout":
            amount, fee, available_on = -obj.amount, 0, obj.created
        else:
            amount, fee, available_on = -obj.amount, getattr(obj, "fee", 0), obj.created
        details = [{"amount": fee, "application": None, "currency": "usd",
                    "description": "Dispute fee" if kind == "dispute" else "Stripe processing fees",
                    "type": "stripe_fee"}] if fee else []
        txn_type, category = TXN_TYPE[kind]
        return {
            "id": self.txn_id(kind, index), "object": "balance_transaction", "amount": amount,
            "available_on": available_on, "created": obj.created, "currency": "usd",
            "description": {"charge": None, "refund": "REFUND FOR CHARGE", "dispute": "Chargeback withdrawal",
                            "payout": "STRIPE PAYOUT"}[kind],
            "exchange_rate": None, "fee": fee, "fee_details": details, "net": amount - fee,
            "reporting_category": category, "source": self.id_of(kind, index),
            "status": "available" if available_on <= at else "pending", "type": txn_type,
        }

    def render(self, kind: str, index: int, at: int) -> dict[str, Any]:
        return getattr(self, kind)(index, at)

    def balance(self, at: int) -> dict[str, Any]:
        available, pending = self.flows.balance(at)
        return {"object": "balance",
                "available": [{"amount": available, "currency": "usd", "source_types": {"card": available}}],
                "livemode": False,
                "pending": [{"amount": pending, "currency": "usd", "source_types": {"card": pending}}]}
