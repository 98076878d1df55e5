"""Which generations the read side keeps, and removing the files no kept generation reads.

The rule: the newest generation and the one before it are kept, and any older one while a process has one of
its views files open. DuckDB holds a shared fcntl lock on a database file for as long as a read-only connection
is open (checked with DuckDB 2.0, for other processes, the same process and a hard link of the file alike), so a
views file that cannot be locked exclusively is in use. The probe is an open-file-description lock (Linux):
unlike a process-associated lock, taking and closing it never drops a lock this process's DuckDB holds.
Files that no kept generation names (and temporary files a killed publication left) are removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
from pathlib import Path

from ledger_pipeline.lib.read_side.layout import TMP_SUFFIX, Manifest, ReadSide

KEEP_NEWEST = 2
_LOCK = getattr(fcntl, "F_OFD_SETLK", None)


def in_use(path: Path) -> bool:
    """Whether some process has this DuckDB file open (a missing file is not in use)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        if _LOCK is None:  # no OFD locks on this platform: treat every views file as possibly read
            return True
        try:
            fcntl.fcntl(fd, _LOCK, struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
        except OSError:
            return True
        fcntl.fcntl(fd, _LOCK, struct.pack("hhqqi4x", fcntl.F_UNLCK, os.SEEK_SET, 0, 0, 0))
        return False
    finally:
        os.close(fd)


def views_files(read_side: ReadSide, manifest: Manifest) -> list[Path]:
    """The views files a reader of the generation may have open: its own, and each tenant's it names (a tenant's
    share made by an earlier generation reads the files this one names for it)."""
    own = [read_side.views_path(manifest["generation"])]
    return own + [read_side.root / t["views"] for t in manifest["tenants"].values()]


def kept(read_side: ReadSide) -> list[Manifest]:
    """The manifests of the generations to keep, by the rule above."""
    generations = read_side.published()
    manifests = [read_side.manifest(g) for g in generations]
    newest = set(generations[-KEEP_NEWEST:])
    return [m for m in manifests if m["generation"] in newest or any(map(in_use, views_files(read_side, m)))]


def referenced(read_side: ReadSide, manifest: Manifest) -> set[Path]:
    """Every file a generation needs: its manifest, views files and Parquet files."""
    generation = manifest["generation"]
    names = {read_side.manifest_path(generation), read_side.views_path(generation)}
    for tenant in manifest["tenants"].values():
        names.add(read_side.root / tenant["views"])
        names.update(read_side.root / f for table in tenant["tables"].values() for f in table["files"])
    return names


def collect(read_side: ReadSide) -> int:
    """Remove every file under generations/ and tenants/ that no kept generation needs, and every temporary file a
    killed publication left (templates/ too); returns how many.

    Runs under the ledger's writer lock (the publisher's), so no other publication writes meanwhile. The
    entry points are names of kept views files and stay.
    """
    keep = set().union(*(referenced(read_side, m) for m in kept(read_side)))
    entries = {read_side.tenant_entry(d.name) for d in (read_side.root / "tenants").glob("*")}
    removed = 0
    swept = [p for folder in (read_side.generations, read_side.root / "tenants", read_side.root / "templates")
             for p in (folder.rglob("*") if folder.is_dir() else [])]  # fmt: skip
    for path in sorted([*swept, *read_side.root.glob(f"*{TMP_SUFFIX}*")]):
        temporary = TMP_SUFFIX in path.name  # a killed writer's, with its DuckDB WAL
        needed = path in keep or path in entries or path.parent.name == "templates"
        if path.is_file() and (temporary or not needed):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
    return removed
