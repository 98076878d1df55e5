"""Dagster definitions of the QuickBooks Online rail."""
