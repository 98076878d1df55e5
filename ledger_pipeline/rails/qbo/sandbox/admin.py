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
from .spec import GENESIS, MAX_CLOCK_STEP, MAX_SKEW, Fault, InvalidSetting, real_number
from .state import SandboxStateError
from .timefmt import epoch_us, iso_utc

_INSTANT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?"
                      r"(?:Z|[+-](?P<hh>[0-9]{2}):(?P<mm>[0-9]{2}))")
_FAULTS = re.compile(r"^/_sandbox/(?P<what>faults|reconnect|skews|revoke|drifts)/(?P<realm>\d{1,20})$")


def _ok(payload: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, headers={"Content-Type": "application/json"}, content=R.dumps(payload))


def _error(status: int, message: str, field: str | None = None, allowed: str | None = None) -> httpx.Response:
    body: dict[str, Any] = {"error": message}
    if field is not None:
        body["field"] = field
    if allowed is not None:
        body["allowed"] = allowed
    return _ok(body, status)


def _body(request: httpx.Request) -> dict[str, Any]:
    try:
        data = json.loads(request.content or b"{}")
    except RecursionError:
        raise ValueError("the body is nested too deeply") from None
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


def _move_clock(sb: Any, body: dict[str, Any]) -> httpx.Response | None:
    """Advance or set the clock as the body asks; an error answer if it asks for neither."""
    if "advance_seconds" in body:
        seconds = real_number("advance_seconds", body["advance_seconds"], 0, MAX_CLOCK_STEP.total_seconds(),
                              f" seconds ({MAX_CLOCK_STEP.days} days; use set to go back)")
        sb.advance(timedelta(seconds=seconds))
    elif "set" in body:
        text = body["set"]
        allowed = (f"an ISO-8601 instant with a UTC offset, from {GENESIS.isoformat()} to "
                   f"{MAX_CLOCK_STEP.days} days after the clock")
        match = _INSTANT.fullmatch(text) if isinstance(text, str) else None
        if match is None or (match["hh"] is not None and (int(match["hh"]) > 23 or int(match["mm"]) > 59)):
            raise InvalidSetting("set", allowed, text)
        try:
            instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
            epoch_us(instant)  # refuses naive instants
        except (ValueError, OverflowError) as exc:
            raise InvalidSetting("set", allowed, text, f"set must be {allowed}: {exc}") from None
        try:
            sb.set_clock(instant)
        except InvalidSetting:
            raise
        except ValueError as exc:  # before GENESIS
            raise InvalidSetting("set", allowed, text, f"set must be {allowed}: {exc}") from None
    else:
        return _error(400, 'expected {"advance_seconds": N} or {"set": "<ISO-8601>"}')
    return None


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
                refused = _move_clock(sb, _body(request))
                if refused is not None:
                    return refused
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
    except SandboxStateError:
        raise  # the sandbox's own file is broken: not the caller's mistake (the server answers 500)
    except InvalidSetting as error:  # a number (or instant) outside its range: nothing was changed
        return _error(400, str(error), error.field, error.allowed)
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
            if isinstance(body["delta"], bool) or not isinstance(body["delta"], (str, int, float)):
                raise InvalidOperation
            delta = Decimal(str(body["delta"]))
        except InvalidOperation:
            raise InvalidSetting("delta", f"a decimal number with at most two decimals, from -{MAX_SKEW} to "
                                 f"{MAX_SKEW}", body["delta"]) from None
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
