"""The business's spend on its corporate cards (Ramp): people, their cards, card transactions, monthly statements
and out-of-pocket reimbursements, a pure function of (seed, business, instant).

Every object's whole story is decided when it is born, by an RNG seeded by that object alone (a day's
transactions by the day, a card by its holder and number), never by the books' replay stream: the QBO books
read the same story (a cleared transaction is booked as a Purchase the next business day), the card rail
shows it (pending, then cleared or declined), and the bank shows each statement paid. Nothing here needs a
replay, so any process at any clock renders the same spend; days are generated once and cached.

Timing: a transaction is authorised in the business's working hours; most clear 6 hours to 3 days later
(restaurants with a tip on top), some are declined at once, a few are authorised and then declined
(the authorisation reversed). Statements cover calendar months (UTC) of cleared transactions and are
issued the 1st of the next month; each is paid from the bank a few days later.
"""

from __future__ import annotations

import calendar
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property

from ledger_pipeline.world.calendar import DAY, business_days_after, midnight, seeded_rng
from ledger_pipeline.world.ids import stable_uuid

HOUR = 3600
DECLINED_SHARE = 0.03  # declined at the terminal: never pending, never booked
REVERSED_SHARE = 0.02  # authorised (pending), then declined: the authorisation is reversed
TIP_SHARE = 0.6  # restaurant transactions that clear with a tip on top of the authorisation
STATEMENT_PAYMENT_DAYS = (3, 4, 5)  # business days after a statement is issued until the bank pays it
REIMBURSEMENT_SHARE = 0.08  # reimbursements per card transaction
# (merchant, category, QBO expense kind, typical dollars, restaurant: may clear with a tip); the category is
# Ramp's `sk_category_name`, the kind picks the books' expense account.
MERCHANTS = (
    ("Cloudnine Software", "Software", "software", 49, False),
    ("Skyline Airlines", "Airlines", "travel", 380, False),
    ("Redwood Hotel", "Lodging", "travel", 210, False),
    ("Cedar Office Supply", "Office Supplies", "office", 85, False),
    ("Quickfill Gas", "Fuel", "auto", 62, False),
    ("Pixel Print Shop", "Printing", "office", 95, False),
    ("Harbor Street Diner", "Restaurants", "meals", 64, True),
    ("Greenleaf Cafe", "Restaurants", "meals", 18, True),
    ("Parcel Depot", "Shipping", "shipping", 27, False),
    ("Metro Hardware", "Hardware", "supplies", 120, False),
    ("Rideshare Now", "Taxi & Rideshare", "travel", 31, False),
    ("Adsphere Media", "Advertising", "advertising", 450, False),
)
DECLINE_REASONS = ("INSUFFICIENT_FUNDS", "MERCHANT_BLOCKED", "CARD_LIMIT_EXCEEDED", "SUSPECTED_FRAUD")
FIRST_NAMES = ("Ava", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Isla", "Jonas", "Kemi", "Liam",
               "Maya", "Noor", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tariq")  # fmt: skip
LAST_NAMES = ("Adler", "Brooks", "Castro", "Diaz", "Evans", "Fischer", "Garcia", "Hughes", "Ito", "Jensen", "Khan",
              "Lopez", "Moreau", "Novak", "Okafor", "Patel")  # fmt: skip
DEPARTMENTS = ("Operations", "Sales", "Engineering", "Finance", "Marketing")


@dataclass(frozen=True, slots=True)
class User:
    index: int
    user_id: str
    created: int
    first_name: str
    last_name: str
    role: str  # Ramp's role names
    department: str

    @property
    def email(self) -> str:
        return f"{self.first_name}.{self.last_name}{self.index}@example.com".lower()


@dataclass(frozen=True, slots=True)
class Card:
    index: int  # per holder: 0 the first card, 1 its replacement, ...
    card_id: str
    holder: int  # user index
    created: int
    physical: bool
    last_four: str
    limit_cents: int
    activated: int | None  # None: never activated (hidden by Ramp's default filter)
    terminated: int | None  # terminated then (hidden by default); its holder gets a new card that instant

    def state(self, sec: int) -> str:
        if self.terminated is not None and sec >= self.terminated:
            return "TERMINATED"
        if self.activated is None or sec < self.activated:
            return "UNACTIVATED"
        return "ACTIVE"


@dataclass(frozen=True, slots=True)
class CardTransaction:
    transaction_id: str
    day: int
    number: int  # within its day
    card_id: str
    holder: int
    merchant: int  # index into MERCHANTS
    authorized: int
    pending_cents: int  # the authorised amount
    cents: int  # the cleared amount (a restaurant's tip on top)
    cleared: int | None  # None: declined
    declined: int | None
    decline_reason: str | None
    booked: int | None  # when the books record it as a Purchase (cleared ones only)

    def state(self, sec: int) -> str | None:
        """Ramp's state at `sec` (None: not yet authorised)."""
        if sec < self.authorized:
            return None
        if self.declined is not None and sec >= self.declined:
            return "DECLINED"
        if self.cleared is not None and sec >= self.cleared:
            return "CLEARED"
        return "PENDING"

    def cents_at(self, sec: int) -> int:
        return self.cents if self.cleared is not None and sec >= self.cleared else self.pending_cents

    def changed_at(self, sec: int) -> int:
        """When the transaction last changed, as of `sec` (authorised, then cleared or declined)."""
        ends = [t for t in (self.cleared, self.declined) if t is not None and t <= sec]
        return max(ends) if ends else self.authorized


@dataclass(frozen=True, slots=True)
class Statement:
    statement_id: str
    start: int  # UTC midnight of the month's first day
    end: int  # UTC midnight of the next month's first day (exclusive)
    issued: int  # the rail shows it from then
    transaction_ids: tuple[str, ...]  # the cards' transactions cleared in [start, end)
    charges_cents: int
    paid: int  # the bank debits the charges then


@dataclass(frozen=True, slots=True)
class Reimbursement:
    reimbursement_id: str
    user: int
    merchant: int
    created: int
    cents: int
    approved: int
    reimbursed: int

    def state(self, sec: int) -> str | None:
        if sec < self.created:
            return None
        return "REIMBURSED" if sec >= self.reimbursed else "APPROVED" if sec >= self.approved else "PENDING"

    def updated_at(self, sec: int) -> int:
        return max(t for t in (self.created, self.approved, self.reimbursed) if t <= sec)


class CardSpend:
    """One business's corporate card spend from `start` on, read at any instant."""

    def __init__(self, seed: int, key: str, size: int, offset_minutes: int, start: int) -> None:
        self.seed, self.key, self.offset = seed, key, offset_minutes
        self.start = midnight(start)
        self.per_day = max(1.5, size * 0.0005)  # card transactions a day on average
        self.user_count = max(3, min(len(FIRST_NAMES), round(math.sqrt(size) / 10)))
        self._days: dict[int, tuple[CardTransaction, ...]] = {}
        self._reimbursements: dict[int, tuple[Reimbursement, ...]] = {}
        self._statements: dict[int, Statement] = {}

    # --- people and cards ------------------------------------------------------------------------
    @cached_property
    def people(self) -> tuple[User, ...]:
        """Everyone with a card; the first few from the start, the others joining over the first months."""
        users = []
        for index in range(self.user_count):
            rng = seeded_rng(self.seed, self.key, "ramp user", index)
            created = self.start - 30 * DAY + (0 if index < 3 else rng.randrange(30 * DAY, 150 * DAY))
            role = "BUSINESS_ADMIN" if index == 0 else rng.choice(("BUSINESS_USER", "BUSINESS_USER", "BUSINESS_BOOKKEEPER"))
            users.append(User(index, stable_uuid(self.seed, self.key, "user", index), created,
                              FIRST_NAMES[rng.randrange(len(FIRST_NAMES))], LAST_NAMES[rng.randrange(len(LAST_NAMES))],
                              role, rng.choice(DEPARTMENTS)))  # fmt: skip
        return tuple(users)

    def users(self, sec: int) -> list[User]:
        return [u for u in self.people if u.created <= sec]

    @cached_property
    def all_cards(self) -> tuple[Card, ...]:
        """Each person's cards in order: a physical card, replaced when terminated (about one in four is, once), and
        for some a virtual card for subscriptions; a few virtual cards are issued and never activated."""
        cards: list[Card] = []
        for user in self.people:
            rng = seeded_rng(self.seed, self.key, "ramp cards", user.index)
            issued, number = user.created + HOUR, 0
            while True:
                terminated = issued + rng.randrange(60 * DAY, 200 * DAY) if number == 0 and rng.random() < 0.25 else None
                cards.append(self._card(user.index, number, issued, True, terminated, rng))
                number += 1
                if terminated is None:
                    break
                issued = terminated
            if rng.random() < 0.5:
                never = rng.random() < 0.2
                card = self._card(user.index, number, user.created + rng.randrange(DAY, 20 * DAY), False, None, rng)
                if never:
                    card = Card(card.index, card.card_id, card.holder, card.created, False, card.last_four,
                                card.limit_cents, None, None)  # fmt: skip
                cards.append(card)
        return tuple(cards)

    def _card(self, holder: int, number: int, issued: int, physical: bool, terminated: int | None, rng) -> Card:
        activated = issued + (rng.randrange(2 * DAY, 5 * DAY) if physical else rng.randrange(60, 3600))
        return Card(number, stable_uuid(self.seed, self.key, "card", holder, number), holder, issued, physical,
                    f"{rng.randrange(10_000):04d}", rng.choice((100_000, 250_000, 500_000, 1_000_000)), activated,
                    terminated)  # fmt: skip

    def cards(self, sec: int) -> list[Card]:
        return [c for c in self.all_cards if c.created <= sec]

    def _spending_card(self, holder: int, sec: int) -> Card | None:
        usable = [c for c in self.all_cards if c.holder == holder and c.state(sec) == "ACTIVE"]
        return usable[0] if usable else None

    # --- transactions ----------------------------------------------------------------------------
    def day(self, day: int) -> tuple[CardTransaction, ...]:
        """The transactions authorised on the UTC day starting at `day` (all of them, whatever the clock)."""
        cached = self._days.get(day)
        if cached is None:
            cached = self._days[day] = tuple(self._generate_day(day)) if day >= self.start else ()
        return cached

    def _generate_day(self, day: int):
        rng = seeded_rng(self.seed, self.key, "ramp day", day)
        weekday = (day // DAY + 3) % 7
        count = _poisson(rng, self.per_day * (0.3 if weekday >= 5 else 1.0))
        for number in range(count):  # a number skipped (its holder has no usable card yet) stays unused
            one = seeded_rng(self.seed, self.key, "ramp txn", day, number)
            # the business's working hours (08:00-19:00 local)
            authorized = day - self.offset * 60 + 8 * HOUR + one.randrange(11 * HOUR)
            holder = one.randrange(self.user_count)
            card = self._spending_card(holder, authorized)
            if self.people[holder].created > authorized or card is None:
                continue
            merchant = one.randrange(len(MERCHANTS))
            _, _, _, typical, restaurant = MERCHANTS[merchant]
            pending = max(150, int(one.lognormvariate(0, 0.5) * typical * 100))
            cents, cleared, declined, reason = pending, None, None, None
            draw = one.random()
            if draw < DECLINED_SHARE:
                declined, reason = authorized, one.choice(DECLINE_REASONS)
            elif draw < DECLINED_SHARE + REVERSED_SHARE:
                declined, reason = authorized + one.randrange(6 * HOUR, 2 * DAY), "AUTHORIZATION_REVERSED"
            else:
                cleared = authorized + one.randrange(6 * HOUR, 3 * DAY)
                if restaurant and one.random() < TIP_SHARE:
                    cents = pending + round(pending * one.choice((0.15, 0.18, 0.2)))
            booked = None
            if cleared is not None:  # the books record it the next business day, 09:00-16:00 local
                booked = business_days_after(midnight(cleared), 1) - self.offset * 60 + 9 * HOUR + one.randrange(7 * HOUR)
            yield CardTransaction(stable_uuid(self.seed, self.key, "txn", day, number), day, number, card.card_id,
                                  holder, merchant, authorized, pending, cents, cleared, declined, reason, booked)  # fmt: skip

    def transactions(self, sec: int) -> list[CardTransaction]:
        """Every transaction authorised by `sec`, oldest first."""
        out: list[CardTransaction] = []
        day = self.start
        while day <= sec:
            out += [t for t in self.day(day) if t.authorized <= sec]
            day += DAY
        return out

    def bookings(self, sec: int) -> list[CardTransaction]:
        """The cleared transactions the books have recorded by `sec`, in the order they were booked."""
        # A transaction is booked at most ~6 days after it was authorised (3 to clear, a weekend, a business day).
        return sorted((t for t in self.transactions(sec) if t.booked is not None and t.booked <= sec),
                      key=lambda t: (t.booked, t.transaction_id))

    def bookings_between(self, after: int, until: int) -> list[CardTransaction]:
        """The transactions booked in (after, until], in booked order: what a reader that keeps its position
        books next, reading only the days that can hold them rather than the whole past."""
        # Booked at most 7 days 11 hours after its UTC day begins, plus twice the offset (authorised and booked
        # in local hours): 19 h of working day, 3 days to clear, a weekend, a business day, 16:00 local.
        lag = 8 * DAY + 2 * abs(self.offset) * 60
        out: list[CardTransaction] = []
        day = max(self.start, midnight(after - lag))
        while day <= until:
            out += [t for t in self.day(day) if t.booked is not None and after < t.booked <= until]
            day += DAY
        out.sort(key=lambda t: (t.booked, t.transaction_id))
        return out

    # --- statements and reimbursements -----------------------------------------------------------
    def statements(self, sec: int) -> list[Statement]:
        """The monthly statements issued by `sec`, oldest first."""
        out = []
        month = _month_start(self.start)
        while True:
            end = _next_month(month)
            if end > sec:
                return out
            statement = self._statements.get(month)
            if statement is None:
                statement = self._statements[month] = self._statement(month, end)
            out.append(statement)
            month = end

    def _statement(self, start: int, end: int) -> Statement:
        lines = []
        day = max(self.start, start - 4 * DAY)  # a transaction clears at most 3 days after it is authorised
        while day < end:
            lines += [t for t in self.day(day) if t.cleared is not None and start <= t.cleared < end]
            day += DAY
        lines.sort(key=lambda t: (t.cleared, t.transaction_id))
        rng = seeded_rng(self.seed, self.key, "ramp statement", start)
        paid = business_days_after(end, rng.choice(STATEMENT_PAYMENT_DAYS)) + 10 * HOUR + rng.randrange(4 * HOUR)
        return Statement(stable_uuid(self.seed, self.key, "statement", start), start, end, end + 6 * HOUR,
                         tuple(t.transaction_id for t in lines), sum(t.cents for t in lines), paid)  # fmt: skip

    def reimbursements(self, sec: int) -> list[Reimbursement]:
        """Out-of-pocket expenses submitted by `sec`, oldest first: pending, approved a day or three later, paid
        to the employee a few days after that."""
        out: list[Reimbursement] = []
        day = self.start
        while day <= sec:
            cached = self._reimbursements.get(day)
            if cached is None:
                cached = self._reimbursements[day] = tuple(self._reimbursement_day(day))
            out += [r for r in cached if r.created <= sec]
            day += DAY
        return out

    def _reimbursement_day(self, day: int):
        rng = seeded_rng(self.seed, self.key, "ramp reimbursement day", day)
        for number in range(_poisson(rng, self.per_day * REIMBURSEMENT_SHARE)):
            one = seeded_rng(self.seed, self.key, "ramp reimbursement", day, number)
            user = one.randrange(self.user_count)
            created = day - self.offset * 60 + 9 * HOUR + one.randrange(9 * HOUR)
            if self.people[user].created > created:
                continue
            merchant = one.randrange(len(MERCHANTS))
            cents = max(200, int(one.lognormvariate(0, 0.5) * MERCHANTS[merchant][3] * 100))
            approved = created + one.randrange(DAY, 3 * DAY)
            yield Reimbursement(stable_uuid(self.seed, self.key, "reimbursement", day, number), user, merchant,
                                created, cents, approved, approved + one.randrange(2 * DAY, 5 * DAY))  # fmt: skip


def _poisson(rng, lam: float) -> int:
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _month_start(sec: int) -> int:
    date = datetime.fromtimestamp(sec, tz=UTC)
    return int(datetime(date.year, date.month, 1, tzinfo=UTC).timestamp())


def _next_month(month_start: int) -> int:
    date = datetime.fromtimestamp(month_start, tz=UTC)
    days = calendar.monthrange(date.year, date.month)[1]
    return month_start + days * DAY
