"""QBO JSON payloads of transactions (Bill, Invoice, BillPayment, Payment, Deposit, Purchase) and the render dispatch.

Line amounts always sum to TotalAmt; Balance is TotalAmt minus what live payments apply; LinkedTxn
points from documents to their payments and from payments to their documents. A voided transaction
keeps its lines with zero amounts (documents) or loses them (payments), and says "Voided".
"""

from __future__ import annotations

from typing import Any, Callable

from . import names as N
from .books import VOIDED, Table
from .history import Company
from .render import (NON_TAXABLE, USD, account_ref, customer_ref, head, money, object_rng, private_note,
                     render_account, render_customer, render_vendor, split_amount, txn_dates, vendor_ref)
from .timefmt import iso_seconds, iso_utc, local_date
from ledger_pipeline.world.card_spend import MERCHANTS
from ledger_pipeline.world.ids import stable_id

_QTYS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 20)


def _doc_amounts(t: Table, slot: int) -> tuple[int, int, bool]:
    voided = bool(t.flags[slot] & VOIDED)
    total = 0 if voided else t.total[slot]
    return total, (0 if voided else total - t.applied[slot]), voided


def render_bill(c: Company, t: Table, slot: int) -> dict[str, Any]:
    rng = object_rng(c, "Bill", slot)
    txn_date, due_date, term = txn_dates(c, rng, t, slot)
    parts = split_amount(rng, t.total[slot], 1 + (rng.random() < 0.35) + (rng.random() < 0.15))
    total, balance, voided = _doc_amounts(t, slot)
    lines = []
    for i, cents in enumerate(parts, start=1):
        account = c.expense_accounts[rng.randrange(len(c.expense_accounts))]
        line: dict[str, Any] = {"Id": str(i), "LineNum": i}
        if rng.random() < 0.6:
            line["Description"] = rng.choice(N.EXPENSE_MEMOS)
        line.update({"Amount": money(0 if voided else cents), "DetailType": "AccountBasedExpenseLineDetail",
                     "AccountBasedExpenseLineDetail": {"AccountRef": account_ref(c, account),
                                                       "BillableStatus": "NotBillable",
                                                       "TaxCodeRef": NON_TAXABLE}})
        lines.append(line)
    doc_number = f"{rng.choice(('INV-', 'SI', '', 'A-'))}{rng.randrange(1000, 99999)}" if rng.random() < 0.7 else None
    memo = rng.choice(N.EXPENSE_MEMOS) if rng.random() < 0.3 else None
    obj: dict[str, Any] = {"DueDate": due_date, "Balance": money(balance)}
    obj.update(head(c, t, slot))
    if doc_number:
        obj["DocNumber"] = doc_number
    obj.update({"TxnDate": txn_date, "CurrencyRef": USD})
    obj.update(private_note(t, slot, memo))
    obj["LinkedTxn"] = [{"TxnId": str(p + 1), "TxnType": "BillPayment"} for p in t.links.get(slot, ())]
    obj.update({"Line": lines, "VendorRef": vendor_ref(t.party[slot]), "APAccountRef": account_ref(c, N.AP_ACCOUNT),
                "SalesTermRef": {"value": term}, "TotalAmt": money(total)})
    return obj


def render_invoice(c: Company, t: Table, slot: int) -> dict[str, Any]:
    rng = object_rng(c, "Invoice", slot)
    txn_date, due_date, term = txn_dates(c, rng, t, slot)
    parts = split_amount(rng, t.total[slot], 1 + (rng.random() < 0.5) + (rng.random() < 0.25))
    total, balance, voided = _doc_amounts(t, slot)
    lines: list[dict[str, Any]] = []
    for i, cents in enumerate(parts, start=1):
        item_id, item_name = N.ITEMS[rng.randrange(len(N.ITEMS))]
        qty = rng.choice([q for q in _QTYS if cents % q == 0])
        line: dict[str, Any] = {"Id": str(i), "LineNum": i}
        if rng.random() < 0.7:
            line["Description"] = rng.choice(N.SALES_MEMOS)
        line.update({"Amount": money(0 if voided else cents), "DetailType": "SalesItemLineDetail",
                     "SalesItemLineDetail": {"ItemRef": {"value": item_id, "name": item_name},
                                             "UnitPrice": money(cents // qty), "Qty": 0 if voided else qty,
                                             "TaxCodeRef": NON_TAXABLE}})
        lines.append(line)
    lines.append({"Amount": money(total), "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}})
    memo = rng.choice(N.SALES_MEMOS) if rng.random() < 0.25 else None
    obj: dict[str, Any] = {"TxnDate": txn_date, "DueDate": due_date, "AllowOnlineCreditCardPayment": False,
                           "ApplyTaxAfterDiscount": False}
    obj.update(head(c, t, slot))
    obj.update({"DocNumber": str(1000 + slot + 1), "CurrencyRef": USD})
    obj.update(private_note(t, slot, memo))
    obj["LinkedTxn"] = [{"TxnId": str(p + 1), "TxnType": "Payment"} for p in t.links.get(slot, ())]
    obj.update({"Line": lines, "TxnTaxDetail": {"TotalTax": 0}, "CustomerRef": customer_ref(c, t.party[slot]),
                "SalesTermRef": {"value": term}, "TotalAmt": money(total), "Balance": money(balance),
                "PrintStatus": "NotSet", "EmailStatus": "EmailSent" if t.edits[slot] else "NotSet"})
    return obj


def _pay_lines(t: Table, slot: int, doc_type: str) -> tuple[list[dict[str, Any]], int]:
    links = t.links.get(slot, ())
    lines = [{"Amount": money(cents), "LinkedTxn": [{"TxnId": str(doc + 1), "TxnType": doc_type}]}
             for doc, cents in links]
    return lines, sum(cents for _, cents in links)


def render_bill_payment(c: Company, t: Table, slot: int) -> dict[str, Any]:
    rng = object_rng(c, "BillPayment", slot)
    txn_date = txn_dates(c, rng, t, slot)[0]
    check_number = str(rng.randrange(1000, 9999)) if rng.random() < 0.6 else None
    lines, _ = _pay_lines(t, slot, "Bill")
    obj: dict[str, Any] = {"VendorRef": vendor_ref(t.party[slot]), "PayType": "Check",
                           "CheckPayment": {"BankAccountRef": account_ref(c, N.CHECKING), "PrintStatus": "NotSet"},
                           "TotalAmt": money(0 if t.flags[slot] & VOIDED else t.total[slot])}
    obj.update(head(c, t, slot))
    if check_number:
        obj["DocNumber"] = check_number
    obj.update({"TxnDate": txn_date, "CurrencyRef": USD})
    obj.update(private_note(t, slot, None))
    obj.update({"Line": lines, "APAccountRef": account_ref(c, N.AP_ACCOUNT)})
    return obj


def render_payment(c: Company, t: Table, slot: int) -> dict[str, Any]:
    rng = object_rng(c, "Payment", slot)
    txn_date = txn_dates(c, rng, t, slot)[0]
    deposit = N.UNDEPOSITED if rng.random() < 0.7 else N.CHECKING
    ref_num = str(rng.randrange(10000, 99999)) if rng.random() < 0.5 else None
    lines, applied = _pay_lines(t, slot, "Invoice")
    total = 0 if t.flags[slot] & VOIDED else t.total[slot]
    obj: dict[str, Any] = {"CustomerRef": customer_ref(c, t.party[slot]),
                           "DepositToAccountRef": account_ref(c, deposit), "TotalAmt": money(total),
                           "UnappliedAmt": money(total - applied), "ProcessPayment": False}
    obj.update(head(c, t, slot))
    obj.update({"TxnDate": txn_date, "CurrencyRef": USD})
    if ref_num:
        obj["PaymentRefNum"] = ref_num
    obj.update(private_note(t, slot, None))
    obj.update({"Line": lines, "ARAccountRef": account_ref(c, N.AR_ACCOUNT)})
    return obj


def payout_id(c: Company, index: int) -> str:
    """The card processor's id of the world's payout `index` (the Stripe sandbox shows the same id)."""
    return stable_id("po", c.seed, c.spec.realm_id, "payout", index)


def render_deposit(c: Company, t: Table, slot: int) -> dict[str, Any]:
    """A card payout landing in Checking, moved out of Undeposited Funds; dated the payout's arrival."""
    payout = c.world.payouts[t.party[slot]]
    amount = money(t.total[slot])
    obj: dict[str, Any] = {"DepositToAccountRef": account_ref(c, N.CHECKING), "TotalAmt": amount}
    obj.update(head(c, t, slot))
    obj.update({"TxnDate": iso_utc(payout.arrival * 1_000_000)[:10], "CurrencyRef": USD})
    obj.update(private_note(t, slot, f"Stripe payout {payout_id(c, payout.index)}"))
    obj["Line"] = [{"Id": "1", "LineNum": 1, "Amount": amount, "DetailType": "DepositLineDetail",
                    "DepositLineDetail": {"AccountRef": account_ref(c, N.UNDEPOSITED)}}]
    return obj


def render_purchase(c: Company, t: Table, slot: int) -> dict[str, Any]:
    """A cleared Ramp card transaction charged to the Ramp Card account, one expense line for its merchant; dated
    the local day it was authorised, created when the books recorded it; the note names the Ramp transaction."""
    txn = c.books.card_purchases[slot]
    merchant, _, kind, _, _ = MERCHANTS[txn.merchant]
    amount = money(t.total[slot])
    obj: dict[str, Any] = {"AccountRef": account_ref(c, c.card_account), "PaymentType": "CreditCard",
                           "Credit": False, "TotalAmt": amount}
    obj.update(head(c, t, slot))
    obj.update({"TxnDate": local_date(txn.authorized, c.spec.offset_minutes).isoformat(), "CurrencyRef": USD})
    obj.update(private_note(t, slot, f"Ramp txn {txn.transaction_id}"))
    obj["Line"] = [{"Id": "1", "Description": merchant, "Amount": amount,
                    "DetailType": "AccountBasedExpenseLineDetail",
                    "AccountBasedExpenseLineDetail": {"AccountRef": account_ref(c, N.CARD_EXPENSE_ACCOUNTS[kind]),
                                                      "BillableStatus": "NotBillable", "TaxCodeRef": NON_TAXABLE}}]
    return obj


RENDERERS: dict[str, Callable[[Company, Table, int], dict[str, Any]]] = {
    "Vendor": render_vendor, "Customer": render_customer, "Account": render_account, "Bill": render_bill,
    "Invoice": render_invoice, "BillPayment": render_bill_payment, "Payment": render_payment,
    "Deposit": render_deposit, "Purchase": render_purchase,
}


def render(c: Company, entity: str, slot: int) -> dict[str, Any]:
    return RENDERERS[entity](c, c.books.tables[entity], slot)


def tombstone(c: Company, slot: int, sec: int) -> dict[str, Any]:
    """What CDC says about a hard-deleted transaction: its Id, status and deletion time, nothing else."""
    return {"Id": str(slot + 1), "status": "Deleted", "domain": "QBO",
            "MetaData": {"LastUpdatedTime": iso_seconds(sec, c.spec.offset_minutes)}}
