"""pandera (polars) contracts of the Stripe mirrors: what a row must hold to be published.

A row that breaks one stays in the log and goes to quarantine with the reason.
The SQL models type every field with try_cast, so a payload whose field changed
type shows up here as a null in a required column rather than failing the
whole refresh.

Money policy: Stripe sends every amount as a JSON integer in the currency's
minor units (cents for "usd"). The stg models keep it as BIGINT exactly as sent
and type anything else (a string, a fraction, an absent amount) as null instead
of rounding it; the `EXACT_MONEY` checks below quarantine the row. Zero is
valid. Objects that carry a direction in their type keep their amount positive
(a charge, refund, dispute or payout); the signed movement is the balance
transaction's, whose `net` must be `amount - fee` to the cent and whose sign must
follow its type (a charge adds to the balance, a refund or payout withdraws), or
the reconciliation against the bank and QBO would add where it should subtract.

Ids must carry the prefix of their object (a charge logged under a customer's
id is a mix-up, not a charge), and so must the ids of the objects a row links
to where the link is read by the reconciliation (charge -> balance transaction,
payout -> balance transaction, refund and dispute -> charge).
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl
from pandera.engines import polars_engine as pe

from ledger_pipeline.lib.validation import UTC_US, LoggedRow, holds, typed

CURRENCY = r"^[a-z]{3}$"  # ISO 4217, lower-case as Stripe writes it
CUSTOMER_ID = r"^cus_[A-Za-z0-9]+$"
CHARGE_ID = r"^(ch|py)_[A-Za-z0-9]+$"  # py_: a charge of a non-card payment method
REFUND_ID = r"^(re|pyr)_[A-Za-z0-9]+$"  # pyr_: the refund of a py_ charge
DISPUTE_ID = r"^(dp|du)_[A-Za-z0-9]+$"  # du_: a dispute of a py_ charge
PAYOUT_ID = r"^po_[A-Za-z0-9]+$"
BALANCE_TXN_ID = r"^txn_[A-Za-z0-9]+$"
PAYMENT_INTENT_ID = r"^pi_[A-Za-z0-9]+$"
OBJECT_ID = r"^[a-z]{2,5}_[A-Za-z0-9]+$"  # any Stripe object (a balance transaction's source can be of many kinds)
# What the Stripe sync logs a version from (rails/stripe/sync.py) or the sweep found gone.
SYNC_SOURCES = ["list", "event", "read", "sweep"]
# Money columns are declared nullable so that a missing or inexact amount is reported by this check, whose
# reason says what is wrong, rather than by `not_nullable`; the check still rejects every null.
EXACT_MONEY = "a JSON integer in the currency's minor units"
# Balance transaction types whose amount has a known sign (the other types, adjustments among them, go both ways).
ADDS_TO_BALANCE = ("charge", "payment")
WITHDRAWS_FROM_BALANCE = ("refund", "payment_refund", "payout")


class _MirrorRow(LoggedRow):
    """Columns every Stripe mirror carries (each subclass declares its `stripe_id` with its object's prefix)."""

    created: pe.DateTime = pa.Field(nullable=False, dtype_kwargs=UTC_US)
    sync_source: str = pa.Field(isin=SYNC_SOURCES)


class StripeCustomerMirror(_MirrorRow):
    stripe_id: str = pa.Field(nullable=False, str_matches=CUSTOMER_ID)
    # The mirror keeps live customers only: a published row flagged deleted contradicts its own log.
    deleted: bool = pa.Field(nullable=False, isin=[False])
    name: str = pa.Field(nullable=True)
    email: str = pa.Field(nullable=True)
    description: str = pa.Field(nullable=True)
    phone: str = pa.Field(nullable=True)
    balance: pl.Int64 = pa.Field(nullable=True)  # negative: a credit the customer holds
    currency: str = pa.Field(nullable=True, str_matches=CURRENCY)  # none until the customer is first charged
    delinquent: bool = pa.Field(nullable=True)
    livemode: bool = pa.Field(nullable=True)
    metadata: str = pa.Field(nullable=True)
    qbo_customer_id: str = pa.Field(nullable=True)

    @pa.check("balance", error=EXACT_MONEY, ignore_na=False)
    def _customer_money(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return typed(data)


class StripeChargeMirror(_MirrorRow):
    stripe_id: str = pa.Field(nullable=False, str_matches=CHARGE_ID)
    amount: pl.Int64 = pa.Field(nullable=True, ge=0)
    amount_captured: pl.Int64 = pa.Field(nullable=True, ge=0)
    amount_refunded: pl.Int64 = pa.Field(nullable=True, ge=0)
    currency: str = pa.Field(nullable=False, str_matches=CURRENCY)
    paid: bool = pa.Field(nullable=False)
    captured: bool = pa.Field(nullable=False)
    refunded: bool = pa.Field(nullable=False)
    disputed: bool = pa.Field(nullable=False)
    status: str = pa.Field(nullable=False, isin=["succeeded", "pending", "failed"])
    customer_id: str = pa.Field(nullable=True, str_matches=CUSTOMER_ID)
    balance_transaction_id: str = pa.Field(nullable=True, str_matches=BALANCE_TXN_ID)  # none until it moves money
    payment_intent_id: str = pa.Field(nullable=True, str_matches=PAYMENT_INTENT_ID)
    payment_method_type: str = pa.Field(nullable=True)
    description: str = pa.Field(nullable=True)
    failure_code: str = pa.Field(nullable=True)
    failure_message: str = pa.Field(nullable=True)
    livemode: bool = pa.Field(nullable=True)
    metadata: str = pa.Field(nullable=True)
    qbo_payment_id: str = pa.Field(nullable=True)

    @pa.check("amount", "amount_captured", "amount_refunded", error=EXACT_MONEY, ignore_na=False)
    def _charge_money(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return typed(data)

    @pa.dataframe_check(error="amount_refunded <= amount_captured <= amount")
    def _captured_within_amount(cls, data: pa.PolarsData) -> pl.LazyFrame:
        refunded, captured, amount = pl.col("amount_refunded"), pl.col("amount_captured"), pl.col("amount")
        return data.lazyframe.select(holds((refunded <= captured) & (captured <= amount)))


class StripeRefundMirror(_MirrorRow):
    stripe_id: str = pa.Field(nullable=False, str_matches=REFUND_ID)
    amount: pl.Int64 = pa.Field(nullable=True, ge=0)
    currency: str = pa.Field(nullable=False, str_matches=CURRENCY)
    charge_id: str = pa.Field(nullable=True, str_matches=CHARGE_ID)  # Stripe leaves it null for some methods
    payment_intent_id: str = pa.Field(nullable=True, str_matches=PAYMENT_INTENT_ID)
    balance_transaction_id: str = pa.Field(nullable=True, str_matches=BALANCE_TXN_ID)
    reason: str = pa.Field(nullable=True)
    status: str = pa.Field(nullable=False, isin=["pending", "requires_action", "succeeded", "failed", "canceled"])
    failure_reason: str = pa.Field(nullable=True)
    metadata: str = pa.Field(nullable=True)

    @pa.check("amount", error=EXACT_MONEY, ignore_na=False)
    def _refund_money(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return typed(data)


class StripeDisputeMirror(_MirrorRow):
    stripe_id: str = pa.Field(nullable=False, str_matches=DISPUTE_ID)
    amount: pl.Int64 = pa.Field(nullable=True, ge=0)
    currency: str = pa.Field(nullable=False, str_matches=CURRENCY)
    charge_id: str = pa.Field(nullable=False, str_matches=CHARGE_ID)
    payment_intent_id: str = pa.Field(nullable=True, str_matches=PAYMENT_INTENT_ID)
    balance_transaction_ids: pl.List(pl.String) = pa.Field(nullable=True)
    reason: str = pa.Field(nullable=False)
    status: str = pa.Field(
        nullable=False,
        isin=["warning_needs_response", "warning_under_review", "warning_closed", "needs_response", "under_review",
              "won", "lost", "prevented"],
    )  # fmt: skip
    is_charge_refundable: bool = pa.Field(nullable=True)
    evidence_due_by: pe.DateTime = pa.Field(nullable=True, dtype_kwargs=UTC_US)
    metadata: str = pa.Field(nullable=True)

    @pa.check("amount", error=EXACT_MONEY, ignore_na=False)
    def _dispute_money(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return typed(data)

    @pa.check("balance_transaction_ids", error="every id a balance transaction's (txn_)")
    def _dispute_transactions(cls, data: pa.PolarsData) -> pl.LazyFrame:
        ids = pl.col(data.key)
        return data.lazyframe.select(ids.list.eval(pl.element().str.contains(BALANCE_TXN_ID).fill_null(False)).list.all())


class StripePayoutMirror(_MirrorRow):
    stripe_id: str = pa.Field(nullable=False, str_matches=PAYOUT_ID)
    amount: pl.Int64 = pa.Field(nullable=True, ge=0)
    currency: str = pa.Field(nullable=False, str_matches=CURRENCY)
    arrival_date: pl.Date = pa.Field(nullable=False)
    status: str = pa.Field(nullable=False, isin=["paid", "pending", "in_transit", "canceled", "failed"])
    automatic: bool = pa.Field(nullable=False)
    method: str = pa.Field(nullable=False, isin=["standard", "instant"])
    type: str = pa.Field(nullable=False, isin=["bank_account", "card"])
    source_type: str = pa.Field(nullable=True)
    balance_transaction_id: str = pa.Field(nullable=True, str_matches=BALANCE_TXN_ID)
    destination_id: str = pa.Field(nullable=True)
    reconciliation_status: str = pa.Field(nullable=True)
    description: str = pa.Field(nullable=True)
    failure_code: str = pa.Field(nullable=True)
    metadata: str = pa.Field(nullable=True)

    @pa.check("amount", error=EXACT_MONEY, ignore_na=False)
    def _payout_money(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return typed(data)


class StripeBalanceTransactionMirror(_MirrorRow):
    stripe_id: str = pa.Field(nullable=False, str_matches=BALANCE_TXN_ID)
    amount: pl.Int64 = pa.Field(nullable=True)
    fee: pl.Int64 = pa.Field(nullable=True, ge=0)
    net: pl.Int64 = pa.Field(nullable=True)
    currency: str = pa.Field(nullable=False, str_matches=CURRENCY)
    fee_details: str = pa.Field(nullable=True)
    fee_details_total: pl.Int64 = pa.Field(nullable=True)
    type: str = pa.Field(nullable=False, str_length={"min_value": 1})
    reporting_category: str = pa.Field(nullable=False, str_length={"min_value": 1})
    status: str = pa.Field(nullable=False, isin=["available", "pending"])
    source_id: str = pa.Field(nullable=True, str_matches=OBJECT_ID)
    payout_id: str = pa.Field(nullable=True, str_matches=PAYOUT_ID)
    description: str = pa.Field(nullable=True)
    available_on: pe.DateTime = pa.Field(nullable=False, dtype_kwargs=UTC_US)

    @pa.check("amount", "fee", "net", error=EXACT_MONEY, ignore_na=False)
    def _balance_money(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return typed(data)

    @pa.check("fee_details_total", error="every fee_details amount a JSON integer", ignore_na=False)
    def _fee_lines_typed(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return typed(data)

    @pa.dataframe_check(error="net = amount - fee")
    def _net_is_amount_less_fee(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(holds(pl.col("net") == pl.col("amount") - pl.col("fee")))

    @pa.dataframe_check(error="fee = the sum of fee_details")
    def _fee_is_its_details(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(holds(pl.col("fee") == pl.col("fee_details_total")))

    @pa.dataframe_check(error="amount's sign follows type (charge, payment >= 0; refund, payment_refund, payout <= 0)")
    def _sign_follows_type(cls, data: pa.PolarsData) -> pl.LazyFrame:
        kind, amount = pl.col("type"), pl.col("amount")
        wrong = (kind.is_in(ADDS_TO_BALANCE) & (amount < 0)) | (kind.is_in(WITHDRAWS_FROM_BALANCE) & (amount > 0))
        return data.lazyframe.select(holds(~wrong))


COMPOSITION_PART = pl.Struct({
    "balance_transaction_id": pl.String, "type": pl.String, "source_id": pl.String,
    "amount": pl.Int64, "fee": pl.Int64, "net": pl.Int64,
})  # fmt: skip


class StripePayoutCompositionMirror(_MirrorRow):
    """What a paid payout settled: recon.links reads each charge's payout here, so the whole must add up."""

    stripe_id: str = pa.Field(nullable=False, str_matches=PAYOUT_ID)
    currency: str = pa.Field(nullable=False, str_matches=CURRENCY)
    balance_transactions: pl.List(COMPOSITION_PART) = pa.Field(nullable=False)
    settled_net: pl.Int64 = pa.Field(nullable=True)
    payout_net: pl.Int64 = pa.Field(nullable=True, le=0)

    @pa.check("settled_net", error="every settled net a JSON integer", ignore_na=False)
    def _settled_typed(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return typed(data)

    @pa.check("payout_net", error="the payout's own balance transaction, once, its net a JSON integer", ignore_na=False)
    def _own_transaction(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return typed(data)

    @pa.check("balance_transactions", error="every id a balance transaction's (txn_), every source an object's")
    def _parts_named(cls, data: pa.PolarsData) -> pl.LazyFrame:
        part = pl.element().struct
        txn = part.field("balance_transaction_id").str.contains(BALANCE_TXN_ID).fill_null(False)
        source = part.field("source_id").str.contains(OBJECT_ID).fill_null(True)  # some fees have no source object
        return data.lazyframe.select(pl.col(data.key).list.eval(txn & source).list.all())

    @pa.dataframe_check(error="settled_net = -payout_net (the payout pays out what it settled)")
    def _settles_its_amount(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(holds(pl.col("settled_net") == -pl.col("payout_net")))


MIRROR_SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    "mirror.stripe_customers": StripeCustomerMirror,
    "mirror.stripe_charges": StripeChargeMirror,
    "mirror.stripe_refunds": StripeRefundMirror,
    "mirror.stripe_disputes": StripeDisputeMirror,
    "mirror.stripe_payouts": StripePayoutMirror,
    "mirror.stripe_balance_transactions": StripeBalanceTransactionMirror,
    "mirror.stripe_payout_compositions": StripePayoutCompositionMirror,
}
