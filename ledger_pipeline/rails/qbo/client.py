"""The QuickBooks Online API client the pipeline extracts with: typed, streaming, retrying, secret-safe.

One `QboClient` serves one realm (company). It speaks the real QBO wire format over httpx, so the
same code talks to production or, given the sandbox's transport or URL, to the offline emulator.
Paging rules live in `paging.py`, retries in `retry.py`, tokens in `oauth.py`; this module wires
them to HTTP and turns every failure into a `QboError` naming realm, entity and QBO's code.
Not thread-safe: use one client per thread (they may share a token store).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta, timezone
from types import TracebackType
from typing import TypeVar

import httpx

from ledger_pipeline.lib.tls import shared_ssl_context
from ledger_pipeline.rails.qbo import paging, reports, wire
from ledger_pipeline.rails.qbo.entities import QboEntity, entity as lookup_entity
from ledger_pipeline.rails.qbo.errors import (
    ErrorContext,
    QboAuthError,
    QboCdcWindowError,
    QboError,
    QboMalformedResponse,
)
from ledger_pipeline.rails.qbo.oauth import QboCredentials, TokenManager, TokenStore, validate_realm_id
from ledger_pipeline.rails.qbo.paging import QboPage
from ledger_pipeline.rails.qbo.reports import QboReport
from ledger_pipeline.rails.qbo.retry import RETRY_STATUSES, Retryable, RetryPolicy

__all__ = ["PRODUCTION_BASE_URL", "PRODUCTION_TOKEN_URL", "QboClient", "QboCredentials", "QboPage", "QboReport"]

PRODUCTION_BASE_URL = "https://quickbooks.api.intuit.com"
PRODUCTION_TOKEN_URL = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"
MINOR_VERSION = "75"
MAX_PAGE_SIZE = 1000
PARTIES_PER_REQUEST = 500  # Ids in one filtered report request: ~3.5 kB of URL at 6-digit Ids
# Token refreshes one logical request may trigger on 401 before giving up (the second covers
# adopting another client's token that turns out to be dead as well).
MAX_AUTH_REFRESHES = 2

logger = logging.getLogger(__name__)
T = TypeVar("T")


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class QboClient:
    """Reads one QBO company: counts, streamed query pages, the Id sweep, CDC changes and reports."""

    def __init__(
        self,
        realm_id: str,
        credentials: QboCredentials,
        *,
        token_store: TokenStore,
        base_url: str = PRODUCTION_BASE_URL,
        token_url: str = PRODUCTION_TOKEN_URL,
        transport: httpx.BaseTransport | None = None,
        page_size: int = MAX_PAGE_SIZE,
        overlap: timedelta = timedelta(minutes=5),
        max_retries: int = 6,
        backoff_base: float = 0.5,
        backoff_cap: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 30.0,
        clock: Callable[[], datetime] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.realm_id = validate_realm_id(realm_id)
        if not isinstance(credentials, QboCredentials):
            raise TypeError("credentials must be a QboCredentials")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")
        if overlap < timedelta(0):
            raise ValueError(f"overlap must not be negative, got {overlap}")
        self._ctx = ErrorContext(self.realm_id)
        if not credentials.client_id or not credentials.client_secret:
            raise self._ctx.error(QboAuthError, None, "missing client id or client secret in the credentials")
        self.base_url = base_url.rstrip("/")
        self.page_size = page_size
        self.overlap = overlap
        self._clock = clock or _utc_now
        self._server_time: tuple[datetime, float] | None = None  # (QBO's "time", monotonic when seen)
        self._policy = RetryPolicy(max_retries, backoff_base, backoff_cap, sleep, rng or random.Random())
        self._http = httpx.Client(
            transport=transport, timeout=timeout, follow_redirects=False, verify=shared_ssl_context()
        )
        self._tokens = TokenManager(
            self.realm_id, credentials, token_store, self._http, token_url, self._policy, self._ctx, self._clock
        )

    def __repr__(self) -> str:
        return f"QboClient(realm_id={self.realm_id!r}, base_url={self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> QboClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- public reads -------------------------------------------------------------------------

    def count(self, entity: str) -> int:
        """Number of objects of `entity` now, inactive name-list rows included."""
        ent = lookup_entity(entity)
        return self._query(wire.count_query(ent), ent, wire.count_value)

    def pages(self, entity: str, *, updated_since: datetime | None = None) -> Iterator[QboPage]:
        """Stream pages of objects with LastUpdatedTime >= updated_since - overlap (all if None).

        Validates its arguments now; requests happen one page at a time as the iterator is consumed.
        Duplicates across pages are possible (the newest second of a page is read again) and harmless.
        """
        ent = lookup_entity(entity)
        since = None
        if updated_since is not None:
            since = wire.require_aware(updated_since, "updated_since")
            earliest = datetime.min.replace(tzinfo=timezone.utc) + self.overlap
            since = since - self.overlap if since > earliest else None  # no lower bound that early

        def fetch(query: str) -> tuple[list[dict], list[datetime]]:
            def read(body: dict) -> tuple[list[dict], list[datetime]]:
                objects = wire.query_objects(body, ent.name)
                return objects, wire.stamped(objects)

            return self._query(query, ent, read)

        return self._guard(paging.keyset_pages(ent, fetch, since, self.page_size), ent)

    def ids(self, entity: str) -> set[str]:
        """Every current Id of `entity` (inactive included), for the deletion sweep."""
        ent = lookup_entity(entity)

        def fetch(query: str) -> list[str]:
            return self._query(query, ent, lambda body: wire.query_ids(body, ent.name))

        try:
            return paging.id_sweep(ent, fetch, self.page_size)
        except paging.UnstableSweepError as exc:
            raise self._ctx.error(QboError, ent.name, f"Id sweep failed: {exc}") from None

    def changes(self, entity: str, *, since: datetime) -> Iterator[dict]:
        """CDC for one entity since `since`, tombstones (status "Deleted") included, oldest first.

        A response at the 1000-object cap is followed by another from the newest second seen.
        `since` older than 30 days raises QboCdcWindowError now, before any request.
        """
        ent = lookup_entity(entity)
        start = wire.require_aware(since, "since")
        oldest = self.server_now() - paging.CDC_MAX_AGE
        if wire.floor_second(start) < oldest:
            raise self._ctx.error(
                QboCdcWindowError,
                ent.name,
                f"CDC since {wire.qbo_literal(start)} is older than QBO's 30-day change window "
                f"(oldest allowed {wire.qbo_literal(oldest)}); do a full read instead",
            )

        def fetch(cursor: datetime) -> tuple[list[dict], list[datetime], int]:
            params = {"entities": ent.name, "changedSince": wire.qbo_literal(cursor)}
            return self._get("cdc", params, ent.name, lambda body: wire.cdc_objects(body, ent.name))

        return self._guard(paging.cdc_narrowing(ent, fetch, start), ent)

    def report(self, name: str, *, report_date: date | None = None, parties: list[str] | None = None) -> QboReport:
        """A QBO report (control totals to reconcile mirrors against); no `report_date` = the company's today.

        `name` must be one of reports.SUPPORTED_REPORTS (checked before any request). `parties` keeps only
        those vendors / customers (QBO's `vendor` / `customer` filter), asked PARTIES_PER_REQUEST at a time
        so the URL stays short, and answered as one report; an empty list asks nothing.
        """
        name = reports.check_report_name(name)
        day = reports.check_report_date(report_date)
        params = {"report_date": day.isoformat()} if day is not None else {}
        if parties is None:
            return self._get(f"reports/{name}", params, name, lambda body: reports.parse_report(body, name))
        ids = reports.check_parties(name, parties)
        chunks = [ids[i : i + PARTIES_PER_REQUEST] for i in range(0, len(ids), PARTIES_PER_REQUEST)]
        parts = [
            self._get(
                f"reports/{name}", {**params, reports.party_param(name): ",".join(chunk)}, name,
                lambda body: reports.parse_report(body, name),
            )
            for chunk in chunks
        ]  # fmt: skip
        if not parts:
            return reports.QboReport(name, day, None, [], [], {})
        return reports.merged(parts)

    def server_now(self) -> datetime:
        """QBO's clock as last reported in a response's `time` (plus time elapsed since), else `clock()`.

        The 30-day CDC window is QBO's, so it is judged by QBO's clock; before the first response the
        client's own clock stands in.
        """
        if self._server_time is None:
            return self._clock()
        seen, at = self._server_time
        return seen + timedelta(seconds=time.monotonic() - at)

    # --- plumbing -----------------------------------------------------------------------------

    def _guard(self, pages: Iterator[T], ent: QboEntity) -> Iterator[T]:
        """Turn a paging loop's own complaints into QboErrors while streaming its items."""
        try:
            yield from pages
        except paging.CdcOverflowError as exc:
            raise self._ctx.error(QboCdcWindowError, ent.name, str(exc)) from None
        except wire.PageShapeError as exc:
            raise self._ctx.error(QboMalformedResponse, ent.name, f"inconsistent pages: {exc}") from None

    def _query(self, query: str, ent: QboEntity, read: Callable[[dict], T]) -> T:
        logger.debug("QBO realm %s, entity %s: query %s", self.realm_id, ent.name, query)
        return self._get("query", {"query": query}, ent.name, read)

    def _get(self, endpoint: str, params: dict[str, str], subject: str, read: Callable[[dict], T]) -> T:
        """One logical GET: token handling, retries, `read` inside the retry loop; errors name `subject`."""
        url = f"{self.base_url}/v3/company/{self.realm_id}/{endpoint}"
        full_params = {**params, "minorversion": MINOR_VERSION}
        refreshes = 0

        def attempt() -> T:
            nonlocal refreshes
            while True:
                token = self._tokens.access_token(subject)
                try:
                    response = self._http.get(
                        url,
                        params=full_params,
                        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                    )
                except httpx.TransportError as exc:
                    # not chained: httpx errors hold the request, Authorization header included
                    raise Retryable("transport", f"{type(exc).__name__} on {endpoint}: {exc}") from None
                if response.status_code == 401 and refreshes < MAX_AUTH_REFRESHES:
                    refreshes += 1
                    logger.info("QBO realm %s, entity %s: access token refused (HTTP 401); refreshing",
                                self.realm_id, subject)
                    self._tokens.refresh(stale=token, entity=subject)
                    continue
                return self._read_response(response, endpoint, subject, read)

        return self._policy.run(attempt, self._ctx, subject, endpoint)

    def _read_response(
        self, response: httpx.Response, endpoint: str, subject: str, read: Callable[[dict], T]
    ) -> T:
        if response.status_code in RETRY_STATUSES:
            raise wire.transient(response, endpoint)
        if response.status_code != 200:
            raise wire.final_error(response, endpoint, subject, self._ctx)
        body = wire.json_body(response, endpoint)
        try:
            self._server_time = (wire.parse_qbo_time(body.get("time")), time.monotonic())
        except wire.PageShapeError:
            pass  # `time` is informational; a response without it is still a good response
        if "Fault" in body:
            raise wire.final_error(response, endpoint, subject, self._ctx)
        try:
            return read(body)
        except wire.PageShapeError as exc:
            raise Retryable("malformed", f"{endpoint} response: {exc}", status=200) from None
