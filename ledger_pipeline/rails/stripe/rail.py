"""Stripe as the registry sees it: a Connect platform reading each tenant's connected account."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from ledger_pipeline.lib import ids
from ledger_pipeline.lib.rails import Rail, check_credentials
from ledger_pipeline.rails.stripe.entities import ENTITIES

NAME = "stripe"
ACCOUNT_ID = re.compile(r"^acct_[A-Za-z0-9]{1,64}$")
OBJECT_ID = re.compile(r"^[a-z]{2,5}_[A-Za-z0-9]{1,64}$")  # ch_..., cus_..., po_..., txn_..., re_..., dp_...


def account_id(value: object) -> str:
    """A Stripe connected account id: acct_ then letters and digits."""
    if not isinstance(value, str) or not ACCOUNT_ID.fullmatch(value):
        raise ids.InvalidInput(f"invalid Stripe account id {ids.shown(value)}: expected acct_ then letters or digits")
    return value


def object_id(value: object) -> str:
    """A Stripe object id: a short lower-case prefix, '_', then letters and digits (ch_..., cus_..., po_...)."""
    if not isinstance(value, str) or not OBJECT_ID.fullmatch(value):
        raise ids.InvalidInput(
            f"invalid Stripe id {ids.shown(value)}: expected a prefix such as ch_, cus_ or po_ then letters or digits"
        )
    return value


@dataclass(frozen=True)
class StripeConnection:
    """How a tenant reaches Stripe: its connected account, read with the platform's key.

    `credentials="sandbox"`: the built-in emulator and its documented demo platform key.
    `credentials="env"`: the live API; the platform's secret key comes from STRIPE_API_KEY (one key for every
    tenant: the account is chosen by the Stripe-Account header), so a tenant has no secret of its own.
    """

    rail: ClassVar[str] = NAME
    account_id: str
    credentials: str = "sandbox"

    def __post_init__(self) -> None:
        account_id(self.account_id)
        check_credentials("Stripe", self.credentials)

    @classmethod
    def from_cli(cls, account: str, credentials: str, secret_env: str | None) -> StripeConnection:
        if secret_env is not None:
            raise ids.InvalidInput(
                "--refresh-token-env is QBO's: a Stripe tenant is read with the platform key (STRIPE_API_KEY)"
            )
        return cls(account_id(account), credentials)


# Stripe's money and times are JSON integers (minor units, epoch seconds): anything else (a string, a fraction, a
# number beyond BIGINT) is typed null, never rounded, and the mirror contract says why.
MACROS = (
    "create or replace macro json_int(value) as "
    "case when json_type(value) in ('BIGINT', 'UBIGINT') then try_cast(value ->> '$' as bigint) end",
    "create or replace macro json_epoch(value) as try(to_timestamp(json_int(value)))",
)

RAIL = Rail(
    name=NAME,
    title="Stripe",
    entities=ENTITIES,
    connection=StripeConnection,
    account_option="--stripe-account",
    account_noun="Stripe account",
    object_id=object_id,
    module="ledger_pipeline.rails.stripe",
    macros=MACROS,
    version_label="event",
)
