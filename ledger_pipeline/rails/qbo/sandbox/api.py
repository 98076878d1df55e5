"""Request routing of the sandbox: auth, throttling, injected faults, then the QBO endpoints.

Order of checks, as QBO's gateway does it: bearer token (401 code 3200), realm authorisation
(403 code 3100), throttle (429 code 3001), then any injected fault, then the endpoint itself
(query, cdc, reports/<name>, companyinfo, or a read by Id).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import httpx

from ..entities import BY_NAME
from . import responses as R
from .admin import handle_admin
from .auth import read_access_token
from .faults import fault_response, reset_error, truncate
from .oddities import (answer_query, drift_cdc, drift_object, report_skews_with_drift, request_subjects,
                       sleep_or_time_out, wrong_content_type)
from .query import QueryError, parse_query
from .render_txn import render
from .reports import REPORTS, aged_report, check_report_name, parse_params
from .sandbox import QboSandbox
from .spec import Fault
from .timefmt import iso_millis, iso_seconds, parse_instant
from .token import handle_token

TOKEN_PATH = "/oauth2/v1/tokens/bearer"
_API = re.compile(r"^/v3/company/(?P<realm>[^/]+)/(?P<rest>.+?)/?$")
_READ = re.compile(r"^(?P<entity>[a-z]+)/(?P<id>[^/]+)$")
_BY_LOWER = {name.lower(): name for name in BY_NAME}


def _tid(request: httpx.Request, now_us: int) -> str:
    digest = hashlib.blake2b(f"{request.method} {request.url} {now_us}".encode(), digest_size=12).hexdigest()
    return f"1-{digest[:8]}-{digest[8:]}"


def handle(sb: QboSandbox, request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if path == "/_sandbox" or path.startswith("/_sandbox/"):
        return handle_admin(sb, request)
    if path == TOKEN_PATH:
        return handle_token(sb, request)
    match = _API.match(path)
    now_us = sb.store.view().clock_us
    if not match:
        return R.fault_response(404, "ValidationFault", "4000", "Unsupported Operation",
                                f"The sandbox does not serve {path}", iso_millis(now_us, 0))
    realm, rest = match["realm"], match["rest"]
    spec = sb.specs.get(realm)
    offset = spec.offset_minutes if spec else 0
    stamp, tid = iso_millis(now_us, offset), _tid(request, now_us)
    denied = _authenticate(sb, request, realm, now_us, stamp, tid)
    if denied is not None:
        return denied
    throttled = sb.limiter.enter(realm)
    if throttled is not None:
        retry = {"Retry-After": str(throttled.retry_after)} if throttled.retry_after is not None else None
        builder = R.xml_fault_response if throttled.xml else R.fault_response
        return builder(429, "SERVICE", "3001", R.THROTTLE_MESSAGE, f"The request limit was reached: {throttled.reason} "
                       f"for realm {realm}.", stamp, tid=tid, headers=retry)
    try:
        endpoint = rest if rest in ("query", "cdc") else "reports" if rest.startswith("reports/") else "other"
        fired = sb.take_fault(realm, endpoint, request_subjects(rest, request.url.params))
        fault = fired[0] if fired else None
        if fault is not None:
            if fault.kind == "reset":
                raise reset_error(request, fired[1])
            if fault.kind == "slow":
                sleep_or_time_out(request, fault.delay)
            elif fault.kind == "wrong_content_type":
                return wrong_content_type()
            elif fault.kind not in ("malformed_page", "shift", "duplicate"):
                return fault_response(fault, stamp, tid)
        response = _route(sb, request, realm, rest, now_us, stamp, tid, fault)
        return truncate(response) if fault is not None and fault.kind == "malformed_page" else response
    finally:
        sb.limiter.leave(realm)


def _authenticate(sb: QboSandbox, request: httpx.Request, realm: str, now_us: int, stamp: str,
                  tid: str) -> httpx.Response | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    claim = read_access_token(token.strip()) if scheme.lower() == "bearer" else None
    if claim is None:
        detail = "Token invalid: no bearer token" if not header else "Token invalid: the bearer token is not valid"
        return R.fault_response(401, "AuthenticationFault", "3200", R.AUTH_MESSAGE, detail, stamp, tid=tid)
    token_realm, expires_at = claim
    if sb.is_revoked(token_realm):
        return R.fault_response(401, "AuthenticationFault", "3200", R.AUTH_MESSAGE,
                                "Token revoked: the app's connection to this company was revoked", stamp, tid=tid)
    if now_us // 1_000_000 >= expires_at:
        offset = sb.specs[token_realm].offset_minutes if token_realm in sb.specs else 0
        return R.fault_response(401, "AuthenticationFault", "3200", R.AUTH_MESSAGE,
                                f"Token expired: the access token expired at {iso_seconds(expires_at, offset)}",
                                stamp, tid=tid)
    if token_realm != realm or realm not in sb.specs:
        return R.fault_response(403, "AuthorizationFault", "3100",
                                "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
                                f"The access token does not grant access to realm {realm}", stamp, tid=tid)
    return None


def _route(sb: QboSandbox, request: httpx.Request, realm: str, rest: str, now_us: int, stamp: str,
           tid: str, fault: Fault | None = None) -> httpx.Response:
    offset = sb.specs[realm].offset_minutes
    params = request.url.params
    try:
        if rest == "query" and request.method in ("GET", "POST"):
            text = params.get("query")
            if text is None and request.method == "POST":
                text = request.content.decode("utf-8", "replace")
            if not text:
                raise QueryError("QueryParserError: the query parameter is missing")
            query = parse_query(text, offset)
            with sb.lock:
                body: dict[str, Any] = {"QueryResponse": answer_query(sb, realm, query, now_us, fault), "time": stamp}
        elif rest == "cdc" and request.method == "GET":
            entities = _cdc_entities(params.get("entities", ""))
            since = params.get("changedSince")
            if not since:
                raise QueryError("CDCValidationError: changedSince is required", code="4001", message="Invalid query")
            try:
                since_us = parse_instant(since, offset)
            except ValueError:
                raise QueryError(f"CDCValidationError: invalid changedSince {since!r}", code="4001",
                                 message="Invalid query") from None
            with sb.lock:
                changes = drift_cdc(sb, realm, sb.searcher(realm, now_us).cdc(entities, since_us, now_us))
            body = {"CDCResponse": [{"QueryResponse": changes}], "time": stamp}
        elif rest == f"companyinfo/{realm}" and request.method == "GET":
            spec = sb.specs[realm]
            body = {"CompanyInfo": {"CompanyName": spec.name, "LegalName": spec.name, "Country": "US",
                                    "domain": "QBO", "sparse": False, "Id": "1", "SyncToken": "0"},
                    "time": stamp}
        elif rest.startswith("reports/") and request.method == "GET":
            body = _report(sb, realm, rest[len("reports/"):], params, now_us)
        elif (read := _READ.match(rest)) and read["entity"] in _BY_LOWER and request.method == "GET":
            return _read(sb, realm, _BY_LOWER[read["entity"]], read["id"], now_us, stamp, tid)
        else:
            return R.fault_response(400, "ValidationFault", "4000", "Unsupported Operation",
                                    f"Operation {request.method} {rest} is not supported by the sandbox", stamp,
                                    tid=tid)
    except QueryError as error:
        return R.fault_response(400, "ValidationFault", error.code, error.message, error.detail, stamp, tid=tid)
    return R.json_response(200, body, tid=tid)


def _report(sb: QboSandbox, realm: str, name: str, params: httpx.QueryParams, now_us: int) -> dict[str, Any]:
    """A report body, which (as in QBO) carries its time in Header.Time rather than a top-level `time`."""
    check_report_name(name)
    settings = parse_params(params, now_us // 1_000_000, sb.specs[realm].offset_minutes, name)
    skews = sb.store.view().skews.get(realm, {}).get(name, {})
    with sb.lock:
        company = sb.searcher(realm, now_us).company
        skews = report_skews_with_drift(sb, realm, REPORTS[name][2], company, skews)
        return aged_report(company, name, settings, now_us // 1_000_000, skews)


def _cdc_entities(raw: str) -> list[str]:
    names = [part.strip() for part in raw.split(",") if part.strip()]
    if not names:
        raise QueryError("CDCValidationError: entities is required", code="4001", message="Invalid query")
    unknown = [n for n in names if n.lower() not in _BY_LOWER]
    if unknown:
        raise QueryError(f"CDCValidationError: unsupported entities {', '.join(unknown)}", code="4001",
                         message="Invalid query")
    out: list[str] = []
    for name in names:
        if _BY_LOWER[name.lower()] not in out:
            out.append(_BY_LOWER[name.lower()])
    return out


def _read(sb: QboSandbox, realm: str, entity: str, raw_id: str, now_us: int, stamp: str,
          tid: str) -> httpx.Response:
    with sb.lock:
        company = sb.searcher(realm, now_us).company
        table = company.books.tables[entity]
        slot = int(raw_id) - 1 if raw_id.isdigit() else -1
        if 0 <= slot < len(table) and table.is_live(slot):
            obj = drift_object(sb, realm, entity, render(company, entity, slot))
            return R.json_response(200, {entity: obj, "time": stamp}, tid=tid)
    return R.fault_response(400, "ValidationFault", "610", "Object Not Found",
                            f"Object Not Found: {entity} {raw_id} does not exist or was deleted", stamp, tid=tid)
