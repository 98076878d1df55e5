"""Public value types of the Plaid sandbox: items and their accounts, faults, the rate limit and the base URL.

Kept apart from the machinery so that tests, the CLI and the pipeline can import them cheaply.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import ClassVar

from ledger_pipeline.rails.qbo.sandbox.spec import DEMO_COMPANIES
from ledger_pipeline.sandbox_kit import faults as kit

SANDBOX_BASE_URL = "http://plaid-sandbox.local"
FAULT_KINDS = frozenset({"server_error", "slow", "malformed", "reset", "mutation"})
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ID_LENGTH = 37  # Plaid's item, account and transaction ids: 37 letters and digits


def plaid_id(*parts: object) -> str:
    """37 base-62 characters derived from `parts`: stable in every process, shaped like Plaid's ids."""
    number = int.from_bytes(hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=32).digest(), "big")
    chars = []
    for _ in range(ID_LENGTH):  # 62**37 < 2**256: every character carries hash bits
        number, digit = divmod(number, 62)
        chars.append(_ALPHABET[digit])
    return "".join(chars)


@dataclass(frozen=True)
class PlaidAccountSpec:
    """One account of an item; `opening_cents` is its balance when the bank history starts (amount owed for
    a credit card), `limit_cents` a credit card's limit."""

    account_id: str
    name: str
    official_name: str | None
    type: str  # "depository" | "credit"
    subtype: str  # "checking" | "savings" | "credit card"
    mask: str
    opening_cents: int
    limit_cents: int | None = None

    def __post_init__(self) -> None:
        if len(self.account_id) != ID_LENGTH or not self.account_id.isalnum():
            raise ValueError(f"invalid Plaid account id {self.account_id!r}: expected {ID_LENGTH} letters or digits")
        if (self.type, self.subtype) not in (("depository", "checking"), ("depository", "savings"),
                                             ("credit", "credit card")):
            raise ValueError(f"account {self.account_id}: unsupported type/subtype {self.type}/{self.subtype}")
        if (self.limit_cents is not None) != (self.type == "credit"):
            raise ValueError(f"account {self.account_id}: a limit is required for credit accounts, and only there")


@dataclass(frozen=True)
class PlaidItem:
    """One login at one bank: the bank's window on one QBO company's business."""

    item_id: str
    realm_id: str
    institution_id: str
    institution_name: str
    accounts: tuple[PlaidAccountSpec, ...]
    sends_pending: bool = True

    def __post_init__(self) -> None:
        if len(self.item_id) != ID_LENGTH or not self.item_id.isalnum():
            raise ValueError(f"invalid Plaid item id {self.item_id!r}: expected {ID_LENGTH} letters or digits")
        if not self.accounts or len({a.account_id for a in self.accounts}) != len(self.accounts):
            raise ValueError(f"item {self.item_id}: needs accounts with distinct ids")

    def account(self, subtype: str) -> PlaidAccountSpec | None:
        return next((a for a in self.accounts if a.subtype == subtype), None)


PLATYPUS = ("ins_109508", "First Platypus Bank")
TARTAN = ("ins_109511", "Tartan Bank")


def _mask(*parts: object) -> str:
    return f"{int(plaid_id('mask', *parts)[:8], 36) % 10_000:04d}"


def bank_item(realm_id: str, *, opening_cents: int = 15_000_000) -> PlaidItem:
    """First Platypus Bank: a business Checking and a Savings account, pending transactions sent."""
    item_id = plaid_id("item", realm_id, PLATYPUS[0])
    return PlaidItem(item_id, realm_id, *PLATYPUS, (
        PlaidAccountSpec(plaid_id("account", item_id, "checking"), "Business Checking", "First Platypus Business "
                         "Checking", "depository", "checking", _mask(item_id, "checking"), opening_cents),
        PlaidAccountSpec(plaid_id("account", item_id, "savings"), "Business Savings", "First Platypus Business "
                         "Savings", "depository", "savings", _mask(item_id, "savings"), opening_cents * 2 // 3),
    ), sends_pending=True)


def card_item(realm_id: str, *, limit_cents: int = 5_000_000) -> PlaidItem:
    """Tartan Bank: one business credit card; this bank sends no pending transactions at all."""
    item_id = plaid_id("item", realm_id, TARTAN[0])
    return PlaidItem(item_id, realm_id, *TARTAN, (
        PlaidAccountSpec(plaid_id("account", item_id, "credit card"), "Business Card", "Tartan Business Rewards "
                         "Visa", "credit", "credit card", _mask(item_id, "card"), 0, limit_cents),
    ), sends_pending=False)


DEMO_ITEMS: tuple[PlaidItem, ...] = (
    bank_item(DEMO_COMPANIES[0].realm_id), card_item(DEMO_COMPANIES[0].realm_id),
    bank_item(DEMO_COMPANIES[1].realm_id),
    bank_item(DEMO_COMPANIES[2].realm_id), card_item(DEMO_COMPANIES[2].realm_id),
)


def items_for(realm_id: str) -> tuple[PlaidItem, ...]:
    """The demo items that show one QBO company's bank accounts."""
    return tuple(item for item in DEMO_ITEMS if item.realm_id == realm_id)


@dataclass(frozen=True)
class RateLimit:
    """Requests per item per wall-clock minute (None = unlimited)."""

    per_item_per_minute: int | None = 50


PLAID_RATE_LIMIT = RateLimit()


@dataclass(frozen=True)
class Fault(kit.Fault):
    """A misbehaviour switched on for one item: it lets `after` requests through, then hits `count` of them
    (-1 = until cleared). `status` is a server_error's 5xx, `delay` a slow answer's seconds. A `mutation`
    watches only /transactions/sync requests carrying a mid-pagination cursor."""

    KINDS: ClassVar[frozenset[str]] = FAULT_KINDS
