"""Files a user names with `--output`: checked, never written through a link, published by one rename.

A typo or a planted link can make an output path name the ledger (every
tenant's immutable log), the tenant registry or a rotated refresh token, and
the log cannot be rebuilt from anywhere else. So an output is never a symlink,
never the ledger, registry or state files (nor a hard link of them, nor any
multiply-linked file), never overwritten without `force`, and always written
to a new temporary file that is renamed into place: a rename replaces a
directory entry, never the contents of an inode another name shares.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from ledger_pipeline.lib import ids, settings

_TEMP_PREFIX = ".ledger-output-"


def checked_output(value: object, suffixes: tuple[str, ...], *, force: bool, ledger: Path | None = None) -> Path:
    """The output path if it is safe to write (or, with force, to replace); InvalidInput naming the cause if not.

    `ledger` is protected in addition to settings.duckdb_path() (export names its source explicitly).
    """
    try:
        path = ids.output_file(value, suffixes)
    except RuntimeError:  # Path.resolve() on a symlink loop (Python 3.11)
        raise ids.InvalidInput(f"output {ids.shown(value)} is a symbolic link loop; choose another path") from None
    except OSError as exc:
        raise ids.InvalidInput(f"cannot check output {ids.shown(value)}: {exc.strerror or exc}") from None
    check_target(path, force=force, ledger=ledger)
    return path


def check_target(path: Path, *, force: bool, ledger: Path | None = None) -> bool:
    """Refuse a link, a non-regular file or a protected file at path, and an existing file without force.

    Returns whether a file exists there (to be replaced). Called again just before publishing, since
    the path may change while the output is computed.
    """
    shown = _shown(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise ids.InvalidInput(f"cannot check output {shown}: {exc.strerror or exc}") from None
    if st is not None and stat.S_ISLNK(st.st_mode):
        raise ids.InvalidInput(
            f"output {shown} is a symbolic link, not a regular file (links are never followed); choose another path"
        )
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise ids.InvalidInput(f"output {shown} exists and is not a regular file; choose another path")
    _refuse_protected(path, st, ledger)
    if st is not None and st.st_nlink > 1:
        raise ids.InvalidInput(
            f"output {shown} has {st.st_nlink} hard links (another name may be the ledger or a token); "
            "choose another path"
        )
    if st is not None and not force:
        raise ids.InvalidInput(f"output {shown} already exists; choose a new file or pass --force to replace it")
    return st is not None


def write_output(path: Path, write: Callable[[Path], None], *, force: bool, ledger: Path | None = None) -> bool:
    """Call write(tmp) on a new temporary file beside path (same suffix), then publish it at path.

    Returns whether an existing file was replaced. The temporary file is removed on any failure.
    """
    check_target(path, force=force, ledger=ledger)
    with _temporary(path) as tmp:
        try:
            write(tmp)
        except OSError as exc:
            raise ids.InvalidInput(f"cannot write {_shown(path)}: {exc.strerror or exc}") from None
        _fsync(tmp)
        return publish(tmp, path, force=force, ledger=ledger)


def publish(tmp: Path, path: Path, *, force: bool, ledger: Path | None = None) -> bool:
    """Move a finished file from beside path into place in one step; returns whether a file was replaced.

    Without force the move is a hard link, which fails if path appeared meanwhile (no clobbering race).
    """
    replaced = check_target(path, force=force, ledger=ledger)
    try:
        if replaced:
            os.replace(tmp, path)
        else:
            _link_new(tmp, path, force=force, ledger=ledger)
    except FileExistsError:
        raise ids.InvalidInput(
            f"output {_shown(path)} already exists; choose a new file or pass --force to replace it"
        ) from None
    except OSError as exc:
        raise ids.InvalidInput(f"cannot write {_shown(path)}: {exc.strerror or exc}") from None
    with contextlib.suppress(OSError):
        _fsync(path.parent, directory=True)
    return replaced


def _link_new(tmp: Path, path: Path, *, force: bool, ledger: Path | None) -> None:
    try:
        os.link(tmp, path)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK):
            raise
        check_target(path, force=force, ledger=ledger)  # a file system without hard links: rename instead
        os.replace(tmp, path)
        return
    os.unlink(tmp)


@contextlib.contextmanager
def _temporary(path: Path) -> Iterator[Path]:
    """A new file beside path (O_EXCL, with the mode a plain create would give), removed unless published."""
    try:
        fd, name = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=path.suffix, dir=path.parent)
    except OSError as exc:
        raise ids.InvalidInput(f"cannot write into {path.parent}: {exc.strerror or exc}") from None
    tmp = Path(name)
    try:
        try:
            os.fchmod(fd, 0o666 & ~_umask())
        finally:
            os.close(fd)
        yield tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _shown(path: Path) -> str:
    """A checked path in full (ids.output_file bounds its length and refuses control characters)."""
    return repr(str(path))


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync(path: Path, *, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _protected(ledger: Path | None) -> list[tuple[Path, str]]:
    """(file, what it is) for every file an output must never be or share an inode with."""
    found = []
    for db in {settings.duckdb_path(), *([Path(ledger)] if ledger is not None else [])}:
        found += [(db, "the ledger"), (Path(f"{db}.wal"), "the ledger's write-ahead log")]
    found.append((settings.tenants_path(), "the tenant registry"))
    return found


def _real(path: Path) -> Path:
    """Where a name leads (os.path.realpath: no error on loops or over-long names, unlike Path.resolve)."""
    return Path(os.path.realpath(path))


def _refuse_protected(path: Path, st: os.stat_result | None, ledger: Path | None) -> None:
    shown = _shown(path)
    where = _real(path.parent) / path.name  # the final component is never followed
    state = _real(settings.state_dir())
    if where.is_relative_to(state):
        raise ids.InvalidInput(
            f"output {shown} is in the pipeline's state directory {state} (tokens); choose another path"
        )
    files = _protected(ledger)
    for file, what in files:
        if where == _real(file):
            raise ids.InvalidInput(f"output {shown} is {what} itself ({file}); choose another file")
    if st is None:
        return
    identity = (st.st_dev, st.st_ino)
    for file, what in [*files, *((f, "a pipeline state file (tokens, sandbox state)") for f in _state_files(state))]:
        with contextlib.suppress(OSError):
            other = os.stat(file)
            if (other.st_dev, other.st_ino) == identity:
                raise ids.InvalidInput(f"output {shown} is a hard link of {what} ({file}); choose another file")


def _state_files(state: Path) -> Iterator[Path]:
    for folder, _dirs, names in os.walk(state):
        for name in names:
            yield Path(folder) / name
