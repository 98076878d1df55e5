"""Each break kind alone (issue 24): a business that injects one kind only (CompanySpec.break_kinds) gets exactly
that kind listed as ground truth, and the reconciliation finds every one of its breaks past tolerance (recall
100 %) and reports nothing else (precision 100 %): no other kind, which a mix of kinds could hide.

The nine businesses, one tenant each, sync on all four rails in one run: the cost of one run, with a few seconds
per tenant (docs/reconciliation.md, Tests)."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from ledger_pipeline.rails.qbo.sandbox import DEMO_COMPANIES, CompanySpec
from ledger_pipeline.world.breaks import KINDS, MAX_BREAKS, PAYOUT_SHARES, Breaks
from ledger_pipeline_tests.recon_support import (
    add_business,
    in_world,
    on_every_rail,
    scored_breaks,
    sync_in_one_run,
    world_seeds,
)


def _business(kind: str) -> CompanySpec:
    """A business like Acme Plumbing, under a realm of its own, that injects `kind` only, as often as the world
    allows (MAX_BREAKS)."""
    realm_id = f"91303500000002{KINDS.index(kind):02d}"
    return dataclasses.replace(DEMO_COMPANIES[0], realm_id=realm_id, name=f"Only {kind}", breaks=MAX_BREAKS,
                               break_kinds=(kind,))


WORLD = 7  # the sandbox's default world: every business holds breaks of its kind past tolerance at this scale


@pytest.mark.parametrize("seed", world_seeds(WORLD))
def test_each_kind_alone_is_found_and_nothing_else(project, monkeypatch, seed):
    """Synced at the sandbox's first clock, which follows months of the businesses' history: every break counted
    is past its tolerance there (a break still inside it is neither missed nor false)."""
    in_world(monkeypatch, seed)
    companies = {kind: _business(kind) for kind in KINDS}
    on_every_rail(monkeypatch, tuple(companies.values()))
    for kind, company in companies.items():
        add_business(project, kind, company)  # the tenant is named after its business's kind
    assert sync_in_one_run(project, KINDS[0], KINDS[-1]).success

    scored = scored_breaks(project, {kind: company.realm_id for kind, company in companies.items()})
    assert all(b["tenant_id"] == b["kind"] for b in scored.truth), scored.truth[:5]  # that kind only
    due = Counter(b["tenant_id"] for b in scored.found + scored.missed)
    found = Counter(b["tenant_id"] for b in scored.found)
    reported = Counter((r["tenant_id"], r["kind"]) for r in scored.reported)
    per_kind = {kind: (found[kind], due[kind], reported[kind, kind]) for kind in KINDS}  # (found, due, reported)
    if seed == WORLD:  # another world (`make soak-recon`) may have injected none of a kind by the clock
        assert {b["tenant_id"] for b in scored.truth} == set(KINDS)
        assert all(due[kind] for kind in KINDS), per_kind  # each business has breaks past tolerance to find
    assert not scored.missed, (per_kind, scored.missed[:5])  # recall 100 %
    assert not scored.false, (per_kind, scored.false[:5])  # precision 100 %: no other kind, no other tenant


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
