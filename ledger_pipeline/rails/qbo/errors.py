"""QBO client errors: one message shape that names realm, entity, cause and QBO's code, never a secret.

Every error the client raises is a `QboError`; the subclass says what the caller can do about it
(reconnect the company, wait, fix the query, fall back from CDC to a full read). Messages are built
through `ErrorContext`, which scrubs every secret the client has seen (client secret, refresh and
access tokens) from any text that came back from the wire before it reaches a message (lib/redact.py).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import httpx

from ledger_pipeline.lib.redact import Secrets, clip


class QboError(Exception):
    """A QBO call failed; carries realm, entity, HTTP status and QBO's error code."""

    def __init__(
        self,
        realm_id: str,
        entity: str | None,
        cause: str,
        *,
        status: int | None = None,
        code: str | None = None,
        detail: str | None = None,
    ) -> None:
        self.realm_id = realm_id
        self.entity = entity
        self.cause = cause
        self.status = status
        self.code = code
        self.detail = detail
        where = f"QBO realm {realm_id}" + (f", entity {entity}" if entity else "")
        tags = []
        if code:
            tags.append(f"QBO error code {code}")
        if status is not None:
            tags.append(f"HTTP {status}")
        suffix = f" ({', '.join(tags)})" if tags else ""
        super().__init__(f"{where}: {cause}{suffix}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __reduce__(self) -> tuple[object, ...]:
        # Exceptions pickle by their args by default, which would lose the keyword fields; executors
        # that ship errors between processes need the same error back.
        fields = (self.realm_id, self.entity, self.cause, self.status, self.code, self.detail)
        return (_rebuild, (type(self), *fields))


def _rebuild(
    cls: type[QboError],
    realm_id: str,
    entity: str | None,
    cause: str,
    status: int | None,
    code: str | None,
    detail: str | None,
) -> QboError:
    return cls(realm_id, entity, cause, status=status, code=code, detail=detail)


class QboAuthError(QboError):
    """Credentials were missing or refused: someone has to reconnect the company or fix the app keys."""


class QboThrottledError(QboError):
    """QBO kept answering 429 after every retry: try again later, or with fewer concurrent runs."""


class QboMalformedResponse(QboError):
    """QBO answered with something that is not the documented JSON shape (after retries)."""


class QboQueryError(QboError):
    """QBO rejected a query (400 ValidationFault); `detail` holds QBO's own explanation."""


class QboCdcWindowError(QboError):
    """The change-data-capture window asked for is outside what QBO keeps (30 days) or can page."""


@dataclass
class FaultInfo:
    """The useful part of a QBO error body, whichever of its three shapes it came in."""

    code: str | None = None
    message: str | None = None
    detail: str | None = None
    type: str | None = None

    def describe(self) -> str:
        parts = [p for p in (self.message, self.detail) if p]
        return ": ".join(parts)


_XML_CODE = re.compile(r"<Error\b[^>]*\bcode=\"([^\"]*)\"", re.S)
_XML_FAULT_TYPE = re.compile(r"<Fault\b[^>]*\btype=\"([^\"]*)\"", re.S)
_XML_MESSAGE = re.compile(r"<Message>(.*?)</Message>", re.S)
_XML_DETAIL = re.compile(r"<Detail>(.*?)</Detail>", re.S)


def parse_fault(response: httpx.Response) -> FaultInfo:
    """Read QBO's Fault JSON, an OAuth `{"error": ...}` body or an IntuitResponse XML fault.

    Bodies that are none of these (an HTML 502 page, say) give an empty FaultInfo; the XML is
    read with a few anchored regexes rather than a parser so no entity expansion can happen.
    """
    content_type = response.headers.get("content-type", "")
    text = response.content[:65536].decode("utf-8", errors="replace")
    if "xml" in content_type or text.lstrip().startswith("<?xml") or "<IntuitResponse" in text:
        return _parse_xml_fault(text)
    try:
        body = json.loads(text)
    except ValueError:
        return FaultInfo()
    if not isinstance(body, dict):
        return FaultInfo()
    fault = body.get("Fault") or body.get("fault")
    if isinstance(fault, dict):
        errors = fault.get("Error") or fault.get("error") or []
        first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
        return FaultInfo(
            code=clip(first.get("code")),
            message=clip(first.get("Message")),
            detail=clip(first.get("Detail")),
            type=clip(fault.get("type")),
        )
    if isinstance(body.get("error"), str):
        return FaultInfo(code=clip(body["error"]), detail=clip(body.get("error_description")))
    return FaultInfo()


def _parse_xml_fault(text: str) -> FaultInfo:
    def first(pattern: re.Pattern[str]) -> str | None:
        match = pattern.search(text)
        return clip(match.group(1)) if match else None

    return FaultInfo(
        code=first(_XML_CODE),
        message=first(_XML_MESSAGE),
        detail=first(_XML_DETAIL),
        type=first(_XML_FAULT_TYPE),
    )


class ErrorContext(Secrets):
    """Builds errors for one realm and scrubs known secrets out of any text put into them."""

    def __init__(self, realm_id: str) -> None:
        super().__init__()
        self.realm_id = realm_id

    def error(
        self,
        cls: type[QboError],
        entity: str | None,
        cause: str,
        *,
        status: int | None = None,
        code: str | None = None,
        detail: str | None = None,
    ) -> QboError:
        return cls(
            self.realm_id,
            entity,
            self.redact(cause) or "",
            status=status,
            code=self.redact(code),
            detail=self.redact(detail),
        )
