"""Public value types of the QBO sandbox: company specs, faults, rate limits and fixed instants.

Kept apart from the machinery so that tests, the CLI and the pipeline can import them cheaply.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from ledger_pipeline.world.breaks import KINDS, MAX_BREAKS

from .. import rail
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

# Sane ranges of every number a test or the admin API can set (docs/sandbox.md, Admin endpoints).
MAX_CLOCK_STEP = timedelta(days=365)  # one move of the clock forward (advance, or set to a later instant)
MAX_FAULT_COUNT = 10_000  # a fault's `after` and `count` (count -1: until cleared)
MAX_FAULT_SECONDS = 60.0  # a fault's `delay` and `retry_after`
MAX_FAULT_ROWS = 1000  # a shift/duplicate fault's `rows` (a page holds at most 1000)
MAX_SKEW = Decimal("1000000000.00")  # a report skew's largest |delta|


class InvalidSetting(ValueError):
    """A sandbox switch given a value outside its stated range; `field` and `allowed` name them."""

    def __init__(self, field: str, allowed: str, value: object, message: str | None = None) -> None:
        self.field = field
        self.allowed = allowed
        text = repr(value)
        shown = text if len(text) <= 60 else f"{text[:55]}...{text[-1]}"
        super().__init__(message or f"{field} must be {allowed}, got {shown}")


def whole_number(field: str, value: object, low: int, high: int, *, also: tuple[int, ...] = ()) -> int:
    """`value` if it is an int (not a bool) in [low, high] or one of `also`; else InvalidSetting."""
    if isinstance(value, int) and not isinstance(value, bool) and (low <= value <= high or value in also):
        return value
    extra = "".join(f" or {a}" for a in also)
    raise InvalidSetting(field, f"a whole number from {low} to {high}{extra}", value)


def real_number(field: str, value: object, low: float, high: float, unit: str = "") -> float:
    """`value` if it is a finite int or float (not a bool) in [low, high]; else InvalidSetting."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high \
            and math.isfinite(value):
        return value
    raise InvalidSetting(field, f"a finite number from {_number(low)} to {_number(high)}{unit}", value)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def check_realm_id(realm_id: str) -> str:
    """QBO realm ids are digit strings (the rail's one rule, rails/qbo/rail.py); refuse anything else early."""
    return rail.realm_id(realm_id)


@dataclass(frozen=True)
class CompanySpec:
    """One synthetic QBO company: its realm, name, size and how fast its books change."""

    realm_id: str
    name: str
    size: int = 2000
    change_rate: float = 0.02
    utc_offset: str = "-08:00"
    breaks: float = 0.0  # what the business's rails get wrong on purpose (world/breaks.py): 0 clean, 1 a demo's few
    break_kinds: tuple[str, ...] = KINDS  # which kinds of break it injects (a test holds one alone)

    def __post_init__(self) -> None:
        check_realm_id(self.realm_id)
        if self.size < 50:
            raise ValueError(f"company {self.realm_id}: size must be at least 50, got {self.size}")
        if not 0 <= self.change_rate <= 1:
            raise ValueError(f"company {self.realm_id}: change_rate must be within [0, 1]")
        if not 0 <= self.breaks <= MAX_BREAKS:
            raise ValueError(f"company {self.realm_id}: breaks must be within [0, {MAX_BREAKS:g}]")
        kinds = self.break_kinds
        if isinstance(kinds, str) or not kinds or any(kind not in KINDS for kind in kinds):
            raise ValueError(f"company {self.realm_id}: break_kinds must name one or more of {', '.join(KINDS)}; "
                             f"got {kinds!r:.200}")
        # In KINDS' order: one setting, one spec (and one sandbox fingerprint), however the kinds were listed.
        object.__setattr__(self, "break_kinds", tuple(kind for kind in KINDS if kind in kinds))
        sign, hours, minutes = self.utc_offset[:1], self.utc_offset[1:3], self.utc_offset[4:6]
        if sign not in "+-" or len(self.utc_offset) != 6 or not (hours + minutes).isdigit():
            raise ValueError(f"company {self.realm_id}: utc_offset must look like -08:00")

    @property
    def offset_minutes(self) -> int:
        value = int(self.utc_offset[1:3]) * 60 + int(self.utc_offset[4:6])
        return -value if self.utc_offset[0] == "-" else value


DEMO_COMPANIES: tuple[CompanySpec, ...] = (
    CompanySpec("9130350000000001", "Acme Plumbing LLC", size=2500, change_rate=0.02, utc_offset="-08:00",
                breaks=1.0),
    CompanySpec("9130350000000002", "Bluebird Bakery Co.", size=1500, change_rate=0.03, utc_offset="-05:00"),
    CompanySpec("9130350000000003", "Copperline Design Studio", size=4000, change_rate=0.015, utc_offset="-07:00",
                breaks=1.0),
)  # Bluebird keeps clean books: the reconciliation must report nothing there


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
        for name, value, known in (("kind", self.kind, sorted(FAULT_KINDS)),
                                   ("endpoint", self.endpoint, sorted(FAULT_ENDPOINTS))):
            if not isinstance(value, str) or value not in known:
                raise InvalidSetting(name, ", ".join(known), value,
                                     f"unknown fault {name} {value!r:.60}; known: {', '.join(known)}")
        whole_number("after", self.after, 0, MAX_FAULT_COUNT)
        whole_number("count", self.count, 1, MAX_FAULT_COUNT, also=(-1,))
        whole_number("status", self.status, 400, 599)
        real_number("delay", self.delay, 0, MAX_FAULT_SECONDS, " seconds")
        if self.retry_after is not None:
            real_number("retry_after", self.retry_after, 0, MAX_FAULT_SECONDS, " seconds (or null)")
        if self.entity is not None and (not isinstance(self.entity, str) or self.entity not in BY_NAME):
            raise InvalidSetting("entity", ", ".join(BY_NAME), self.entity,
                                 f"unknown fault entity {self.entity!r:.60}; known: {', '.join(BY_NAME)}")
        whole_number("rows", self.rows, 1, MAX_FAULT_ROWS)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fault:
        if not isinstance(data, dict):
            raise ValueError(f"a fault must be a JSON object, got {type(data).__name__}")
        if "kind" not in data:
            raise ValueError("a fault needs a kind")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        return cls(**data)
