"""What each injected fault sends (see `Fault` and docs/sandbox.md)."""

from __future__ import annotations

import httpx

from . import responses as R
from .spec import Fault

_SYSTEM_MESSAGE = "An application error has occurred while processing your request"


def _retry_headers(fault: Fault) -> dict[str, str] | None:
    if fault.retry_after is None:
        return None
    return {"Retry-After": f"{fault.retry_after:g}"}


def fault_response(fault: Fault, stamp: str, tid: str) -> httpx.Response:
    """The response of a fault that replaces the real answer (all kinds but slow, malformed_page, reset)."""
    retry = _retry_headers(fault)
    if fault.kind in ("throttle", "throttle_xml"):
        builder = R.xml_fault_response if fault.kind == "throttle_xml" else R.fault_response
        return builder(429, "SERVICE", "3001", R.THROTTLE_MESSAGE, "The request limit was reached.", stamp,
                       tid=tid, headers=retry)
    if fault.kind == "expire_token":
        return R.fault_response(401, "AuthenticationFault", "3200", R.AUTH_MESSAGE,
                                "Token expired: the access token is no longer valid", stamp, tid=tid)
    if fault.kind == "xml_error":
        return R.xml_fault_response(fault.status, "SystemFault", "10000", _SYSTEM_MESSAGE,
                                    "System Failure Error: the service could not complete the request", stamp,
                                    tid=tid, headers=retry)
    if fault.status == 502:
        return R.html_response(502, "Bad Gateway", headers=retry)
    return R.fault_response(fault.status, "SystemFault", "10000", _SYSTEM_MESSAGE,
                            "System Failure Error: the service could not complete the request", stamp,
                            tid=tid, headers=retry)


def token_fault_response(fault: Fault) -> httpx.Response:
    """The same faults on the OAuth endpoint, which speaks OAuth JSON rather than QBO Faults."""
    retry = _retry_headers(fault)
    if fault.kind in ("throttle", "throttle_xml"):
        return httpx.Response(429, headers={"Content-Type": "application/json", **(retry or {})},
                              content=R.dumps({"error": "rate_limit_exceeded"}))
    if fault.kind == "xml_error":
        return R.xml_fault_response(fault.status, "SystemFault", "10000", _SYSTEM_MESSAGE,
                                    "System Failure Error", "", headers=retry)
    if fault.status == 502:
        return R.html_response(502, "Bad Gateway", headers=retry)
    return httpx.Response(fault.status, headers={"Content-Type": "application/json", **(retry or {})},
                          content=R.dumps({"error": "server_error"}))


def truncate(response: httpx.Response) -> httpx.Response:
    """A page cut in the middle (a proxy dropped the rest), still labelled application/json, status 200."""
    body = response.content
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    return httpx.Response(200, headers=headers, content=body[: max(1, len(body) // 2)])


def reset_error(request: httpx.Request, hit: int) -> httpx.TransportError:
    """The connection dies: alternately a reset while reading and a close before any response."""
    if hit % 2:
        return httpx.ReadError("[Errno 104] Connection reset by peer", request=request)
    return httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
