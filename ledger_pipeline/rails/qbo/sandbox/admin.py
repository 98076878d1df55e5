"""Admin endpoints under /_sandbox for tools that drive the sandbox over HTTP (no auth: localhost only).

GET  /_sandbox                    realms, clock, client id
GET  /_sandbox/clock              {"now": ...}
POST /_sandbox/clock              {"advance_seconds": N} or {"set": "<ISO-8601>"}
GET|POST|DELETE /_sandbox/faults/{realm}   list, add (Fault fields as JSON), clear
GET|POST|DELETE /_sandbox/skews/{realm}    list, set ({"report", "entity_id", "delta"}), clear report skews
POST /_sandbox/reconnect/{realm}  forget refresh-token rotations and revocation (the initial token works again)
POST /_sandbox/revoke/{realm}     the company disconnected the app: its tokens are refused until reconnect
GET|POST|DELETE /_sandbox/drifts/{realm}   list, add ({"entity", "id", "kind"}), clear data drifts
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from . import responses as R
from .auth import CLIENT_ID
from .spec import Fault
from .timefmt import epoch_us, iso_utc

_FAULTS = re.compile(r"^/_sandbox/(?P<what>faults|reconnect|skews|revoke|drifts)/(?P<realm>\d{1,20})$")


def _ok(payload: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, headers={"Content-Type": "application/json"}, content=R.dumps(payload))


def _error(status: int, message: str) -> httpx.Response:
    return _ok({"error": message}, status)


def _body(request: httpx.Request) -> dict[str, Any]:
    data = json.loads(request.content or b"{}")
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


def handle_admin(sb: Any, request: httpx.Request) -> httpx.Response:
    path, method = request.url.path.rstrip("/"), request.method
    try:
        if path == "/_sandbox" and method == "GET":
            return _ok({"now": iso_utc(sb.store.view().clock_us), "client_id": CLIENT_ID,
                        "realms": [{"realm_id": s.realm_id, "name": s.name, "size": s.size,
                                    "change_rate": s.change_rate, "utc_offset": s.utc_offset}
                                   for s in sb.companies]})
        if path == "/_sandbox/clock":
            if method == "POST":
                body = _body(request)
                if "advance_seconds" in body:
                    sb.advance(timedelta(seconds=float(body["advance_seconds"])))
                elif "set" in body:
                    instant = datetime.fromisoformat(str(body["set"]).replace("Z", "+00:00"))
                    epoch_us(instant)  # refuses naive instants
                    sb.set_clock(instant)
                else:
                    return _error(400, 'expected {"advance_seconds": N} or {"set": "<ISO-8601>"}')
            elif method != "GET":
                return _error(405, "use GET or POST")
            return _ok({"now": iso_utc(sb.store.view().clock_us)})
        match = _FAULTS.match(path)
        if match and match["realm"] not in sb.specs:
            return _error(404, f"unknown realm {match['realm']}")
        if match and match["what"] == "faults":
            realm = match["realm"]
            if method == "POST":
                sb.inject(realm, Fault.from_json(_body(request)))
                return _ok({"faults": [f.to_json() for f in sb.faults(realm)]}, 201)
            if method == "DELETE":
                sb.clear_faults(realm)
            elif method != "GET":
                return _error(405, "use GET, POST or DELETE")
            return _ok({"faults": [f.to_json() for f in sb.faults(realm)]})
        if match and match["what"] == "skews":
            return _skews(sb, match["realm"], request)
        if match and match["what"] == "drifts":
            return _drifts(sb, match["realm"], request)
        if match and match["what"] == "revoke" and method == "POST":
            sb.revoke(match["realm"])
            return _ok({"realm_id": match["realm"], "revoked": True})
        if match and match["what"] == "reconnect" and method == "POST":
            sb.reconnect(match["realm"])
            return _ok({"realm_id": match["realm"], "reconnected": True})
    except (ValueError, TypeError) as error:
        return _error(400, str(error))
    return _error(404, f"no admin endpoint {method} {path}")


def _skews(sb: Any, realm: str, request: httpx.Request) -> httpx.Response:
    status = 200
    if request.method == "POST":
        body = _body(request)
        missing = {"report", "entity_id", "delta"} - set(body)
        if missing:
            return _error(400, f"missing field(s): {', '.join(sorted(missing))}")
        try:
            delta = Decimal(str(body["delta"]))
        except InvalidOperation:
            raise ValueError(f"delta must be a decimal number, got {body['delta']!r}") from None
        sb.skew_report(realm, str(body["report"]), str(body["entity_id"]), delta)
        status = 201
    elif request.method == "DELETE":
        sb.clear_report_skews(realm)
    elif request.method != "GET":
        return _error(405, "use GET, POST or DELETE")
    skews = [{"report": report, "entity_id": party, "delta": str(delta)}
             for (report, party), delta in sorted(sb.report_skews(realm).items())]
    return _ok({"skews": skews}, status)


def _drifts(sb: Any, realm: str, request: httpx.Request) -> httpx.Response:
    status = 200
    if request.method == "POST":
        body = _body(request)
        missing = {"entity", "id", "kind"} - set(body)
        if missing:
            return _error(400, f"missing field(s): {', '.join(sorted(missing))}")
        sb.drift(realm, str(body["entity"]), str(body["id"]), str(body["kind"]))
        status = 201
    elif request.method == "DELETE":
        sb.clear_drifts(realm)
    elif request.method != "GET":
        return _error(405, "use GET, POST or DELETE")
    rows = [{"entity": e, "id": i, "kind": k} for e, i, k in sb.drifts(realm)]
    return _ok({"drifts": rows}, status)
