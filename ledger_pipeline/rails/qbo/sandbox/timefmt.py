"""Time helpers: the books keep epoch seconds (compact ints); the wire shows ISO-8601 in the company's offset."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from functools import lru_cache

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def epoch_us(instant: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (naive ones are refused: the clock is UTC)."""
    if instant.tzinfo is None:
        raise ValueError("sandbox instants must be timezone-aware datetimes")
    delta = instant - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_epoch_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


@lru_cache(maxsize=64)
def _tz(offset_minutes: int) -> timezone:
    return timezone(timedelta(minutes=offset_minutes))


def _offset_text(offset_minutes: int) -> str:
    sign = "-" if offset_minutes < 0 else "+"
    hours, minutes = divmod(abs(offset_minutes), 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


def iso_seconds(sec: int, offset_minutes: int) -> str:
    """`2026-10-07T11:21:10-07:00`: how QBO writes MetaData timestamps."""
    local = (_EPOCH + timedelta(seconds=sec + offset_minutes * 60)).replace(tzinfo=None)
    return local.isoformat(timespec="seconds") + _offset_text(offset_minutes)


def iso_millis(us: int, offset_minutes: int) -> str:
    """`2026-10-07T11:21:10.123-07:00`: how QBO writes the response `time`."""
    local = (_EPOCH + timedelta(microseconds=us + offset_minutes * 60_000_000)).replace(tzinfo=None)
    return local.isoformat(timespec="milliseconds") + _offset_text(offset_minutes)


def iso_utc(us: int) -> str:
    return from_epoch_us(us).isoformat().replace("+00:00", "Z")


def local_date(sec: int, offset_minutes: int) -> date:
    return (_EPOCH + timedelta(seconds=sec + offset_minutes * 60)).date()


def local_hour_and_weekday(sec: int, offset_minutes: int) -> tuple[int, int]:
    local = _EPOCH + timedelta(seconds=sec + offset_minutes * 60)
    return local.hour, local.weekday()


def parse_instant(text: str, default_offset_minutes: int) -> int:
    """Parse a query/CDC timestamp to epoch microseconds.

    Accepts `Z`, any `+hh:mm` offset, fractional seconds and a bare date; a timestamp without an
    offset is read in the company's offset. Raises ValueError on anything else.
    """
    raw = text.strip()
    if not raw or len(raw) > 40:
        raise ValueError(f"invalid timestamp {text!r}")
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    parsed = datetime.fromisoformat(raw)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_tz(default_offset_minutes))
    return epoch_us(parsed)
