"""Request routing of the Plaid sandbox: the path, the body, the API keys, the access token, the rate limit,
faults, the login switch, then the endpoint.

Every answer, errors included, is JSON with a `request_id`. Only POST is served, on four paths.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

import httpx

from ledger_pipeline.sandbox_kit.faults import malformed

from . import render
from .auth import keys_valid, presented_keys
from .cursor import Cursor, decode
from .faults import before_answer, mutation_error, watches
from .responses import (PlaidError, error_response, invalid_field, json_response, login_required, missing_fields,
                        unknown_fields)
from .sandbox import PlaidSandbox
from .sources import BANK_SINCE
from .spec import PlaidItem

MAX_COUNT, DEFAULT_COUNT = 500, 100
AUTH_FIELDS = frozenset({"client_id", "secret", "access_token"})
SYNC_OPTIONS = frozenset({"include_original_description", "include_personal_finance_category",
                          "include_logo_and_counterparty_beta", "personal_finance_category_version",
                          "days_requested", "account_id"})
RATE_CODES = {"/item/get": "ITEM_GET_LIMIT", "/accounts/get": "ACCOUNTS_LIMIT",
              "/accounts/balance/get": "BALANCE_LIMIT", "/transactions/sync": "TRANSACTIONS_SYNC_LIMIT"}


@dataclass
class Call:
    """One admitted request: its item, parsed body and (for /transactions/sync) cursor."""

    sb: PlaidSandbox
    item: PlaidItem
    body: dict[str, Any]
    request_id: str
    cursor: Cursor | None = None


def handle(sb: PlaidSandbox, request: httpx.Request) -> httpx.Response:
    request_id = sb.next_request_id()
    try:
        path = request.url.path
        endpoint = ENDPOINTS.get(path)
        if request.method != "POST" or endpoint is None:
            raise PlaidError(404, "INVALID_REQUEST", "NOT_FOUND", "not found")
        body = _body(request)
        if not keys_valid(*presented_keys(body, request.headers)):
            raise PlaidError(400, "INVALID_INPUT", "INVALID_API_KEYS", "invalid client_id or secret provided")
        known, parse, answer = endpoint
        _check_fields(body, AUTH_FIELDS | known)
        item = sb.item_for_token(body["access_token"])
        if item is None:
            raise PlaidError(400, "INVALID_INPUT", "INVALID_ACCESS_TOKEN", "could not find matching access token")
        call = Call(sb, item, body, request_id)
        parse(call)
        if not sb.limiter.admit(item.item_id):
            raise PlaidError(429, "RATE_LIMIT_EXCEEDED", RATE_CODES[path],
                             "rate limit exceeded for attempts to access this item. please try again later")
        fired = sb.faults.take(item.item_id, watches(call.cursor is not None and call.cursor.mid_pagination))
        if fired is not None:
            before_answer(fired[0], fired[1], request)
        if path != "/item/get" and sb.login_required(item.item_id):
            raise login_required()
        response = json_response(200, answer(call))
        return malformed(response) if fired is not None and fired[0].kind == "malformed" else response
    except PlaidError as error:
        return error_response(error, request_id)


def _body(request: httpx.Request) -> dict[str, Any]:
    try:
        body = json.loads(request.content or b"null")
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        raise PlaidError(400, "INVALID_REQUEST", "INVALID_BODY", "body could not be parsed as JSON")
    return body


def _check_fields(body: dict[str, Any], known: frozenset[str], prefix: str = "") -> None:
    unknown = sorted(f"{prefix}{name}" for name in body if name not in known)
    if unknown:
        raise unknown_fields(unknown)
    if not prefix and "access_token" not in body:
        raise missing_fields(["access_token"])
    if not prefix and not isinstance(body["access_token"], str):
        raise invalid_field("access_token must be a string")


def _options(body: dict[str, Any], known: frozenset[str]) -> dict[str, Any]:
    options = body.get("options", {})
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise invalid_field("options must be an object")
    _check_fields(options, known, "options.")
    return options


def _flag(options: dict[str, Any], name: str) -> bool:
    value = options.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise invalid_field(f"options.{name} must be a boolean")
    return value


# --- /item/get --------------------------------------------------------------------------------------
def _parse_nothing(call: Call) -> None:
    return None


def _item_error(call: Call) -> dict[str, Any] | None:
    if not call.sb.login_required(call.item.item_id):
        return None
    return {**login_required().body(call.request_id), "causes": [], "status": 400}


def _item_get(call: Call) -> dict[str, Any]:
    error = _item_error(call)
    updated = render.iso_time(call.sb.qbo.store.view().clock_us // 1_000_000)
    return {"item": render.item(call.item, error, created=render.iso_time(BANK_SINCE)),
            "request_id": call.request_id,
            "status": {"last_webhook": None, "transactions": {"last_failed_update": updated if error else None,
                                                              "last_successful_update": None if error else updated}}}


# --- /accounts/get, /accounts/balance/get -------------------------------------------------------------
def _parse_accounts(call: Call) -> None:
    options = _options(call.body, frozenset({"account_ids", "min_last_updated_datetime"}))
    wanted = options.get("account_ids")
    if wanted is not None:
        if not isinstance(wanted, list) or not all(isinstance(a, str) for a in wanted):
            raise invalid_field("options.account_ids must be a list of strings")
        known = {a.account_id for a in call.item.accounts}
        if not set(wanted) <= known:
            raise PlaidError(400, "INVALID_INPUT", "INVALID_ACCOUNT_ID", "one or more of the account IDs is invalid")


def _accounts(call: Call, *, live: bool) -> list[dict[str, Any]]:
    wanted = (call.body.get("options") or {}).get("account_ids")
    with call.sb.world(call.item.item_id) as (feed, now):
        sums = feed.balances(now, len(call.item.accounts))
    updated = render.iso_time(now) if live else None
    return [render.account(spec, *sums[i], updated) for i, spec in enumerate(call.item.accounts)
            if wanted is None or spec.account_id in wanted]


def _accounts_get(call: Call) -> dict[str, Any]:
    return {"accounts": _accounts(call, live=False), "item": render.item(call.item, None),
            "request_id": call.request_id}


def _balance_get(call: Call) -> dict[str, Any]:
    return {"accounts": _accounts(call, live=True), "item": render.item(call.item, None),
            "request_id": call.request_id}


# --- /transactions/sync --------------------------------------------------------------------------------
def _parse_sync(call: Call) -> None:
    body = call.body
    count = body.get("count", DEFAULT_COUNT)
    if not isinstance(count, int) or isinstance(count, bool):
        raise invalid_field("count must be an integer")
    if count < 1:
        raise invalid_field("count must be at least 1")
    if count > MAX_COUNT:
        raise invalid_field(f"count must be at most {MAX_COUNT}")
    options = _options(body, SYNC_OPTIONS)
    for name in ("include_original_description", "include_personal_finance_category",
                 "include_logo_and_counterparty_beta"):
        _flag(options, name)
    days = options.get("days_requested", 90)
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 730:
        raise invalid_field("options.days_requested must be an integer from 1 to 730")
    account_id = options.get("account_id")
    if account_id is not None and account_id not in {a.account_id for a in call.item.accounts}:
        raise PlaidError(400, "INVALID_INPUT", "INVALID_ACCOUNT_ID", "one or more of the account IDs is invalid")
    cursor = body.get("cursor", "")
    if cursor is None:
        cursor = ""
    if not isinstance(cursor, str):
        raise invalid_field("cursor must be a string")
    call.cursor = decode(cursor, call.item.item_id)
    if call.cursor.account_id != account_id and cursor != "":
        raise invalid_field("cursor not associated with options.account_id")


def _sync(call: Call) -> dict[str, Any]:
    item, cursor, body = call.item, call.cursor, call.body
    assert cursor is not None
    count = body.get("count", DEFAULT_COUNT)
    options = body.get("options") or {}
    account_id = options.get("account_id")
    original = _flag(options, "include_original_description")
    ids = [a.account_id for a in item.accounts]
    accounts = None if account_id is None else {ids.index(account_id)}
    with call.sb.world(item.item_id) as (feed, now):
        if cursor.mid_pagination:
            assert cursor.snapshot is not None
            if cursor.snapshot > now or feed.changed_after(cursor.snapshot):
                raise mutation_error()
            since, until, offset = cursor.since, cursor.snapshot, cursor.offset
        else:
            since, until, offset = cursor.since, now, 0
        stale = since is not None and since >= until  # nothing new (or the clock went back: keep the position)
        changes = [] if stale else feed.changes(since, until, accounts)
        page = changes[offset:offset + count]
        has_more = offset + count < len(changes)
        if has_more:
            next_cursor = Cursor(item.item_id, since, until, offset + count, account_id)
        else:
            next_cursor = Cursor(item.item_id, since if stale else until, account_id=account_id)
        with_times = item.sends_pending  # the card bank sends dates only
        out: dict[str, list] = {"added": [], "modified": [], "removed": []}
        for _, kind, txn in page:
            account = ids[txn.account]
            if kind == "removed":
                out[kind].append(render.removed(txn, account))
            else:
                out[kind].append(render.transaction(txn, account, until, with_times=with_times, original=original))
        sums = feed.balances(now, len(item.accounts))
    return {"accounts": [render.account(spec, *sums[i], None) for i, spec in enumerate(item.accounts)],
            "added": out["added"], "has_more": has_more, "modified": out["modified"],
            "next_cursor": next_cursor.encode(), "removed": out["removed"], "request_id": call.request_id,
            "transactions_update_status": "HISTORICAL_UPDATE_COMPLETE"}


ENDPOINTS: dict[str, tuple[frozenset[str], Callable[[Call], None], Callable[[Call], dict[str, Any]]]] = {
    "/item/get": (frozenset(), _parse_nothing, _item_get),
    "/accounts/get": (frozenset({"options"}), _parse_accounts, _accounts_get),
    "/accounts/balance/get": (frozenset({"options"}), _parse_accounts, _balance_get),
    "/transactions/sync": (frozenset({"cursor", "count", "options"}), _parse_sync, _sync),
}
