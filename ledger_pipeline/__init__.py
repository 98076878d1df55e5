"""ledger_pipeline: accounting rails mirrored into DuckDB through an immutable, hash-chained log."""
