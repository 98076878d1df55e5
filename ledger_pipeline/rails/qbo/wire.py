"""QBO's wire format as the client sees it: timestamps, query text and the reading of response bodies.

Only validated values reach a query: entity names from the entity table, integers, and datetimes
formatted here. Body readers run inside the retry loop, so a body of the wrong shape raises
`PageShapeError` and is retried like any other malformed response.
"""

from __future__ import annotations

from datetime import datetime, timezone

import httpx

from ledger_pipeline.lib.canonical import parse_json
from ledger_pipeline.rails.qbo.entities import QboEntity
from ledger_pipeline.rails.qbo.errors import (
    ErrorContext,
    QboAuthError,
    QboCdcWindowError,
    QboError,
    QboQueryError,
    parse_fault,
)
from ledger_pipeline.rails.qbo.retry import Retryable, parse_retry_after

LAST_UPDATED = "MetaData.LastUpdatedTime"


class PageShapeError(ValueError):
    """A response parsed as JSON but does not hold what the paging loop needs."""


def parse_qbo_time(value: object) -> datetime:
    """'2026-10-07T11:21:10-07:00' (or ...Z) -> aware UTC datetime; a missing offset is an error."""
    if not isinstance(value, str):
        raise PageShapeError(f"timestamp is not a string: {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise PageShapeError(f"unreadable timestamp {value[:40]!r}") from None
    if parsed.tzinfo is None:
        raise PageShapeError(f"timestamp without UTC offset {value[:40]!r}")
    return parsed.astimezone(timezone.utc)


def require_aware(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(timezone.utc)


def floor_second(value: datetime) -> datetime:
    return value.astimezone(timezone.utc).replace(microsecond=0)


def qbo_literal(value: datetime) -> str:
    """UTC ISO-8601 with Z at second precision (floored, so a >= bound never skips anything)."""
    return floor_second(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def last_updated(obj: object) -> datetime:
    if not isinstance(obj, dict):
        raise PageShapeError("object is not a JSON object")
    meta = obj.get("MetaData")
    if not isinstance(meta, dict) or "LastUpdatedTime" not in meta:
        raise PageShapeError(f"object {str(obj.get('Id'))[:20]!r} has no MetaData.LastUpdatedTime")
    return parse_qbo_time(meta["LastUpdatedTime"])


def object_id(obj: object) -> str:
    oid = obj.get("Id") if isinstance(obj, dict) else None
    if not isinstance(oid, str) or not oid:
        raise PageShapeError("object has no string Id")
    return oid


def _where(entity: QboEntity, since: datetime | None) -> str:
    conditions = []
    if entity.is_name_list:
        conditions.append("Active IN (true,false)")
    if since is not None:
        conditions.append(f"{LAST_UPDATED} >= '{qbo_literal(since)}'")
    return f" WHERE {' AND '.join(conditions)}" if conditions else ""


def select_query(
    entity: QboEntity, *, projection: str, since: datetime | None, order_by: str, start: int, max_results: int
) -> str:
    if projection not in ("*", "Id") or order_by not in (LAST_UPDATED, "Id"):
        raise ValueError(f"unsupported projection/order {projection!r}/{order_by!r}")
    return (
        f"SELECT {projection} FROM {entity.name}{_where(entity, since)} "
        f"ORDERBY {order_by} STARTPOSITION {int(start)} MAXRESULTS {int(max_results)}"
    )


def count_query(entity: QboEntity) -> str:
    return f"SELECT COUNT(*) FROM {entity.name}{_where(entity, None)}"


def query_objects(body: dict, entity_name: str) -> list[dict]:
    """The entity's list from a QueryResponse; a missing key means an empty page (past the end)."""
    response = body.get("QueryResponse")
    if not isinstance(response, dict):
        raise PageShapeError("no QueryResponse object in the body")
    objects = response.get(entity_name, [])
    if not isinstance(objects, list) or not all(isinstance(obj, dict) for obj in objects):
        raise PageShapeError(f"QueryResponse.{entity_name} is not a list of objects")
    return objects


def stamped(objects: list[dict]) -> list[datetime]:
    """LastUpdatedTime of each object (validating Id and MetaData as it goes)."""
    times = []
    for obj in objects:
        object_id(obj)
        times.append(last_updated(obj))
    return times


def query_ids(body: dict, entity_name: str) -> list[str]:
    return [object_id(obj) for obj in query_objects(body, entity_name)]


def count_value(body: dict) -> int:
    response = body.get("QueryResponse")
    total = response.get("totalCount") if isinstance(response, dict) else None
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise PageShapeError("count response has no integer QueryResponse.totalCount")
    return total


def cdc_objects(body: dict, entity_name: str) -> tuple[list[dict], list[datetime], int]:
    """This entity's objects from a CDCResponse, their timestamps, and the response's total object count."""
    blocks = body.get("CDCResponse")
    if not isinstance(blocks, list):
        raise PageShapeError("no CDCResponse list in the body")
    mine: list[dict] = []
    total = 0
    for block in blocks:
        responses = block.get("QueryResponse", []) if isinstance(block, dict) else None
        if not isinstance(responses, list):
            raise PageShapeError("CDCResponse entry has no QueryResponse list")
        for response in responses:
            if not isinstance(response, dict):
                raise PageShapeError("CDC QueryResponse entry is not an object")
            for name, value in response.items():
                if isinstance(value, list):
                    if not all(isinstance(obj, dict) for obj in value):
                        raise PageShapeError(f"CDC {name} list holds non-objects")
                    total += len(value)
                    if name == entity_name:
                        mine.extend(value)
    return mine, stamped(mine), total


# --- HTTP responses -----------------------------------------------------------------------------


def transient(response: httpx.Response, endpoint: str) -> Retryable:
    """A 429/5xx answer as a retryable failure, with QBO's code and any Retry-After."""
    status = response.status_code
    fault = parse_fault(response)
    return Retryable(
        "throttled" if status == 429 else "server",
        fault.describe() or f"HTTP {status} from {endpoint}",
        status=status,
        code=fault.code,
        retry_after=parse_retry_after(response.headers.get("retry-after")),
    )


def json_body(response: httpx.Response, endpoint: str) -> dict:
    """The parsed JSON object of a 200 answer (parsed once); anything else is a retryable malformed body."""
    status = response.status_code
    content_type = response.headers.get("content-type", "")
    if "json" not in content_type:
        raise Retryable("malformed", f"expected JSON from {endpoint}, got {content_type[:60]!r}", status=status)
    try:
        body = parse_json(response.content)
    except ValueError as exc:
        raise Retryable("malformed", f"{endpoint} body is not valid JSON ({exc})", status=status) from None
    if not isinstance(body, dict):
        raise Retryable("malformed", f"{endpoint} body is not a JSON object", status=status)
    return body


def final_error(response: httpx.Response, endpoint: str, entity: str, ctx: ErrorContext) -> QboError:
    """A failure not worth retrying: auth, a rejected query or CDC window, anything unexpected."""
    fault = parse_fault(response)
    status, text = response.status_code, fault.describe()
    cls: type[QboError] = QboError
    if status == 401:
        cls, cause = QboAuthError, "access token was refused even after a refresh"
    elif status == 403:
        cls, cause = QboAuthError, "access to this company or entity was denied"
    elif status == 400 or fault.type == "ValidationFault":
        cls = QboCdcWindowError if endpoint == "cdc" else QboQueryError
        cause = {"cdc": "CDC request rejected", "query": "query rejected"}.get(endpoint, f"{endpoint} request rejected")
    else:
        cause = f"unexpected answer from {endpoint}"
    return ctx.error(
        cls,
        entity,
        f"{cause}: {text or 'no fault detail'}",
        status=status,
        code=fault.code,
        detail=fault.detail or fault.message,
    )
