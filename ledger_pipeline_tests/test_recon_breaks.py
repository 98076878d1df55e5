"""recon.breaks against the sandbox's ground truth (`ledger-pipeline sandbox breaks`): a business with breaks and a
clean one synced on all four rails in one run, and the table holds every injected break past its tolerance (recall)
and nothing that was not injected (precision), each with a stable id."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter

import dagster as dg

from ledger_pipeline.rails.qbo import sandbox as qbo_sandbox
from ledger_pipeline.rails.qbo.sandbox import DEMO_COMPANIES
from ledger_pipeline.world.breaks import KINDS
from ledger_pipeline.world.ground_truth import injected_breaks, score

RAILS = ("qbo", "stripe", "plaid", "ramp")
BREAKS = "select tenant_id, kind, amount_minor, evidence, break_id, status, currency from recon.breaks order by all"


def test_every_injected_break_is_found_from_the_mirrors_and_nothing_else(project, monkeypatch):
    # Acme breaks five times as often as in the demo, so that each kind shows at the tests' small scale.
    broken = (dataclasses.replace(DEMO_COMPANIES[0], breaks=5.0), *DEMO_COMPANIES[1:])
    monkeypatch.setattr(qbo_sandbox, "DEMO_COMPANIES", broken)  # read when the project's sandbox is built
    realms = {"acme": project.add_tenant("acme", 0, rails=RAILS), "clean": project.add_tenant("clean", 1, rails=RAILS)}
    tags = {"dagster/asset_partition_range_start": "acme", "dagster/asset_partition_range_end": "clean"}
    job = project.defs.resolve_job_def("sync_tenants")
    assert job.execute_in_process(instance=project.instance, tags=tags).success

    rows = project.query(BREAKS)
    reported = [{"tenant_id": t, "kind": k, "evidence": json.loads(e)} for t, k, _, e, *_ in rows]
    assert all(status == "open" and currency == "USD" and len(break_id) == 16
               for *_, break_id, status, currency in rows)  # fmt: skip
    assert len({r[4] for r in rows}) == len(rows)  # one id per break
    truth = [b for tenant, realm in realms.items() for b in injected_breaks(project.sandbox, realm, tenant)]
    found, missed, false = score(reported, truth, project.sandbox.now.isoformat())

    assert not missed, missed[:5]
    assert not false, false[:5]
    assert not [r for r in reported if r["tenant_id"] == "clean"]  # clean books, nothing reported
    assert {b["kind"] for b in found} == set(KINDS), Counter(b["kind"] for b in found)

    # Refreshed again over the same clock: the same breaks under the same ids.
    recon = [dg.AssetKey(["recon", name]) for name in ("links", "exceptions", "breaks", "pending")]
    again = job.execute_in_process(instance=project.instance, tags=tags, asset_selection=recon)
    assert again.success and project.query(BREAKS) == rows
