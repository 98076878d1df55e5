"""Dagster definitions of the Plaid rail."""
