"""The tenant registry: which tenants exist and how each one reaches each of its rails.

A JSON file (LEDGER_TENANTS_PATH) rather than a DuckDB table, so that the
Dagster sensor can read it while a sync holds the database's write lock.
It names where credentials come from, never the credentials themselves. A tenant connects any subset of the
rails (lib/rails.py); each connection's keys are its rail's, under the rail's name:
`{"tenants": {"<tenant id>": {"<rail>": {<the rail's connection keys>}, ...}}}`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any
from pathlib import Path

from ledger_pipeline.lib import ids, rails
from ledger_pipeline.lib.rails import Connection

class TenantError(ValueError):
    """An unknown tenant, or a registry entry that cannot be used."""


DEFAULT_MAX_SYNC_AGE_MINUTES = 180  # the hourly schedule plus slack for a failed run or two
MAX_SYNC_AGE_MINUTES = 366 * 24 * 60  # a year: anything staler is no longer a freshness promise


@dataclass(frozen=True, init=False)
class Tenant:
    """A tenant and its connections, at most one per rail; a rail it has not connected is skipped, not failed."""

    tenant_id: str
    connections: tuple[Connection, ...]  # ordered by rail name
    max_sync_age_minutes: int  # the freshness check fails past this

    def __init__(
        self, tenant_id: str, *connections: Connection, max_sync_age_minutes: int = DEFAULT_MAX_SYNC_AGE_MINUTES
    ) -> None:
        ids.tenant_id(tenant_id)
        by_rail: dict[str, Connection] = {}
        for connection in connections:
            rail = rails.rail(getattr(connection, "rail", None)).name
            if not isinstance(connection, rails.rail(rail).connection):
                raise TenantError(f"tenant {tenant_id}: {ids.shown(connection)} is not a {rail} connection")
            if rail in by_rail:
                raise TenantError(f"tenant {tenant_id}: two {rail} connections; a tenant has at most one per rail")
            by_rail[rail] = connection
        age = max_sync_age_minutes
        if not isinstance(age, int) or isinstance(age, bool) or not 0 < age <= MAX_SYNC_AGE_MINUTES:
            raise TenantError(
                f"tenant {tenant_id}: max_sync_age_minutes must be a whole number of minutes "
                f"from 1 to {MAX_SYNC_AGE_MINUTES}, got {ids.shown(age)}"
            )
        object.__setattr__(self, "tenant_id", tenant_id)
        object.__setattr__(self, "connections", tuple(by_rail[r] for r in sorted(by_rail)))
        object.__setattr__(self, "max_sync_age_minutes", age)

    def connection(self, rail: str) -> Connection | None:
        """This tenant's connection to `rail`, or None when it has not connected it."""
        return next((c for c in self.connections if c.rail == rail), None)

    @property
    def rails(self) -> tuple[str, ...]:
        return tuple(c.rail for c in self.connections)

    def connected(self, connection: Connection) -> Tenant:
        """This tenant with `connection` added (or replacing its rail's)."""
        others = (c for c in self.connections if c.rail != connection.rail)
        return Tenant(self.tenant_id, *others, connection, max_sync_age_minutes=self.max_sync_age_minutes)

    def disconnected(self, rail: str) -> Tenant:
        others = (c for c in self.connections if c.rail != rail)
        return Tenant(self.tenant_id, *others, max_sync_age_minutes=self.max_sync_age_minutes)


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
            retired = self._registered(tenants, tenant_id)
            del tenants[tenant_id]
            self._write(tenants)
        return retired

    def connect(self, tenant_id: str, connection: Connection) -> bool:
        """Connect a registered tenant to one more rail; True if it changed. A rail already connected to another
        account is refused: disconnect it first (its log stays bound to that account, lib/bindings.py)."""
        with self._locked() as tenants:
            tenant = self._registered(tenants, tenant_id)
            existing = tenant.connection(connection.rail)
            if existing == connection:
                return False
            if existing is not None:
                raise TenantError(
                    f"tenant {tenant_id} is already connected to {connection.rail} account {existing.account_id}; "
                    f"disconnect it first"
                )
            tenants[tenant_id] = tenant.connected(connection)
            _check_companies(tenants)
            self._write(tenants)
        return True

    def disconnect(self, tenant_id: str, rail: str) -> Connection:
        """Stop syncing one rail of a tenant; its log, mirrors and history stay in the ledger."""
        with self._locked() as tenants:
            tenant = self._registered(tenants, tenant_id)
            connection = tenant.connection(rail)
            if connection is None:
                connected = ", ".join(tenant.rails) or "none"
                raise TenantError(f"tenant {tenant_id} is not connected to {rail} (connected: {connected})")
            tenants[tenant_id] = tenant.disconnected(rail)
            self._write(tenants)
        return connection

    def record_states(self, tenant_id: str, rail: str, states: dict[str, str | None]) -> bool:
        """Record what a sync found about parts of a tenant's connection that need a person (a bank login: since
        when, or None once it reads again); True if the entry changed. A tenant retired meanwhile is left alone."""
        with self._locked() as tenants:
            tenant = tenants.get(tenant_id)
            connection = tenant.connection(rail) if tenant is not None else None
            if tenant is None or connection is None:
                return False
            updated = connection.with_states(states)
            if updated == connection:
                return False
            tenants[tenant_id] = tenant.connected(updated)
            self._write(tenants)
        return True

    @staticmethod
    def _registered(tenants: dict[str, Tenant], tenant_id: str) -> Tenant:
        if tenant_id not in tenants:
            known = ", ".join(sorted(tenants)) or "none registered"
            raise TenantError(f"unknown tenant {tenant_id!r} (known: {known})")
        return tenants[tenant_id]

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


_TENANT_SETTINGS = {"max_sync_age_minutes"}


def _tenants(raw: object) -> dict[str, Tenant]:
    """The registry's JSON as tenants, refusing any shape or key it does not know (a typo must not pass)."""
    if not isinstance(raw, dict) or set(raw) != {"tenants"} or not isinstance(raw["tenants"], dict):
        raise TenantError('expected an object {"tenants": {"<tenant id>": {...}, ...}} and nothing else')
    known_rails = rails.all_rails()
    tenants = {}
    for tenant_id, entry in raw["tenants"].items():
        if not isinstance(entry, dict):
            raise TenantError(f"the entry of tenant {ids.shown(tenant_id)} is not an object")
        if unknown := set(entry) - _TENANT_SETTINGS - set(known_rails):
            raise TenantError(
                f"tenant {ids.shown(tenant_id)} has unknown keys {sorted(unknown)} "
                f"(known: the rails {', '.join(known_rails)} and {', '.join(sorted(_TENANT_SETTINGS))})"
            )
        connections = [known_rails[r].connection_from_json(tenant_id, entry[r]) for r in known_rails if r in entry]
        tenants[tenant_id] = Tenant(
            tenant_id, *connections,
            max_sync_age_minutes=entry.get("max_sync_age_minutes", DEFAULT_MAX_SYNC_AGE_MINUTES),
        )  # fmt: skip
    _check_companies(tenants)
    return tenants


def _check_companies(tenants: dict[str, Tenant]) -> None:
    """Two tenants never share a company or account on a rail: they would share its books (and, on QBO, its one
    rotating refresh token)."""
    holder: dict[tuple[str, str], str] = {}
    for tenant in tenants.values():
        for connection in tenant.connections:
            for account_id in getattr(connection, "account_ids", (connection.account_id,)):  # Plaid: every item
                other = holder.setdefault((connection.rail, account_id), tenant.tenant_id)
                if other != tenant.tenant_id:
                    noun = rails.rail(connection.rail).account_noun
                    raise TenantError(f"tenants {other} and {tenant.tenant_id} both name {noun} {account_id}")


def _without_nulls(value: Any) -> Any:
    """A connection as JSON without its unset keys (each has a default), nested entries included."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_without_nulls(v) for v in value]
    return value


def _entry(tenant: Tenant) -> dict[str, Any]:
    out: dict[str, Any] = {c.rail: _without_nulls(asdict(c)) for c in tenant.connections}  # type: ignore[call-overload]
    if tenant.max_sync_age_minutes != DEFAULT_MAX_SYNC_AGE_MINUTES:
        out["max_sync_age_minutes"] = tenant.max_sync_age_minutes
    return out
