"""One synced three-tenant ledger, built once per test session and read by every module that only reads.

A sync of the whole job costs seconds, so the modules that only query a synced
ledger (history and as-of, export, the analysts' doc queries) share one build
instead of each building their own on every xdist worker. The build runs
under an fcntl lock in the session's temp folder (common to all workers):
conftest starts it in a background process as the session starts (the first
worker to get there wins), the tests that need it run last, and whoever asks
first waits on the lock, then every worker reuses the files. Readers open the
DuckDB file read-only; a module that must write takes its own copy
(`SharedLedger.copy`).

The timeline: acme, globex and initech (sandbox companies 0, 1, 2) are
registered; `before_first_sync`; each is synced once; every mirror is
snapshotted; `between_syncs`; the sandbox clock moves 3 days; acme and globex
are synced again (initech is not, so it has one run).

A second, smaller build (`ACME_ONCE`) is what many tests start with: acme registered
on sandbox company 0 and synced once through the whole job, in the `project`
fixture's layout (conftest's `synced_acme` copies it). The background process makes
it first: it takes one sync, the three-tenant build five. A third (`BROKEN_ACME`) is
the reconciliation tests' start: acme on all four rails of a world where its business
breaks five times as often as the demo's (`BROKEN_COMPANIES`), synced once
(conftest's `broken_acme`).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dataclasses

import dagster as dg
import pytest

from ledger_pipeline.defs.partitions import TENANTS as TENANT_PARTITIONS
from ledger_pipeline.defs.resources import LedgerDuckDB, TenantRegistryResource
from ledger_pipeline.defs.qbo.resources import QboResource
from ledger_pipeline.definitions import build_definitions
from ledger_pipeline.lib import warehouse
from ledger_pipeline.rails.qbo import sandbox as qbo_sandbox
from ledger_pipeline.rails.qbo.entities import ENTITIES

TENANTS = ("acme", "globex", "initech")  # registered on sandbox companies 0, 1, 2
RESYNCED = ("acme", "globex")  # synced a second time after the clock moved
ADVANCE = timedelta(days=3)
MIRROR_ROWS = "select * from mirror.qbo_{table} where tenant_id = ? order by all"
FOUR_RAILS = ("qbo", "stripe", "plaid", "ramp")
# The demo's businesses with acme breaking five times as often, so that each kind shows at the tests' small scale.
BROKEN_COMPANIES = (dataclasses.replace(qbo_sandbox.DEMO_COMPANIES[0], breaks=5.0), *qbo_sandbox.DEMO_COMPANIES[1:])
_ENVIRONMENT = ("DAGSTER_HOME", "LEDGER_DUCKDB_PATH", "LEDGER_STATE_DIR", "LEDGER_TENANTS_PATH")
_FACTS = "facts.pickle"


@dataclass(frozen=True)
class Facts:
    """What the build recorded on the way: instants between its steps, run ids, mirrors after the first syncs."""

    before_first_sync: datetime
    between_syncs: datetime  # after every tenant's first sync, before the clock moved
    runs: dict[str, tuple[str, ...]]  # tenant -> run ids of its syncs, in order
    first_mirrors: dict[tuple[str, str], list[tuple]]  # (tenant, entity table) -> mirror rows after sync 1


def open_project(root: Path, instance: dg.DagsterInstance):
    """A `Project` over the files in root (same layout and settings as conftest's `project` fixture)."""
    from ledger_pipeline_tests.conftest import TEST_SCALE, Project  # conftest imports this module

    qbo = QboResource(state_dir=str(root / "state"), sandbox_scale=TEST_SCALE, sandbox_rate_limit=False)
    defs = build_definitions(
        warehouse=LedgerDuckDB(database=str(root / "ledger.duckdb")),
        qbo=qbo,
        tenants=TenantRegistryResource(path=str(root / "tenants.json")),
    )
    return Project(root, instance, qbo, defs)


@contextmanager
def _hermetic() -> Iterator[None]:
    """Session fixtures run before the autouse per-test one: keep the Makefile's paths out here too."""
    with pytest.MonkeyPatch.context() as mp:
        for name in _ENVIRONMENT:
            mp.delenv(name, raising=False)
        yield


def build(root: Path) -> Facts:
    """Register, sync, snapshot, move the clock and sync again, into the empty folder root."""
    with _hermetic(), dg.DagsterInstance.ephemeral() as instance:
        project = open_project(root, instance)
        for company, tenant in enumerate(TENANTS):
            project.add_tenant(tenant, company=company)
        before = datetime.now(UTC)
        runs = {t: [project.sync(t).run_id] for t in TENANTS}
        conn = warehouse.connect(root / "ledger.duckdb", read_only=True)  # as project.query, once for all 27
        try:
            first_mirrors = {
                (t, e.table): conn.execute(MIRROR_ROWS.format(table=e.table), [t]).fetchall()
                for t in TENANTS for e in ENTITIES
            }  # fmt: skip
        finally:
            conn.close()
        between = datetime.now(UTC)
        project.sandbox.advance(ADVANCE)
        for tenant in RESYNCED:
            runs[tenant].append(project.sync(tenant).run_id)
    _checkpoint(root)
    return Facts(before, between, {t: tuple(r) for t, r in runs.items()}, first_mirrors)


def build_acme_once(root: Path) -> None:
    """acme registered on sandbox company 0 and synced once (`project.sync`: the whole job over its rail, QBO), into
    the empty folder root: the files `project.add_tenant("acme"); project.sync("acme")` leave in the `project`
    fixture's folder. Only the Dagster instance is not kept (a copy starts with a fresh one)."""
    from ledger_pipeline_tests.conftest import project_at  # conftest imports this module

    with _hermetic(), dg.DagsterInstance.ephemeral() as instance:
        project = project_at(root, instance)
        project.add_tenant("acme")
        project.sync("acme")
    _checkpoint(root)


@contextmanager
def broken_world() -> Iterator[None]:
    """The sandbox's businesses are BROKEN_COMPANIES while it lasts (read when a project's sandbox is built)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(qbo_sandbox, "DEMO_COMPANIES", BROKEN_COMPANIES)
        yield


def build_broken_acme(root: Path) -> None:
    """acme registered on sandbox company 0 with all four rails in the broken world and synced once, into root."""
    from ledger_pipeline_tests.conftest import project_at  # conftest imports this module

    with _hermetic(), broken_world(), dg.DagsterInstance.ephemeral() as instance:
        project = project_at(root, instance)
        project.add_tenant("acme", 0, rails=FOUR_RAILS)
        assert project.sync("acme").success
    _checkpoint(root)


def _checkpoint(root: Path) -> None:
    conn = warehouse.connect(root / "ledger.duckdb")
    try:
        conn.execute("checkpoint")  # no WAL left: readers in other processes open a finished file
    finally:
        conn.close()


def _publish_where_it_lies(root: Path) -> None:
    """The read side's views name their files by absolute path: once the build is renamed into place, publish it
    again there (a moved read side is published anew, lib/read_side/publish.py), as the next sync would."""
    from ledger_pipeline.lib.read_side.layout import ReadSide
    from ledger_pipeline.lib.read_side.publish import publish

    conn = warehouse.connect(root / "ledger.duckdb")
    try:
        publish(conn, ReadSide(root / "read"), [], datetime.now(UTC))
        conn.execute("checkpoint")
    finally:
        conn.close()


THREE_TENANTS, ACME_ONCE, BROKEN_ACME = "three-tenants", "acme-once", "broken-acme"
_BUILDS = {ACME_ONCE: build_acme_once, BROKEN_ACME: build_broken_acme, THREE_TENANTS: build}


def _inputs_key() -> str:
    """Names the build by its timeline, so a session never reuses a folder built to another recipe.

    The folder lives in one session's temp folder, so code changes between sessions never see an old build.
    """
    from ledger_pipeline_tests.conftest import TEST_SCALE

    return hashlib.sha256(repr((TENANTS, RESYNCED, ADVANCE, TEST_SCALE)).encode()).hexdigest()[:12]


def built_once(parent: Path, recipe: str = THREE_TENANTS) -> tuple[Path, Facts | None]:
    """The build in parent/shared-ledger-<key> (or parent/<recipe>-<key>): made by the first process to get the
    lock, reused by the rest. Only the three-tenant build has facts (the others: None)."""
    root = parent / (f"shared-ledger-{_inputs_key()}" if recipe == THREE_TENANTS else f"{recipe}-{_inputs_key()}")
    with open(parent / f"{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if this process dies
        if not (root / _FACTS).exists():
            partial = parent / f"{root.name}.partial-{os.getpid()}"
            shutil.rmtree(root, ignore_errors=True)
            partial.mkdir()
            facts = _BUILDS[recipe](partial)
            partial.rename(root)
            _publish_where_it_lies(root)
            (root / _FACTS).write_bytes(pickle.dumps(facts))
    return root, pickle.loads((root / _FACTS).read_bytes())


def start_building(parent: Path, recipes: list[str]) -> subprocess.Popen | None:
    """Make the builds in a background process (in `recipes`' order) while other tests run; None when another
    worker already started it.

    If the process fails, `built_once` in the first test that needs a build
    finds no finished build and builds (and reports the error) itself.
    """
    name = f"shared-ledger-{_inputs_key()}"
    try:
        (parent / f"{name}.started").touch(exist_ok=False)
    except FileExistsError:
        return None
    env = {k: v for k, v in os.environ.items() if k not in _ENVIRONMENT}
    with open(parent / f"{name}.log", "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "ledger_pipeline_tests.shared_ledger", str(parent), *recipes],
            cwd=Path(__file__).resolve().parents[1],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


@dataclass(frozen=True)
class SharedLedger:
    """The shared build: a read-only view of it (`project`) and the facts recorded while building it."""

    project: object  # conftest.Project over the shared files: query it, never sync it
    facts: Facts

    @property
    def root(self) -> Path:
        return self.project.root

    @contextmanager
    def copy(self, dest: Path):
        """A writable `Project` over a copy of the files (fresh Dagster instance, tenant partitions registered)."""
        shutil.copytree(self.root, dest, ignore=shutil.ignore_patterns("*.lock", _FACTS))
        with dg.DagsterInstance.ephemeral() as instance:
            instance.add_dynamic_partitions(TENANT_PARTITIONS.name, list(TENANTS))
            yield open_project(dest, instance)


if __name__ == "__main__":  # the background build: through the imported module, so Facts pickles by its real name
    from ledger_pipeline_tests import shared_ledger

    for recipe in sys.argv[2:] or [shared_ledger.THREE_TENANTS]:
        shared_ledger.built_once(Path(sys.argv[1]), recipe)
