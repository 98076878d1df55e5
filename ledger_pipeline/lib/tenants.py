"""The tenant registry: which tenants exist and how each one reaches its rails.

A JSON file (LEDGER_TENANTS_PATH) rather than a DuckDB table, so that the
Dagster sensor can read it while a sync holds the database's write lock.
It names where credentials come from, never the credentials themselves.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from ledger_pipeline.lib import ids

CREDENTIAL_SOURCES = ("sandbox", "env")


class TenantError(ValueError):
    """An unknown tenant, or a registry entry that cannot be used."""


@dataclass(frozen=True)
class QboConnection:
    """How a tenant reaches QuickBooks Online.

    `credentials="sandbox"`: the built-in emulator with its documented demo keys.
    `credentials="env"`: the live API; the app's client id and secret come from
    QBO_CLIENT_ID / QBO_CLIENT_SECRET and this company's first refresh token
    from the variable named by `refresh_token_env`.
    """

    realm_id: str
    credentials: str = "sandbox"
    refresh_token_env: str | None = None

    def __post_init__(self) -> None:
        ids.qbo_realm_id(self.realm_id)
        if self.credentials not in CREDENTIAL_SOURCES:
            raise TenantError(f"QBO credentials must be one of {CREDENTIAL_SOURCES}, got {ids.shown(self.credentials)}")
        if self.credentials == "env" or self.refresh_token_env is not None:
            ids.env_var_name(self.refresh_token_env)
        if self.credentials == "sandbox" and self.refresh_token_env is not None:
            raise TenantError("a refresh token variable is only used with credentials 'env' (sandbox uses demo keys)")


DEFAULT_MAX_SYNC_AGE_MINUTES = 180  # the hourly schedule plus slack for a failed run or two
MAX_SYNC_AGE_MINUTES = 366 * 24 * 60  # a year: anything staler is no longer a freshness promise


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    qbo: QboConnection | None = None
    max_sync_age_minutes: int = DEFAULT_MAX_SYNC_AGE_MINUTES  # the freshness check fails past this

    def __post_init__(self) -> None:
        ids.tenant_id(self.tenant_id)
        age = self.max_sync_age_minutes
        if not isinstance(age, int) or isinstance(age, bool) or not 0 < age <= MAX_SYNC_AGE_MINUTES:
            raise TenantError(
                f"tenant {self.tenant_id}: max_sync_age_minutes must be a whole number of minutes "
                f"from 1 to {MAX_SYNC_AGE_MINUTES}, got {ids.shown(age)}"
            )


class TenantRegistry:
    """Reads and writes the registry file; writes are atomic and serialised by a file lock."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Tenant]:
        """Every registered tenant; a file that is not exactly a registry is refused whole, naming the cause."""
        if self.path.is_symlink() and not self.path.exists():
            raise TenantError(f"tenant registry {self.path} is a symlink to {os.readlink(self.path)}, which does not exist")
        if not self.path.exists():
            return {}
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"), object_pairs_hook=_no_duplicate_keys)
        except OSError as exc:
            raise TenantError(f"tenant registry {self.path} cannot be read: {exc.strerror or exc}") from None
        except RecursionError:
            raise TenantError(f"tenant registry {self.path} is nested too deeply to be a registry") from None
        except (ValueError, TenantError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise TenantError(f"tenant registry {self.path} is not valid JSON: {exc}") from None
        try:
            tenants = _tenants(raw)
        except (TenantError, ids.InvalidInput, TypeError) as exc:
            raise TenantError(f"tenant registry {self.path}: {exc}") from None
        return tenants

    def get(self, tenant_id: str) -> Tenant:
        try:
            ids.tenant_id(tenant_id)
        except ids.InvalidInput as exc:  # e.g. a Dagster partition key added by hand: fail the run, naming it
            raise TenantError(str(exc)) from None
        tenants = self.load()
        if tenant_id not in tenants:
            known = ", ".join(sorted(tenants)) or "none registered"
            raise TenantError(f"unknown tenant {tenant_id!r} (known: {known}); add it with `ledger-pipeline tenants add`")
        return tenants[tenant_id]

    def add(self, tenant: Tenant) -> bool:
        """Register a tenant; True if it was new. Re-adding the same entry is a no-op, a different one an error."""
        with self._locked() as tenants:
            existing = tenants.get(tenant.tenant_id)
            if existing == tenant:
                return False
            if existing is not None:
                raise TenantError(f"tenant {tenant.tenant_id!r} is already registered with a different connection")
            tenants[tenant.tenant_id] = tenant
            _check_companies(tenants)
            self._write(tenants)
        return True

    def retire(self, tenant_id: str) -> Tenant:
        """Take a tenant out of the registry (nothing syncs it again); its log stays in the ledger, bound to its
        company, so the id can come back only with the same company."""
        with self._locked() as tenants:
            if tenant_id not in tenants:
                known = ", ".join(sorted(tenants)) or "none registered"
                raise TenantError(f"unknown tenant {tenant_id!r} (known: {known})")
            retired = tenants.pop(tenant_id)
            self._write(tenants)
        return retired

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Tenant]]:
        """The registry, loaded under the file lock that serialises writers."""
        if self.path.is_symlink():
            raise TenantError(
                f"tenant registry {self.path} is a symlink; registry writes replace the file atomically, "
                "so point LEDGER_TENANTS_PATH at the file itself"
            )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock = open(self.path.with_suffix(".lock"), "w")
        except OSError as exc:
            raise TenantError(f"cannot write the tenant registry beside {self.path}: {exc.strerror or exc}") from None
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield self.load()

    def _write(self, tenants: dict[str, Tenant]) -> None:
        body = {"tenants": {tid: _entry(t) for tid, t in sorted(tenants.items())}}
        try:
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tenants-")
            with os.fdopen(fd, "w") as fh:
                json.dump(body, fh, indent=2)
            os.replace(tmp, self.path)
        except OSError as exc:
            raise TenantError(f"cannot write the tenant registry {self.path}: {exc.strerror or exc}") from None


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """json's object hook: a key given twice is refused (json.loads would keep the last one silently)."""
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise TenantError(f"the key {ids.shown(key)} appears twice in one object")
        out[key] = value
    return out


_TENANT_KEYS = {"qbo", "max_sync_age_minutes"}
_QBO_KEYS = {"realm_id", "credentials", "refresh_token_env"}


def _tenants(raw: object) -> dict[str, Tenant]:
    """The registry's JSON as tenants, refusing any shape or key it does not know (a typo must not pass)."""
    if not isinstance(raw, dict) or set(raw) != {"tenants"} or not isinstance(raw["tenants"], dict):
        raise TenantError('expected an object {"tenants": {"<tenant id>": {...}, ...}} and nothing else')
    tenants = {}
    for tenant_id, entry in raw["tenants"].items():
        if not isinstance(entry, dict):
            raise TenantError(f"the entry of tenant {ids.shown(tenant_id)} is not an object")
        if unknown := set(entry) - _TENANT_KEYS:
            raise TenantError(f"tenant {ids.shown(tenant_id)} has unknown keys {sorted(unknown)}")
        qbo = entry.get("qbo")
        if qbo is not None and not isinstance(qbo, dict):
            raise TenantError(f"the qbo connection of tenant {ids.shown(tenant_id)} is not an object")
        if qbo is not None and (unknown := set(qbo) - _QBO_KEYS or {"realm_id"} - set(qbo)):
            raise TenantError(f"the qbo connection of tenant {ids.shown(tenant_id)} has unknown or missing keys {sorted(unknown)}")
        tenants[tenant_id] = _tenant(tenant_id, entry)
    _check_companies(tenants)
    return tenants


def _check_companies(tenants: dict[str, Tenant]) -> None:
    """Two tenants never share a company: they would share its books and its one rotating refresh token."""
    holder: dict[str, str] = {}
    for tenant in tenants.values():
        if tenant.qbo is None:
            continue
        other = holder.setdefault(tenant.qbo.realm_id, tenant.tenant_id)
        if other != tenant.tenant_id:
            raise TenantError(f"tenants {other} and {tenant.tenant_id} both name QBO realm {tenant.qbo.realm_id}")


def _tenant(tenant_id: str, entry: dict) -> Tenant:
    qbo = entry.get("qbo")
    return Tenant(
        tenant_id=tenant_id,
        qbo=QboConnection(**qbo) if qbo is not None else None,
        max_sync_age_minutes=entry.get("max_sync_age_minutes", DEFAULT_MAX_SYNC_AGE_MINUTES),
    )


def _entry(tenant: Tenant) -> dict:
    out: dict = {}
    if tenant.qbo is not None:
        out["qbo"] = {k: v for k, v in asdict(tenant.qbo).items() if v is not None}
    if tenant.max_sync_age_minutes != DEFAULT_MAX_SYNC_AGE_MINUTES:
        out["max_sync_age_minutes"] = tenant.max_sync_age_minutes
    return out
