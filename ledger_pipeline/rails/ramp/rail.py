"""Ramp as the registry sees it: a tenant's business, reached through the app's OAuth grant for that business.

The app (one client id and secret) serves many businesses; each business has its own rotating refresh token,
kept in the token store as QBO's are (lib/oauth.py). Sandbox tenants use the sandbox's documented app keys and
tokens; live tenants read RAMP_CLIENT_ID / RAMP_CLIENT_SECRET and the business's first refresh token from the
variable `refresh_token_env` names. The registry holds variable names only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from ledger_pipeline.lib import ids
from ledger_pipeline.lib.rails import Rail, check_credentials, check_refresh_token_env
from ledger_pipeline.rails.ramp.entities import ENTITIES

NAME = "ramp"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def object_id(value: object) -> str:
    """A Ramp id (business, transaction, bill, ...): a lower-case UUID, as Ramp makes them."""
    if not isinstance(value, str) or not UUID.fullmatch(value):
        raise ids.InvalidInput(f"invalid Ramp id {ids.shown(value)}: expected a UUID")
    return value


@dataclass(frozen=True)
class RampConnection:
    """How a tenant reaches Ramp: its business, and where credentials come from.

    `credentials="sandbox"`: the built-in emulator with its documented app keys and the business's demo token.
    `credentials="env"`: the live API; RAMP_CLIENT_ID / RAMP_CLIENT_SECRET (the app's) and this business's first
    refresh token from the variable named by `refresh_token_env` (later ones live in the token store).
    """

    rail: ClassVar[str] = NAME
    business_id: str
    credentials: str = "sandbox"
    refresh_token_env: str | None = None

    def __post_init__(self) -> None:
        object_id(self.business_id)
        check_credentials("Ramp", self.credentials)
        check_refresh_token_env(self.credentials, self.refresh_token_env)

    @property
    def account_id(self) -> str:
        return self.business_id

    @classmethod
    def from_cli(cls, account: str, credentials: str, secret_env: str | None) -> RampConnection:
        return cls(object_id(account), credentials, secret_env)


# Ramp's amounts are decimal major units (`amount` of a transaction) or integer minor units ({amount, currency_code}
# of bills, statements and original_transaction_amount). `json_minor` types the latter: an integer, else null.
MACROS = (
    "create or replace macro json_minor(value) as "
    "case when json_type(value) in ('BIGINT', 'UBIGINT') then try_cast(value ->> '$' as bigint) end",
)

RAIL = Rail(
    name=NAME,
    title="Ramp",
    entities=ENTITIES,
    connection=RampConnection,
    account_option="--ramp-business",
    account_noun="Ramp business",
    object_id=object_id,
    module="ledger_pipeline.rails.ramp",
    macros=MACROS,
    version_label="version",
)
