"""pandera (polars) contracts of the Ramp mirrors: what a row must hold to be published.

A row that breaks one stays in the log and goes to quarantine with the reason. Money policy: Ramp sends a card
transaction's and a reimbursement's `amount` in decimal major units, and bills, statements and
`original_transaction_amount` as {amount, currency_code} in integer minor units. The stg models type both as
integer minor units; a third decimal, a string or an absent amount is typed null, never rounded, and the money
checks below quarantine the row.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl
from pandera.engines import polars_engine as pe

from ledger_pipeline.lib.validation import UTC_US, LoggedRow, holds, typed

CURRENCY = r"^[A-Z]{3}$"
RAMP_ID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
SYNC_SOURCES = ["list", "read", "sweep"]  # what the Ramp sync logs a version from (rails/ramp/sync.py)
EXACT_MONEY = "an amount Ramp sent exactly: major units with at most two decimals, or integer minor units"


class _MirrorRow(LoggedRow):
    """Columns every Ramp mirror carries beyond every rail's (LoggedRow)."""

    sync_source: str = pa.Field(isin=SYNC_SOURCES)


class RampTransactionMirror(_MirrorRow):
    transaction_id: str = pa.Field(nullable=False, str_matches=RAMP_ID)
    state: str = pa.Field(nullable=False)
    amount_cents: pl.Int64 = pa.Field(nullable=True)
    currency_code: str = pa.Field(nullable=False, str_matches=CURRENCY)
    original_amount_cents: pl.Int64 = pa.Field(nullable=True)
    original_currency_code: str = pa.Field(nullable=True, str_matches=CURRENCY)
    user_transaction_time: pe.DateTime = pa.Field(nullable=False, dtype_kwargs=UTC_US)
    settlement_date: pe.DateTime = pa.Field(nullable=True, dtype_kwargs=UTC_US)
    merchant_id: str = pa.Field(nullable=True)
    merchant_name: str = pa.Field(nullable=True)
    merchant_descriptor: str = pa.Field(nullable=True)
    merchant_category_code: str = pa.Field(nullable=True)
    sk_category_id: pl.Int64 = pa.Field(nullable=True)
    sk_category_name: str = pa.Field(nullable=True)
    card_id: str = pa.Field(nullable=True, str_matches=RAMP_ID)
    user_id: str = pa.Field(nullable=True, str_matches=RAMP_ID)
    memo: str = pa.Field(nullable=True)
    statement_id: str = pa.Field(nullable=True, str_matches=RAMP_ID)
    decline_reason: str = pa.Field(nullable=True)

    @pa.check("amount_cents", error=EXACT_MONEY, ignore_na=False)
    def _money(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return typed(data)

    @pa.dataframe_check(error="a cleared transaction has a settlement_date")
    def _cleared_settled(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(holds((pl.col("state") != "CLEARED") | pl.col("settlement_date").is_not_null()))


class RampBillMirror(_MirrorRow):
    bill_id: str = pa.Field(nullable=False, str_matches=RAMP_ID)
    status: str = pa.Field(nullable=False)
    approval_status: str = pa.Field(nullable=True)
    amount_cents: pl.Int64 = pa.Field(nullable=True)
    currency_code: str = pa.Field(nullable=False, str_matches=CURRENCY)
    invoice_number: str = pa.Field(nullable=True)
    issued_at: pe.DateTime = pa.Field(nullable=True, dtype_kwargs=UTC_US)
    due_at: pe.DateTime = pa.Field(nullable=True, dtype_kwargs=UTC_US)
    created_at: pe.DateTime = pa.Field(nullable=True, dtype_kwargs=UTC_US)
    paid_at: pe.DateTime = pa.Field(nullable=True, dtype_kwargs=UTC_US)
    memo: str = pa.Field(nullable=True)
    remote_id: str = pa.Field(nullable=True)
    vendor_id: str = pa.Field(nullable=True, str_matches=RAMP_ID)
    vendor_remote_id: str = pa.Field(nullable=True)
    vendor_name: str = pa.Field(nullable=True)
    payment_amount_cents: pl.Int64 = pa.Field(nullable=True)
    payment_date: pe.DateTime = pa.Field(nullable=True, dtype_kwargs=UTC_US)
    payment_method: str = pa.Field(nullable=True)
    archived_at: pe.DateTime = pa.Field(nullable=True, dtype_kwargs=UTC_US)

    @pa.check("amount_cents", error=EXACT_MONEY, ignore_na=False)
    def _money(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return typed(data)


class RampStatementMirror(_MirrorRow):
    statement_id: str = pa.Field(nullable=False, str_matches=RAMP_ID)
    start_date: pe.DateTime = pa.Field(nullable=False, dtype_kwargs=UTC_US)
    end_date: pe.DateTime = pa.Field(nullable=False, dtype_kwargs=UTC_US)
    opening_balance_cents: pl.Int64 = pa.Field(nullable=True)
    ending_balance_cents: pl.Int64 = pa.Field(nullable=True)
    charges_cents: pl.Int64 = pa.Field(nullable=True)
    payments_cents: pl.Int64 = pa.Field(nullable=True)
    credits_cents: pl.Int64 = pa.Field(nullable=True)
    currency_code: str = pa.Field(nullable=True, str_matches=CURRENCY)
    statement_lines: str = pa.Field(nullable=True)

    @pa.check("charges_cents", error=EXACT_MONEY, ignore_na=False)
    def _money(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return typed(data)


class RampReimbursementMirror(_MirrorRow):
    reimbursement_id: str = pa.Field(nullable=False, str_matches=RAMP_ID)
    state: str = pa.Field(nullable=False)
    amount_cents: pl.Int64 = pa.Field(nullable=True)
    currency: str = pa.Field(nullable=True, str_matches=CURRENCY)
    user_id: str = pa.Field(nullable=True, str_matches=RAMP_ID)
    user_full_name: str = pa.Field(nullable=True)
    merchant: str = pa.Field(nullable=True)
    created_at: pe.DateTime = pa.Field(nullable=True, dtype_kwargs=UTC_US)
    updated_at: pe.DateTime = pa.Field(nullable=False, dtype_kwargs=UTC_US)
    transaction_date: pl.Date = pa.Field(nullable=True)

    @pa.check("amount_cents", error=EXACT_MONEY, ignore_na=False)
    def _money(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return typed(data)


class RampUserMirror(_MirrorRow):
    user_id: str = pa.Field(nullable=False, str_matches=RAMP_ID)
    first_name: str = pa.Field(nullable=True)
    last_name: str = pa.Field(nullable=True)
    email: str = pa.Field(nullable=True)
    role: str = pa.Field(nullable=True)
    status: str = pa.Field(nullable=True)
    department_id: str = pa.Field(nullable=True)
    location_id: str = pa.Field(nullable=True)
    manager_id: str = pa.Field(nullable=True)
    business_id: str = pa.Field(nullable=True)


class RampCardMirror(_MirrorRow):
    card_id: str = pa.Field(nullable=False, str_matches=RAMP_ID)
    display_name: str = pa.Field(nullable=True)
    last_four: str = pa.Field(nullable=True, str_matches=r"^[0-9]{4}$")
    cardholder_id: str = pa.Field(nullable=True, str_matches=RAMP_ID)
    cardholder_name: str = pa.Field(nullable=True)
    is_physical: bool = pa.Field(nullable=True)
    state: str = pa.Field(nullable=False)
    limit_cents: pl.Int64 = pa.Field(nullable=True, ge=0)
    limit_interval: str = pa.Field(nullable=True)


class RampVendorMirror(_MirrorRow):
    vendor_id: str = pa.Field(nullable=False, str_matches=RAMP_ID)
    name: str = pa.Field(nullable=True)
    remote_id: str = pa.Field(nullable=True)
    is_active: bool = pa.Field(nullable=True)
    created_at: pe.DateTime = pa.Field(nullable=True, dtype_kwargs=UTC_US)


MIRROR_SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    "mirror.ramp_transactions": RampTransactionMirror,
    "mirror.ramp_bills": RampBillMirror,
    "mirror.ramp_statements": RampStatementMirror,
    "mirror.ramp_reimbursements": RampReimbursementMirror,
    "mirror.ramp_users": RampUserMirror,
    "mirror.ramp_cards": RampCardMirror,
    "mirror.ramp_vendors": RampVendorMirror,
}
