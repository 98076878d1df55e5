"""Ramp's Dagster wiring: log assets, checks, the client resource."""
