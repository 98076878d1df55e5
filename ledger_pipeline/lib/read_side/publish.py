"""Publishing a generation of the read side: the run's tenants' changed tables as Parquet, a views file, a manifest.

Cost follows change: each (tenant, table) is fingerprinted in DuckDB and rewritten only when its fingerprint
differs from the newest manifest's (a file already at its content's name is reused, which also repairs a
publication killed half way); a tenant's log is published by appending its new seq range as a new file.
Nothing changed means no new generation. When the code's tables or view SQL changed, every tenant it holds is
covered anew, so no generation mixes two versions of a table; when the read side was moved, its views file is
made anew (it names files by absolute path).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from ledger_pipeline.lib import ledger_views
from ledger_pipeline.lib.read_side import retention
from ledger_pipeline.lib.read_side.fingerprint import (
    LOG, Table, chain_heads, fingerprint_of, fingerprints, published_tables, single_threaded,
)
from ledger_pipeline.lib.read_side.layout import Manifest, ReadSide, point, temporary, write_json
from ledger_pipeline.lib.read_side.views import template, write_views
from ledger_pipeline.lib.warehouse import rollback

Found = dict[tuple[str, str], tuple[int, str]]  # (tenant, table) -> (rows, fingerprint), as the ledger has it


@dataclass(frozen=True)
class Publication:
    generation: int  # the newest generation once this publication is done
    published: bool  # a new generation was made (False: nothing the run's tenants have changed)
    tenant_ids: list[str]  # the tenants covered: the run's, or every tenant when the code's tables changed
    tables: list[Table]
    expected: Found  # the ledger's fingerprints of the covered tenants, from one snapshot
    heads: dict[str, str]  # the ledger's chain heads of the covered tenants
    files_written: int
    files_reused: int
    bytes_written: int
    files_removed: int
    moved: list[str]  # the tables whose files changed for some covered tenant (what the check reads back)


@dataclass
class _Writer:
    """Writes one tenant's files of one publication, counting what it wrote and reused."""

    conn: duckdb.DuckDBPyConnection
    read_side: ReadSide
    written: int = 0
    reused: int = 0
    bytes: int = 0

    def write(self, path: Path, sql: str, params: list) -> str:
        """The query's rows as Parquet at path (kept if a file is already there: names are content-derived)."""
        if path.exists():
            self.reused += 1
        else:
            tmp = temporary(path)
            self.conn.execute(f"copy ({sql}) to ? (format parquet)", [*params, str(tmp)])
            os.replace(tmp, path)
            self.written += 1
            self.bytes += path.stat().st_size
        return self.read_side.relative(path)

    def table(self, tenant_id: str, table: Table, rows: int, digest: str, old: dict | None) -> dict:
        if not rows:
            return {"fingerprint": digest, "rows": 0, "files": []}
        if old is not None and old["fingerprint"] == digest and self._present(old["files"]):
            self.reused += len(old["files"])
            return old
        path = self.read_side.tenant_dir(tenant_id) / table.name / f"{digest}.parquet"
        sql = f"select * from {table.name} where tenant_id = ?"
        return {"fingerprint": digest, "rows": rows, "files": [self.write(path, sql, [tenant_id])]}

    def log(self, tenant_id: str, rows: int, digest: str, old: dict | None) -> dict:
        """The log's files: the old ones plus the rows after their last seq, or all anew when they do not add up."""
        if not rows:
            return {"fingerprint": digest, "rows": 0, "files": [], "last_seq": 0}
        if old is not None and old["fingerprint"] == digest and self._present(old["files"]):
            self.reused += len(old["files"])
            return old
        after = old["last_seq"] if old is not None and self._present(old["files"]) else 0
        added, first, last = self.conn.execute(
            f"select count(*), min(seq), max(seq) from {LOG} where tenant_id = ? and seq > ?", [tenant_id, after]
        ).fetchall()[0]
        kept = old["files"] if after else []
        if after and old["rows"] + added != rows:  # not an append of the published rows: publish the log anew
            return self.log(tenant_id, rows, digest, None)
        self.reused += len(kept)
        path = self.read_side.tenant_dir(tenant_id) / LOG / f"{first:012d}-{last:012d}.parquet"
        sql = f"select * from {LOG} where tenant_id = ? and seq > ? order by seq"
        new = self.write(path, sql, [tenant_id, after])
        return {"fingerprint": digest, "rows": rows, "files": [*kept, new], "last_seq": last}

    def _present(self, files: list[str]) -> bool:
        return all((self.read_side.root / f).is_file() for f in files)


def publish(
    conn: duckdb.DuckDBPyConnection, read_side: ReadSide, tenant_ids: list[str], now: datetime
) -> Publication:
    """Publish the tenants' changes as a new generation if there are any; then remove what no one needs."""
    previous = read_side.latest()
    tables = published_tables(conn)
    columns = {t.name: [list(c) for c in t.columns] for t in tables}
    # Other tables or view SQL in the code: every tenant anew. A read side moved: its views name absolute paths.
    rebuild = previous is None or (previous["columns"], previous["views_fingerprint"]) != (
        columns, ledger_views.fingerprint()
    )
    relocated = previous is not None and previous.get("root") != str(read_side.root)
    covered = sorted(set(tenant_ids) | (set(previous["tenants"]) if rebuild and previous else set()))
    old_tenants = previous["tenants"] if previous else {}
    writer = _Writer(conn, read_side)
    conn.execute("begin")  # one snapshot of the ledger for every table and tenant
    try:
        with single_threaded(conn):
            found = fingerprints(conn, tables, covered)
            heads = chain_heads(conn, covered)
            entries = {t: _tenant_tables(writer, t, tables, found, old_tenants.get(t, {})) for t in covered}
        conn.execute("commit")
    except BaseException:
        rollback(conn)
        raise
    old_entries = {t: old_tenants.get(t, {}).get("tables", {}) for t in covered}
    moved = sorted({n for t in covered for n, e in entries[t].items() if rebuild or e != old_entries[t].get(n)})
    changed = [t for t in covered if rebuild or entries[t] != old_entries[t]]
    manifest = previous
    if changed or relocated:
        generation = max(read_side.published(), default=0) + 1
        manifest = _manifest(read_side, previous, tables, entries, changed, moved, generation, now,
                             rebuild=rebuild, relocated=relocated)
        write_json(read_side.manifest_path(generation), manifest)
    if manifest is not None:
        _point_entries(read_side, manifest)
    removed = retention.collect(read_side) if manifest is not None else 0
    return Publication(
        manifest["generation"] if manifest else 0, bool(changed or relocated), covered, tables, found, heads,
        writer.written, writer.reused, writer.bytes, removed, moved if changed else [],
    )  # fmt: skip


def _tenant_tables(writer: _Writer, tenant_id: str, tables: list[Table], found: Found, old: dict) -> dict:
    entries = {}
    for table in tables:
        rows, digest = found.get((tenant_id, table.name), (0, fingerprint_of(0, None, table)))
        before = old.get("tables", {}).get(table.name)
        if table.name == LOG:
            entries[table.name] = writer.log(tenant_id, rows, digest, before)
        else:
            entries[table.name] = writer.table(tenant_id, table, rows, digest, before)
    return entries


def _manifest(
    read_side: ReadSide, previous: Manifest | None, tables: list[Table], entries: dict, changed: list[str],
    moved: list[str], generation: int, now: datetime, *, rebuild: bool, relocated: bool,
) -> Manifest:  # fmt: skip
    """Write the changed tenants' views files and the generation's own, each from the previous one (or the
    template when the code changed, and for its own when the read side moved), and return the generation's
    manifest (not yet written)."""
    tenants = dict(previous["tenants"]) if previous else {}
    base = template(read_side, tables)
    for tenant_id in changed:
        before = None if rebuild else tenants.get(tenant_id)
        start = _usable(read_side.root / before["views"] if before else None)
        new = entries[tenant_id]
        names = [n for n, e in new.items() if (e != before["tables"].get(n) if start else e["files"])]
        folder = read_side.tenant_dir(tenant_id)
        files = {n: [_under(f, read_side, folder) for f in new[n]["files"]] for n in names}
        path = read_side.tenant_views(tenant_id, generation)
        write_views(path, start or base, files, tables, generation, now, relative_to=folder)
        tenants[tenant_id] = {"tables": new, "views": read_side.relative(path), "generation": generation}
    start = _usable(None if rebuild or relocated else read_side.views_path(previous["generation"]))
    files = {
        name: [str(read_side.root / f) for t in tenants.values() for f in t["tables"].get(name, {}).get("files", [])]
        for name in (moved if start else [t.name for t in tables])
    }
    write_views(read_side.views_path(generation), start or base, files if start else {n: f for n, f in files.items()
                if f}, tables, generation, now)  # fmt: skip
    return {"generation": generation, "published_at": now.isoformat(), "root": str(read_side.root),
            "views_fingerprint": ledger_views.fingerprint(),
            "columns": {t.name: [list(c) for c in t.columns] for t in tables}, "tenants": tenants}  # fmt: skip


def _usable(path: Path | None) -> Path | None:
    """An earlier views file to start from, if it is on disk."""
    return path if path is not None and path.is_file() else None


def _under(file: str, read_side: ReadSide, folder: Path) -> str:
    return (read_side.root / file).relative_to(folder).as_posix()


def _point_entries(read_side: ReadSide, manifest: Manifest) -> None:
    """The entry points name the newest generation's views files (again, after a publication killed before)."""
    point(read_side.entry, read_side.views_path(manifest["generation"]))
    for tenant_id, tenant in manifest["tenants"].items():
        point(read_side.tenant_entry(tenant_id), read_side.root / tenant["views"])
