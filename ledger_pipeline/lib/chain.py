"""How a log row is hashed, written once for Python (the writer) and once for SQL (the verifier).

A row's hash covers every column but itself, with the previous row's hash of
the same chain first, so editing, deleting, inserting or reordering any row
breaks the link at the next row. A chain is one (tenant_id, rail, entity_type):
chains of different entities can then be appended independently.

Each field is length-prefixed (`<bytes>:<text>`, or `-` for NULL) so no choice
of values can make two different rows hash alike. Timestamps enter as epoch
microseconds so Python and DuckDB spell them identically.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CHAIN_KEY = ("tenant_id", "rail", "entity_type")

# (column, SQL expression giving its text form) in hashing order.
HASHED_FIELDS: tuple[tuple[str, str], ...] = (
    ("prev_hash", "prev_hash"),
    ("seq", "cast(seq as varchar)"),
    ("tenant_id", "tenant_id"),
    ("rail", "rail"),
    ("entity_type", "entity_type"),
    ("entity_id", "entity_id"),
    ("op", "op"),
    ("source", "source"),
    ("source_version", "source_version"),
    ("source_updated_at", "cast(epoch_us(source_updated_at) as varchar)"),
    ("observed_at", "cast(epoch_us(observed_at) as varchar)"),
    ("payload_hash", "payload_hash"),
    ("changes", "cast(changes as varchar)"),
    ("run_id", "run_id"),
)


def epoch_us(value: datetime | None) -> str | None:
    if value is None:
        return None
    return str((value - EPOCH) // timedelta(microseconds=1))


def _field(text: str | None) -> str:
    return "-" if text is None else f"{len(text.encode('utf-8'))}:{text}"


def row_hash(row: dict[str, object]) -> str:
    """sha256 of a log row's hashed fields; `row` holds the column values."""
    parts = []
    for column, _ in HASHED_FIELDS:
        value = row[column]
        if isinstance(value, datetime):
            text = epoch_us(value)
        elif value is None:
            text = None
        else:
            text = str(value)
        parts.append(_field(text))
    return hashlib.sha256("".join(parts).encode("utf-8")).hexdigest()


def row_hash_input_sql() -> str:
    """The text `row_hash` is the sha256 of, as a DuckDB expression over raw.entity_log's columns.

    One `concat` call (half the cost of a chain of `||`); `concat` skips NULLs, hence the `case`.
    """
    pieces = [
        f"case when {expr} is null then '-' else concat(strlen({expr}), ':', {expr}) end" for _, expr in HASHED_FIELDS
    ]
    return "concat(" + ", ".join(pieces) + ")"


def row_hash_sql() -> str:
    """The same hash as a DuckDB expression over raw.entity_log's columns."""
    return f"sha256({row_hash_input_sql()})"
