"""QboSandbox: the offline QuickBooks Online, in-process behind an httpx transport.

Books are a pure function of (seed, company spec, simulated instant); the simulated clock, the
refresh-token generations, injected faults and touches are shared state (optionally a file shared
by several processes). Companies are built lazily on their first request.
"""

from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from ..entities import entity as lookup_entity
from . import drift as odd
from .history import GENESIS_SEC, Company, stable_seed
from .render_txn import render
from .reports import REPORTS
from .search import Searcher
from .spec import (DEFAULT_START, DEMO_COMPANIES, GENESIS, MAX_CLOCK_STEP, MAX_SKEW, QBO_RATE_LIMIT, CompanySpec,
                   Fault, InvalidSetting, RateLimit)
from .state import FaultSlot, SharedState, StateStore
from .switches import SandboxSwitches
from .throttle import Limiter
from .timefmt import epoch_us, from_epoch_us


class SandboxTransport(httpx.BaseTransport):
    """httpx transport answering every request from a QboSandbox, without any socket."""

    def __init__(self, sandbox: QboSandbox) -> None:
        self.sandbox = sandbox

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        return self.sandbox.handle(request)


class QboSandbox(SandboxSwitches):
    """A deterministic emulator of the QBO Accounting API v3 for a set of synthetic companies.

    With `state_path`, the clock, refresh-token generations, faults and touches live in that file
    and `start` only applies when the file does not exist yet. `specs`, `store`, `limiter`, `lock`
    and `searcher()` are the package's own plumbing (used by api.py and friends), not the contract.
    """

    def __init__(self, companies: tuple[CompanySpec, ...] | list[CompanySpec] = DEMO_COMPANIES, *, seed: int = 7,
                 start: datetime = DEFAULT_START, state_path: Path | str | None = None,
                 rate_limit: RateLimit | None = QBO_RATE_LIMIT) -> None:
        self.specs: dict[str, CompanySpec] = {}
        for spec in companies:
            if spec.realm_id in self.specs:
                raise ValueError(f"duplicate sandbox realm id {spec.realm_id}")
            self.specs[spec.realm_id] = spec
        if not self.specs:
            raise ValueError("a sandbox needs at least one company")
        self.seed = seed
        start_us = self._check_instant(start)
        fingerprint = f"{stable_seed(seed, *sorted(map(repr, self.specs.values()))):016x}"
        self.store = StateStore(Path(state_path) if state_path is not None else None,
                                SharedState(clock_us=start_us, fingerprint=fingerprint))
        self.limiter = Limiter(rate_limit)
        self.lock = threading.RLock()
        self._searchers: dict[str, Searcher] = {}

    def __repr__(self) -> str:
        return f"QboSandbox(realms={list(self.specs)}, seed={self.seed}, now={self.now.isoformat()})"

    @property
    def companies(self) -> tuple[CompanySpec, ...]:
        return tuple(self.specs.values())

    # --- clock ------------------------------------------------------------------------------
    @staticmethod
    def _check_instant(instant: datetime) -> int:
        us = epoch_us(instant)
        if us < GENESIS_SEC * 1_000_000:
            raise ValueError(f"sandbox books start at {GENESIS.isoformat()}; {instant.isoformat()} is before that")
        return us

    @property
    def now(self) -> datetime:
        """The simulated clock (UTC)."""
        return from_epoch_us(self.store.view().clock_us)

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward by `delta`: from 0 up to MAX_CLOCK_STEP (365 days) at a time."""
        if not isinstance(delta, timedelta) or not timedelta(0) <= delta <= MAX_CLOCK_STEP:
            raise InvalidSetting("advance", f"a duration from 0 to {MAX_CLOCK_STEP.days} days (set_clock goes back)",
                                 delta)
        step = delta // timedelta(microseconds=1)
        self.store.mutate(lambda s: self._set(s, s.clock_us + step))

    def set_clock(self, instant: datetime) -> None:
        target = self._check_instant(instant)
        self.store.mutate(lambda s: self._set(s, target))

    @staticmethod
    def _set(state: SharedState, target: int) -> None:
        if target < GENESIS_SEC * 1_000_000:
            raise ValueError(f"sandbox books start at {GENESIS.isoformat()}; cannot move the clock before it")
        if target - state.clock_us > MAX_CLOCK_STEP // timedelta(microseconds=1):
            raise InvalidSetting("set", f"an instant at most {MAX_CLOCK_STEP.days} days after the clock "
                                 f"({from_epoch_us(state.clock_us).isoformat()})", None,
                                 f"set must be an instant at most {MAX_CLOCK_STEP.days} days after the clock "
                                 f"({from_epoch_us(state.clock_us).isoformat()}), got one "
                                 f"{(target - state.clock_us) // 86_400_000_000} days after it")
        if target < state.clock_us:  # history after the new instant is regenerated: manual touches go
            state.touches = [t for t in state.touches if t[0] <= target // 1_000_000]
        state.clock_us = target

    # --- faults and tokens ----------------------------------------------------------------------
    def _realm(self, realm_id: str) -> CompanySpec:
        try:
            return self.specs[realm_id]
        except KeyError:
            raise ValueError(f"unknown sandbox realm {realm_id!r}; known: {', '.join(self.specs)}") from None

    def inject(self, realm_id: str, fault: Fault) -> None:
        self._realm(realm_id)
        self.store.mutate(lambda s: s.faults.setdefault(realm_id, []).append(FaultSlot(fault)))

    def clear_faults(self, realm_id: str | None = None) -> None:
        if realm_id is not None:
            self._realm(realm_id)
        self.store.mutate(lambda s: s.faults.clear() if realm_id is None else s.faults.pop(realm_id, None))

    def faults(self, realm_id: str) -> list[Fault]:
        """Faults still armed for a realm."""
        return [slot.fault for slot in self.store.view().faults.get(realm_id, [])]

    def take_fault(self, realm_id: str, endpoint: str, subjects: frozenset[str] = frozenset()
                   ) -> tuple[Fault, int] | None:
        """The fault that fires for this request, with its hit number (1-based), or None.

        `subjects` are the entities the request is about; a fault with an `entity` watches only those."""
        if not self.store.view().faults.get(realm_id):
            return None

        def take(state: SharedState) -> tuple[Fault, int] | None:
            fired = None
            slots = state.faults.get(realm_id, [])
            for slot in slots:
                if slot.fault.endpoint not in ("any", endpoint) or (
                        endpoint == "token" and slot.fault.kind == "expire_token") or (
                        slot.fault.entity is not None and slot.fault.entity not in subjects):
                    continue
                if slot.passed < slot.fault.after:
                    slot.passed += 1
                elif fired is None:
                    slot.hits += 1
                    fired = (slot.fault, slot.hits)
            state.faults[realm_id] = [s for s in slots if s.fault.count == -1 or s.hits < s.fault.count]
            return fired
        return self.store.mutate(take)

    # --- report skews -----------------------------------------------------------------------------
    def skew_report(self, realm_id: str, report_name: str, entity_id: str, delta: Decimal) -> None:
        """Make the served report disagree with the books: `delta` is added to the party's Current and
        Total cells (and the grand total), so reconciliation tests can plant a difference.

        Replaces an earlier skew of the same row; Decimal(0) removes it. Persisted like faults.
        """
        self._realm(realm_id)
        if report_name not in REPORTS:
            raise ValueError(f"unknown report {report_name!r}; known: {', '.join(REPORTS)}")
        if isinstance(delta, bool) or not isinstance(delta, (Decimal, int)) or not Decimal(delta).is_finite() \
                or abs(Decimal(delta)) > MAX_SKEW or Decimal(delta) != Decimal(delta).quantize(Decimal("0.01")):
            raise InvalidSetting("delta", f"a Decimal with at most two decimals from -{MAX_SKEW} to {MAX_SKEW}", delta)
        party = REPORTS[report_name][1]
        with self.lock:
            _, table = self._table(realm_id, party)
            slot = _slot(entity_id)
            if not (0 <= slot < len(table) and table.is_live(slot)):
                raise ValueError(f"realm {realm_id}: no {party} with Id {entity_id!r}")
        cents = int(Decimal(delta) * 100)

        def change(state: SharedState) -> None:
            rows = state.skews.setdefault(realm_id, {}).setdefault(report_name, {})
            if cents:
                rows[entity_id] = cents
            else:
                rows.pop(entity_id, None)
            if not rows:
                del state.skews[realm_id][report_name]
            if not state.skews[realm_id]:
                del state.skews[realm_id]
        self.store.mutate(change)

    def report_skews(self, realm_id: str) -> dict[tuple[str, str], Decimal]:
        """(report name, party Id) -> delta of every skew switched on for a realm."""
        return {(report, party): Decimal(cents).scaleb(-2)
                for report, rows in self.store.view().skews.get(realm_id, {}).items() for party, cents in rows.items()}

    def clear_report_skews(self, realm_id: str | None = None) -> None:
        if realm_id is not None:
            self._realm(realm_id)
        self.store.mutate(lambda s: s.skews.clear() if realm_id is None else s.skews.pop(realm_id, None))

    # --- HTTP -------------------------------------------------------------------------------
    def transport(self) -> httpx.BaseTransport:
        return SandboxTransport(self)

    def handle(self, request: httpx.Request) -> httpx.Response:
        from .api import handle  # api imports this module


        return handle(self, request)

    # --- books ------------------------------------------------------------------------------
    def searcher(self, realm_id: str, now_us: int) -> Searcher:
        """The realm's books replayed to `now_us` (callers hold `self.lock` while they use them)."""
        spec = self._realm(realm_id)
        searcher = self._searchers.get(realm_id)
        if searcher is None:
            searcher = self._searchers[realm_id] = Searcher(Company(spec, self.seed))
        touches = [(t[0], t[2], t[3], t[4]) for t in self.store.view().touches if t[1] == realm_id]
        searcher.company.advance_to(now_us // 1_000_000, touches)
        return searcher

    def _table(self, realm_id: str, entity: str) -> tuple[Company, Any]:
        lookup_entity(entity)
        company = self.searcher(realm_id, self.store.view().clock_us).company
        return company, company.books.tables[entity]

    def live_objects(self, realm_id: str, entity: str) -> dict[str, dict]:
        """Id -> payload of every object that exists now (inactive name-list rows included), drifts applied."""
        drifts = self.drift_map(realm_id)
        with self.lock:
            company, table = self._table(realm_id, entity)
            objects = (odd.apply(render(company, entity, s), entity, drifts.get((entity, str(s + 1)), []))
                       for s in range(len(table)) if table.is_live(s))
            return {obj["Id"]: obj for obj in objects}

    def deleted_ids(self, realm_id: str, entity: str) -> set[str]:
        return set(self.deletions(realm_id, entity))

    def deletions(self, realm_id: str, entity: str) -> dict[str, datetime]:
        """Id -> when the books deleted it, of every object deleted by now (the time CDC's tombstone gives)."""
        with self.lock:
            _, table = self._table(realm_id, entity)
            return {str(s + 1): from_epoch_us(table.updated[s] * 1_000_000)
                    for s in range(len(table)) if not table.is_live(s)}

    def touch(self, realm_id: str, entity: str, object_id: str, *, backdate: timedelta = timedelta(0)) -> None:
        """Bump an existing object now (SyncToken + 1, LastUpdatedTime = now), e.g. while a test pages.

        With `backdate`, the new version's LastUpdatedTime is that much before the clock, even if that is
        earlier than the version it replaces (QBO's clock going backwards)."""
        seconds = int(backdate.total_seconds())
        if seconds < 0:
            raise ValueError(f"backdate must not be negative, got {backdate}")
        with self.lock:
            _, table = self._table(realm_id, entity)
            slot = _slot(object_id)
            if not (0 <= slot < len(table) and table.is_live(slot)):
                raise ValueError(f"realm {realm_id}: no live {entity} with Id {object_id!r}")
            self.store.mutate(lambda s: s.touches.append((s.clock_us // 1_000_000, realm_id, entity, slot, seconds)))


_OBJECT_ID = re.compile(r"[1-9][0-9]{0,19}")


def _slot(object_id: object) -> int:
    """The table slot of a QBO Id as QBO writes it (ASCII digits, no leading zero), or -1 for anything else."""
    if isinstance(object_id, int) and not isinstance(object_id, bool):
        object_id = str(object_id)
    return int(object_id) - 1 if isinstance(object_id, str) and _OBJECT_ID.fullmatch(object_id) else -1
