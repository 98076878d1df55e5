"""Public value types of the Ramp sandbox: businesses, scopes, faults, the rate limit and the base URL.

Kept apart from the machinery so that tests, the CLI and the pipeline can import them cheaply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from ledger_pipeline.rails.qbo.sandbox.spec import DEMO_COMPANIES, check_realm_id
from ledger_pipeline.sandbox_kit import faults as kit
from ledger_pipeline.world.ids import stable_uuid

SANDBOX_BASE_URL = "http://ramp-sandbox.local"
API_PREFIX = "/developer/v1"
# The read scopes of the lists the sandbox serves (Ramp has more, e.g. business:read or the :write ones).
SCOPES = ("bills:read", "cards:read", "reimbursements:read", "statements:read", "transactions:read", "users:read",
          "vendors:read")  # fmt: skip
FAULT_KINDS = frozenset({"server_error", "slow", "malformed", "reset"})
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def ramp_uuid(*parts: object) -> str:
    """A UUID derived from `parts`: Ramp's ids are UUIDs, stable here in every process."""
    return stable_uuid("ramp", *parts)


def is_uuid(value: object) -> bool:
    return isinstance(value, str) and _UUID.fullmatch(value) is not None


@dataclass(frozen=True)
class RampBusiness:
    """One Ramp business: the card and bill-pay window on one QBO company's business."""

    business_id: str
    realm_id: str
    name: str

    def __post_init__(self) -> None:
        if not is_uuid(self.business_id):
            raise ValueError(f"invalid Ramp business id {self.business_id!r}: expected a lower-case UUID")
        check_realm_id(self.realm_id)

    @property
    def entity_id(self) -> str:
        """The business's one entity (Ramp's multi-entity businesses have several)."""
        return ramp_uuid("entity", self.business_id)


def business_for(realm_id: str, name: str) -> RampBusiness:
    """The Ramp business of a QBO company, its id derived from the realm."""
    return RampBusiness(ramp_uuid("business", realm_id), realm_id, name)


DEMO_BUSINESSES: tuple[RampBusiness, ...] = tuple(business_for(c.realm_id, c.name) for c in DEMO_COMPANIES)


def businesses_for(realm_id: str) -> tuple[RampBusiness, ...]:
    """The demo Ramp businesses of one QBO company (one each)."""
    return tuple(b for b in DEMO_BUSINESSES if b.realm_id == realm_id)


@dataclass(frozen=True)
class RateLimit:
    """Requests per business in any rolling window of `seconds` (wall clock); None = unlimited. Ramp's default."""

    requests: int | None = 200
    seconds: float = 10.0


RAMP_RATE_LIMIT = RateLimit()


@dataclass(frozen=True)
class Fault(kit.Fault):
    """A misbehaviour switched on for one business: it lets `after` requests through, then hits `count` of them
    (-1 = until cleared). `status` is a server_error's 5xx, `delay` a slow answer's seconds. Faults watch the
    business's data requests (GET /developer/v1/...), not the token endpoint."""

    KINDS: ClassVar[frozenset[str]] = FAULT_KINDS
