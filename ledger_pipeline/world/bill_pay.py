"""Which of the books' vendor bills the business runs through Ramp bill pay, and the ACH trace of each payment.

The choice is seeded by the bill alone (never by the books' replay), so the books, Ramp and the bank agree in
every process and at every clock: about RAMP_SHARE of the bills created since the business took up Ramp (the
start of its card spend). A bill payment that paid such a bill leaves the bank as Ramp's ACH debit, and the
ACH trace number both Ramp and the bank show is seeded by that payment. A bill the books never pay
(`bill_paid_not_recorded`, world/breaks.py) Ramp pays on its own date, under a trace seeded by the bill.
"""

from __future__ import annotations

from ledger_pipeline.world.calendar import DAY, seeded_rng

RAMP_SHARE = 0.3


def through_ramp(seed: int, key: str, bill_slot: int, created: int, since: int) -> bool:
    """Whether the bill in QBO slot `bill_slot` (created at `created`) is also a Ramp bill."""
    return created >= since and seeded_rng(seed, key, "ramp bill", bill_slot).random() < RAMP_SHARE


def ach_trace(seed: int, key: str, payment_slot: int) -> str:
    """The 15-digit ACH trace number of the bill payment in QBO slot `payment_slot` when Ramp sent it."""
    return f"{seeded_rng(seed, key, 'ramp ach trace', payment_slot).randrange(10**14, 10**15)}"


def own_payment(seed: int, key: str, bill_slot: int, created: int) -> tuple[int, str]:
    """(when, ACH trace) of Ramp's payment of the bill in QBO slot `bill_slot` that the books never pay: 3-6 days
    after the bill was created, so after Ramp approved it."""
    rng = seeded_rng(seed, key, "ramp own payment", bill_slot)
    return created + rng.randrange(3 * DAY, 6 * DAY), f"{rng.randrange(10**14, 10**15)}"
