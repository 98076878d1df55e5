"""Plaid as the registry sees it: a tenant's bank logins (items), each read with its own access token.

A tenant connects one or more items (one per bank). Access tokens are secrets: the sandbox's come from the
sandbox, live ones from the environment variable each item names; the registry holds the variable's name only.
A sync that meets ITEM_LOGIN_REQUIRED records when, on the item (`login_required_since`), until a sync after the
re-login reads it again: `tenants list` shows it and the item's check fails, naming it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from ledger_pipeline.lib import ids
from ledger_pipeline.lib.rails import Rail, check_credentials
from ledger_pipeline.rails.plaid.entities import ENTITIES

NAME = "plaid"
PLAID_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")  # item, account and transaction ids: opaque, letters and digits
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def object_id(value: object) -> str:
    """A Plaid id (item, account, transaction): letters and digits, as Plaid makes them."""
    if not isinstance(value, str) or not PLAID_ID.fullmatch(value):
        raise ids.InvalidInput(f"invalid Plaid id {ids.shown(value)}: expected letters and digits")
    return value


@dataclass(frozen=True)
class PlaidItemLink:
    """One item (a login at one bank) of a tenant: where its access token comes from, and whether it needs a
    person to log in again (ISO time of the first sync that met ITEM_LOGIN_REQUIRED; None when it reads fine)."""

    item_id: str
    access_token_env: str | None = None  # credentials "env": the variable holding the item's access token
    login_required_since: str | None = None

    def __post_init__(self) -> None:
        object_id(self.item_id)
        if self.access_token_env is not None and not ENV_NAME.fullmatch(str(self.access_token_env)):
            raise ids.InvalidInput(f"Plaid item {self.item_id}: access_token_env {ids.shown(self.access_token_env)} "
                                   "is not an environment variable name")  # fmt: skip
        if self.login_required_since is not None and not isinstance(self.login_required_since, str):
            raise ids.InvalidInput(f"Plaid item {self.item_id}: login_required_since must be an ISO time or null")


@dataclass(frozen=True)
class PlaidConnection:
    """How a tenant reaches Plaid: its items, and where credentials come from.

    `credentials="sandbox"`: the built-in emulator, its documented client id, secret and access tokens.
    `credentials="env"`: the live API; PLAID_CLIENT_ID and PLAID_SECRET (the platform's) and, per item, the
    variable its `access_token_env` names.
    """

    rail: ClassVar[str] = NAME
    items: tuple[PlaidItemLink, ...]
    credentials: str = "sandbox"

    def __post_init__(self) -> None:
        items = self.items
        if isinstance(items, (list, tuple)):
            items = tuple(_item_link(entry) for entry in items)
        if not isinstance(items, tuple) or not items:
            raise ids.InvalidInput("a Plaid connection names at least one item")
        if len({i.item_id for i in items}) != len(items):
            raise ids.InvalidInput(f"a Plaid connection names an item twice: {[i.item_id for i in items]}")
        object.__setattr__(self, "items", items)
        check_credentials("Plaid", self.credentials)
        for item in items:
            if (item.access_token_env is None) != (self.credentials == "sandbox"):
                raise ids.InvalidInput(
                    f"Plaid item {item.item_id}: access_token_env names the variable holding a live access token; "
                    "it is required with credentials env and refused with sandbox credentials"
                )

    @property
    def account_id(self) -> str:
        """The first item the tenant connected: the tenant's log is bound to it (lib/bindings.py)."""
        return self.items[0].item_id

    @property
    def account_ids(self) -> tuple[str, ...]:
        return tuple(i.item_id for i in self.items)

    def item(self, item_id: str) -> PlaidItemLink:
        for item in self.items:
            if item.item_id == item_id:
                return item
        raise ids.InvalidInput(f"Plaid item {ids.shown(item_id)} is not one of this tenant's: {self.account_ids}")

    def describe(self) -> str:
        """The items as `tenants list` shows them, each that needs a new login saying since when."""
        return "items " + ", ".join(
            i.item_id + (f" (NEEDS LOGIN since {i.login_required_since})" if i.login_required_since else "")
            for i in self.items
        )

    def with_states(self, states: dict[str, str | None]) -> PlaidConnection:
        """This connection with the given items' `login_required_since` set (a time) or cleared (None)."""
        items = tuple(
            replace(i, login_required_since=states[i.item_id]) if i.item_id in states else i for i in self.items
        )
        return replace(self, items=items)

    @classmethod
    def from_cli(cls, account: str, credentials: str, secret_env: str | None) -> PlaidConnection:
        """`--plaid-items ITEM[,ITEM...]`; with credentials env, `--access-token-env VAR[,VAR...]`, one per item."""
        item_ids = [part.strip() for part in str(account).split(",")]
        envs: list[str | None] = [None] * len(item_ids)
        if secret_env is not None:
            envs = [part.strip() for part in secret_env.split(",")]
            if len(envs) != len(item_ids):
                raise ids.InvalidInput(
                    f"--access-token-env names {len(envs)} variables for {len(item_ids)} Plaid items: one per item"
                )
        return cls(tuple(PlaidItemLink(object_id(i), env) for i, env in zip(item_ids, envs)), credentials)


def _item_link(entry: Any) -> PlaidItemLink:
    if isinstance(entry, PlaidItemLink):
        return entry
    if not isinstance(entry, dict):
        raise ids.InvalidInput(f"a Plaid item entry is an object {{item_id, ...}}, got {ids.shown(entry)}")
    known = {"item_id", "access_token_env", "login_required_since"}
    if unknown := set(entry) - known:
        why = " (access tokens are secrets: name the variable holding one in access_token_env)" if (
            "access_token" in unknown) else ""
        raise ids.InvalidInput(f"a Plaid item entry has unknown keys {sorted(unknown)}{why}")
    if "item_id" not in entry:
        raise ids.InvalidInput("a Plaid item entry has no item_id")
    return PlaidItemLink(**entry)


RAIL = Rail(
    name=NAME,
    title="Plaid",
    entities=ENTITIES,
    connection=PlaidConnection,
    account_option="--plaid-items",
    account_noun="Plaid item",
    object_id=object_id,
    module="ledger_pipeline.rails.plaid",
    version_label="sync",
)
