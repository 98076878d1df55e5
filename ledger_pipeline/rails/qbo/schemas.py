"""pandera (polars) contracts of the QBO mirrors: what a row must hold to be published.

A row that breaks one stays in the log and goes to quarantine with the reason.
The SQL models cast with try_cast, so a payload whose field changed type shows
up here as a null in a required column rather than failing the whole refresh.

Money policy: every amount QBO always sends must be a JSON number with at most
the currency's two decimals. The stg models type anything else (a string, a
third decimal, an absent amount) as null instead of rounding it, and the
`EXACT_MONEY` checks below quarantine the row. Zero is valid. A negative
TotalAmt, Balance or UnappliedAmt on a transaction is quarantined (QBO keeps
credits and refunds as other entities, so a negative one means the sign
convention drifted and would flip the aging); a negative Vendor or Customer
balance is a credit and is published.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl
from pandera.engines import polars_engine as pe

from ledger_pipeline.lib.validation import UTC_US, LoggedRow, typed

MONEY = {"precision": 18, "scale": 2}
QBO_ID = r"^[0-9]{1,20}$"
CURRENCY = r"^[A-Z]{3}$"
# Money columns are declared nullable so that a missing or inexact amount is reported by this check, whose
# reason says what is wrong, rather than by `not_nullable`; the check still rejects every null.
EXACT_MONEY = "a JSON number with at most 2 decimals"


class _MirrorRow(LoggedRow):
    """Columns every QBO mirror carries beyond every rail's (LoggedRow)."""

    qbo_id: str = pa.Field(nullable=False, str_matches=QBO_ID)
    sync_token: pl.Int32 = pa.Field(nullable=False, ge=0)
    currency: str = pa.Field(nullable=True, str_matches=CURRENCY)
    created_at: pe.DateTime = pa.Field(nullable=False, dtype_kwargs=UTC_US)
    updated_at: pe.DateTime = pa.Field(nullable=False, dtype_kwargs=UTC_US)
    sync_source: str = pa.Field(isin=["query", "cdc", "sweep"])


class _NameListRow(_MirrorRow):
    is_active: bool = pa.Field(nullable=False)


class QboVendorMirror(_NameListRow):
    display_name: str = pa.Field(nullable=False, str_length={"min_value": 1})
    company_name: str = pa.Field(nullable=True)
    email: str = pa.Field(nullable=True)
    balance: pe.Decimal = pa.Field(nullable=True, dtype_kwargs=MONEY)
    is_1099: bool = pa.Field(nullable=False)

    @pa.check("balance", error=EXACT_MONEY, ignore_na=False)
    def _vendor_money(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return typed(data)


class QboCustomerMirror(_NameListRow):
    display_name: str = pa.Field(nullable=False, str_length={"min_value": 1})
    company_name: str = pa.Field(nullable=True)
    given_name: str = pa.Field(nullable=True)
    family_name: str = pa.Field(nullable=True)
    email: str = pa.Field(nullable=True)
    balance: pe.Decimal = pa.Field(nullable=True, dtype_kwargs=MONEY)
    is_taxable: bool = pa.Field(nullable=False)

    @pa.check("balance", error=EXACT_MONEY, ignore_na=False)
    def _customer_money(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return typed(data)


class QboAccountMirror(_NameListRow):
    name: str = pa.Field(nullable=False, str_length={"min_value": 1})
    fully_qualified_name: str = pa.Field(nullable=True)
    account_type: str = pa.Field(nullable=False)
    account_sub_type: str = pa.Field(nullable=True)
    classification: str = pa.Field(nullable=True)
    current_balance: pe.Decimal = pa.Field(nullable=True, dtype_kwargs=MONEY)
    is_sub_account: bool = pa.Field(nullable=False)

    @pa.check("current_balance", error=EXACT_MONEY, ignore_na=False)
    def _account_money(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return typed(data)


class _TransactionRow(_MirrorRow):
    txn_date: pl.Date = pa.Field(nullable=False)
    total_amt: pe.Decimal = pa.Field(nullable=True, ge=0, dtype_kwargs=MONEY)
    line_amount_total: pe.Decimal = pa.Field(nullable=True, dtype_kwargs=MONEY)
    is_voided: bool = pa.Field(nullable=False)
    private_note: str = pa.Field(nullable=True)

    @pa.check("total_amt", "line_amount_total", error=EXACT_MONEY, ignore_na=False)
    def _transaction_money(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return typed(data)


class _DocumentRow(_TransactionRow):
    doc_number: str = pa.Field(nullable=True)
    due_date: pl.Date = pa.Field(nullable=True)
    balance: pe.Decimal = pa.Field(nullable=True, ge=0, dtype_kwargs=MONEY)
    line_count: pl.Int32 = pa.Field(nullable=False, ge=0)

    @pa.check("balance", error=EXACT_MONEY, ignore_na=False)
    def _document_money(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return typed(data)


class QboBillMirror(_DocumentRow):
    vendor_id: str = pa.Field(nullable=False, str_matches=QBO_ID)
    vendor_name: str = pa.Field(nullable=True)
    ap_account_id: str = pa.Field(nullable=True)


class QboInvoiceMirror(_DocumentRow):
    customer_id: str = pa.Field(nullable=False, str_matches=QBO_ID)
    customer_name: str = pa.Field(nullable=True)
    ar_account_id: str = pa.Field(nullable=True)


class QboBillPaymentMirror(_TransactionRow):
    doc_number: str = pa.Field(nullable=True)
    vendor_id: str = pa.Field(nullable=False, str_matches=QBO_ID)
    vendor_name: str = pa.Field(nullable=True)
    pay_type: str = pa.Field(nullable=True)
    bank_account_id: str = pa.Field(nullable=True)
    linked_bill_ids: pl.List(pl.String) = pa.Field(nullable=True)


class QboPaymentMirror(_TransactionRow):
    customer_id: str = pa.Field(nullable=False, str_matches=QBO_ID)
    customer_name: str = pa.Field(nullable=True)
    deposit_account_id: str = pa.Field(nullable=True)
    unapplied_amt: pe.Decimal = pa.Field(nullable=True, ge=0, dtype_kwargs=MONEY)
    linked_invoice_ids: pl.List(pl.String) = pa.Field(nullable=True)

    @pa.check("unapplied_amt", error=EXACT_MONEY, ignore_na=False)
    def _payment_money(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return typed(data)


class QboDepositMirror(_TransactionRow):
    deposit_account_id: str = pa.Field(nullable=False)  # QBO requires where a deposit lands
    payout_id: str = pa.Field(nullable=True)  # the card payout a deposit's PrivateNote names (`po_...`)


class QboPurchaseMirror(_TransactionRow):
    doc_number: str = pa.Field(nullable=True)
    payment_type: str = pa.Field(nullable=False)  # Cash, Check or CreditCard: QBO requires one
    account_id: str = pa.Field(nullable=False)  # QBO requires the account paid from (the card's, for card spend)
    account_name: str = pa.Field(nullable=True)
    is_credit: bool = pa.Field(nullable=False)  # a refund to the card rather than a charge
    line_count: pl.Int32 = pa.Field(nullable=False, ge=0)
    expense_account_ids: pl.List(pl.String) = pa.Field(nullable=True)
    ramp_transaction_id: str = pa.Field(nullable=True)  # the card transaction a purchase's PrivateNote names


MIRROR_SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    "mirror.qbo_vendors": QboVendorMirror,
    "mirror.qbo_customers": QboCustomerMirror,
    "mirror.qbo_accounts": QboAccountMirror,
    "mirror.qbo_bills": QboBillMirror,
    "mirror.qbo_invoices": QboInvoiceMirror,
    "mirror.qbo_bill_payments": QboBillPaymentMirror,
    "mirror.qbo_payments": QboPaymentMirror,
    "mirror.qbo_deposits": QboDepositMirror,
    "mirror.qbo_purchases": QboPurchaseMirror,
}
