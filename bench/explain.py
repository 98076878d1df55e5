"""DuckDB's own profile of the SQL-bound phases (verify and the analyst queries): EXPLAIN ANALYZE.

cProfile sees these as one C call each; the operator tree says which part of the query costs
what (hashing, the window, the scan). Written next to the cProfile output in profile mode.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from bench.queries import QUERIES
from bench.workload import Paths
from ledger_pipeline.lib import verify as verify_module
from ledger_pipeline.lib import warehouse
from ledger_pipeline.lib.sql_models import load_models

# What an incremental refresh of mirror.qbo_bills asks for: the model, restricted to the entities
# logged since the watermark (here: the last 1% of the tenant's bill rows), as lib/mirrors.py does.
MIRROR_CANDIDATES = """
    select * from ({body}) m
    where m.tenant_id = $tenant
      and m.qbo_id in (select entity_id from raw.qbo_bills where tenant_id = $tenant and seq > $since)
      and m.log_seq <= $watermark
"""


def explain_all(paths: Paths, tenant_id: str, as_of: datetime, out_dir: Path) -> dict:
    """Write one EXPLAIN ANALYZE per statement; return the files written."""
    statements = {name: (sql, {k: v for k, v in (("tenant", tenant_id), ("as_of", as_of)) if f"${k}" in sql})
                  for name, sql in QUERIES.items()}
    check_sql = getattr(verify_module, "_CHECK_SQL", None)  # the verifier's one big query, if it is still there
    if check_sql is not None:
        statements["verify_chains"] = (check_sql, {"tenant": None, "rail": None, "entity_type": None})
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    conn = warehouse.connect(paths.ledger, read_only=True)
    try:
        bills = next(m for m in load_models() if m.name == "mirror.qbo_bills")
        count, top = conn.execute("select count(*), max(seq) from raw.qbo_bills where tenant_id = ?",
                                  [tenant_id]).fetchone()
        since = conn.execute("select quantile_disc(seq, 0.99) from raw.qbo_bills where tenant_id = ?",
                             [tenant_id]).fetchone()[0]
        statements["mirror_candidates_bills"] = (MIRROR_CANDIDATES.format(body=bills.body),
                                                 {"tenant": tenant_id, "since": since, "watermark": top})
        for name, (sql, params) in statements.items():
            rows = conn.execute(f"explain analyze {sql}", params).fetchall()
            path = out_dir / f"explain_{name}.txt"
            path.write_text("\n".join(str(r[-1]) for r in rows) + "\n")
            written[name] = str(path)
    finally:
        conn.close()
    return written
