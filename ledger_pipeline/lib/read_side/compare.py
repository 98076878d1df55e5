"""The read side's check: what a publication wrote, read back through its generation's views file, has the
ledger's row counts and fingerprints per table and the ledger's chain heads, for the tenants it covered.

Tables the publication did not rewrite keep files that were read back this way when they were written, and
their fingerprints equal the ledger's (that is why they were kept), so a publication that changed nothing
reads nothing back: the check's cost follows the change, as the publication's does.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from ledger_pipeline.lib.read_side.fingerprint import LOG, chain_heads, fingerprints, single_threaded
from ledger_pipeline.lib.read_side.publish import Publication


def differences(views: Path, publication: Publication) -> list[str]:
    """What the views file shows differently from the ledger, one line each; empty when they are equal."""
    tables = [t for t in publication.tables if t.name in publication.moved]
    if not tables:
        return []
    conn = duckdb.connect(str(views), read_only=True)
    try:
        with single_threaded(conn):
            found = fingerprints(conn, tables, publication.tenant_ids)
            heads = chain_heads(conn, publication.tenant_ids) if LOG in publication.moved else publication.heads
    finally:
        conn.close()
    names = {t.name for t in tables}
    expected = {key: value for key, value in publication.expected.items() if key[1] in names}
    problems = []
    for key in sorted(set(found) | set(expected)):
        (ledger_rows, ledger_print), (read_rows, read_print) = (s.get(key, (0, None)) for s in (expected, found))
        if (ledger_rows, ledger_print) != (read_rows, read_print):
            what = f"{read_rows} rows, ledger {ledger_rows}" if read_rows != ledger_rows else "other content"
            problems.append(f"tenant {key[0]} {key[1]}: {what}")
    for chain in sorted(set(heads) | set(publication.heads)):
        if heads.get(chain) != publication.heads.get(chain):
            problems.append(f"chain {chain}: head {heads.get(chain)} on the read side, {publication.heads.get(chain)} "
                            "in the ledger")
    return problems
