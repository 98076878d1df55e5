"""Public value types of the QBO sandbox: company specs, faults, rate limits and fixed instants.

Kept apart from the machinery so that tests, the CLI and the pipeline can import them cheaply.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from typing import Any

from ..entities import BY_NAME

SANDBOX_BASE_URL = "http://qbo-sandbox.local"
SANDBOX_TOKEN_URL = "http://qbo-sandbox.local/oauth2/v1/tokens/bearer"

# Every company's books start here (their synthetic past lies before it); the clock may not go earlier.
GENESIS = datetime(2026, 10, 1, tzinfo=timezone.utc)
DEFAULT_START = GENESIS

FAULT_KINDS = frozenset(
    {"throttle", "throttle_xml", "server_error", "slow", "expire_token", "malformed_page", "xml_error", "reset",
     "wrong_content_type", "shift", "duplicate"}
)
FAULT_ENDPOINTS = frozenset({"query", "cdc", "reports", "token", "any"})


def check_realm_id(realm_id: str) -> str:
    """QBO realm ids are digit strings; refuse anything else early and by name."""
    if not isinstance(realm_id, str) or not realm_id.isdigit() or len(realm_id) > 20:
        raise ValueError(f"invalid QBO realm id {realm_id!r}: expected up to 20 digits")
    return realm_id


@dataclass(frozen=True)
class CompanySpec:
    """One synthetic QBO company: its realm, name, size and how fast its books change."""

    realm_id: str
    name: str
    size: int = 2000
    change_rate: float = 0.02
    utc_offset: str = "-08:00"

    def __post_init__(self) -> None:
        check_realm_id(self.realm_id)
        if self.size < 50:
            raise ValueError(f"company {self.realm_id}: size must be at least 50, got {self.size}")
        if not 0 <= self.change_rate <= 1:
            raise ValueError(f"company {self.realm_id}: change_rate must be within [0, 1]")
        sign, hours, minutes = self.utc_offset[:1], self.utc_offset[1:3], self.utc_offset[4:6]
        if sign not in "+-" or len(self.utc_offset) != 6 or not (hours + minutes).isdigit():
            raise ValueError(f"company {self.realm_id}: utc_offset must look like -08:00")

    @property
    def offset_minutes(self) -> int:
        value = int(self.utc_offset[1:3]) * 60 + int(self.utc_offset[4:6])
        return -value if self.utc_offset[0] == "-" else value


DEMO_COMPANIES: tuple[CompanySpec, ...] = (
    CompanySpec("9130350000000001", "Acme Plumbing LLC", size=2500, change_rate=0.02, utc_offset="-08:00"),
    CompanySpec("9130350000000002", "Bluebird Bakery Co.", size=1500, change_rate=0.03, utc_offset="-05:00"),
    CompanySpec("9130350000000003", "Copperline Design Studio", size=4000, change_rate=0.015, utc_offset="-07:00"),
)


@dataclass(frozen=True)
class RateLimit:
    """QBO's per-realm throttle: requests per wall-clock minute and requests in flight (None = unlimited)."""

    per_minute: int | None = 500
    concurrent: int | None = 10


QBO_RATE_LIMIT = RateLimit()


@dataclass(frozen=True)
class Fault:
    """A misbehaviour switched on for one realm; see docs/sandbox.md for what each kind sends."""

    kind: str
    endpoint: str = "any"
    after: int = 0
    count: int = 1
    status: int = 503
    retry_after: float | None = None
    delay: float = 0.0
    entity: str | None = None  # watch only requests about this entity (query FROM, CDC entities, read by Id)
    rows: int = 1  # shift / duplicate: how many rows move or are repeated

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; known: {', '.join(sorted(FAULT_KINDS))}")
        if self.endpoint not in FAULT_ENDPOINTS:
            raise ValueError(f"unknown fault endpoint {self.endpoint!r}; known: {', '.join(sorted(FAULT_ENDPOINTS))}")
        if self.after < 0 or self.count == 0 or self.count < -1:
            raise ValueError("fault after must be >= 0 and count >= 1 (or -1 for until cleared)")
        if not 400 <= self.status <= 599:
            raise ValueError(f"fault status must be an HTTP error status, got {self.status}")
        if self.delay < 0 or (self.retry_after is not None and self.retry_after < 0):
            raise ValueError("fault delay and retry_after must not be negative")
        if self.entity is not None and self.entity not in BY_NAME:
            raise ValueError(f"unknown fault entity {self.entity!r}; known: {', '.join(BY_NAME)}")
        if self.rows < 1:
            raise ValueError(f"fault rows must be >= 1, got {self.rows}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fault:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        return cls(**data)
