"""Public value types of the Stripe sandbox: connected accounts, faults, the rate limit and the base URL.

Kept apart from the machinery so that tests, the CLI and the pipeline can import them cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ledger_pipeline.sandbox_kit import faults as kit
from ledger_pipeline.world.ids import stable_id

SANDBOX_BASE_URL = "http://stripe-sandbox.local"
API_VERSION = "2026-10-28.endive"  # answered when a request names none (the pinned SDK's version)
FAULT_KINDS = frozenset({"server_error", "slow", "malformed", "reset", "lock_timeout"})


def account_id_for(realm_id: str, word: str) -> str:
    """`acct_1<Word><hash>`: 16 characters after `acct_`, stable for a QBO realm."""
    tail = stable_id("x", "stripe account", realm_id, length=16)[2:]
    return f"acct_1{word}{tail[:15 - len(word)]}"


@dataclass(frozen=True)
class StripeAccount:
    """One connected account of the platform: the Stripe window on one QBO company's business."""

    account_id: str
    realm_id: str
    business_name: str

    def __post_init__(self) -> None:
        if not self.account_id.startswith("acct_") or not self.account_id[5:].isalnum():
            raise ValueError(f"invalid Stripe account id {self.account_id!r}: expected acct_ and letters or digits")


DEMO_ACCOUNTS: tuple[StripeAccount, ...] = (
    StripeAccount("acct_1AcmeFcgFewsC86G", "9130350000000001", "Acme Plumbing LLC"),
    StripeAccount("acct_1BluebirdzCAyH3N", "9130350000000002", "Bluebird Bakery Co."),
    StripeAccount("acct_1CopperlineoQTUf", "9130350000000003", "Copperline Design Studio"),
)


@dataclass(frozen=True)
class RateLimit:
    """Requests per wall-clock second per connected account (Stripe's test mode allows 25); None = unlimited."""

    per_second: int | None = 25


STRIPE_RATE_LIMIT = RateLimit()


@dataclass(frozen=True)
class Fault(kit.Fault):
    """A misbehaviour switched on for one account: it lets `after` requests through, then hits `count`
    of them (-1 = until cleared). `status` is a server_error's 5xx, `delay` a slow answer's seconds."""

    KINDS: ClassVar[frozenset[str]] = FAULT_KINDS
