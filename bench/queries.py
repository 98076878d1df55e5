"""Phase 6: the analyst queries of docs/analysts.md, timed on a read-only connection.

AP aging for one tenant (marts.ap_aging), monthly vendor spend across tenants
(marts.vendor_spend), and payables at an earlier instant from the as-of macro
(history.qbo_bills_as_of). The as-of instant stays fixed as the log deepens, so its answer must
not change: the benchmark checks that too. Answers arrive as polars frames (`.pl()`, the way
docs/analysts.md reads them); turning 56k rows into Python tuples would add ~300 ms of client time
that is not the query's.
"""

from __future__ import annotations

import hashlib
import statistics
import time
from datetime import datetime

from bench.workload import Paths
from ledger_pipeline.lib import warehouse

REPEATS = 5
QUERIES = {
    "ap_aging_one_tenant": """
        select vendor_name, currency, open_bills, current_amt, days_1_30, days_31_60, days_61_90,
               days_over_90, total_open, as_of_date
        from marts.ap_aging
        where tenant_id = $tenant
        order by total_open desc
    """,
    "vendor_spend_all_tenants": """
        select tenant_id, month, currency, count(distinct vendor_id) as vendors, sum(bills) as bills,
               sum(total_amt) as spend
        from marts.vendor_spend
        group by tenant_id, month, currency
        order by tenant_id, month desc
    """,
    "bills_as_of": """
        select vendor_name, currency, count(*) as open_bills, sum(balance) as total_open
        from history.qbo_bills_as_of($tenant, $as_of)
        where balance > 0 and not is_voided
        group by vendor_name, currency
        order by total_open desc, vendor_name
    """,
}


def run_queries(paths: Paths, tenant_id: str, as_of: datetime) -> dict:
    """Each query: first run (cold), then the median and max of REPEATS more; a digest of its answer."""
    conn = warehouse.connect(paths.ledger, read_only=True)
    out: dict[str, dict] = {}
    try:
        for name, sql in QUERIES.items():
            params = {k: v for k, v in (("tenant", tenant_id), ("as_of", as_of)) if f"${k}" in sql}
            times = []
            for _ in range(REPEATS + 1):
                started = time.perf_counter()
                frame = conn.sql(sql, params=params).pl()
                times.append(time.perf_counter() - started)
            rows = frame.rows()
            out[name] = {
                "cold_ms": round(times[0] * 1000, 2),
                "median_ms": round(statistics.median(times[1:]) * 1000, 2),
                "max_ms": round(max(times[1:]) * 1000, 2),
                "rows": len(rows),
                "digest": hashlib.sha256(repr(rows).encode()).hexdigest()[:16],
            }
        log_rows = conn.execute("select count(*) from raw.entity_log").fetchone()[0]
    finally:
        conn.close()
    return {"queries": out, "log_rows": log_rows}
