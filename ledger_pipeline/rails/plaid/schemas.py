"""pandera (polars) contracts of the Plaid mirrors: what a row must hold to be published.

A row that breaks one stays in the log and goes to quarantine with the reason. The SQL models type every field
with try_cast, so a payload whose field changed type shows up here as a null in a required column rather than
failing the whole refresh.

Money policy: Plaid sends amounts and balances as JSON numbers in major units. The stg models turn them into
integer minor units (cents) only when the number has at most two decimals; anything else (a string, a third
decimal, an absent amount) is typed null, never rounded, and `EXACT_MONEY` quarantines the row. A transaction's
amount keeps Plaid's sign: positive is money out of the account. Balances may be null where the bank does not give
them (Plaid documents `available` as nullable), but a transaction's amount may not.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl
from pandera.engines import polars_engine as pe

from ledger_pipeline.lib.validation import UTC_US, LoggedRow, typed

CURRENCY = r"^[A-Z]{3}$"  # ISO 4217, upper-case as Plaid writes it
PLAID_ID = r"^[A-Za-z0-9_-]+$"
SYNC_SOURCES = ["get", "sync", "sweep"]  # what the Plaid sync logs a version from (rails/plaid/sync.py)
ACCOUNT_TYPES = ["depository", "credit", "loan", "investment", "other"]  # Plaid's AccountType enum
PAYMENT_CHANNELS = ["online", "in store", "other"]  # Plaid's enum
EXACT_MONEY = "a JSON number with at most two decimals, in the currency's major units"


class _MirrorRow(LoggedRow):
    """Columns every Plaid mirror carries beyond every rail's (LoggedRow)."""

    sync_source: str = pa.Field(isin=SYNC_SOURCES)


class PlaidItemMirror(_MirrorRow):
    item_id: str = pa.Field(nullable=False, str_matches=PLAID_ID)
    institution_id: str = pa.Field(nullable=True)
    institution_name: str = pa.Field(nullable=True)
    error_type: str = pa.Field(nullable=True)
    error_code: str = pa.Field(nullable=True)
    error_message: str = pa.Field(nullable=True)
    available_products: str = pa.Field(nullable=True)
    billed_products: str = pa.Field(nullable=True)
    consent_expiration_time: pe.DateTime = pa.Field(nullable=True, dtype_kwargs=UTC_US)
    update_type: str = pa.Field(nullable=True, isin=["background", "user_present_required"])
    webhook: str = pa.Field(nullable=True)


class PlaidAccountMirror(_MirrorRow):
    account_id: str = pa.Field(nullable=False, str_matches=PLAID_ID)
    item_id: str = pa.Field(nullable=False, str_matches=PLAID_ID)
    name: str = pa.Field(nullable=False)
    official_name: str = pa.Field(nullable=True)
    mask: str = pa.Field(nullable=True)
    type: str = pa.Field(nullable=False, isin=ACCOUNT_TYPES)
    subtype: str = pa.Field(nullable=True)
    current_cents: pl.Int64 = pa.Field(nullable=True)
    available_cents: pl.Int64 = pa.Field(nullable=True)
    limit_cents: pl.Int64 = pa.Field(nullable=True, ge=0)
    iso_currency_code: str = pa.Field(nullable=True, str_matches=CURRENCY)
    unofficial_currency_code: str = pa.Field(nullable=True)

    @pa.dataframe_check(error="a currency: iso_currency_code or unofficial_currency_code")
    def _has_currency(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            pl.col("iso_currency_code").is_not_null() | pl.col("unofficial_currency_code").is_not_null()
        )


class PlaidTransactionMirror(_MirrorRow):
    transaction_id: str = pa.Field(nullable=False, str_matches=PLAID_ID)
    account_id: str = pa.Field(nullable=False, str_matches=PLAID_ID)
    amount_cents: pl.Int64 = pa.Field(nullable=True)
    iso_currency_code: str = pa.Field(nullable=True, str_matches=CURRENCY)
    unofficial_currency_code: str = pa.Field(nullable=True)
    date: pl.Date = pa.Field(nullable=False)
    authorized_date: pl.Date = pa.Field(nullable=True)
    datetime: pe.DateTime = pa.Field(nullable=True, dtype_kwargs=UTC_US)
    authorized_datetime: pe.DateTime = pa.Field(nullable=True, dtype_kwargs=UTC_US)
    pending: bool = pa.Field(nullable=False)
    pending_transaction_id: str = pa.Field(nullable=True, str_matches=PLAID_ID)
    name: str = pa.Field(nullable=True)
    merchant_name: str = pa.Field(nullable=True)
    original_description: str = pa.Field(nullable=True)
    payment_channel: str = pa.Field(nullable=False, isin=PAYMENT_CHANNELS)
    category_primary: str = pa.Field(nullable=True)
    category_detailed: str = pa.Field(nullable=True)
    counterparties: str = pa.Field(nullable=True)
    check_number: str = pa.Field(nullable=True)
    transaction_code: str = pa.Field(nullable=True)
    website: str = pa.Field(nullable=True)
    merchant_entity_id: str = pa.Field(nullable=True)

    @pa.check("amount_cents", error=EXACT_MONEY, ignore_na=False)
    def _transaction_money(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return typed(data)

    @pa.dataframe_check(error="a currency: iso_currency_code or unofficial_currency_code")
    def _has_currency(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            pl.col("iso_currency_code").is_not_null() | pl.col("unofficial_currency_code").is_not_null()
        )

    @pa.dataframe_check(error="a pending transaction replaces no other (pending_transaction_id is a posted one's)")
    def _pending_replaces_nothing(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(~(pl.col("pending") & pl.col("pending_transaction_id").is_not_null()).fill_null(False))


MIRROR_SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    "mirror.plaid_items": PlaidItemMirror,
    "mirror.plaid_accounts": PlaidAccountMirror,
    "mirror.plaid_transactions": PlaidTransactionMirror,
}
