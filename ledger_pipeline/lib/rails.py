"""The rail registry as the generic layers see it: each rail package declares a `Rail`; nothing here names one.

`ledger_pipeline/rails/__init__.py` lists the rails. The registry is imported lazily (by module path), so
`lib/` depends on no rail and the CLI pays for a rail's heavy modules (client, contracts, sandbox) only when
it uses them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any, ClassVar, Protocol

from ledger_pipeline.lib import ids

RAILS_MODULE = "ledger_pipeline.rails"


class Entity(Protocol):
    """One entity of a rail: `name` as the rail spells it (the log's entity_type), `table` the suffix of its
    views and models (raw.<rail>_<table>, mirror.<rail>_<table>)."""

    @property
    def name(self) -> str: ...

    @property
    def table(self) -> str: ...


class Connection(Protocol):
    """How one tenant reaches one rail: a frozen dataclass whose fields are the tenants.json keys.

    Optional, where a rail has them (Plaid): `account_ids` (every account the connection names, the first being
    `account_id`; no other tenant may name any), `describe()` (how `tenants list` shows it), and
    `with_states(states)` (the connection with what a sync found needing a person recorded, lib/sync.py)."""

    rail: ClassVar[str]

    @property
    def account_id(self) -> str:
        """The company or account at the rail whose data the tenant's log holds (bound for ever, lib/bindings.py)."""
        ...

    @property
    def credentials(self) -> str: ...


# The log's one chain per tenant that no rail writes: people's decisions about the reconciliation (lib/decisions.py),
# read through raw.recon_decisions like a rail's entity.
DECISIONS_LOG_VIEW = ("recon_decisions", "recon", "decision")
CREDENTIAL_SOURCES = ("sandbox", "env")  # a connection reaches its rail's sandbox or the live API


def check_credentials(title: str, credentials: str) -> None:
    """A connection's credential source, named in the refusal by its rail's title."""
    if credentials not in CREDENTIAL_SOURCES:
        raise ids.InvalidInput(f"{title} credentials must be one of {CREDENTIAL_SOURCES}, got {ids.shown(credentials)}")


def check_refresh_token_env(credentials: str, refresh_token_env: str | None) -> None:
    """The OAuth rails' (QBO, Ramp) variable holding an account's first refresh token: needed with credentials
    'env', refused with the sandbox's demo keys."""
    if credentials == "env" or refresh_token_env is not None:
        ids.env_var_name(refresh_token_env)
    if credentials == "sandbox" and refresh_token_env is not None:
        raise ids.InvalidInput("a refresh token variable is only used with credentials 'env' (sandbox uses demo keys)")

@dataclass(frozen=True)
class Rail:
    """What a rail package declares about itself; every generic layer reads this and nothing else."""

    name: str  # the log's `rail`, the tenants.json key, the prefix of its views, models and asset keys
    title: str  # for people: "QuickBooks Online"
    entities: tuple[Entity, ...]
    connection: type  # the Connection dataclass of this rail
    account_option: str  # the `tenants add` option naming the tenant's account, e.g. --qbo-realm
    account_noun: str  # what the account is called on this rail, e.g. "QBO realm"
    object_id: Callable[[object], str]  # validates an object id typed by a person (`history --id`)
    module: str  # the rail's package: contracts (`.schemas`), sandbox (`.sandbox`), Dagster wiring
    macros: tuple[str, ...] = ()  # SQL macros its stg models call, installed with the views
    version_label: str = "version"  # what the rail calls an object's version (the log's source_version)

    def log_views(self) -> list[tuple[str, str, str]]:
        """(view name, rail, entity type) of every per-entity view over raw.entity_log, e.g. raw.qbo_bills."""
        return [(f"{self.name}_{e.table}", self.name, e.name) for e in self.entities]

    def entity(self, name: str) -> Entity:
        """An entity by the rail's own name or by its table suffix ("Bill", "bills")."""
        for entity in self.entities:
            if name in (entity.name, entity.table):
                return entity
        known = ", ".join(e.name for e in self.entities)
        raise ids.InvalidInput(f"unknown {self.title} entity {ids.shown(name)}; known: {known}")

    def mirror_contracts(self) -> Mapping[str, type]:
        """Model name -> pandera contract of every mirror of this rail (imported on first use: pandera is slow)."""
        return importlib.import_module(f"{self.module}.schemas").MIRROR_SCHEMAS

    def sandbox(self) -> Any:
        """The rail's sandbox package: `serve(...)`, `credentials(connection)` (imported on first use)."""
        return importlib.import_module(f"{self.module}.sandbox")

    def connection_from_cli(self, account: str, credentials: str, secret_env: str | None) -> Connection:
        """A connection from `tenants add|connect`: the account, where credentials come from, and the variable
        holding the tenant's own secret where the rail has one."""
        return self.connection.from_cli(account, credentials, secret_env)

    def connection_from_json(self, tenant_id: str, data: object) -> Connection:
        """A tenants.json connection entry, refusing unknown or missing keys by name (a typo must not pass)."""
        where = f"the {self.name} connection of tenant {ids.shown(tenant_id)}"
        if not isinstance(data, dict):
            raise ids.InvalidInput(f"{where} is not an object")
        known = {f.name for f in fields(self.connection)}
        required = {f.name for f in fields(self.connection) if f.default is MISSING and f.default_factory is MISSING}
        if wrong := (set(data) - known) or (required - set(data)):
            raise ids.InvalidInput(f"{where} has unknown or missing keys {sorted(wrong)}")
        return self.connection(**data)


def all_rails() -> Mapping[str, Rail]:
    """Every rail of the product, by name, in the order they were added."""
    return importlib.import_module(RAILS_MODULE).RAILS


def rail(name: object) -> Rail:
    """A rail by name, or a refusal that lists the known ones."""
    rails = all_rails()
    if not isinstance(name, str) or name not in rails:
        raise ids.InvalidInput(f"unknown rail {ids.shown(name)}; known rails: {', '.join(rails)}")
    return rails[name]


def log_views() -> list[tuple[str, str, str]]:
    """Every per-entity view over the log: each rail's, and the core's chain of people's decisions."""
    return [*(view for r in all_rails().values() for view in r.log_views()), DECISIONS_LOG_VIEW]


def macros() -> tuple[str, ...]:
    """Every rail's SQL macros."""
    return tuple(m for r in all_rails().values() for m in r.macros)
