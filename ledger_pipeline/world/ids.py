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
