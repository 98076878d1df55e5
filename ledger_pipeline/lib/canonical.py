"""Canonical JSON, content hashes and field-level diffs of rail objects.

The log stores each payload as canonical JSON text (sorted keys, no spaces,
UTF-8), so `payload_hash = sha256(payload)` can be recomputed from the stored
column alone, in Python or in DuckDB's `sha256()`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

_MISSING = object()


def canonical_json(value: Any) -> str:
    """One spelling per JSON value: sorted keys, compact separators, unicode kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


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
