"""Request routing of the Ramp sandbox: the path, then for the data API the bearer token (401), the rate limit
(429), faults, the token's scope (403), the parameters (422 / 400) and the list or the object (404).

Every answer, errors included, is JSON with an `x-trace-id` header. Paths live under /developer/v1: POST
/token, and GET on seven lists and their objects by id.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from . import filters, render
from .auth import read_access_token, state_key
from .faults import before_answer, malformed
from .lists import Plan, Query, next_url, page
from .responses import (INSUFFICIENT_SCOPE, RATE_LIMITED, TOKEN_EXPIRED, OAuthError, RampError, error_response,
                        json_response, not_found, oauth_response, unauthorized)
from .sandbox import RampSandbox
from .sources import RampView
from .spec import API_PREFIX
from .token import handle_token


@dataclass(frozen=True)
class Resource:
    """One list of the data API: its scope, its filters, how an object renders and what a 404 calls it."""

    scope: str
    plan: Callable[[RampView, Query], Plan]
    listing: Callable[[RampView], Any]
    render: Callable[[RampView, Any], dict[str, Any]]
    noun: str


RESOURCES: dict[str, Resource] = {
    "transactions": Resource("transactions:read", filters.transactions, lambda v: v.transactions, render.transaction,
                             "Transaction"),
    "bills": Resource("bills:read", filters.bills, lambda v: v.bills, render.bill, "Bill"),
    "vendors": Resource("vendors:read", filters.vendors, lambda v: v.vendors, render.vendor, "Vendor"),
    "users": Resource("users:read", filters.users, lambda v: v.users, render.user, "User"),
    "cards": Resource("cards:read", filters.cards, lambda v: v.cards, render.card, "Card"),
    "reimbursements": Resource("reimbursements:read", filters.reimbursements, lambda v: v.reimbursements,
                               render.reimbursement, "Reimbursement"),
    "statements": Resource("statements:read", filters.statements, lambda v: v.statements, render.statement,
                           "Statement"),
}  # fmt: skip


def handle(sb: RampSandbox, request: httpx.Request) -> httpx.Response:
    trace_id = sb.next_trace_id()
    path = request.url.path.rstrip("/")
    try:
        if path == f"{API_PREFIX}/token":
            return handle_token(sb, request, trace_id)
    except OAuthError as error:
        return oauth_response(error, trace_id)
    try:
        parts = path[len(API_PREFIX) + 1:].split("/") if path.startswith(API_PREFIX + "/") else []
        resource = RESOURCES.get(parts[0]) if parts and len(parts) <= 2 else None
        if resource is None:
            raise RampError(404, "DEVELOPER_7002", f"The requested URL {request.url.path} was not found")
        if request.method not in ("GET", "HEAD"):
            raise RampError(405, "DEVELOPER_7001", f"Method {request.method} is not allowed on {request.url.path}")
        business_id, scopes = _authenticate(sb, request)
        if not sb.limiter.admit(business_id):
            wait = max(1, math.ceil(sb.limiter.retry_after(business_id)))
            raise RampError(429, RATE_LIMITED, "Rate limit exceeded: slow down and retry after the Retry-After "
                            "seconds", headers={"Retry-After": str(wait)})  # fmt: skip
        fired = sb.faults.take(business_id)
        if fired is not None:
            before_answer(fired[0], fired[1], request)
        if resource.scope not in scopes:
            raise RampError(403, INSUFFICIENT_SCOPE, "Insufficient scope",
                            {"required_scopes": [resource.scope], "token_scopes": list(scopes)})
        with sb.world(business_id) as view:
            body = _one(view, resource, parts[1]) if len(parts) == 2 else _list(view, resource, request)
        response = json_response(200, body, trace_id)
        return malformed(response) if fired is not None and fired[0].kind == "malformed" else response
    except RampError as error:
        return error_response(error, trace_id)


def _authenticate(sb: RampSandbox, request: httpx.Request) -> tuple[str, tuple[str, ...]]:
    """(business id, scopes) of the request's bearer token, or 401."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer ") or not header[7:].strip():
        raise unauthorized("Authentication token not found")
    claim = read_access_token(header[7:].strip())
    if claim is None or claim.business_id not in sb.businesses:
        raise unauthorized("Authentication token not found")
    if claim.app and state_key(claim.business_id) in sb.qbo.store.view().revoked:
        raise unauthorized("Access token revoked: the business disconnected the application")
    if sb.now_seconds() >= claim.expires_at:
        raise unauthorized("Access token expired", TOKEN_EXPIRED)
    return claim.business_id, claim.scopes


def _one(view: RampView, resource: Resource, object_id: str) -> dict[str, Any]:
    found = resource.listing(view).get(object_id)
    if found is None:
        raise not_found(resource.noun, object_id)
    return render.bill(view, found, single=True) if resource.render is render.bill else resource.render(view, found)


def _list(view: RampView, resource: Resource, request: httpx.Request) -> dict[str, Any]:
    q = Query(request)
    size = q.page_size()
    start = q.text("start")
    plan = resource.plan(view, q)
    items, more = page(plan, start, size)
    data = [resource.render(view, item) for item in items]
    return {"data": data, "page": {"next": next_url(request, size, data[-1]["id"]) if more else None}}
