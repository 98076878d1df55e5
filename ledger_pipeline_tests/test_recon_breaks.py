"""recon.breaks against the sandbox's ground truth (`ledger-pipeline sandbox breaks`): two businesses with breaks and
a clean one synced on all four rails in one run, under two world seeds, and the table holds every injected break past
its tolerance (recall) and nothing that was not injected (precision), each with a stable id."""

from __future__ import annotations

import dataclasses
import functools
import json
from collections import Counter

import dagster as dg
import pytest

from ledger_pipeline.rails.qbo import sandbox as qbo_sandbox
from ledger_pipeline.rails.qbo.sandbox import DEMO_COMPANIES, QboSandbox
from ledger_pipeline.world.breaks import KINDS
from ledger_pipeline.world.ground_truth import injected_breaks, score

RAILS = ("qbo", "stripe", "plaid", "ramp")
BREAKS = "select tenant_id, kind, amount_minor, evidence, break_id, status, currency from recon.breaks order by all"


@pytest.mark.parametrize("seed", [7, 20261206])  # the sandbox's default world, and another
def test_every_injected_break_is_found_from_the_mirrors_and_nothing_else(project, monkeypatch, seed):
    # Acme breaks five times as often as in the demo, so that each kind shows at the tests' small scale; Copperline
    # twice; Bluebird keeps clean books.
    acme, bluebird, copperline = DEMO_COMPANIES
    companies = (dataclasses.replace(acme, breaks=5.0), dataclasses.replace(bluebird, breaks=0.0),
                 dataclasses.replace(copperline, breaks=2.0))  # fmt: skip
    monkeypatch.setattr(qbo_sandbox, "DEMO_COMPANIES", companies)  # read when the project's sandbox is built
    monkeypatch.setattr(QboSandbox, "__init__", functools.partialmethod(QboSandbox.__init__, seed=seed))
    realms = {tenant: project.add_tenant(tenant, company, rails=RAILS)
              for tenant, company in (("acme", 0), ("clean", 1), ("copper", 2))}  # fmt: skip
    tags = {"dagster/asset_partition_range_start": "acme", "dagster/asset_partition_range_end": "copper"}
    job = project.defs.resolve_job_def("sync_tenants")
    assert job.execute_in_process(instance=project.instance, tags=tags).success

    rows = project.query(BREAKS)
    reported = [{"tenant_id": t, "kind": k, "evidence": json.loads(e)} for t, k, _, e, *_ in rows]
    assert all(status == "open" and currency == "USD" and len(break_id) == 16
               for *_, break_id, status, currency in rows)  # fmt: skip
    assert len({r[4] for r in rows}) == len(rows)  # one id per break
    truth = [b for tenant, realm in realms.items() for b in injected_breaks(project.sandbox, realm, tenant)]
    found, missed, false = score(reported, truth, project.sandbox.now.isoformat())

    assert project.sandbox.seed == seed
    assert not missed, missed[:5]
    assert not false, false[:5]
    assert not [r for r in reported if r["tenant_id"] == "clean"]  # clean books, nothing reported
    assert {r["tenant_id"] for r in reported} == {"acme", "copper"}
    assert {b["kind"] for b in found} == set(KINDS), Counter(b["kind"] for b in found)

    # Refreshed again over the same clock: the same breaks under the same ids.
    recon = [dg.AssetKey(["recon", name]) for name in ("links", "exceptions", "breaks", "pending")]
    again = job.execute_in_process(instance=project.instance, tags=tags, asset_selection=recon)
    assert again.success and project.query(BREAKS) == rows
