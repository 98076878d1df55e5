"""Breaks put into a business on purpose, so the cross-rail reconciliation is measured against ground truth.

A business's `breaks` setting (CompanySpec.breaks; 0 = clean books, 1 = the shares below) decides how many of
its objects each kind breaks. Which objects break is a pure function of (seed, business, object), as every
other choice of the world: every rail renders the same broken story in any process and at any clock, and the
sandbox can list what it broke (world/ground_truth.py). An object breaks in one way at most.

`break_kinds` (CompanySpec.break_kinds, default all KINDS) restricts which kinds a business injects, so that a
test can hold one kind alone. The kinds kept keep their shares and stack from the start of an object's draw,
skipping the others: a kind kept breaks `share x breaks` of its objects whichever kinds are left out (a left-out
kind never takes objects away from it), and with every kind kept the draws are exactly those of all kinds.
Leaving kinds out changes which objects of a kept kind break (but for the first kind of each object type), and
the rest of the world follows the breaks as always: a Deposit never booked shifts the next Deposits' ids, a bill
held open is never paid by the books.

Where each kind is made (the rail whose view departs from the business's money):

- `payout_not_deposited`, `deposit_amount_mismatch`: the books book no Deposit for a paid payout, or one for
  the payout's gross (charges before fees) instead of what arrived;
- `payout_not_in_bank`: the bank never shows a paid payout;
- `card_spend_not_booked`, `booking_duplicated`: the books book no Purchase for a cleared card transaction, or
  two;
- `bill_paid_not_recorded`: Ramp pays a bill the business runs through Ramp bill pay on its own date and the bank
  shows Ramp's ACH debit, while the books never record a bill payment for it (the bill stays open);
- `payment_recorded_not_in_bank`: the bank never shows a customer payment (check or ACH) or a bill payment the
  books record;
- `amount_mismatch`: the bank shows a customer payment for another amount than the books;
- `bank_txn_unexplained`: an ACH debit at the bank that no rail and no book accounts for.

Normal timing is not a break: each kind is reportable only once TOLERANCE has passed since the moment the
money should have shown (world/ground_truth.py says which moment).
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger_pipeline.world.calendar import DAY, seeded_rng

# Each kind's share of the objects it can break, at `breaks` = 1 (a demo business's few of each).
PAYOUT_SHARES = (("payout_not_deposited", 0.04), ("deposit_amount_mismatch", 0.04), ("payout_not_in_bank", 0.04))
CARD_SHARES = (("card_spend_not_booked", 0.02), ("booking_duplicated", 0.02))
PAYMENT_SHARES = (("payment_recorded_not_in_bank", 0.03), ("amount_mismatch", 0.03))
BILL_PAYMENT_SHARES = (("payment_recorded_not_in_bank", 0.02),)
RAMP_BILL_SHARES = (("bill_paid_not_recorded", 0.05),)  # of the bills run through Ramp bill pay
UNEXPLAINED_DAY_SHARE = 0.02  # days on which an unexplained ACH debit leaves Checking

KINDS = (
    "payout_not_deposited", "deposit_amount_mismatch", "payout_not_in_bank", "card_spend_not_booked",
    "booking_duplicated", "bill_paid_not_recorded", "payment_recorded_not_in_bank", "bank_txn_unexplained",
    "amount_mismatch",
)  # fmt: skip
# How long after the money should have shown a missing or differing piece is a break: longer than every
# normal delay of the world (a deposit booked the next business day, a payout posted 1-2 business days after
# arrival, a card booking the next business day after clearing, a check clearing within 10 days).
TOLERANCE: dict[str, int] = {
    "payout_not_deposited": 5 * DAY, "deposit_amount_mismatch": 0, "payout_not_in_bank": 5 * DAY,
    "card_spend_not_booked": 5 * DAY, "booking_duplicated": 0, "bill_paid_not_recorded": 5 * DAY,
    "payment_recorded_not_in_bank": 14 * DAY, "bank_txn_unexplained": 5 * DAY, "amount_mismatch": 0,
}  # fmt: skip
MAX_BREAKS = 10.0  # the largest `breaks` setting: ten times the demo's shares


@dataclass(frozen=True)
class Breaks:
    """Which of one business's objects are broken, and how; `rate` 0 breaks nothing, a kind not in `kinds` never."""

    seed: int
    key: str  # the business (its QBO realm id)
    rate: float
    kinds: tuple[str, ...] = KINDS

    def payout(self, index: int) -> str | None:
        """How the world's payout `index` is broken (None: it is not)."""
        return self._pick(PAYOUT_SHARES, "payout", index)

    def card(self, transaction_id: str) -> str | None:
        """How a cleared card transaction's booking is broken."""
        return self._pick(CARD_SHARES, "card", transaction_id)

    def payment(self, slot: int) -> str | None:
        """How the bank's side of the books' customer payment in `slot` is broken."""
        return self._pick(PAYMENT_SHARES, "payment", slot)

    def bill_payment(self, slot: int) -> str | None:
        """How the bank's side of the books' bill payment in `slot` is broken."""
        return self._pick(BILL_PAYMENT_SHARES, "bill payment", slot)

    def ramp_bill(self, slot: int) -> str | None:
        """How the books' side of the Ramp bill in QBO Bill `slot` is broken."""
        return self._pick(RAMP_BILL_SHARES, "ramp bill", slot)

    def bank_amount(self, slot: int, cents: int) -> int:
        """What the bank shows for a customer payment of `cents` whose amounts disagree: short by $1 to 10 %."""
        rng = seeded_rng(self.seed, self.key, "break amount", slot)
        return cents - max(100, rng.randrange(100, max(101, cents // 10)))

    def unexplained(self, day: int) -> int | None:
        """The cents of the unexplained ACH debit leaving Checking on the UTC day starting `day`, if any."""
        if self.rate <= 0 or "bank_txn_unexplained" not in self.kinds:
            return None
        rng = seeded_rng(self.seed, self.key, "break unexplained", day)
        if rng.random() >= UNEXPLAINED_DAY_SHARE * self.rate:
            return None
        return rng.randrange(5_000, 250_000)

    def _pick(self, shares: tuple[tuple[str, float], ...], what: str, which: object) -> str | None:
        if self.rate <= 0:
            return None
        draw = seeded_rng(self.seed, self.key, "break", what, which).random()
        for kind, share in shares:
            if kind not in self.kinds:
                continue  # left out: the next kept kind takes its place in the draw
            draw -= share * self.rate
            if draw < 0:
                return kind
        return None
