"""`python -m bench.rematch_scale`: what matching recon.links again costs when a share of the objects changed,
against matching every object, at sizes beyond the demo's (where a refresh is ~0.1 s of fixed cost whatever it
does). One tenant's `recon.link_keys` is made up in a ledger of its own: payments and bank transactions, each pair
sharing a reference, and amounts that compete within the 14-day window (about one payment in ten has a rival).
Then a share of the bank transactions change amount, and lib/rematch.py matches again; the result is checked
against matching everything. Prints one table, side by side; writes the figures to a JSON file.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from bench.children import REPO
from bench.workload import write_json
from ledger_pipeline.defs.models.assets import COLUMNS, MODELS
from ledger_pipeline.lib import ledger_views, warehouse
from ledger_pipeline.lib.marts import refresh_tenant_tables

KEYS, LINKS = ({m.name: m for m in MODELS}[name] for name in ("recon.link_keys", "recon.links"))
DEFAULT_RESULTS = REPO / "bench" / "results-rematch.json"

# Pairs i: payment p<i> and bank transaction b<i>, a reference each way, and an amount of `amounts` kinds posted
# on day i % 365; a changed bank transaction takes another amount.
MADE_UP = """
insert into recon.link_keys
with pairs as (
    select i, 'acme' as tenant_id, 100 + hash(i) % $amounts as cents,
        timestamptz '2026-01-01 00:00:00+00' + to_days(cast(i % 365 as int)) as day
    from range($pairs) r(i)
)
select tenant_id, 'payment_bank', 'reference', 'from', 'qbo', 'Payment', 'p' || i, cents, 'ref' || i, null, null
from pairs
union all
select tenant_id, 'payment_bank', 'reference', 'to', 'plaid', 'transaction', 'b' || i, cents, 'ref' || i, null, null
from pairs
union all
select tenant_id, 'payment_bank', 'amount_date', 'from', 'qbo', 'Payment', 'p' || i, cents, cents::varchar, day, 14
from pairs
union all
select tenant_id, 'payment_bank', 'amount_date', 'to', 'plaid', 'transaction', 'b' || i, cents, cents::varchar,
    day + interval 2 day, null
from pairs
"""
CHANGE = """
update recon.link_keys set amount_minor = amount_minor + 1,
    match_key = case when method = 'amount_date' then (amount_minor + 1)::varchar else match_key end
where side = 'to' and hash(entity_id || 'changed') % 1000 < $per_mille
"""


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.rematch_scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, nargs="+", default=[20_000, 100_000, 400_000],
                        help="payment/bank pairs per run (objects are twice that)")
    parser.add_argument("--changed", type=float, nargs="+", default=[0.01, 0.1],
                        help="shares of the bank transactions that change")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="results file")
    return parser.parse_args(argv)


def _timed_refresh(conn, *, full: bool) -> tuple[float, object]:
    started = time.perf_counter()
    refreshed = refresh_tenant_tables(conn, [LINKS], ["acme"], full=full)[LINKS.name]
    return time.perf_counter() - started, refreshed.rematch


def measure(pairs: int, changed: float, folder: Path) -> dict:
    conn = warehouse.connect(folder / f"rematch-{pairs}-{changed}.duckdb")
    try:
        ledger_views.ensure(conn)
        columns = ", ".join(f"{name} {kind}" for name, kind in COLUMNS[KEYS.name])
        conn.execute(f"create schema if not exists recon; create table {KEYS.name} ({columns})")
        conn.execute(MADE_UP, {"pairs": pairs, "amounts": pairs // 10 * 7})
        whole_s, _ = _timed_refresh(conn, full=True)
        conn.execute(CHANGE, {"per_mille": round(changed * 1000)})
        part_s, rematch = _timed_refresh(conn, full=False)
        rematched = conn.execute("select * from recon.links order by all").fetchall()
        again_s, _ = _timed_refresh(conn, full=True)
        same = rematched == conn.execute("select * from recon.links order by all").fetchall()
        links = conn.execute("select count(*), count(*) filter (status = 'review') from recon.links").fetchone()
    finally:
        conn.close()
    return {"pairs": pairs, "changed_share": changed, "objects": rematch.objects, "objects_changed": rematch.changed,
            "objects_rematched": rematch.rematched, "links": links[0], "links_for_review": links[1],
            "whole_seconds": whole_s, "rematch_seconds": part_s, "whole_after_seconds": again_s,
            "same_as_whole": same}


def table(rows: list[dict]) -> str:
    lines = [f"{'objects':>9} {'changed':>8} {'re-matched':>10} {'links':>8} {'whole s':>8} {'re-match s':>10} "
             f"{'ratio':>6}  same as whole"]
    for r in rows:
        whole = (r["whole_seconds"] + r["whole_after_seconds"]) / 2
        lines.append(f"{r['objects']:9,} {r['objects_changed']:8,} {r['objects_rematched']:10,} {r['links']:8,} "
                     f"{whole:8.3f} {r['rematch_seconds']:10.3f} {r['rematch_seconds'] / whole:6.1%}  "
                     f"{'yes' if r['same_as_whole'] else 'NO'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    with tempfile.TemporaryDirectory(prefix="rematch-scale-") as folder:
        rows = [measure(pairs, changed, Path(folder)) for pairs in args.pairs for changed in args.changed]
    write_json(args.results, {"runs": rows})
    print(table(rows))
    print(f"bench.rematch_scale: results in {args.results}")
    if not all(r["same_as_whole"] for r in rows):
        print("bench.rematch_scale: FAILED - re-matching gave other links than matching everything", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
