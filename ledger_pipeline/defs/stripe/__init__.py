"""Dagster definitions of the Stripe rail."""
