"""The Ramp rail through Dagster: a sync logs exactly what Ramp shows (every set, the hidden ones included), the
next syncs by window log each new version once and end equal to a whole re-read after pending transactions
clear or are declined and bills are approved, paid and archived; the checks pass; bad input fails clearly and
changes nothing."""

from __future__ import annotations

import json
from datetime import timedelta

import dagster as dg

from ledger_pipeline.lib.oauth import OAuthCredentials
from ledger_pipeline.lib.tenants import Tenant
from ledger_pipeline.rails.qbo.sandbox import DEMO_COMPANIES
from ledger_pipeline.rails.ramp.client import RampClient
from ledger_pipeline.rails.ramp.entities import ENTITIES
from ledger_pipeline.rails.ramp.rail import RampConnection
from ledger_pipeline.rails.ramp.sandbox import (
    CLIENT_ID, CLIENT_SECRET, SANDBOX_BASE_URL, businesses_for, initial_refresh_token, shared_sandbox,
)
from ledger_pipeline.rails.ramp.token_store import MemoryTokenStore
from ledger_pipeline_tests.conftest import TEST_SCALE, Project
from ledger_pipeline_tests.helpers import failure_text


def _business(company: int) -> str:
    return businesses_for(DEMO_COMPANIES[company].realm_id)[0].business_id


def _truth(project: Project, company: int) -> dict[str, dict[str, dict]]:
    """What Ramp shows now, every set of every list read whole with a client of its own (its own token)."""
    box = shared_sandbox(project.qbo.state_path, TEST_SCALE, False)
    business = _business(company)
    # A token pair of its own: an authorization-code exchange would rotate the pipeline's refresh token away.
    credentials = OAuthCredentials(CLIENT_ID, CLIENT_SECRET, initial_refresh_token(business))
    found: dict[str, dict[str, dict]] = {}
    with RampClient(business, credentials, _shared_store(project, business), base_url=SANDBOX_BASE_URL,
                    transport=box.transport(), clock=lambda: box.now) as client:  # fmt: skip
        for entity in ENTITIES:
            found[entity.name] = {}
            for params in [{}] + [{name: value} for name, value in entity.hidden]:
                for page in client.pages(entity.path, params):
                    found[entity.name] |= {o["id"]: o for o in page}
    return found


def _shared_store(project: Project, business: str):
    """The pipeline's own token store: the truth reader takes its turn with the same rotating refresh token."""
    from ledger_pipeline.rails.ramp.token_store import FileTokenStore

    return FileTokenStore(project.qbo.state_path / "ramp_tokens")


def _logged(project: Project, tenant: str, entity: str) -> dict[str, dict]:
    rows = project.query(
        "select entity_id, payload, op from raw.entity_log where tenant_id = ? and rail = 'ramp' and entity_type = ? "
        "qualify row_number() over (partition by entity_id order by seq desc) = 1",
        [tenant, entity],
    )
    return {i: json.loads(p) for i, p, op in rows if op != "deleted"}


def _versions(project: Project, tenant: str) -> int:
    return project.query("select count(*) from raw.entity_log where tenant_id = ? and rail = 'ramp'", [tenant])[0][0]


def _failed_checks(result: dg.ExecuteInProcessResult) -> list[tuple[str, str]]:
    return [(c.asset_key.to_user_string(), c.check_name) for c in result.get_asset_check_evaluations() if not c.passed]


def _assert_mirrors_ramp(project: Project, tenant: str, company: int) -> None:
    truth = _truth(project, company)
    for entity in ENTITIES:
        assert _logged(project, tenant, entity.name) == truth[entity.name], entity.name


def test_window_syncs_log_each_version_once_and_equal_a_whole_reread(project):
    project.add_tenant("acme", 0, rails=("ramp",))
    first = project.sync("acme", raise_on_error=False)
    assert first.success, failure_text(first)
    assert not _failed_checks(first)
    _assert_mirrors_ramp(project, "acme", 0)
    states = dict(project.query("select state, count(*) from mirror.ramp_transactions group by 1"))
    assert states.get("PENDING") and states.get("DECLINED") and states.get("CLEARED"), states
    assert project.query("select count(*) from mirror.ramp_statements")[0][0] > 0

    # Nothing moved: a sync reads its windows again and logs nothing.
    logged = _versions(project, "acme")
    quiet = project.sync("acme", raise_on_error=False)
    assert quiet.success, failure_text(quiet)
    assert _versions(project, "acme") == logged

    # Pending transactions clear or are declined, bills are approved, paid and archived, a statement closes.
    pending = {t for (t,) in project.query("select transaction_id from mirror.ramp_transactions where state = 'PENDING'")}
    awaiting = {b for (b,) in project.query("select bill_id from mirror.ramp_bills where approval_status = 'PENDING'")}
    project.sandbox.advance(timedelta(days=12))
    later = project.sync("acme", raise_on_error=False)
    assert later.success, failure_text(later)
    assert not _failed_checks(later)
    _assert_mirrors_ramp(project, "acme", 0)
    moved = dict(project.query(
        "select state, count(*) from mirror.ramp_transactions where list_contains(?::varchar[], transaction_id) "
        "group by 1", [sorted(pending)]))  # fmt: skip
    assert "PENDING" not in moved, moved
    history = project.query(
        "select count(distinct transaction_id) from history.ramp_transactions "
        "where list_contains(?::varchar[], transaction_id) and state = 'PENDING'", [sorted(pending)])  # fmt: skip
    assert history[0][0] == len(pending)  # every pending version stays in the history
    paid_later = project.query(
        "select count(*) from (select bill_id from history.ramp_bills group by bill_id having count(distinct status) > 1)"
    )[0][0]
    assert paid_later > 0  # bills open at the first sync were paid before the second, and the windows followed them
    assert project.query("select count(*) from mirror.ramp_bills where approval_status = 'PENDING' "
                         "and list_contains(?::varchar[], bill_id)", [sorted(awaiting)])[0][0] == 0  # fmt: skip

    # Each version is logged once: a sync after nothing changed appends nothing.
    logged = _versions(project, "acme")
    again = project.sync("acme", raise_on_error=False)
    assert again.success and _versions(project, "acme") == logged


def test_a_refused_grant_and_an_unknown_business_fail_clearly_and_change_nothing(project, monkeypatch):
    from ledger_pipeline.defs.ramp.resources import RampResource
    from ledger_pipeline.definitions import build_definitions
    from ledger_pipeline.rails.ramp.sandbox.server import start_in_thread

    server = start_in_thread(shared_sandbox(project.qbo.state_path, TEST_SCALE, False))
    monkeypatch.setenv("RAMP_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("RAMP_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("ACME_RAMP_REFRESH", "ramp-refresh-not-a-token-of-this-business")
    try:
        ramp = RampResource(state_dir=str(project.root / "state"), api_url=server.base_url, backoff_base=0.0,
                            max_retries=0)  # fmt: skip
        defs = build_definitions(
            warehouse=project.defs.resources["warehouse"], qbo=project.qbo, tenants=project.defs.resources["tenants"],
            stripe=project.defs.resources["stripe"], plaid=project.defs.resources["plaid"], ramp=ramp,
        )
        live = Project(project.root, project.instance, project.qbo, defs)
        live.registry.add(Tenant("acme", RampConnection(_business(0), "env", "ACME_RAMP_REFRESH")))
        live.instance.add_dynamic_partitions("tenants", ["acme"])
        result = live.sync("acme", raise_on_error=False)
    finally:
        server.stop()
    assert not result.success
    text = failure_text(result)
    assert "tenant acme, rail ramp" in text and "invalid_grant" in text and "reconnect the business" in text
    assert _business(0) in text
    assert "ramp-refresh-not-a-token" not in text and CLIENT_SECRET not in text  # secrets, even wrong ones
    assert project.query("select count(*) from raw.entity_log")[0][0] == 0

    project.registry.retire("acme")
    ghost_business = "00000000-0000-4000-8000-000000000000"
    project.registry.add(Tenant("ghost", RampConnection(ghost_business)))
    project.instance.add_dynamic_partitions("tenants", ["ghost"])
    ghost = project.sync("ghost", raise_on_error=False)
    assert not ghost.success and ghost_business in failure_text(ghost)
    assert project.query("select count(*) from raw.entity_log")[0][0] == 0


def test_the_card_checks_catch_statement_lines_and_a_bill_payment_that_do_not_add_up(project):
    """Rows appended through the log's own writer (chained, so only Ramp's checks can object): a statement whose
    charges are a dollar off its lines, a paid bill whose payment is not its amount, an amount with three decimals."""
    from datetime import UTC, datetime

    from ledger_pipeline.lib.entity_log import LogWriter, Observation

    project.add_tenant("acme", 0, rails=("ramp",))
    assert project.sync("acme").success
    conn = project.connect()
    try:
        statement_id, statement = conn.execute(
            "select entity_id, payload from raw.ramp_statements where tenant_id = 'acme' order by seq desc limit 1"
        ).fetchall()[0]
        bill_id, bill = conn.execute(
            "select entity_id, payload from raw.ramp_bills where tenant_id = 'acme' "
            "and payload ->> '$.status' = 'PAID' order by seq desc limit 1"
        ).fetchall()[0]
        txn_id, txn = conn.execute(
            "select entity_id, payload from raw.ramp_transactions where tenant_id = 'acme' order by seq desc limit 1"
        ).fetchall()[0]
        now = datetime.now(UTC)
        off = json.loads(statement)
        off["charges"]["amount"] += 100
        underpaid = json.loads(bill)
        underpaid["payment"]["amount"]["amount"] -= 1
        inexact = {**json.loads(txn), "amount": 12.345}
        conn.execute("begin")
        for entity, object_id, payload in (("statement", statement_id, off), ("bill", bill_id, underpaid),
                                           ("transaction", txn_id, inexact)):  # fmt: skip
            LogWriter(conn, "acme", "ramp", entity, "forged", now).append([Observation(object_id, payload, "list")])
        conn.execute("commit")
    finally:
        conn.close()
    result = project.sync("acme", raise_on_error=False)
    failed = _failed_checks(result)
    assert ("mirror/ramp_statements", "lines_sum_to_charges") in failed, failed
    assert ("mirror/ramp_bills", "paid_payment_equals_amount") in failed, failed
    # An amount with a third decimal is never rounded into the mirror: it waits in quarantine with the reason.
    assert ("mirror/ramp_transactions", "rows_valid") in failed, failed
    reasons = project.query("select reason from quarantine.mirror_rows where model = 'mirror.ramp_transactions' "
                            "and entity_id = ?", [txn_id])  # fmt: skip
    assert reasons and "amount_cents" in reasons[0][0], reasons
