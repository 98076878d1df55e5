"""Where rotated OAuth tokens live between runs, and the per-account lock that serialises refreshes.

QBO and Ramp rotate the refresh token on every refresh and refuse the previous one, so two processes
refreshing with the same token would lock one of them out. The store therefore offers a lock per
account (a QBO realm, a Ramp business); the client takes it, re-reads the store, and only refreshes if
nobody else already did (lib/oauth.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, ContextManager, Protocol, runtime_checkable

# The rail's id check for an account: refuses anything that must not reach a URL or a file name.
Validate = Callable[[object], str]


@dataclass(frozen=True)
class StoredTokens:
    """The latest refresh token for an account and, if still useful, the access token it produced."""

    refresh_token: str = field(repr=False)
    access_token: str | None = field(default=None, repr=False)
    access_expires_at: datetime | None = None

    def to_json(self) -> dict[str, str | None]:
        expires = self.access_expires_at.isoformat() if self.access_expires_at else None
        return {
            "refresh_token": self.refresh_token,
            "access_token": self.access_token,
            "access_expires_at": expires,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> StoredTokens:
        refresh = data.get("refresh_token")
        access = data.get("access_token")
        expires = data.get("access_expires_at")
        if not isinstance(refresh, str):
            raise ValueError("stored tokens have no refresh_token")
        when = datetime.fromisoformat(expires) if isinstance(expires, str) else None
        if when is not None and when.tzinfo is None:
            raise ValueError("stored access_expires_at has no UTC offset")
        return cls(refresh, access if isinstance(access, str) else None, when)


@runtime_checkable
class TokenStore(Protocol):
    """Persistence for rotated tokens, one entry per account, plus a lock held around a refresh."""

    def load(self, account_id: str) -> StoredTokens | None: ...

    def save(self, account_id: str, tokens: StoredTokens) -> None: ...

    def lock(self, account_id: str) -> ContextManager[None]: ...


class MemoryTokenStore:
    """In-process store for tests and one-shot runs; the lock only guards threads."""

    def __init__(self, validate: Validate) -> None:
        self._validate = validate
        self._tokens: dict[str, StoredTokens] = {}
        self._locks: dict[str, threading.RLock] = {}
        self._guard = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(accounts={sorted(self._tokens)!r})"

    def load(self, account_id: str) -> StoredTokens | None:
        return self._tokens.get(self._validate(account_id))

    def save(self, account_id: str, tokens: StoredTokens) -> None:
        self._tokens[self._validate(account_id)] = tokens

    @contextlib.contextmanager
    def lock(self, account_id: str) -> Iterator[None]:
        account_id = self._validate(account_id)
        with self._guard:
            lock = self._locks.setdefault(account_id, threading.RLock())
        with lock:
            yield


class FileTokenStore:
    """One 0600 JSON file per account in `directory` (`<prefix>_<account>.json`), replaced atomically; flock on
    a per-account lock file.

    flock locks belong to an open file description, so every `lock()` opens its own descriptor:
    that excludes other processes and other threads of this process alike.
    """

    def __init__(self, directory: str | os.PathLike[str], prefix: str, validate: Validate) -> None:
        self.directory = Path(directory)
        self.prefix, self._validate = prefix, validate
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.directory)!r})"

    def path(self, account_id: str) -> Path:
        return self.directory / f"{self.prefix}_{self._validate(account_id)}.json"

    def load(self, account_id: str) -> StoredTokens | None:
        path = self.path(account_id)
        try:
            raw = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        problem = None
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            return StoredTokens.from_json(data)
        except ValueError as exc:
            problem = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        # Raised outside the except block: a JSONDecodeError keeps the whole document (tokens included).
        # The message names the file and the problem, never the content.
        raise ValueError(f"token file {path} for {account_id} is unreadable: {problem}")

    def save(self, account_id: str, tokens: StoredTokens) -> None:
        path = self.path(account_id)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=self.directory)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(tokens.to_json(), handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        _fsync_dir(self.directory)

    @contextlib.contextmanager
    def lock(self, account_id: str) -> Iterator[None]:
        lock_path = self.directory / f"{self.prefix}_{self._validate(account_id)}.lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
