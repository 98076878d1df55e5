"""Time and chance in the simulated world: UTC days, business days, and RNGs seeded by what they decide about.

Every choice about an object comes from an RNG seeded by that object alone (never from a replay's shared stream),
so each rail renders the same world in any process and at any clock.
"""

from __future__ import annotations

import hashlib
import random

DAY = 86_400


def seeded_rng(*parts: object) -> random.Random:
    """An RNG seeded by `parts` alone, the same in every process (Python's hash() is salted per process)."""
    text = "|".join(str(p) for p in parts).encode()
    return random.Random(int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big"))


def midnight(sec: int) -> int:
    """The UTC midnight starting the day of `sec`."""
    return sec - sec % DAY


def business_days_after(day_start: int, days: int) -> int:
    """The UTC midnight `days` weekdays after `day_start` (Saturdays and Sundays skipped)."""
    while days:
        day_start += DAY
        if (day_start // DAY + 3) % 7 < 5:  # 1970-01-01 was a Thursday: (n + 3) % 7 is Monday=0
            days -= 1
    return day_start
