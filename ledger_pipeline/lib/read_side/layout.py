"""Where the read side keeps its files, and the manifest that makes a set of them one generation.

    <root>/analyst.duckdb                  the entry point: a hard link of the newest generation's views file
    <root>/generations/<n>.duckdb          generation n's views and macros over every tenant's Parquet files
    <root>/generations/<n>.json            generation n's manifest; written last, its presence commits n
    <root>/tenants/<t>/<t>.duckdb          tenant t's share: a hard link of its newest views file
    <root>/tenants/<t>/views/<n>.duckdb    t's views as of generation n, over t's files only (relative paths)
    <root>/tenants/<t>/<schema>.<table>/   t's Parquet files of a table, named by their content

Every file is written under a temporary name and renamed into place, so a reader never meets half a file; a
generation's manifest names every file it reads, so readers never mix two generations.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from ledger_pipeline.lib import ids

ENTRY = "analyst.duckdb"
TMP_SUFFIX = ".tmp"
_GENERATION = re.compile(r"[0-9]{8}")

# A manifest, as JSON: {"generation": n, "published_at": iso, "root": the folder its views file names,
#   "views_fingerprint": code's view SQL hash,
#   "columns": {table: [[column, type], ...]},
#   "tenants": {tenant: {"views": path, "tables": {table: {"fingerprint", "rows", "files": [path, ...]}}}}}
# Paths are relative to the root; the log's entry also has "last_seq" (files are appended, never rewritten).
Manifest = dict


@dataclass(frozen=True)
class ReadSide:
    """The read side's folder, beside the ledger unless configured (settings.read_dir)."""

    root: Path

    @property
    def generations(self) -> Path:
        return self.root / "generations"

    @property
    def entry(self) -> Path:
        return self.root / ENTRY

    def manifest_path(self, generation: int) -> Path:
        return self.generations / f"{generation:08d}.json"

    def views_path(self, generation: int) -> Path:
        return self.generations / f"{generation:08d}.duckdb"

    def tenant_dir(self, tenant_id: str) -> Path:
        return self.root / "tenants" / ids.tenant_id(tenant_id)

    def tenant_entry(self, tenant_id: str) -> Path:
        return self.tenant_dir(tenant_id) / f"{tenant_id}.duckdb"

    def tenant_views(self, tenant_id: str, generation: int) -> Path:
        return self.tenant_dir(tenant_id) / "views" / f"{generation:08d}.duckdb"

    def published(self) -> list[int]:
        """The committed generations, oldest first."""
        if not self.generations.is_dir():
            return []
        return sorted(int(p.stem) for p in self.generations.glob("*.json") if _GENERATION.fullmatch(p.stem))

    def manifest(self, generation: int) -> Manifest:
        return json.loads(self.manifest_path(generation).read_text())

    def latest(self) -> Manifest | None:
        """The newest committed generation's manifest, or None before the first publication."""
        generations = self.published()
        return self.manifest(generations[-1]) if generations else None

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()


def temporary(path: Path) -> Path:
    """A new temporary name beside path (same folder: the rename into place is atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}{TMP_SUFFIX}")


def write_json(path: Path, data: Manifest) -> None:
    """Write, flush to disk and rename into place: the manifest commits its generation."""
    tmp = temporary(path)
    with open(tmp, "w") as fh:
        json.dump(data, fh, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def point(entry: Path, target: Path) -> None:
    """Make `entry` another name of `target` in one rename: a reader opens the old file or the new, never none."""
    if entry.exists() and os.path.samefile(entry, target):
        return
    tmp = temporary(entry)
    os.link(target, tmp)
    os.replace(tmp, entry)
