"""Running a pandera (polars) model over mirror candidates and naming each bad row's reasons, and the rules every
rail's contracts share."""

from __future__ import annotations

from collections import defaultdict

import pandera.errors
import pandera.polars as pa
import polars as pl
from pandera.engines import polars_engine as pe

UTC_US = {"time_unit": "us", "time_zone": "UTC"}


class LoggedRow(pa.DataFrameModel):
    """Columns every mirror row of every rail carries: whose it is, and when and from which log row it was taken.
    A rail's base adds `sync_source` with its own words, and its key."""

    tenant_id: str = pa.Field(nullable=False)
    last_synced_at: pe.DateTime = pa.Field(nullable=False, dtype_kwargs=UTC_US)
    log_seq: pl.Int64 = pa.Field(nullable=False, ge=1)
    payload_hash: str = pa.Field(nullable=False, str_length={"min_value": 64, "max_value": 64})

    class Config:
        strict = True


class SchemaMismatch(RuntimeError):
    """The SQL model and its pandera contract disagree on columns or types: a code defect, not bad data."""


def row_failures(schema: type[pa.DataFrameModel], frame: pl.DataFrame) -> dict[int, str]:
    """{row index: "column: check (value); ..."} for every row that breaks the schema."""
    try:
        schema.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as errors:
        cases = errors.failure_cases
    else:
        return {}
    whole_frame = cases.filter(pl.col("index").is_null())
    if whole_frame.height:
        detail = "; ".join(
            f"{row['column']}: {row['check']} ({row['failure_case']})" for row in whole_frame.head(5).to_dicts()
        )
        raise SchemaMismatch(f"{schema.__name__} does not match its SQL model: {detail}")
    reasons: dict[int, list[str]] = defaultdict(list)
    for row in cases.sort("index", "column").to_dicts():
        reasons[row["index"]].append(f"{row['column']}: {row['check']} (got {row['failure_case']!s})")
    return {index: "; ".join(found) for index, found in reasons.items()}


def typed(data: pa.PolarsData) -> pl.LazyFrame:
    """A contract's check that the stg model could type the column: it types what the rail sent wrongly (money that
    is not exact, say) as null, so a null here is the payload's fault and the check's message says which rule."""
    return data.lazyframe.select(pl.col(data.key).is_not_null())


def holds(condition: pl.Expr) -> pl.Expr:
    """A row-level rule over several columns; a row with a null operand passes here, the null's own check fails it."""
    return condition.fill_null(True)
