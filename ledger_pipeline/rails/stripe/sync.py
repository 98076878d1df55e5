"""Stripe's side of the sync skeleton (lib/sync.py): lists, the events feed, and a re-list when events aged out.

- First sync: the newest event id is taken as the position *before* the objects are listed, so a change made
  while listing comes in through the events next time (logged once: a re-read version is skipped by hash).
  The listing runs newest first in windows of `created` of about WINDOW_OBJECTS objects, each committed with
  a cursor that resumes below it (`created` <= the window's oldest): a killed first sync of a large account
  goes on where it was.
- Incremental: the events of the entity's types after the saved position; each event whose `data.object` is
  this entity is a version (source `event`), a `*.deleted` event an `op = deleted`. An object another event
  changed without one of its own (a disputed charge) is read again by id (source `read`). The position is
  the newest event read, or, when none came, the newest event of any type read just before: a quiet entity's
  position keeps up, so it does not age out. Stripe keeps events 30 days: an older position is refused, and
  the entity is then listed whole and swept for disappeared ids.
- Balance transactions have no events. They are listed again from `created` LOOKBACK before the newest one
  seen, which re-reads those whose status still moves (pending -> available within days).
- A payout's composition (entities.py) is read with one list per payout: for every paid payout of the first
  listing, then for the payouts its events (`payout.paid`, `payout.reconciliation_completed`) show settled, so an
  incremental sync reads only the payouts settled since. A composition read again is the same payload, logged once.
Stripe has no count endpoint and tells no clock, so the skeleton neither counts nor checks the clock here.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from ledger_pipeline.lib import cursors
from ledger_pipeline.lib.entity_log import Observation
from ledger_pipeline.lib.sync import ChangeFeed, Page, Read
from ledger_pipeline.rails.stripe.client import MAX_LIMIT, StripeClient, StripePage
from ledger_pipeline.rails.stripe.entities import StripeEntity
from ledger_pipeline.rails.stripe.errors import StripeEventsExpired, StripeMalformedResponse
from ledger_pipeline.rails.stripe.rail import NAME

LOOKBACK = timedelta(days=14)  # longer than a balance transaction stays pending
WINDOW_OBJECTS = 10_000  # a first listing commits after about this many objects (a window of `created`)
EVENTS_REFUSED = "events position older than Stripe's 30 days"


class StripeSession:
    """One tenant's connected account as the sync skeleton reads it, through its client."""

    rail = NAME

    def __init__(self, client: StripeClient) -> None:
        self.client = client
        self.account_id = client.account_id
        self.page_size = MAX_LIMIT  # every list the sync reads asks for full pages
        self._listed: dict[str, set[str]] = {}  # ids a whole listing saw this session: the sweep needs no re-list

    def reads(self, entity: StripeEntity, previous: cursors.Cursor, sweep: str) -> Iterator[Read]:
        if previous.resume is not None:  # a first listing a checkpoint committed part of: on from its window
            yield from self._first_listing(entity, created_lte=_resume_instant(previous.resume, entity))
            return
        if not entity.has_events:
            if previous.updated_since is None:
                yield from self._first_listing(entity)
                return
            yield from self._list(entity, created_gte=previous.updated_since - LOOKBACK)
            return
        if previous.position is None:  # never read: the feed starts where the listing does
            yield ChangeFeed(position=self.client.latest_event_id())
            yield from self._first_listing(entity)
            return
        latest = self.client.latest_event_id()  # before the read: an event of ours after it comes next time
        try:
            events = list(self.client.events(after_event_id=previous.position, types=list(entity.event_types)))
        except StripeEventsExpired:
            yield ChangeFeed(refused=EVENTS_REFUSED, position=latest)
            yield from self._list(entity)
            return
        mine = [e for e in events if _object(e, self.account_id).get("object") == entity.name]
        versions = [self._from_event(e, entity) for e in mine]
        versions += [self._read_again(entity, entity_id) for entity_id in self._touched(entity, events)]
        if entity.per_payout:  # the payouts the events show settled, each once, as of its newest event
            payouts = {obj.get("id"): obj for obj in (_object(e, self.account_id) for e in events)}
            versions += self._versions(entity, list(payouts.values()), "read")
        yield ChangeFeed(versions, position=events[-1]["id"] if events else latest or previous.position)

    def ids(self, entity: StripeEntity) -> set[str]:
        if entity.name not in self._listed:
            list(self._list(entity))
        return self._listed[entity.name]

    def tombstone(self, entity: StripeEntity, entity_id: str) -> dict[str, Any]:
        return {"id": entity_id, "object": entity.name, "deleted": True}

    def server_now(self) -> datetime | None:
        return None

    def close(self) -> None:
        self.client.close()

    def _first_listing(self, entity: StripeEntity, created_lte: int | None = None) -> Iterator[Page]:
        """The whole entity newest first, in `created` windows of about WINDOW_OBJECTS objects: the page closing a
        window carries its oldest `created` as a checkpoint, where the sync commits and a killed sync resumes
        (listing `created` <= it again: the objects of that second come twice and are logged once)."""
        in_window = 0
        created_lt = None if created_lte is None else created_lte + 1
        for page in self.client.pages(entity.path, created_lt=created_lt, extra_params=_filters(entity)):
            observations = self._versions(entity, page.objects, "list")
            in_window += len(observations)
            checkpoint = None
            if in_window >= WINDOW_OBJECTS and page.oldest_created is not None:
                checkpoint, in_window = str(page.oldest_created), 0
            yield Page(observations, _instant(page), checkpoint)

    def _list(self, entity: StripeEntity, created_gte: datetime | None = None) -> Iterator[Page]:
        seen: set[str] = set()
        for page in self.client.pages(entity.path, created_gte=created_gte, extra_params=_filters(entity)):
            observations = self._versions(entity, page.objects, "list")
            seen.update(o.entity_id for o in observations)
            yield Page(observations, _instant(page))
        if created_gte is None:
            self._listed[entity.name] = seen

    def _touched(self, entity: StripeEntity, events: list[dict[str, Any]]) -> list[str]:
        """Ids of this entity that other objects' events changed without an event of its own, in event order."""
        fields = dict(entity.touched_by)
        touched: dict[str, None] = {}
        for event in events:
            obj = _object(event, self.account_id)
            ref = obj.get(fields[obj.get("object")]) if obj.get("object") in fields else None
            ref = ref.get("id") if isinstance(ref, dict) else ref  # an expanded reference is the object itself
            if isinstance(ref, str) and ref:
                touched[ref] = None
        return list(touched)

    def _read_again(self, entity: StripeEntity, entity_id: str) -> Observation:
        obj = self.client.retrieve(entity.path, entity_id)
        return Observation(_id(obj, entity, self.account_id, "read"), obj, "read", deleted=bool(obj.get("deleted")))

    def _versions(self, entity: StripeEntity, objects: list[dict[str, Any]], source: str) -> list[Observation]:
        """Listed objects as versions; for a composition, the composition of each settled payout among them."""
        if not entity.per_payout:
            return [Observation(_id(obj, entity, self.account_id, source), obj, source,
                                deleted=bool(obj.get("deleted"))) for obj in objects]  # fmt: skip
        return [Observation(_id(payout, entity, self.account_id, source), composition(self.client, payout), source)
                for payout in objects if settled(payout)]  # fmt: skip

    def _from_event(self, event: dict[str, Any], entity: StripeEntity) -> Observation:
        obj = _object(event, self.account_id)
        created = event.get("created")
        deleted = str(event.get("type", "")).endswith(".deleted") or bool(obj.get("deleted"))
        return Observation(
            entity_id=_id(obj, entity, self.account_id, "events"),
            payload=obj,
            source="event",
            deleted=deleted,
            source_version=event.get("id"),  # the event that produced this version
            source_updated_at=datetime.fromtimestamp(created, UTC) if isinstance(created, int) else None,
        )


def listed(client: StripeClient, entity: StripeEntity) -> list[dict[str, Any]]:
    """Every object of the entity as a whole listing logs it now: what the mirror of an up-to-date log holds."""
    return [o.payload for page in StripeSession(client)._list(entity) for o in page.observations]


PART_FIELDS = ("id", "type", "source", "amount", "fee", "net")  # what a composition keeps of each transaction


def settled(payout: dict[str, Any]) -> bool:
    """Whether Stripe lists what the payout settled: an automatic payout, paid, its reconciliation completed."""
    return (payout.get("object") == "payout" and payout.get("automatic") is True and payout.get("status") == "paid"
            and payout.get("reconciliation_status") == "completed")  # fmt: skip


def composition(client: StripeClient, payout: dict[str, Any]) -> dict[str, Any]:
    """A settled payout's composition as logged: its id, `created` and currency, and each balance transaction Stripe
    lists for it (its own among them), in Stripe's order, reduced to what moved: id, type, source, amount, fee, net."""
    listed = client.payout_balance_transactions(payout["id"])
    return {"id": payout["id"], "object": "payout_composition", "created": payout.get("created"),
            "currency": payout.get("currency"),
            "balance_transactions": [{name: obj.get(name) for name in PART_FIELDS} for obj in listed]}


def _filters(entity: StripeEntity) -> dict[str, str] | None:
    """A composition's listing asks Stripe for paid payouts only."""
    return {"status": "paid"} if entity.per_payout else None


def _object(event: dict[str, Any], account_id: str) -> dict[str, Any]:
    obj = (event.get("data") or {}).get("object")
    if not isinstance(obj, dict):
        raise StripeMalformedResponse(account_id, "events", f"event {event.get('id')!r} has no data.object")
    return obj


def _id(obj: dict[str, Any], entity: StripeEntity, account_id: str, feed: str) -> str:
    entity_id = obj.get("id")
    if not isinstance(entity_id, str) or not entity_id:
        raise StripeMalformedResponse(account_id, entity.path, f"a {entity.name} without an id came from the {feed}")
    return entity_id


def _resume_instant(resume: str, entity: StripeEntity) -> int:
    """The `created` (Unix seconds) a checkpoint saved; anything else in the cursor is refused, not guessed."""
    if not resume.isdigit():
        raise ValueError(f"the {entity.name} cursor's resume point {resume!r} is not a Unix time this sync saved")
    return int(resume)


def _instant(page: StripePage) -> datetime | None:
    return datetime.fromtimestamp(page.newest_created, UTC) if page.newest_created is not None else None
