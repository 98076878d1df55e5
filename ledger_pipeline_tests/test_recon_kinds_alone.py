"""Each break kind alone (issue 24): a business that injects one kind only (CompanySpec.break_kinds) gets exactly
that kind listed as ground truth, and the reconciliation finds every one of its breaks past tolerance (recall
100 %) and reports nothing else (precision 100 %): no other kind, which a mix of kinds could hide.

The businesses, one tenant each, sync on all four rails in one run. The suite runs SAMPLE; `make recon-kinds`
(LEDGER_KINDS_ALONE=all) runs all nine kinds, a run of about a minute (docs/reconciliation.md, Tests)."""

from __future__ import annotations

import dataclasses
import os
from collections import Counter

import pytest

from ledger_pipeline.rails.qbo.sandbox import DEMO_COMPANIES, CompanySpec, QboSandbox
from ledger_pipeline.world.breaks import KINDS, MAX_BREAKS, PAYOUT_SHARES, Breaks
from ledger_pipeline.world.ground_truth import injected_breaks
from ledger_pipeline_tests.conftest import TEST_SCALE
from ledger_pipeline_tests.recon_support import add_business, on_every_rail, scored_breaks, sync_in_one_run

# The kinds the mixed businesses of test_recon_breaks.py hold fewest of (under seed 20261206, 1, 1 and 4 past
# tolerance; every other kind 6 or more), so the suite sees them alone: a payout the bank never shows, a payment the
# bank shows for another amount, a deposit booked gross.
SAMPLE = ("deposit_amount_mismatch", "payout_not_in_bank", "amount_mismatch")
ALONE = KINDS if os.environ.get("LEDGER_KINDS_ALONE") == "all" else SAMPLE


def _business(kind: str, scale: float = 1.0) -> CompanySpec:
    """A business like Acme Plumbing that injects `kind` only, as often as the world allows (MAX_BREAKS); its realm
    is the kind's place in KINDS, so the sample's businesses are those of the full run."""
    acme, realm_id = DEMO_COMPANIES[0], f"91303500000002{KINDS.index(kind):02d}"
    return dataclasses.replace(acme, realm_id=realm_id, name=f"Only {kind}", size=max(50, int(acme.size * scale)),
                               breaks=MAX_BREAKS, break_kinds=(kind,))


def test_each_kind_alone_is_found_and_nothing_else(project, monkeypatch):
    """Synced at the sandbox's first clock, which follows months of the businesses' history: every break counted
    is past its tolerance there (a break still inside it is neither missed nor false)."""
    companies = {kind: _business(kind) for kind in ALONE}
    on_every_rail(monkeypatch, tuple(companies.values()))
    for kind, company in companies.items():
        add_business(project, kind, company)  # the tenant is named after its business's kind
    assert sync_in_one_run(project, ALONE[0], ALONE[-1]).success

    scored = scored_breaks(project, {kind: company.realm_id for kind, company in companies.items()})
    assert {(b["tenant_id"], b["kind"]) for b in scored.truth} == {(kind, kind) for kind in ALONE}
    due = Counter(b["tenant_id"] for b in scored.found + scored.missed)
    found = Counter(b["tenant_id"] for b in scored.found)
    reported = Counter((r["tenant_id"], r["kind"]) for r in scored.reported)
    per_kind = {kind: (found[kind], due[kind], reported[kind, kind]) for kind in ALONE}  # (found, due, reported)
    assert all(due[kind] for kind in ALONE), per_kind  # each business has breaks past tolerance to find
    assert not scored.missed, (per_kind, scored.missed[:5])  # recall 100 %
    assert not scored.false, (per_kind, scored.false[:5])  # precision 100 %: no other kind, no other tenant


def test_a_business_lists_only_the_kind_it_keeps():
    """Every kind (not only the suite's sample): the ground truth of a business keeping one kind is that kind,
    with some of it past tolerance at the sandbox's first clock, in the tests' small businesses."""
    companies = tuple(_business(kind, TEST_SCALE) for kind in KINDS)
    sandbox = QboSandbox(companies, rate_limit=None)
    now = sandbox.now.isoformat()
    for company, kind in zip(companies, KINDS, strict=True):
        listed = injected_breaks(sandbox, company.realm_id, kind)
        assert {b["kind"] for b in listed} == {kind}
        assert any(b["reportable_from"] <= now for b in listed), kind


def test_a_kind_left_out_takes_no_objects_from_the_kinds_kept():
    """The kinds kept stack from the start of each object's draw: the first kind of the draw breaks the same
    objects alone as among all kinds, and a later one alone breaks its whole share, not what the kinds before it
    leave."""
    realm, payouts = DEMO_COMPANIES[0].realm_id, range(20_000)
    (first, _), _, (last, last_share) = PAYOUT_SHARES
    every, first_alone = Breaks(7, realm, MAX_BREAKS), Breaks(7, realm, MAX_BREAKS, (first,))
    assert [i for i in payouts if every.payout(i) == first] == [i for i in payouts if first_alone.payout(i)]
    broken = Counter(Breaks(7, realm, MAX_BREAKS, (last,)).payout(i) for i in payouts)
    assert set(broken) == {last, None}
    assert broken[last] / len(payouts) == pytest.approx(last_share * MAX_BREAKS, abs=0.01)


@pytest.mark.parametrize("kinds", [("meteor",), ("amount_mismatch", "Amount_Mismatch"), (), "amount_mismatch"])
def test_break_kinds_must_be_known_kinds(kinds):
    known = ", ".join(KINDS)
    with pytest.raises(ValueError, match=f"break_kinds must name one or more of {known}; got"):
        dataclasses.replace(DEMO_COMPANIES[0], break_kinds=kinds)


def test_every_kind_is_the_default_in_the_order_of_kinds():
    assert DEMO_COMPANIES[0].break_kinds == KINDS
    assert dataclasses.replace(DEMO_COMPANIES[0], break_kinds=[*reversed(KINDS)]).break_kinds == KINDS
