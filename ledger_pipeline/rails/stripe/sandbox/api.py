"""Request routing of the Stripe sandbox: API key, connected account, rate limit, faults, then the endpoint.

Every answer carries `Request-Id` and `Stripe-Version`; errors carry Stripe's `{"error": {...}}` body and
`Stripe-Should-Retry`. Only reads (GET) are served: lists, retrieves by id, the balance and events.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any, Callable

import httpx

from ledger_pipeline.sandbox_kit.faults import malformed
from ledger_pipeline.world.ids import stable_id

from .auth import is_platform_key, presented_key, redacted
from .faults import before_answer
from .index import AccountIndex, previous_attributes
from .lists import (PAGING, ListRequest, check_known, envelope, expand_list, list_request, page, parse_params,
                    time_range)
from .render import View
from .responses import StripeError, error_response, invalid, json_response, missing
from .sandbox import StripeSandbox
from .spec import API_VERSION

EVENT_RETENTION = 30 * 86400
_PATH = re.compile(r"^/v1/(?P<resource>[a-z_]+)(?:/(?P<id>[^/]+))?/?$")
# resource -> (object kind, noun in errors, expandable fields of one object, list filters)
RESOURCES: dict[str, tuple[str, str, frozenset[str], frozenset[str]]] = {
    "customers": ("customer", "customer", frozenset(), frozenset({"email"})),
    "charges": ("charge", "charge", frozenset({"customer", "balance_transaction"}), frozenset({"customer"})),
    "refunds": ("refund", "refund", frozenset({"charge", "balance_transaction"}), frozenset({"charge"})),
    "disputes": ("dispute", "dispute", frozenset({"charge"}), frozenset({"charge"})),
    "payouts": ("payout", "payout", frozenset({"balance_transaction"}), frozenset({"status", "arrival_date"})),
    "balance_transactions": ("txn", "balance transaction", frozenset({"source"}),
                             frozenset({"payout", "type", "source", "currency"})),
    "events": ("event", "event", frozenset(), frozenset({"type", "types", "delivery_success"})),
}
NO_KEY = ("You did not provide an API key. You need to provide your API key in the Authorization header, using "
          "Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').")


def handle(sb: StripeSandbox, request: httpx.Request) -> httpx.Response:
    number = sb.next_request_number()
    headers = {"Request-Id": stable_id("req", "request", number, id(sb), length=14),
               "Stripe-Version": request.headers.get("stripe-version") or API_VERSION}
    try:
        account = _admit(sb, request)
        fired = sb.faults.take(account)
        if fired is not None:
            before_answer(fired[0], fired[1], request)
        response = json_response(200, _route(sb, request, account), headers)
        return malformed(response) if fired is not None and fired[0].kind == "malformed" else response
    except StripeError as error:
        return error_response(error, headers)


def _admit(sb: StripeSandbox, request: httpx.Request) -> str:
    key = presented_key(request.headers.get("authorization"))
    if key is None:
        raise StripeError(401, NO_KEY)
    if not is_platform_key(key):
        raise StripeError(401, f"Invalid API Key provided: {redacted(key)}")
    account = request.headers.get("stripe-account")
    if not account:
        raise StripeError(400, "The sandbox serves the platform's connected accounts only: send a Stripe-Account "
                               "header naming one.", param="Stripe-Account")
    if account not in sb.accounts:
        raise StripeError(403, f"The provided key '{redacted(key)}' does not have access to account '{account}' "
                               "(or that account does not exist). Application access may have been revoked.",
                          code="account_invalid")
    if not sb.limiter.admit(account):
        raise StripeError(429, "Request rate limit exceeded. You can learn more about rate limits here "
                               "https://stripe.com/docs/rate-limits.", code="rate_limit", retry=True)
    return account


def _route(sb: StripeSandbox, request: httpx.Request, account: str) -> dict[str, Any]:
    match = _PATH.match(request.url.path)
    if request.method != "GET" or match is None or (
            match["resource"] not in RESOURCES and not (match["resource"] == "balance" and match["id"] is None)):
        raise StripeError(404, f"Unrecognized request URL ({request.method}: {request.url.path}).")
    params = parse_params(request.url.params)
    with sb.world(account) as (view, index, now):
        if match["resource"] == "balance":
            check_known(params, frozenset({"expand"}))
            return view.balance(now)
        resource, object_id = match["resource"], match["id"]
        kind, noun, expandable, filters = RESOURCES[resource]
        reader = _Reader(view, index, now, request.headers.get("stripe-version") or API_VERSION)
        if object_id is not None:
            check_known(params, frozenset({"expand"}))
            ref = reader.find(kind, noun, object_id)
            return reader.render(kind, ref, expand_list(params, expandable))
        check_known(params, PAGING | filters)
        req = list_request(params, frozenset(f"data.{field}" for field in expandable))
        entries, has_more = reader.list(kind, noun, req, params)
        expand = [path[5:] for path in req.expand]
        data = [reader.render(kind, entry if kind == "event" else entry[2], expand) for entry in entries]
        return envelope(f"/v1/{resource}", data, has_more)


class _Reader:
    """Answers for one request: finds, filters and renders objects as of the clock."""

    def __init__(self, view: View, index: AccountIndex, now: int, api_version: str) -> None:
        self.view, self.index, self.now, self.api_version = view, index, now, api_version
        self.flows = view.flows

    def _visible_event(self, entry: tuple) -> bool:
        return entry[0] >= self.now - EVENT_RETENTION

    def find(self, kind: str, noun: str, object_id: str) -> Any:
        ref = self.index.find(object_id, kind)
        if ref is None or (kind == "event" and not self._visible_event(self.index.entry_of[object_id])):
            raise missing(noun, object_id)
        return self.index.entry_of[object_id] if kind == "event" else ref

    def _deleted(self, index: int) -> bool:
        deleted = self.flows.customers[index].deleted
        return deleted is not None and deleted <= self.now

    def render(self, kind: str, ref: Any, expand: list[str]) -> dict[str, Any]:
        view, now = self.view, self.now
        if kind == "customer":
            return view.deleted_customer(ref) if self._deleted(ref) else view.customer(ref, now)
        if kind == "event":
            return self._event(ref)
        if kind == "txn":
            obj = view.balance_transaction(*ref, now)
            if "source" in expand:
                obj["source"] = self.render(ref[0], ref[1], [])
            return obj
        obj = view.render(kind, ref, now)
        for field in expand:
            if field == "balance_transaction":
                obj[field] = view.balance_transaction(kind, ref, now)
            elif field == "customer":
                obj[field] = self.render("customer", self.flows.charges[ref].customer, [])
            elif field == "charge":
                obj[field] = view.charge(self.flows.obj(kind, ref).charge, now)
        return obj

    def _event(self, entry: tuple) -> dict[str, Any]:
        """An event from its index entry: data.object is the object as of the event."""
        created, event_id, (event_type, kind, index, previous) = entry
        data: dict[str, Any] = {"object": self.view.render(kind, index, created)}
        before = previous_attributes(self.view, previous, kind, index, created)
        if before is not None:
            data["previous_attributes"] = before
        return {"id": event_id, "object": "event", "account": self.view.account_id,
                "api_version": self.api_version, "created": created, "data": data, "livemode": False,
                "pending_webhooks": 0, "request": {"id": None, "idempotency_key": None}, "type": event_type}

    def list(self, kind: str, noun: str, req: ListRequest, params: dict[str, Any]) -> tuple[list, bool]:
        entries = self.index.entries[kind]
        keep: Callable[[tuple], bool] | None = None

        def where(object_id: str) -> tuple | None:
            entry = self.index.entry(object_id, kind)
            if entry is None or (kind == "event" and not self._visible_event(entry)):
                return None
            return entry
        if kind == "customer":
            email = params.get("email")
            keep = lambda e: not self._deleted(e[2]) and (  # noqa: E731
                email is None or self.view.customer(e[2], self.now)["email"] == email)
        elif kind == "charge" and "customer" in params:
            wanted = params["customer"]
            keep = lambda e: self.view.id_of("customer", self.flows.charges[e[2]].customer) == wanted  # noqa: E731
        elif kind in ("refund", "dispute") and "charge" in params:
            wanted = params["charge"]
            keep = lambda e: self.view.id_of("charge", self.flows.obj(kind, e[2]).charge) == wanted  # noqa: E731
        elif kind == "payout":
            keep = self._payout_filter(params)
        elif kind == "txn":
            entries, keep = self._txn_filter(entries, params)
        elif kind == "event":
            req.low = max(req.low or 0, self.now - EVENT_RETENTION)
            keep = self._event_filter(params)
        return page(entries, req, where, noun, keep)

    def _payout_filter(self, params: dict[str, Any]) -> Callable[[tuple], bool] | None:
        status = params.get("status")
        low, high = time_range("arrival_date", params.get("arrival_date"))
        if status is None and low is None and high is None:
            return None

        def keep(entry: tuple) -> bool:
            payout = self.flows.payouts[entry[2]]
            return (status is None or payout.status(self.now) == status) and (
                low is None or payout.arrival >= low) and (high is None or payout.arrival <= high)
        return keep

    def _txn_filter(self, entries: list, params: dict[str, Any]) -> tuple[list, Callable | None]:
        if "payout" in params:
            ref = self.index.find(params["payout"], "payout")
            if ref is None:
                raise missing("payout", params["payout"], "payout")
            payout = self.flows.payouts[ref]
            entries = sorted(self.index.entry_of[self.view.txn_id(*item)] for item in (*payout.items, ("payout", ref)))
        txn_type, source, currency = params.get("type"), params.get("source"), params.get("currency")
        if currency is not None and currency != "usd":
            return [], None
        if txn_type is None and source is None:
            return entries, None
        def keep(entry: tuple) -> bool:
            kind, index = entry[2]
            return (txn_type is None or self.view.balance_transaction(kind, index, self.now)["type"] == txn_type) \
                and (source is None or self.view.id_of(kind, index) == source)
        return entries, keep

    def _event_filter(self, params: dict[str, Any]) -> Callable[[tuple], bool] | None:
        one, many = params.get("type"), params.get("types")
        if one is not None and many is not None:
            raise invalid("types", "You may only specify one of these parameters: type, types.")
        if many is not None:
            if not isinstance(many, list) or len(many) > 20:
                raise invalid("types", "types must be an array of at most 20 event types.")
            wanted = set(many)
            return lambda e: e[2][0] in wanted
        if one is not None:
            return lambda e: fnmatch.fnmatchcase(e[2][0], one)
        return None
