"""The tenant registry: which tenants exist and how each one reaches its rails.

A JSON file (LEDGER_TENANTS_PATH) rather than a DuckDB table, so that the
Dagster sensor can read it while a sync holds the database's write lock.
It names where credentials come from, never the credentials themselves.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
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
        if not self.path.exists():
            return {}
        try:
            raw = json.loads(self.path.read_text())
            return {tid: _tenant(tid, entry) for tid, entry in raw["tenants"].items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise TenantError(f"tenant registry {self.path} is unreadable: {exc}") from exc

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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            tenants = self.load()
            existing = tenants.get(tenant.tenant_id)
            if existing == tenant:
                return False
            if existing is not None:
                raise TenantError(f"tenant {tenant.tenant_id!r} is already registered with a different connection")
            tenants[tenant.tenant_id] = tenant
            body = {"tenants": {tid: _entry(t) for tid, t in sorted(tenants.items())}}
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tenants-")
            with os.fdopen(fd, "w") as fh:
                json.dump(body, fh, indent=2)
            os.replace(tmp, self.path)
        return True


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
