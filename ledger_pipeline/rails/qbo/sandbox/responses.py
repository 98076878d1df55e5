"""Bodies and headers the way QBO sends them: JSON (compact, UTF-8), Fault JSON, Fault XML, gateway HTML."""

from __future__ import annotations

import json
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import httpx

JSON_TYPE = "application/json;charset=UTF-8"
XML_TYPE = "application/xml;charset=UTF-8"
THROTTLE_MESSAGE = "message=ThrottleExceeded; errorCode=003001; statusCode=429"
AUTH_MESSAGE = "message=AuthenticationFailed; errorCode=003200; statusCode=401"


def dumps(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def _headers(content_type: str, tid: str | None, extra: dict[str, str] | None) -> dict[str, str]:
    headers = {"Content-Type": content_type}
    if tid:
        headers["intuit_tid"] = tid
    headers.update(extra or {})
    return headers


def json_response(status: int, payload: Any, *, tid: str | None = None,
                  headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, headers=_headers(JSON_TYPE, tid, headers), content=dumps(payload))


def fault_payload(fault_type: str, code: str, message: str, detail: str, time: str) -> dict[str, Any]:
    return {"Fault": {"Error": [{"Message": message, "Detail": detail, "code": code}], "type": fault_type},
            "time": time}


def fault_response(status: int, fault_type: str, code: str, message: str, detail: str, time: str, *,
                   tid: str | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
    return json_response(status, fault_payload(fault_type, code, message, detail, time), tid=tid, headers=headers)


def xml_fault_response(status: int, fault_type: str, code: str, message: str, detail: str, time: str, *,
                       tid: str | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
    body = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time={quoteattr(time)}>'
            f"<Fault type={quoteattr(fault_type)}><Error code={quoteattr(code)}>"
            f"<Message>{escape(message)}</Message><Detail>{escape(detail)}</Detail>"
            "</Error></Fault></IntuitResponse>")
    return httpx.Response(status, headers=_headers(XML_TYPE, tid, headers), content=body.encode())


def html_response(status: int, title: str, *, headers: dict[str, str] | None = None) -> httpx.Response:
    body = f"<html><head><title>{status} {escape(title)}</title></head><body><center><h1>{status} {escape(title)}" \
           "</h1></center></body></html>\n"
    return httpx.Response(status, headers=_headers("text/html", None, headers), content=body.encode())


def oauth_error(status: int, error: str) -> httpx.Response:
    return httpx.Response(status, headers={"Content-Type": "application/json", "Cache-Control": "no-store"},
                          content=dumps({"error": error}))
