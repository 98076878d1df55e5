"""Ramp's checks beyond every rail's (chains intact, mirror = f(log), freshness per tenant): none in Python.

What Ramp's own data must satisfy is checked in SQL, over the mirrors (dbt_like_sql/mirror/assert_ramp_*.sql):
each statement's card lines sum to its charges, and a paid bill's payment equals its amount.
"""

import dagster as dg

RAIL_CHECKS: list[dg.AssetChecksDefinition] = []
