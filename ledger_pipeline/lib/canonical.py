"""Canonical JSON, content hashes and field-level diffs of rail objects.

The log stores each payload as canonical JSON text (sorted keys, no spaces,
UTF-8), so `payload_hash = sha256(payload)` can be recomputed from the stored
column alone, in Python or in DuckDB's `sha256()`.

The spelling is `json.dumps`'s (sort_keys, compact, ensure_ascii off), the one every ledger was written
with. orjson writes the same text about ten times faster, except for floats below 1e-4 (`0.00001`,
`1e-7` where json writes `1e-05`, `1e-07`) and what it refuses (integers past 64 bits, lone
surrogates): those payloads go through `json.dumps`. orjson would write NaN as null, so NaN and the
infinities, which are not JSON, are refused where rail answers are parsed (`parse_json`).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import orjson

_MISSING = object()
_ORJSON_OPTIONS = (  # sorted keys; types JSON has no spelling for raise, as in json.dumps
    orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)  # fmt: skip
# Where orjson and json.dumps spell a float differently: a one-digit negative exponent (orjson `1e-7`, json `1e-07`),
# ending its number (`,` `}` `]` or the end). Two digits are spelled alike; a UUID's "3e-4f01" never ends there, so
# Ramp's ids no longer send half its payloads through json.dumps (six times slower) as `[0-9]e-` did.
_SHORT_NEGATIVE_EXPONENT = re.compile(rb"e-[0-9](?:[,}\]]|\Z)")


def canonical_json(value: Any) -> str:
    """One spelling per JSON value: sorted keys, compact separators, unicode kept (json.dumps's)."""
    try:
        text = orjson.dumps(value, option=_ORJSON_OPTIONS)
    except TypeError:  # beyond orjson (a 65-bit integer, a lone surrogate, a non-str key): json.dumps decides
        return _json_dumps(value)
    # Where a float below 1e-4 may be (or a string that looks like one: that only costs json.dumps). `in` first:
    # it is a memchr, a regex over every payload is not.
    if b"0.0000" in text or (b"e-" in text and _SHORT_NEGATIVE_EXPONENT.search(text)):
        return _json_dumps(value)
    return text.decode("utf-8")


def _json_dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def parse_json(data: bytes | str) -> Any:
    """A rail's JSON answer parsed, NaN and the infinities refused (json.loads takes them; JSON has none)."""
    return json.loads(data, parse_constant=_not_json)


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def diff(old: Any, new: Any, path: str = "") -> dict[str, dict[str, Any]]:
    """Changed leaves between two versions, as {"A.B[0].C": {"old": ..., "new": ...}}.

    Absent fields are reported as null on their side; lists are compared by
    position, which is how QBO orders Line arrays.
    """
    if isinstance(old, dict) and isinstance(new, dict):
        out: dict[str, dict[str, Any]] = {}
        for key in sorted(old.keys() | new.keys()):
            sub = f"{path}.{key}" if path else key
            out.update(diff(old.get(key, _MISSING), new.get(key, _MISSING), sub))
        return out
    if isinstance(old, list) and isinstance(new, list):
        out = {}
        for i in range(max(len(old), len(new))):
            out.update(
                diff(old[i] if i < len(old) else _MISSING, new[i] if i < len(new) else _MISSING, f"{path}[{i}]")
            )
        return out
    if old == new and type(old) is type(new):
        return {}
    return {path: {"old": None if old is _MISSING else old, "new": None if new is _MISSING else new}}
