"""QuickBooks Online as the registry sees it: its entities, a tenant's connection, its id rules and SQL macros."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from ledger_pipeline.lib import ids
from ledger_pipeline.lib.rails import Rail, check_credentials, check_refresh_token_env
from ledger_pipeline.rails.qbo.entities import ENTITIES

NAME = "qbo"
REALM_ID = re.compile(r"^[0-9]{1,20}$")
OBJECT_ID = re.compile(r"^[0-9]{1,20}$")


def realm_id(value: object) -> str:
    """A QBO realm (company) id: 1-20 digits."""
    if not isinstance(value, str) or not REALM_ID.fullmatch(value):
        raise ids.InvalidInput(f"invalid QBO realm id {ids.shown(value)}: expected 1-20 digits")
    return value


def object_id(value: object) -> str:
    """A QBO object Id: 1-20 digits."""
    if not isinstance(value, str) or not OBJECT_ID.fullmatch(value):
        raise ids.InvalidInput(f"invalid QBO id {ids.shown(value)}: expected 1-20 digits")
    return value


@dataclass(frozen=True)
class QboConnection:
    """How a tenant reaches QuickBooks Online.

    `credentials="sandbox"`: the built-in emulator with its documented demo keys.
    `credentials="env"`: the live API; the app's client id and secret come from
    QBO_CLIENT_ID / QBO_CLIENT_SECRET and this company's first refresh token
    from the variable named by `refresh_token_env`.
    """

    rail: ClassVar[str] = NAME
    realm_id: str
    credentials: str = "sandbox"
    refresh_token_env: str | None = None

    def __post_init__(self) -> None:
        realm_id(self.realm_id)
        check_credentials("QBO", self.credentials)
        check_refresh_token_env(self.credentials, self.refresh_token_env)

    @property
    def account_id(self) -> str:
        return self.realm_id

    @classmethod
    def from_cli(cls, account: str, credentials: str, secret_env: str | None) -> QboConnection:
        return cls(realm_id(account), credentials, secret_env)


# Document lines: each line's Amount as money, subtotal lines left out (QBO repeats the sum there); the ids of
# the transactions the lines link to (a payment's invoices, a bill payment's bills), lines without one skipped.
LINE_MACROS = (
    "create or replace macro json_line_amounts(lines) as "
    "[json_money(line.Amount) for line in coalesce(lines, []) "
    "if coalesce(line.DetailType ->> '$', '') <> 'SubTotalLineDetail']",
    "create or replace macro json_linked_txn_ids(lines) as "
    "flatten([[linked ->> '$.TxnId' for linked in coalesce(line.LinkedTxn, []) if json_exists(linked, '$.TxnId')] "
    "for line in coalesce(lines, [])])",
)

RAIL = Rail(
    name=NAME,
    title="QuickBooks Online",
    entities=ENTITIES,
    connection=QboConnection,
    account_option="--qbo-realm",
    account_noun="QBO realm",
    object_id=object_id,
    module="ledger_pipeline.rails.qbo",
    macros=LINE_MACROS,
    version_label="SyncToken",
)
