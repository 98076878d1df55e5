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
_MICROSECOND = timedelta(microseconds=1)
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
    if text is None:
        return "-"
    return f"{len(text) if text.isascii() else len(text.encode('utf-8'))}:{text}"


class ChainHasher:
    """`row_hash` for the rows one writer appends: the fields every row of its batch shares (tenant, rail,
    entity type, observed_at, run id) are spelled once, so a row costs one string and one sha256."""

    def __init__(self, tenant_id: str, rail: str, entity_type: str, observed_at: datetime | None, run_id: str | None):
        self._chain = _field(tenant_id) + _field(rail) + _field(entity_type)
        self._observed = _field(epoch_us(observed_at))
        self._run = _field(run_id)

    def __call__(
        self, prev_hash: str | None, seq: int, entity_id: str, op: str, source: str | None,
        source_version: str | None, source_updated_at: datetime | None, payload_hash: str, changes: str | None,
    ) -> str:  # fmt: skip
        # Spelled as `_field` spells them, inline where the text is ASCII by construction (hex hashes, digits, the
        # writer's op and source words): a call per field was a third of a row's cost.
        seq_text = str(seq)
        updated = None if source_updated_at is None else str((source_updated_at - EPOCH) // _MICROSECOND)
        text = "".join((
            "-" if prev_hash is None else f"{len(prev_hash)}:{prev_hash}", f"{len(seq_text)}:{seq_text}",
            self._chain, _field(entity_id), f"{len(op)}:{op}", "-" if source is None else f"{len(source)}:{source}",
            _field(source_version), "-" if updated is None else f"{len(updated)}:{updated}", self._observed,
            f"{len(payload_hash)}:{payload_hash}", _field(changes), self._run,
        ))  # fmt: skip
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def row_hash(row: dict[str, object]) -> str:
    """sha256 of a log row's hashed fields; `row` holds the column values."""
    text = "".join(_field(_text(row[column])) for column, _ in HASHED_FIELDS)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _text(value: object) -> str | None:
    if isinstance(value, datetime):
        return epoch_us(value)
    return None if value is None else str(value)


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
