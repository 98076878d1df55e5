"""`make demo`: three sandbox businesses, each on QBO, Stripe, Plaid (its bank) and Ramp (its cards and bill pay),
synced, changed, synced again, verified and summarised per rail.

Runs go into the Dagster instance under DAGSTER_HOME, so `make ui` afterwards
shows them with their partitions, materialisations and check results.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections import Counter
from datetime import UTC, datetime, timedelta

import dagster as dg

from ledger_pipeline.commands import add_partition, compare_recorded_heads, dagster_instance, decide_command, run_verify
from ledger_pipeline.definitions import build_definitions
from ledger_pipeline.lib import dagster_home, rails, settings, warehouse
from ledger_pipeline.lib.read_side.layout import ReadSide
from ledger_pipeline.lib.tenants import Tenant, TenantRegistry
from ledger_pipeline.rails.plaid.rail import PlaidConnection, PlaidItemLink
from ledger_pipeline.rails.plaid.sandbox import items_for
from ledger_pipeline.rails.qbo.rail import QboConnection
from ledger_pipeline.rails.qbo.sandbox import DEMO_COMPANIES, advance_shared_clock, shared_sandbox
from ledger_pipeline.rails.ramp.rail import RampConnection
from ledger_pipeline.rails.ramp.sandbox import businesses_for
from ledger_pipeline.rails.stripe.rail import StripeConnection
from ledger_pipeline.rails.stripe.sandbox import DEMO_ACCOUNTS
from ledger_pipeline.world.ground_truth import injected_breaks, score

CHANGE_DAYS = 3
AS_OF_QUERY = """
with then_open as (
    select vendor_name, sum(balance) as open_balance
    from history.qbo_bills_as_of(?, ?)
    where balance > 0 and not is_voided
    group by vendor_name
),
now_open as (
    select vendor_name, sum(balance) as open_balance
    from mirror.qbo_bills
    where tenant_id = ? and balance > 0 and not is_voided
    group by vendor_name
)
select
    vendor_name,
    then_open.open_balance as open_after_first_sync,
    now_open.open_balance as open_now
from then_open full outer join now_open using (vendor_name)
where then_open.open_balance is distinct from now_open.open_balance
order by abs(coalesce(now_open.open_balance, 0) - coalesce(then_open.open_balance, 0)) desc
limit 5
"""
BANK_QUERY = """
select
    a.name as account,
    a.type,
    a.current_cents / 100 as balance,
    count(t.transaction_id) filter (where t.pending) as pending,
    count(t.transaction_id) filter (where not t.pending) as posted,
    count(t.transaction_id) filter (where t.pending_transaction_id is not null) as were_pending,
    -sum(t.amount_cents) filter (where not t.pending) / 100 as net_posted
from mirror.plaid_accounts a
left join mirror.plaid_transactions t using (tenant_id, account_id)
where a.tenant_id = ?
group by all
order by account
"""
CARDS_QUERY = """
select
    t.state,
    count(*) as transactions,
    sum(t.amount_cents) / 100 as dollars,
    count(*) filter (where t.statement_id is not null) as on_a_statement,
    count(p.qbo_id) as booked_in_qbo
from mirror.ramp_transactions t
left join mirror.qbo_purchases p
    on p.tenant_id = t.tenant_id and p.private_note = 'Ramp txn ' || t.transaction_id
where t.tenant_id = ?
group by all
order by transactions desc
"""
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}  # the full event log is in the UI
CUSTODY_QUERY = """
select qbo_bill_id, ramp_bill_id, amount_minor, approved_at, approved_seq, approved_row_hash, executed_at, executed_seq,
    executed_row_hash, verified_at, verified_seq, verified_row_hash, recorded_at, recorded_seq, recorded_row_hash
from recon.bill_custody
where tenant_id = ? and ramp_bill_id is not null and recorded_seq is not null and verified_seq is not null
    and not out_of_order
order by recorded_at desc
limit 1
"""
LINKS_QUERY = """
select count(*), count(*) filter (method = 'reference'), count(*) filter (status = 'review'),
    (select count(*) from recon.pending where tenant_id = ?)
from recon.links where tenant_id = ?
"""
EXAMPLE_QUERY = """
select vendor_name, count(*) as open_bills, sum(balance) as open_balance, currency
from mirror.qbo_bills
where tenant_id = ? and balance > 0 and not is_voided
group by vendor_name, currency
order by open_balance desc
limit 5
"""


def demo_tenants() -> list[Tenant]:
    """One tenant per sandbox business, named after its first word: its QBO company, its Stripe account, its
    bank logins (Plaid items) and its Ramp business."""
    stripe = {a.realm_id: a.account_id for a in DEMO_ACCOUNTS}
    return [
        Tenant(
            re.sub(r"[^a-z0-9]+", "-", c.name.split()[0].lower()).strip("-"),
            QboConnection(c.realm_id), StripeConnection(stripe[c.realm_id]),
            PlaidConnection(tuple(PlaidItemLink(i.item_id) for i in items_for(c.realm_id))),
            RampConnection(businesses_for(c.realm_id)[0].business_id),
        )  # fmt: skip
        for c in DEMO_COMPANIES
    ]


def register_demo_tenant(registry: TenantRegistry, tenant: Tenant) -> None:
    """Add the demo tenant, or connect the rails an earlier demo's registry lacks (a QBO-only one, say)."""
    existing = registry.load().get(tenant.tenant_id)
    if existing is None:
        registry.add(tenant)
        return
    for connection in tenant.connections:
        if existing.connection(connection.rail) is None:
            registry.connect(tenant.tenant_id, connection)


def run_demo() -> int:
    """0 when every run, check and the verify passed. Otherwise the demo stops after the round with a failed
    run, and ends with what failed (tenant, asset, check) and exit 1, not a traceback."""
    if dagster_home.configured() is None:
        raise dagster_home.DagsterHomeError(
            "DAGSTER_HOME is not set: the demo records its runs in a Dagster instance; run `make demo`, or set "
            "DAGSTER_HOME to the absolute path of an existing folder (e.g. export DAGSTER_HOME=$PWD/.dagster_home)"
        )
    with dagster_instance() as instance:
        return _run_demo(instance)


def _run_demo(instance: dg.DagsterInstance) -> int:
    registry = TenantRegistry(settings.tenants_path())
    tenants = demo_tenants()
    for tenant in tenants:
        register_demo_tenant(registry, tenant)
        add_partition(tenant.tenant_id, instance)
    titles = [r.title for r in rails.all_rails().values()]
    on = " and ".join(titles) if len(titles) < 3 else f"{', '.join(titles[:-1])} and {titles[-1]}"
    print(f"Registered {len(tenants)} demo tenants, each on {on}: "
          f"{', '.join(t.tenant_id for t in tenants)}")  # fmt: skip
    defs = build_definitions()
    job = defs.resolve_job_def("sync_tenants")
    checks: dict[str, list[dg.AssetCheckEvaluation]] = {}
    failures: list[str] = []
    run_failed = False
    first_sync_done = datetime.now(UTC)

    for round_no, label in ((1, "initial sync"), (2, "incremental sync")):
        if run_failed:
            print(f"\nThe {label} was not run: a run of the previous round failed.")
            break
        if round_no == 2:
            first_sync_done = datetime.now(UTC)
            now = advance_shared_clock(settings.state_dir(), timedelta(days=CHANGE_DAYS))
            print(f"\nSandbox clock advanced {CHANGE_DAYS} days to {now:%Y-%m-%d %H:%M} UTC: the businesses moved on.")
        print(f"\n== {label} ==")
        for tenant in tenants:
            result = job.execute_in_process(
                partition_key=tenant.tenant_id, instance=instance, run_config=QUIET, raise_on_error=False
            )
            checks[tenant.tenant_id] = result.get_asset_check_evaluations()
            appended = {name: 0 for name in rails.all_rails()}
            for event in result.get_asset_materialization_events():
                metadata = event.step_materialization_data.materialization.metadata
                if "appended" in metadata and "rail" in metadata:
                    appended[metadata["rail"].value] += metadata["appended"].value
            outcome = "" if result.success else "  RUN FAILED"
            per_rail = ", ".join(f"{n:>5} {name}" for name, n in appended.items())
            print(f"  {tenant.tenant_id:<10} run {result.run_id[:8]}: {sum(appended.values()):>6} versions appended to "
                  f"the log ({per_rail})" + outcome)  # fmt: skip
            failures += _failures(tenant.tenant_id, label, result)
            run_failed = run_failed or not result.success

    if not run_failed:
        _decide_one(tenants[0].tenant_id, instance)
    intact = _print_verify()
    _print_checks(checks)
    if not run_failed:
        with warehouse.unreadable_as_error(settings.duckdb_path()):
            _summary(tenants, first_sync_done, defs.resources["qbo"].sandbox_scale)
    if failures or not intact:
        print("\n== demo FAILED ==")
        for line in failures:
            print(f"  {line}")
        if not intact:
            print("  verify: the log does not verify (see == verify == above)")
        print("`make ui` shows the runs, their failed steps and check results in Dagster; "
              "`rm -rf data .dagster_home && make demo` starts the demo afresh.")  # fmt: skip
        return 1
    return 0  # every check of every run passed: a failed one is in `failures`


def _decide_one(tenant_id: str, instance: dg.DagsterInstance) -> None:
    """A person explains one of the tenant's open breaks, as `ledger-pipeline decide` does: the decision goes to the
    log and the break shows explained (the summary's breaks count it)."""
    with warehouse.reading(settings.duckdb_path()) as conn:
        first = conn.execute(
            "select break_id, kind from recon.breaks where tenant_id = ? and status = 'open' order by kind, break_id "
            "limit 1", [tenant_id]
        ).fetchone()  # fmt: skip
    if first is None:
        return
    break_id, kind = first
    why = f"demo: the {kind.replace('_', ' ')} was looked into and is accounted for"
    print(f"\n== a person's decision, kept in the log ==\n  ledger-pipeline decide explain --tenant {tenant_id} "
          f"--break {break_id} --by demo --why '{why}'\n  ", end="")  # fmt: skip
    decide_command("explain", tenant_id, break_id, "demo", why, instance)


def _print_breaks(conn, tenants: list[Tenant], scale: float) -> None:  # noqa: ANN001 (a DuckDB connection)
    """recon.breaks per tenant, scored against what the sandbox broke on purpose (its ground truth)."""
    box = shared_sandbox(settings.state_dir(), scale)
    now = box.now.isoformat()
    print("\n== cross-rail breaks (recon.breaks), against what the sandbox broke on purpose (`sandbox breaks`) ==")
    sample = None
    for tenant in tenants:
        rows = conn.execute("select kind, evidence, amount_minor, status from recon.breaks where tenant_id = ? "
                            "order by kind, break_id", [tenant.tenant_id]).fetchall()  # fmt: skip
        reported = [{"tenant_id": tenant.tenant_id, "kind": k, "evidence": json.loads(e)} for k, e, *_ in rows]
        injected = injected_breaks(box, tenant.connection("qbo").account_id, tenant.tenant_id)
        found, missed, false = score(reported, injected, now)
        kinds = Counter(r["kind"] for r in reported)
        listed = ", ".join(f"{kind}\u00a0{n}" for kind, n in sorted(kinds.items())) or "none: clean books"
        explained = sum(status == "explained" for *_, status in rows)
        print(textwrap.fill(f"{tenant.tenant_id:<10} {len(rows):>3} breaks ({len(rows) - explained} open, {explained} "
                            f"explained): {listed}", 110, initial_indent="  ", subsequent_indent=" " * 6))  # fmt: skip
        links, by_reference, review, pending = conn.execute(LINKS_QUERY, [tenant.tenant_id] * 2).fetchall()[0]
        print(f"{'':13}links: {links} ({by_reference} by reference, {links - by_reference} by amount and date, "
              f"{review} for review); {pending} pending inside their tolerance")  # fmt: skip
        print(f"{'':13}ground truth: {len(found)} of {len(found) + len(missed)} injected breaks past their tolerance "
              f"found, {len(false)} reported that were not injected")  # fmt: skip
        if sample is None and rows:
            sample = (tenant.tenant_id, rows[0])
    if sample is not None:
        kind, evidence, cents, _ = sample[1]
        print(f"  e.g. {sample[0]}: {kind}, ${cents / 100:,.2f}: " + ", ".join(
            f"{e['rail']} {e['entity_type']} {e['entity_id']}" for e in json.loads(evidence)))
    print("  What each kind is, its tolerance and how it is found: docs/reconciliation.md.")


def _print_custody(conn, tenant_id: str) -> None:  # noqa: ANN001 (a DuckDB connection)
    """One bill paid through Ramp, step by step with the log row behind each step, and the tenant's stuck ones."""
    rows = conn.execute(CUSTODY_QUERY, [tenant_id]).fetchall()
    stuck = conn.execute("select count(*) from recon.bill_custody where tenant_id = ? and stuck", [tenant_id])
    stuck = stuck.fetchall()
    if not rows:
        return
    bill, ramp_bill, cents, *steps = rows[0]
    print(f"\n== a bill's chain of custody (recon.bill_custody): {tenant_id} QBO bill {bill}, Ramp bill {ramp_bill}, "
          f"${cents / 100:,.2f} ==")  # fmt: skip
    for name, (at, seq, row_hash) in zip(("approved", "executed", "verified", "recorded"), zip(*[iter(steps)] * 3)):
        when = "when first synced (Ramp tells no approval time)" if name == "approved" else "on the rail's clock"
        print(f"  {name:<9} {at:%Y-%m-%d %H:%M} UTC {when:<48} log seq {seq:>6}, row_hash {row_hash[:16]}...")
    print(f"  {stuck[0][0]} of {tenant_id}'s bills are stuck: paid and not recorded, or not seen at the bank, past "
          "their tolerance (docs/reconciliation.md, chain of custody)")


def _failures(tenant_id: str, label: str, result: dg.ExecuteInProcessResult) -> list[str]:
    """One line per failed check of the run (a warning is a finding, shown with the checks), and for a failed run
    without one, per failed step."""
    lines = [
        f"tenant {tenant_id}, asset {c.asset_key.to_user_string()}, check {c.check_name}: FAILED ({label}"
        + ("; the run failed)" if not result.success else ")")
        for c in result.get_asset_check_evaluations()
        if _failed(c)
    ]
    if lines or result.success:
        return lines
    steps: list[tuple[str, str]] = []
    for event in result.get_step_failure_events():
        data = event.step_failure_data
        reason = (data.user_failure_data.description if data.user_failure_data else None) or (
            data.error.message if data.error else "failed"
        )
        steps.append((event.step_key, " ".join(reason.split())))
    if not steps:
        return [f"tenant {tenant_id}: run {result.run_id[:8]} FAILED ({label})"]
    # Every entity of a tenant often fails for one cause: name the steps, then the first one's reason in full.
    first_step, first_reason = steps[0]
    why = textwrap.fill(f"{first_step}: {first_reason}", 108, initial_indent="  ", subsequent_indent="    ")
    return [f"tenant {tenant_id}: {len(steps)} step(s) FAILED ({label}): {', '.join(s for s, _ in steps)}\n{why}"]


def _print_verify() -> bool:
    report = run_verify()
    head_problems, heads = compare_recorded_heads(None)
    print(f"\n== verify ==\n  {'OK' if report.ok else 'BROKEN'}: {report.rows} log rows in {report.chains} hash chains")
    if heads is not None:
        print(f"  {heads} chain heads recorded in Dagster's event log: {len(head_problems) or 'none'} disagree")
    for problem in [*map(str, report.problems), *head_problems]:
        print(f"  {problem}")
    return report.ok and not head_problems


def _failed(check: dg.AssetCheckEvaluation) -> bool:
    return not check.passed and check.severity != dg.AssetCheckSeverity.WARN


def _print_checks(checks: dict[str, list[dg.AssetCheckEvaluation]]) -> None:
    print("\n== asset checks of the last sync ==")
    names: list[str] = []
    for tenant_id, evaluations in checks.items():
        names = sorted({*names, *(c.check_name for c in evaluations)})
        if not evaluations:
            print(f"  {tenant_id:<10} none ran (the run failed before its checks)")
            continue
        failed = sorted(f"{c.asset_key.to_user_string()}:{c.check_name}" for c in evaluations if _failed(c))
        warned = sorted(f"{c.asset_key.to_user_string()}:{c.check_name}" for c in evaluations
                        if not c.passed and not _failed(c))  # fmt: skip
        passed = sum(c.passed for c in evaluations)
        print(f"  {tenant_id:<10} {passed} of {len(evaluations)} passed" + (f"; FAILED: {', '.join(failed)}" if failed
              else "") + (f"; warned (findings about the books, below): {', '.join(warned)}" if warned else ""))
    if names:
        print(f"  checks: {', '.join(names)}")


def _rail_summary(conn, rail: rails.Rail, tenants: list[Tenant]) -> None:
    """Mirror rows per entity and log versions of one rail, one line per tenant."""
    width = max(12, *(len(e.table) + 2 for e in rail.entities))
    print(f"\n== {rail.title}: mirror rows per entity, and log versions ==")
    print("  " + f"{'tenant':<11}" + "".join(f"{e.table:>{width}}" for e in rail.entities) + f"{'log':>8}")
    for tenant in tenants:
        params = [tenant.tenant_id, rail.name]
        versions = conn.execute(
            "select count(*) from raw.entity_log where tenant_id = ? and rail = ?", params
        ).fetchall()[0][0]
        counts = [  # table names come from the rail's entity table, never from input
            conn.execute(f"select count(*) from mirror.{rail.name}_{e.table} where tenant_id = ?", params[:1])
            .fetchall()[0][0]
            for e in rail.entities
        ]
        print("  " + f"{tenant.tenant_id:<11}" + "".join(f"{n:>{width}}" for n in counts) + f"{versions:>8}")


def _print_next() -> None:
    """What an analyst runs next: a query on the published read side, which never makes a sync wait."""
    entry = ReadSide(settings.read_dir(settings.duckdb_path())).entry
    sql = "select tenant_id, vendor_name, total_open from marts.ap_aging order by total_open desc limit 5"
    print(f"\n== next, for analysts: the read side ({entry}), opened without any lock on the ledger ==")
    print(f"  .venv/bin/python -c \"import duckdb; print(duckdb.connect('$(.venv/bin/ledger-pipeline analyst-db)', "
          f"read_only=True).sql('{sql}'))\"")
    print('  (or, with the DuckDB CLI: duckdb -readonly "$(.venv/bin/ledger-pipeline analyst-db)")')


def _summary(tenants: list[Tenant], first_sync_done: datetime, scale: float) -> None:
    conn = warehouse.connect(settings.duckdb_path(), read_only=True)
    try:
        for rail in rails.all_rails().values():
            _rail_summary(conn, rail, tenants)
        sample = conn.execute(
            "select entity_id, source_version, payload, changes from raw.qbo_bills "
            "where tenant_id = ? and op = 'updated' order by seq desc limit 1",
            [tenants[0].tenant_id],
        ).fetchall()
        if sample:
            bill_id, version, payload, changes = sample[0]
            bill = json.loads(payload)
            print(f"\n== a bill from the log: {tenants[0].tenant_id} bill {bill_id}, SyncToken {version} ==")
            print(
                f"  vendor {bill['VendorRef']['name']}, TotalAmt {bill['TotalAmt']}, Balance {bill['Balance']}, "
                f"due {bill.get('DueDate')}, {len(bill.get('Line', []))} lines, {len(payload)} bytes of QBO JSON"
            )
            print(textwrap.fill(f"changes logged: {changes}", 110, initial_indent="  ", subsequent_indent="  "))
        first = tenants[0].tenant_id
        print(f"\n== the bank side: {first}'s accounts through Plaid (amounts in dollars, money in positive) ==")
        frame = conn.sql(BANK_QUERY, params=[first]).pl()
        print("  " + str(frame).replace("\n", "\n  "))
        print(f"\n== the card side: {first}'s Ramp card transactions by state, and their QBO Purchases ==")
        frame = conn.sql(CARDS_QUERY, params=[first]).pl()
        print("  " + str(frame).replace("\n", "\n  "))
        _print_breaks(conn, tenants, scale)
        _print_custody(conn, first)
        print(f"\n== example analyst query: open payables by vendor for {first} ==")
        print("  " + " ".join(EXAMPLE_QUERY.split()))
        frame = conn.sql(EXAMPLE_QUERY, params=[first]).pl()
        print("  " + str(frame).replace("\n", "\n  "))
        print(f"\n== as-of query: {first}'s payables that moved since the end of the initial sync ==")
        print(f"  history.qbo_bills_as_of('{first}', '{first_sync_done.isoformat(timespec='seconds')}') vs the mirror now")
        frame = conn.sql(AS_OF_QUERY, params=[first, first_sync_done, first]).pl()
        print("  " + str(frame).replace("\n", "\n  "))
        print(f"\nDuckDB file: {settings.duckdb_path()}  -  `make ui` shows these runs in Dagster.")
        _print_next()
    finally:
        conn.close()
