"""Dagster wiring: thin layers over ledger_pipeline.lib and the rails."""
