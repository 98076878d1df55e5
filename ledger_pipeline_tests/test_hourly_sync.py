"""hourly_sync: tenants share runs (partition ranges); tenants whose last sync failed are retried apart.

The integration test evaluates the schedule on the project's instance and runs what it asks for,
through the real job, DuckDB file and sandbox: a tenant that starts failing costs its range one
failed tick, then runs alone while the others share runs again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import dagster as dg
import pytest

from ledger_pipeline.defs.partitions import TENANTS
from ledger_pipeline.defs.schedules import RANGE_END, RANGE_START, hourly_sync, nightly_audit, sync_requests
from ledger_pipeline.lib import settings
from ledger_pipeline.lib.tenants import Tenant
from ledger_pipeline.rails.qbo.rail import QboConnection
from ledger_pipeline.rails.qbo import sandbox as qbo_sandbox
from ledger_pipeline.rails.qbo.sandbox import DEMO_COMPANIES
from ledger_pipeline.rails.qbo.entities import entity as entity_named
from ledger_pipeline.rails.qbo.sandbox.spec import Fault
from ledger_pipeline_tests.conftest import Project
from ledger_pipeline_tests.helpers import failure_text, mirror, truth

TENANT_IDS = ["acme", "globex", "initech", "umbrella"]
# The failing-tenant test's runs materialise bills only (where the fault is): ~1 s a run instead of ~5-10 s. The
# schedule's requests run over every step they select in test_each_run_selects_the_rails_its_tenants_connected.
BILLS = [dg.AssetKey(["raw", "qbo_bills"]), dg.AssetKey(["mirror", "qbo_bills"])]
# A bill assertion (balance_matches_payments) reads the bill payments too: the first runs create their tables.
FIRST = [*BILLS, dg.AssetKey(["raw", "qbo_bill_payments"]), dg.AssetKey(["mirror", "qbo_bill_payments"])]
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _covered(request: dg.RunRequest, order: list[str]) -> list[str]:
    """The tenants one request's run syncs: its partition, or every tenant of its range."""
    if request.partition_key is not None:
        return [request.partition_key]
    first, last = order.index(request.tags[RANGE_START]), order.index(request.tags[RANGE_END])
    return order[first : last + 1]


def test_consecutive_tenants_share_runs_and_a_failed_one_splits_its_range():
    tenants = list("abcdefg")

    requests = sync_requests(tenants, {"c"}, 2, "t0")

    assert [_covered(r, tenants) for r in requests] == [["a", "b"], ["c"], ["d", "e"], ["f", "g"]]
    assert requests[1].partition_key == "c" and requests[1].run_key == "c:t0"
    assert requests[0].run_key == "a..b:t0" and requests[0].partition_key is None
    assert [_covered(r, tenants) for r in sync_requests(tenants, set(), 50, "t0")] == [tenants]
    one_each = sync_requests(tenants, set(), 1, "t0")
    assert [r.partition_key for r in one_each] == tenants and len({r.run_key for r in one_each}) == len(tenants)
    assert [_covered(r, tenants) for r in sync_requests(tenants, {"a", "g"}, 3, "t0")] == [
        ["a"], ["b", "c", "d"], ["e", "f"], ["g"],
    ]  # fmt: skip


def test_a_run_takes_a_hundred_tenants_unless_told_otherwise(monkeypatch):
    monkeypatch.delenv("LEDGER_SYNC_TENANTS_PER_RUN", raising=False)
    assert settings.sync_tenants_per_run() == 100
    monkeypatch.setenv("LEDGER_SYNC_TENANTS_PER_RUN", " 7 ")
    assert settings.sync_tenants_per_run() == 7


def test_failed_tenants_are_retried_in_ranges_shrinking_to_one():
    """A failed range of n is retried as runs of about the square root of n, so a fleet-wide failure
    (the nightly audit) does not turn the next tick into a run per tenant, and a tenant that keeps
    failing is alone within a few ticks."""
    fleet = [f"t{i:03d}" for i in range(100)]
    retried = sync_requests(fleet, set(fleet), 100, "t0")
    assert [len(_covered(r, fleet)) for r in retried] == [10] * 10
    one_range_failed_again = set(_covered(retried[4], fleet))
    assert [len(_covered(r, fleet)) for r in sync_requests(fleet, one_range_failed_again, 100, "t1")] == [
        40, 3, 3, 3, 1, 50,
    ]  # fmt: skip
    letters = list("abcdefghijkl")
    assert [_covered(r, letters) for r in sync_requests(letters, set("abcdefghi"), 50, "t0")] == [
        list("abc"), list("def"), list("ghi"), list("jkl"),
    ]  # fmt: skip
    retried_by_two = sync_requests(letters, set("abcdefghi"), 2, "t0")  # never more than a run takes
    assert [len(_covered(r, letters)) for r in retried_by_two] == [2, 2, 2, 2, 1, 2, 1]


@pytest.mark.parametrize("value", ["0", "1001", "ten", "-3", "2.5"])
def test_a_tenants_per_run_setting_out_of_range_names_the_variable(monkeypatch, value):
    monkeypatch.setenv("LEDGER_SYNC_TENANTS_PER_RUN", value)
    with pytest.raises(ValueError, match="LEDGER_SYNC_TENANTS_PER_RUN"):
        settings.sync_tenants_per_run()


def _evaluate(project, schedule: dg.ScheduleDefinition):
    """A tick as the daemon evaluates it: the project's instance, registry and definitions."""
    with dg.build_schedule_context(
        project.instance, datetime.now(UTC), resources={"tenants": project.defs.resources["tenants"]},
        repository_def=project.defs.get_repository_def(),
    ) as context:  # fmt: skip
        return schedule(context)


def _tick(project) -> list[dg.RunRequest]:
    requests = _evaluate(project, hourly_sync)
    assert isinstance(requests, list)
    return requests


def _run(project, request: dg.RunRequest, selection: list[dg.AssetKey] | None = None) -> dg.ExecuteInProcessResult:
    """What the run queue launches for a request (one at a time: the DuckDB pool has one slot): the assets it
    selected (the rails its tenants connected), or `selection`."""
    job = project.defs.resolve_job_def("sync_tenants")
    return job.execute_in_process(
        instance=project.instance, partition_key=request.partition_key, tags=request.tags,
        asset_selection=selection or request.asset_selection, run_config=request.run_config | QUIET,
        raise_on_error=False,
    )  # fmt: skip


@pytest.fixture
def scheduled(project, fast_tmp_path) -> Iterator[Project]:
    """The project on an instance kept in files, as the daemon evaluates schedules (an ephemeral one cannot);
    in memory when the machine has room (its SQLite event log fsyncs every event)."""
    (fast_tmp_path / "dagster_home").mkdir()
    with dg.instance_for_test(temp_dir=str(fast_tmp_path / "dagster_home")) as instance:
        yield replace(project, instance=instance)


def test_a_failing_tenant_costs_its_range_one_tick_then_runs_alone(scheduled, monkeypatch):
    project = scheduled
    monkeypatch.setenv("LEDGER_SYNC_TENANTS_PER_RUN", "3")
    # Two tenants never share a company, and the sandbox has three demo companies: umbrella gets a fourth.
    umbrella = replace(DEMO_COMPANIES[0], realm_id="9130350000000004", name="Umbrella Holdings Inc.")
    monkeypatch.setattr(qbo_sandbox, "DEMO_COMPANIES", (*DEMO_COMPANIES, umbrella))
    realms = {tenant: project.add_tenant(tenant, company) for company, tenant in enumerate(TENANT_IDS[:3])}
    project.registry.add(Tenant("umbrella", QboConnection(umbrella.realm_id)))
    project.instance.add_dynamic_partitions(TENANTS.name, ["umbrella"])
    realms["umbrella"] = umbrella.realm_id
    assert TENANTS.get_partition_keys(dynamic_partitions_store=project.instance) == TENANT_IDS

    first = _tick(project)
    assert [_covered(r, TENANT_IDS) for r in first] == [TENANT_IDS[:3], TENANT_IDS[3:]]
    assert all(_run(project, r, FIRST).success for r in first)
    bill = entity_named("Bill")
    assert all(mirror(project, t, bill) == truth(project, realms[t], bill) for t in TENANT_IDS)

    refused = Fault("server_error", endpoint="query", entity="Bill", count=-1, status=400)
    project.sandbox.inject(realms["globex"], refused)
    failed = [_run(project, r, BILLS) for r in _tick(project)]
    assert [r.success for r in failed] == [False, True]
    assert "globex" in failure_text(failed[0]) and "Bill" in failure_text(failed[0])

    # Dagster marked the whole range failed: three retried apart (runs of isqrt(3) = 1); the last one as before.
    apart = _tick(project)
    assert [_covered(r, TENANT_IDS) for r in apart] == [["acme"], ["globex"], ["initech"], ["umbrella"]]
    assert [_run(project, r, BILLS).success for r in apart] == [True, False, True, True]

    # Only the tenant that still fails stays apart; the others share runs again and keep up with their books.
    project.sandbox.touch(realms["initech"], "Bill", sorted(truth(project, realms["initech"], bill))[0])
    again = _tick(project)
    assert [_covered(r, TENANT_IDS) for r in again] == [["acme"], ["globex"], ["initech", "umbrella"]]
    assert [_run(project, r, BILLS).success for r in again] == [True, False, True]
    assert mirror(project, "initech", bill) == truth(project, realms["initech"], bill)

    project.sandbox.clear_faults(realms["globex"])
    healed = _tick(project)
    assert [_run(project, r, BILLS).success for r in healed] == [True, True, True]
    assert [_covered(r, TENANT_IDS) for r in _tick(project)] == [TENANT_IDS[:3], TENANT_IDS[3:]]


def test_each_run_selects_the_rails_its_tenants_connected(scheduled, monkeypatch):
    """A Stripe-only and a QBO-only tenant share a scheduled run over both rails (each rail's steps skip the
    other tenant); a range of QBO-only tenants runs QBO's steps only, and the nightly audit's config names only
    the steps its run has."""
    project = scheduled
    monkeypatch.setenv("LEDGER_SYNC_TENANTS_PER_RUN", "2")
    project.add_tenant("acme", 0)
    project.add_tenant("globex", 1, rails=("stripe",))
    project.add_tenant("initech", 2)

    mixed, books = _tick(project)
    assert [_covered(mixed, TENANT_IDS), _covered(books, TENANT_IDS)] == [["acme", "globex"], ["initech"]]
    both = set(mixed.asset_selection)  # QBO's and Stripe's steps; Plaid's, which no tenant connected, left out
    assert {dg.AssetKey(["raw", "qbo_bills"]), dg.AssetKey(["raw", "stripe_charges"])} <= both
    assert not any("plaid" in key.to_user_string() for key in both)
    qbo_only = set(books.asset_selection)
    assert dg.AssetKey(["raw", "qbo_bills"]) in qbo_only and dg.AssetKey(["mirror", "qbo_bills"]) in qbo_only
    assert not any("stripe" in key.to_user_string() for key in qbo_only)
    runs = [_run(project, mixed), _run(project, books)]
    assert all(r.success for r in runs), [failure_text(r) for r in runs if not r.success]
    assert {e.asset_key for e in runs[1].get_asset_materialization_events()} == qbo_only
    logged = dict(project.query("select tenant_id, list(distinct rail order by rail) from raw.entity_log group by 1"))
    assert logged == {"acme": ["qbo"], "globex": ["stripe"], "initech": ["qbo"]}

    assert set(_evaluate(project, nightly_audit).asset_selection) == both  # the fleet's rails: QBO and Stripe
    project.registry.disconnect("globex", "stripe")
    project.registry.connect("globex", QboConnection(DEMO_COMPANIES[1].realm_id))
    audit = _evaluate(project, nightly_audit)
    assert set(audit.asset_selection) == qbo_only
    assert audit.run_config["ops"] and not any("stripe" in op for op in audit.run_config["ops"])
    run = _run(project, audit)
    assert run.success, failure_text(run)
