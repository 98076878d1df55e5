"""Ramp's side of the sync skeleton (lib/sync.py). Ramp has no change feed, so each entity is read the way its
declaration says (entities.py):

- whole (users, vendors, cards): every object of every set, the hidden ones included (terminated and never
  activated cards), then the count, so the sweep finds anything gone;
- window (transactions, bills, statements): the default list and each hidden set (declined transactions,
  archived bills) from `lookback_days` before the newest object the last sync saw, reaching back to the oldest
  object the last sync left not final (up to `widen_days`); older ones still open are read again by id. The
  position (JSON) keeps those open ids with their times: `{"open": {id: time}}`. A change to an object already
  final and older than the window is not read again: a sync run with the log asset's `sweep: always` reads every
  set whole;
- updated (reimbursements): `updated_after` the newest `updated_at` seen, less OVERLAP.

A first sync (and one resuming it) reads every set whole and commits every CHECKPOINT_OBJECTS objects, so its
memory does not grow with the business. A first sync killed after such a commit reads every set whole again
(`resume` = RESUME_WHOLE): the objects it had logged cost requests, never rows.

An object is logged only when it differs from its last logged version (lib/entity_log.py), so reading a window
again costs requests, never duplicate rows.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from ledger_pipeline.lib import cursors
from ledger_pipeline.lib.entity_log import Observation
from ledger_pipeline.lib.sync import ChangeFeed, Page, RailCount, Read
from ledger_pipeline.rails.ramp.client import RampClient
from ledger_pipeline.rails.ramp.entities import RampEntity
from ledger_pipeline.rails.ramp.errors import RampMalformedResponse, RampNotFound
from ledger_pipeline.rails.ramp.rail import NAME, RampConnection

OVERLAP = timedelta(seconds=1)  # `updated_after` is strict: start a second early (re-reads cost no rows)
CHECKPOINT_OBJECTS = 2_000  # a first sync commits after about this many objects (~5 MB of Ramp payloads)
RESUME_WHOLE = "whole"  # the cursor's `resume` after a first sync's commit: read every set whole again


class RampSession:
    """One tenant's business as the sync skeleton reads it."""

    rail = NAME

    def __init__(self, client: RampClient, connection: RampConnection) -> None:
        self.client, self.connection = client, connection
        self.account_id = connection.account_id
        self.page_size = client.page_size
        self._listed: dict[str, set[str]] = {}  # entity -> every id a whole read saw this session

    def reads(self, entity: RampEntity, previous: cursors.Cursor, sweep: str) -> Iterator[Read]:
        first = previous.last_synced_at is None or previous.resume is not None
        if previous.resume not in (None, RESUME_WHOLE):
            raise ValueError(f"the Ramp cursor's resume {previous.resume[:80]!r} is not what this sync saved")
        checkpoints = _Checkpoints() if first else None
        if entity.read == "whole":
            yield from self._whole(entity, checkpoints)
        elif entity.read == "window":
            yield from self._window(entity, previous, sweep == "always" or first, checkpoints)
        else:
            yield from self._updated(entity, previous, sweep == "always" or first, checkpoints)

    def ids(self, entity: RampEntity) -> set[str]:
        if entity.name not in self._listed:  # a whole read this session saw them all; else read every set now
            self._listed[entity.name] = {o.entity_id for read in self._whole(entity) if isinstance(read, Page)
                                         for o in read.observations}  # fmt: skip
        return self._listed[entity.name]

    def tombstone(self, entity: RampEntity, entity_id: str) -> dict[str, Any]:
        return {"id": entity_id, "deleted": True}

    def server_now(self) -> datetime | None:
        return self.client.last_date

    def close(self) -> None:
        self.client.close()

    # --- the three ways to read ---------------------------------------------------------------

    def _whole(self, entity: RampEntity, checkpoints: _Checkpoints | None = None) -> Iterator[Read]:
        """Every object of the default list and of each hidden set; then how many there are."""
        listed: set[str] = set()
        for params in _sets(entity, {}):
            for objects in self.client.pages(entity.path, params):
                observations = [Observation(self._id(o, entity), o, "list") for o in objects]
                yield Page(observations, checkpoint=checkpoints and checkpoints.after(len(observations)))
                listed.update(o.entity_id for o in observations)
        self._listed[entity.name] = listed
        yield RailCount(len(listed))

    def _window(self, entity: RampEntity, previous: cursors.Cursor, whole: bool,
                checkpoints: _Checkpoints | None) -> Iterator[Read]:  # fmt: skip
        """Every set from `lookback_days` before the newest object seen, reaching back to the oldest one left open
        (up to `widen_days`); then the open ones older than that, by id. The first sync, and one asked to sweep,
        read every set whole."""
        left_open = {} if checkpoints else _open(previous.position)
        still_open: dict[str, str] = {}
        seen: set[str] = set()
        window: dict[str, str] = {}
        start = None
        if previous.updated_since is not None and not whole:
            start = previous.updated_since - timedelta(days=entity.lookback_days)
            oldest = min((datetime.fromisoformat(t) for t in left_open.values()), default=start)
            start = max(min(start, oldest), previous.updated_since - timedelta(days=entity.widen_days))
            window = {entity.from_param: start.isoformat()}
        for params in _sets(entity, window):
            for objects in self.client.pages(entity.path, params):
                page = self._page(entity, objects, "list", seen, still_open)
                yield dataclasses.replace(page, checkpoint=checkpoints.after(len(objects))) if checkpoints else page
        if not window:  # every set read whole: the sweep's ids, without reading them again
            self._listed[entity.name] = set(seen)
        for entity_id in left_open:
            if entity_id in seen:
                continue
            try:
                obj = self.client.get(entity.path, entity_id)
            except RampNotFound:  # an object Ramp no longer has: logged as gone, never as silence
                yield Page([Observation(entity_id, self.tombstone(entity, entity_id), "read", deleted=True)])
                continue
            yield self._page(entity, [obj], "read", seen, still_open)
        yield ChangeFeed(position=json.dumps({"open": dict(sorted(still_open.items()))}, sort_keys=True))

    def _page(self, entity: RampEntity, objects: list[dict], source: str, seen: set[str],
              still_open: dict[str, str]) -> Page:  # fmt: skip
        """The objects as observations; `high` the newest of their times; the ones not final noted as open."""
        observations, high = [], None
        for obj in objects:
            entity_id = self._id(obj, entity)
            seen.add(entity_id)
            when = _time(obj, entity, self.client.business_id)
            high = when if high is None or when > high else high
            if entity.is_final is not None and not entity.is_final(obj):
                still_open[entity_id] = when.isoformat()
            else:
                still_open.pop(entity_id, None)
            observations.append(Observation(entity_id, obj, source))
        return Page(observations, high=high)

    def _updated(self, entity: RampEntity, previous: cursors.Cursor, whole: bool,
                 checkpoints: _Checkpoints | None) -> Iterator[Read]:  # fmt: skip
        """Everything updated after the newest `updated_at` the last sync saw (everything: the first sync, a sweep)."""
        params = {} if previous.updated_since is None or whole else {
            entity.from_param: (previous.updated_since - OVERLAP).isoformat()}  # fmt: skip
        listed: set[str] = set()
        for objects in self.client.pages(entity.path, params):
            observations, high = [], None
            for obj in objects:
                when = _time(obj, entity, self.client.business_id)
                high = when if high is None or when > high else high
                observations.append(Observation(self._id(obj, entity), obj, "list", source_updated_at=when))
            listed.update(o.entity_id for o in observations)
            yield Page(observations, high=high, checkpoint=checkpoints and checkpoints.after(len(observations)))
        if not params:
            self._listed[entity.name] = listed

    def _id(self, obj: dict, entity: RampEntity) -> str:
        value = obj.get("id")
        if not isinstance(value, str) or not value:
            raise RampMalformedResponse(self.client.business_id, f"/{entity.path}",
                                        f"a {entity.name} without an id came from Ramp")  # fmt: skip
        return value


class _Checkpoints:
    """A first sync's commit points: the page that brings the count of objects read to CHECKPOINT_OBJECTS since
    the last one says the sync may commit there."""

    def __init__(self) -> None:
        self.objects = 0

    def after(self, objects: int) -> str | None:
        self.objects += objects
        if self.objects < CHECKPOINT_OBJECTS:
            return None
        self.objects = 0
        return RESUME_WHOLE


def _sets(entity: RampEntity, params: dict[str, str]) -> list[dict[str, str]]:
    """The default list and each hidden set, with the same window."""
    return [params] + [{**params, name: value} for name, value in entity.hidden]


def _open(position: str | None) -> dict[str, str]:
    """The ids the last sync left not final; anything but what this module saves is refused, not guessed."""
    if position is None:
        return {}
    try:
        saved = json.loads(position)
    except ValueError:
        saved = None
    if not isinstance(saved, dict) or not isinstance(saved.get("open"), dict):
        raise ValueError(f"the Ramp cursor's position {position[:80]!r} is not what this sync saved")
    return saved["open"]


def _time(obj: dict, entity: RampEntity, business_id: str) -> datetime:
    value = obj.get(entity.time_field)
    try:
        when = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        when = None
    if when is None:
        raise RampMalformedResponse(business_id, f"/{entity.path}",
                                    f"a {entity.name}'s {entity.time_field} is not an ISO time: {str(value)[:40]!r}")
    if when.tzinfo is None:  # a date alone (a statement's end_date): midnight UTC
        when = when.replace(tzinfo=UTC)
    return when


__all__ = ["RampSession"]
