"""Processor-style object ids (`ch_...`, `po_...`) for the world's objects, stable across processes.

The world names its card objects the way the card processor does, so that every rail that shows one
(a Stripe charge, the payout id a QBO Deposit's note names) shows the same id.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@lru_cache(maxsize=1 << 16)  # a page renders several ids per object; deriving one costs ~50 us
def stable_id(prefix: str, *parts: object, length: int = 24) -> str:
    """`<prefix>_` plus `length` base-62 characters derived from `parts` (hashable values)."""
    number = int.from_bytes(hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=24).digest(), "big")
    chars = []
    for _ in range(length):
        number, digit = divmod(number, 62)
        chars.append(_ALPHABET[digit])
    return f"{prefix}_{''.join(chars)}"


@lru_cache(maxsize=1 << 16)
def stable_uuid(*parts: object) -> str:
    """A UUID (version 4 layout) derived from `parts`, for rails whose ids are UUIDs (Ramp)."""
    raw = bytearray(hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=16).digest())
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
