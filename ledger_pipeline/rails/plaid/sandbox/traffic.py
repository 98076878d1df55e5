"""Bank-only traffic, a pure function of (seed, item, day): what the books never see first.

On the business bank (Checking and Savings): a monthly service fee (1st), a monthly transfer Checking -> Savings
(15th, one transaction on each account), monthly interest on Savings (last day), debit-card purchases a few
times a week (pending, then posted 1-3 days later; restaurants post a tip on top; ~5 % of pendings are
cancelled), and, when the business also has a card at another bank, the card's monthly payment (5th).
On the card bank (no pending at all): purchases a few times a week and the monthly payment of the previous
month's purchases, which lands on the same day as its debit on Checking.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timezone

from ledger_pipeline.world.calendar import DAY, seeded_rng

from .movements import Look, Movement

HOUR = 3600
FEE_CENTS = 2500
CARD_PAYMENT_DAY = 5
# (merchant, look kind, typical dollars, restaurant: posts a tip)
DEBIT_MERCHANTS = (
    ("Harbor Street Diner", "restaurant", 38, True), ("Greenleaf Cafe", "coffee", 14, True),
    ("Quickfill Gas", "gas", 62, False), ("Cedar Office Supply", "office", 85, False),
    ("Parcel Depot", "shipping", 27, False), ("Metro Hardware", "hardware", 120, False),
    ("Corner Bistro", "restaurant", 56, True),
)
CARD_MERCHANTS = (
    ("Cloudnine Software", "software", 49, False), ("Skyline Airlines", "travel", 380, False),
    ("Redwood Hotel", "lodging", 210, False), ("Cedar Office Supply", "office", 140, False),
    ("Quickfill Gas", "gas", 70, False), ("Pixel Print Shop", "printing", 95, False),
    ("Harbor Street Diner", "restaurant", 64, False),
)


def _date(day: int) -> datetime:
    return datetime.fromtimestamp(day, tz=timezone.utc)


def _dollars(rng, typical: int) -> int:
    return max(300, int(rng.lognormvariate(0, 0.45) * typical * 100))


def _count(rng, per_day: float) -> int:
    """0, 1 or 2 events, `per_day` of them on average (for rates below 1)."""
    draw = rng.random()
    return 2 if draw < per_day * 0.1 else 1 if draw < per_day * 0.9 else 0


def bank_day(seed: int, item_id: str, day: int, checking: int, savings: int | None) -> list[Movement]:
    """The business bank's own traffic on the UTC day starting at `day` (card payments apart)."""
    rng = seeded_rng(seed, item_id, "bank day", day)
    date = _date(day)
    out: list[Movement] = []
    if date.day == 1:
        out.append(Movement(f"fee|{day}", checking, FEE_CENTS, day + 7 * HOUR,
                            Look("MONTHLY SERVICE FEE", "fee", counterparty=None, original="MONTHLY MAINTENANCE FEE"),
                            posted_at=day + 7 * HOUR))
    if savings is not None and date.day == 15:
        cents = rng.randrange(1000, 5000) * 100
        at = day + 10 * HOUR
        out.append(Movement(f"transfer-out|{day}", checking, cents, at,
                            Look("ONLINE TRANSFER TO SAVINGS", "transfer_out", original="ONLINE TRANSFER TO SAV XXXX"),
                            posted_at=at))
        out.append(Movement(f"transfer-in|{day}", savings, -cents, at,
                            Look("ONLINE TRANSFER FROM CHECKING", "transfer_in",
                                 original="ONLINE TRANSFER FROM CHK XXXX"),
                            posted_at=at))
    if savings is not None and date.day == calendar.monthrange(date.year, date.month)[1]:
        cents = rng.randrange(500, 4000)
        out.append(Movement(f"interest|{day}", savings, -cents, day + 6 * HOUR,
                            Look("INTEREST PAYMENT", "interest", original="INTEREST PAID"), posted_at=day + 6 * HOUR))
    for n in range(_count(rng, 0.5)):
        merchant, kind, typical, tips = DEBIT_MERCHANTS[rng.randrange(len(DEBIT_MERCHANTS))]
        authorized = day + rng.randrange(13 * HOUR, 24 * HOUR)
        pending_cents = _dollars(rng, typical)
        cancelled = rng.random() < 0.05
        posted = authorized - authorized % DAY + rng.randint(1, 3) * DAY + rng.randrange(4 * HOUR, 10 * HOUR)
        cents = pending_cents + (round(pending_cents * rng.uniform(0.15, 0.25)) if tips else 0)
        upper = merchant.upper()
        look = Look(upper, kind, merchant=merchant, counterparty=(merchant, "merchant"),
                    original=f"DEBIT CARD PURCHASE {upper} {authorized % 10_000:04d}",
                    pending_name=f"POS {upper}")
        m = Movement(f"debit|{day}|{n}", checking, cents, authorized, look,
                     pending_at=authorized + rng.randrange(60, 1800), pending_amount=pending_cents,
                     posted_at=None if cancelled else posted)
        if cancelled:
            m.ended_at = max(m.pending_at + HOUR, posted - rng.randrange(HOUR, 4 * HOUR))
        out.append(m)
    return out


def card_day(seed: int, item_id: str, day: int) -> list[Movement]:
    """The card's purchases authorized on the UTC day starting at `day` (posted 1-2 days later, no pending)."""
    rng = seeded_rng(seed, item_id, "card day", day)
    out = []
    for n in range(_count(rng, 0.45)):
        merchant, kind, typical, _ = CARD_MERCHANTS[rng.randrange(len(CARD_MERCHANTS))]
        authorized = day + rng.randrange(12 * HOUR, 24 * HOUR)
        posted = day + rng.randint(1, 2) * DAY + rng.randrange(4 * HOUR, 10 * HOUR)
        upper = merchant.upper()
        out.append(Movement(f"card|{day}|{n}", 0, _dollars(rng, typical), authorized,
                            Look(upper, kind, merchant=merchant, counterparty=(merchant, "merchant"),
                                 original=f"{upper} {authorized % 100_000:05d}"), posted_at=posted))
    return out


def card_payment_day(day: int) -> bool:
    return _date(day).day == CARD_PAYMENT_DAY


def previous_month(day: int) -> range:
    """The UTC midnights of the calendar month before the one `day` falls in."""
    date = _date(day)
    year, month = (date.year, date.month - 1) if date.month > 1 else (date.year - 1, 12)
    first = int(datetime(year, month, 1, tzinfo=timezone.utc).timestamp())
    return range(first, first + calendar.monthrange(year, month)[1] * DAY, DAY)


def card_payment(day: int, cents: int, on_card: bool, account: int, bank_name: str) -> Movement:
    """The monthly card payment: a credit on the card, the matching debit on Checking, same instant."""
    at = day + 11 * HOUR
    if on_card:
        look = Look("PAYMENT - THANK YOU", "card_payment_in", original="AUTOPAY PAYMENT RECEIVED - THANK YOU")
        return Movement(f"card-payment|{day}", account, -cents, at, look, posted_at=at)
    upper = bank_name.upper()
    look = Look(f"{upper} CARD PAYMENT", "card_payment_out", merchant=bank_name,
                counterparty=(bank_name, "financial_institution"), original=f"{upper} DES:CRCARDPMT AUTOPAY")
    return Movement(f"card-payment|{day}", account, cents, at, look, posted_at=at)
