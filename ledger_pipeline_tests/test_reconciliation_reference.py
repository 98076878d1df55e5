"""The injected breaks are what a reconciliation can find through the pipeline: a business with breaks and a clean
one synced on all four rails, then the reference query (recon_reference.sql) over their mirrors and history finds
every injected break past its tolerance (recall) and nothing that was not injected (precision), against the
sandbox's ground truth (`ledger-pipeline sandbox breaks`)."""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

from ledger_pipeline.rails.qbo import sandbox as qbo_sandbox
from ledger_pipeline.rails.qbo.sandbox import DEMO_COMPANIES

from ledger_pipeline.world.breaks import KINDS
from ledger_pipeline.world.ground_truth import injected_breaks

RAILS = ("qbo", "stripe", "plaid", "ramp")
REFERENCE = Path(__file__).with_name("recon_reference.sql").read_text()


def _found(reported: list[tuple], injected: dict) -> bool:
    """A reported break finds an injected one: same tenant and kind, the injected evidence within the reported."""
    want = {(e["rail"], e["entity_type"], e["entity_id"]) for e in injected["evidence"]}
    return any(tenant == injected["tenant_id"] and kind == injected["kind"]
               and want <= {(e["rail"], e["entity_type"], e["entity_id"]) for e in evidence}
               for tenant, kind, _, evidence in reported)  # fmt: skip


def test_every_injected_break_is_found_from_the_mirrors_and_nothing_else(project, monkeypatch):
    # Acme breaks five times as often as in the demo, so that each kind shows at the tests' small scale.
    broken = (dataclasses.replace(DEMO_COMPANIES[0], breaks=5.0), *DEMO_COMPANIES[1:])
    monkeypatch.setattr(qbo_sandbox, "DEMO_COMPANIES", broken)  # read when the project's sandbox is built
    realms = {"acme": project.add_tenant("acme", 0, rails=RAILS), "clean": project.add_tenant("clean", 1, rails=RAILS)}
    tags = {"dagster/asset_partition_range_start": "acme", "dagster/asset_partition_range_end": "clean"}
    assert project.defs.resolve_job_def("sync_tenants").execute_in_process(instance=project.instance, tags=tags).success

    reported = project.query(REFERENCE)
    truth = [b for tenant, realm in realms.items() for b in injected_breaks(project.sandbox, realm, tenant)]
    now = project.sandbox.now.isoformat()
    due = [b for b in truth if b["reportable_from"] <= now]

    missed = [b for b in due if not _found(reported, b)]
    false = [r for r in reported if not any(_found([r], b) for b in truth)]
    assert not missed, missed[:5]
    assert not false, false[:5]
    assert not [r for r in reported if r[0] == "clean"]  # clean books, nothing reported
    assert {b["kind"] for b in due} == set(KINDS) - {"bill_paid_not_recorded"}, Counter(b["kind"] for b in due)
    assert len({r[1] for r in reported}) == len({b["kind"] for b in due})
