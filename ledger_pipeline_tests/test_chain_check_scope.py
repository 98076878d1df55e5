"""chain_intact per run verifies only what was appended since the last head a passing check vouched for,
and still fails on tampering: an edited new row, a rewritten log (the vouched head is gone), and, under
full_audit or `ledger-pipeline verify`, an edited old row."""

from __future__ import annotations

import json
from datetime import timedelta

import dagster as dg

from ledger_pipeline import cli
from ledger_pipeline.defs import partitions
from ledger_pipeline.defs.heads import recorded_heads
from ledger_pipeline.lib.canonical import canonical_json
from ledger_pipeline.lib.verify import compare_heads, verify
from ledger_pipeline.rails.qbo.sync import EntitySync
from ledger_pipeline_tests.helpers import op_config
from ledger_pipeline_tests.test_tamper_evidence import rewrite_log_with_fresh_hashes

BILLS = dg.AssetKey(["raw", "qbo_bills"])
VENDORS = dg.AssetKey(["raw", "qbo_vendors"])
LOGS = [BILLS, VENDORS]


def chain_checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {
        c.asset_key.to_user_string(): c for c in result.get_asset_check_evaluations() if c.check_name == "chain_intact"
    }


def edit_bill_payload(conn, seq: int) -> None:
    """Change a logged bill's amount in place, leaving its hashes as they were."""
    payload = json.loads(conn.execute("select payload from raw.entity_log where seq = ?", [seq]).fetchall()[0][0])
    payload["TotalAmt"] = 1.0
    conn.execute("update raw.entity_log set payload = ? where seq = ?", [canonical_json(payload), seq])


def bill_seqs(project) -> list[int]:
    rows = project.query(
        "select seq from raw.entity_log where tenant_id = 'acme' and entity_type = 'Bill' order by seq"
    )
    return [r[0] for r in rows]


def test_edit_to_a_row_appended_in_this_run_fails_the_incremental_check(project, monkeypatch):
    project.add_tenant("acme")
    first = chain_checks(project.sync("acme", asset_selection=LOGS))
    assert first["raw/qbo_bills"].metadata["scope"].value.startswith("full (no head vouched"), "first sync: whole chain"
    vouched = bill_seqs(project)[-1]

    real_run = EntitySync.run

    def sync_then_tamper(sync: EntitySync, conn, **kw):
        """Between this run's append and its chain check, edit the newest bill row."""
        result = real_run(sync, conn, **kw)
        if sync.entity.name == "Bill":
            edit_bill_payload(conn, result.stats.head_seq)
        return result

    monkeypatch.setattr(EntitySync, "run", sync_then_tamper)
    project.sandbox.advance(timedelta(days=2))
    result = project.sync("acme", asset_selection=LOGS, raise_on_error=False)

    newest = bill_seqs(project)[-1]
    assert newest > vouched, "the second sync appended bills"
    checks = chain_checks(result)
    bills = checks["raw/qbo_bills"]
    assert not bills.passed
    assert bills.metadata["scope"].value == (
        f"incremental: rows after seq {vouched} verified, recorded head seq {vouched} present"
    )
    assert bills.metadata["rows_verified"].value == len([s for s in bill_seqs(project) if s > vouched])
    problems = " ".join(bills.metadata["problems"].value)
    assert f"seq={newest}" in problems and "payload edited" in problems
    assert checks["raw/qbo_vendors"].passed
    assert checks["raw/qbo_vendors"].metadata["scope"].value.startswith("incremental: rows after seq")


def test_rewritten_log_fails_incrementally_and_keeps_failing(project):
    project.add_tenant("acme")
    project.sync("acme", asset_selection=LOGS)
    vouched = bill_seqs(project)[-1]
    conn = project.connect()
    try:
        rewrite_log_with_fresh_hashes(conn, "acme")  # every hash recomputed: the rows themselves verify
    finally:
        conn.close()

    for attempt in range(2):  # a failed check vouches for nothing: the next run still starts from `vouched`
        bills = chain_checks(project.sync("acme", asset_selection=LOGS, raise_on_error=False))["raw/qbo_bills"]
        assert not bills.passed, attempt
        assert bills.metadata["scope"].value == (
            f"incremental: rows after seq {vouched} verified, recorded head seq {vouched} NOT present"
        ), attempt
        assert "log rewritten or truncated" in " ".join(bills.metadata["problems"].value), attempt


def test_edit_to_an_old_row_is_caught_by_the_full_audit_and_verify(project, monkeypatch, capsys):
    project.add_tenant("acme")
    project.sync("acme", asset_selection=LOGS)
    project.sandbox.advance(timedelta(days=2))
    project.sync("acme", asset_selection=LOGS)
    oldest = bill_seqs(project)[0]
    conn = project.connect()
    try:
        edit_bill_payload(conn, oldest)
    finally:
        conn.close()

    # Deliberately passes: the per-run check reads only rows after the last vouched head, never old rows.
    # The nightly full audit and `ledger-pipeline verify` are what re-read them (below).
    incremental = chain_checks(project.sync("acme", asset_selection=LOGS))["raw/qbo_bills"]
    assert incremental.passed and incremental.metadata["scope"].value.startswith("incremental")

    audit = project.sync(
        "acme", asset_selection=LOGS, run_config=op_config("raw__", full_audit=True), raise_on_error=False
    )
    bills = chain_checks(audit)["raw/qbo_bills"]
    assert not bills.passed and bills.metadata["scope"].value == "full"
    assert f"seq={oldest}" in " ".join(bills.metadata["problems"].value)
    assert chain_checks(audit)["raw/qbo_vendors"].passed

    monkeypatch.setenv("LEDGER_DUCKDB_PATH", str(project.db_path))
    assert cli.main(["verify", "--tenant", "acme"]) == 1
    assert f"seq={oldest}" in capsys.readouterr().err


def test_verify_after_a_vouched_row_checks_only_later_rows_and_the_link_to_it(project):
    project.add_tenant("acme")
    project.sync("acme", asset_selection=[BILLS])
    seqs = bill_seqs(project)
    chain_key = ("acme", "qbo", "Bill")
    conn = project.connect()
    try:
        edit_bill_payload(conn, seqs[0])  # before the vouched row: out of scope
        vouched_hash = conn.execute("select row_hash from raw.entity_log where seq = ?", [seqs[4]]).fetchall()[0][0]
        report = verify(conn, "acme", rail="qbo", entity_type="Bill", after={chain_key: (seqs[4], vouched_hash)})
        assert report.ok and report.rows == len(seqs) - 5
        wrong = verify(conn, "acme", rail="qbo", entity_type="Bill", after={chain_key: (seqs[4], "0" * 64)})
        assert [str(p) for p in wrong.problems] == [
            f"tenant acme, qbo Bill: first bad row seq={seqs[5]} (entity {wrong.problems[0].entity_id}): prev_hash "
            f"does not match the row before it, seq={seqs[4]} (a row was deleted, inserted or reordered)"
        ]
        assert not verify(conn, "acme").ok, "the full verify still sees the old edit"
    finally:
        conn.close()


def _sync_range(project, tenants: list[str]) -> dg.ExecuteInProcessResult:
    """One run over several tenants (a partition range), as a backfill or the nightly audit runs them."""
    tags = {"dagster/asset_partition_range_start": tenants[0], "dagster/asset_partition_range_end": tenants[-1]}
    return project.defs.resolve_job_def("sync_tenants").execute_in_process(
        instance=project.instance, tags=tags, asset_selection=LOGS, raise_on_error=False
    )


def _last_bill_seq(project, tenant_id: str) -> int:
    return project.query(
        "select max(seq) from raw.entity_log where tenant_id = ? and entity_type = 'Bill'", [tenant_id]
    )[0][0]


def test_a_run_over_many_tenants_starts_each_chain_from_its_own_vouched_head(project):
    for company, tenant in enumerate(["acme", "globex", "initech"]):
        project.add_tenant(tenant, company)
    assert _sync_range(project, ["acme", "globex", "initech"]).success
    project.sandbox.advance(timedelta(days=2))
    assert project.sync("globex", asset_selection=LOGS).success  # globex alone: a newer head than the range run's
    heads = {t: _last_bill_seq(project, t) for t in ("acme", "globex", "initech")}
    conn = project.connect()
    try:
        rewrite_log_with_fresh_hashes(conn, "initech")
    finally:
        conn.close()

    for attempt in range(2):  # initech's failed check vouches for nothing: it keeps failing from the same head
        bills = chain_checks(_sync_range(project, ["acme", "globex", "initech"]))["raw/qbo_bills"]
        scopes = bills.metadata["scope_by_tenant"].value
        assert not bills.passed, attempt
        for tenant in ("acme", "globex") if attempt == 0 else ():
            assert scopes[tenant] == f"incremental: rows after seq {heads[tenant]} verified, recorded head seq " \
                f"{heads[tenant]} present", (attempt, tenant)
        assert scopes["initech"] == f"incremental: rows after seq {heads['initech']} verified, recorded head seq " \
            f"{heads['initech']} NOT present", attempt
        problems = " ".join(bills.metadata["problems"].value)
        assert "log rewritten or truncated" in problems and "acme" not in problems and "globex" not in problems


def _bill_head(project, tenant_id: str) -> tuple[int, str]:
    return tuple(project.query(
        "select seq, row_hash from raw.entity_log where tenant_id = ? and entity_type = 'Bill' order by seq desc limit 1",
        [tenant_id],
    )[0])  # fmt: skip


def test_a_run_records_each_tenants_head_once_in_its_chain_check_not_in_every_partition(project, monkeypatch):
    tenants = ["acme", "globex", "initech"]
    for company, tenant in enumerate(tenants):
        project.add_tenant(tenant, company)
    monkeypatch.setattr(partitions, "PER_TENANT_METADATA_LIMIT", 2)  # this run has more tenants than the limit
    first = _sync_range(project, tenants)
    assert first.success

    bill_materialisations = [
        e.step_materialization_data.materialization
        for e in first.get_asset_materialization_events()
        if e.asset_key == BILLS
    ]
    assert sorted(m.partition for m in bill_materialisations) == tenants
    for materialisation in bill_materialisations:  # no map naming every tenant of the run, in every partition
        assert "tenants" not in materialisation.metadata and materialisation.metadata["tenants_in_run"].value == 3
    recorded = chain_checks(first)["raw/qbo_bills"].metadata["heads"].value
    assert recorded == {
        t: {"chain_head_seq": _bill_head(project, t)[0], "chain_head_hash": _bill_head(project, t)[1],
            "chain_verified": True}
        for t in tenants
    }  # fmt: skip

    project.sandbox.advance(timedelta(days=2))
    scopes = chain_checks(_sync_range(project, tenants))["raw/qbo_bills"].metadata["scope_by_tenant"].value
    assert scopes == {
        t: f"incremental: rows after seq {recorded[t]['chain_head_seq']} verified, recorded head seq "
        f"{recorded[t]['chain_head_seq']} present"
        for t in tenants
    }
    heads = {(h.tenant_id, h.seq, h.row_hash) for h in recorded_heads(project.instance, [BILLS], tenants)}
    assert {(t, r["chain_head_seq"], r["chain_head_hash"]) for t, r in recorded.items()} <= heads
    assert {t for t, _, _ in heads} == set(tenants)


def test_heads_recorded_in_materialisations_by_earlier_runs_are_still_evidence(project):
    """Runs before the chain check carried `heads` recorded them in each materialisation's `tenants` map."""
    project.add_tenant("acme")
    assert project.sync("acme", asset_selection=[BILLS]).success
    seqs = bill_seqs(project)
    older = project.query("select seq, row_hash from raw.entity_log where seq = ?", [seqs[3]])[0]

    def legacy(seq: int, row_hash: str) -> None:
        project.instance.report_runless_asset_event(dg.AssetMaterialization(
            BILLS, partition="acme", metadata={
                "rail": "qbo", "entity_type": "Bill",
                "tenants": {"acme": {"chain_head_seq": seq, "chain_head_hash": row_hash, "chain_verified": True}},
            },
        ))  # fmt: skip

    legacy(*older)  # the newest materialisation now vouches for an older row, the old way
    scope = chain_checks(project.sync("acme", asset_selection=[BILLS]))["raw/qbo_bills"].metadata["scope"].value
    assert scope == f"incremental: rows after seq {older[0]} verified, recorded head seq {older[0]} present"

    legacy(seqs[5], "0" * 64)  # a head the log does not hold: the full audit and verify compare it
    problems = compare_heads_of(project, "acme")
    assert len(problems) == 1 and f"chain head seq={seqs[5]}" in problems[0]


def compare_heads_of(project, tenant_id: str) -> list[str]:
    conn = project.connect()
    try:
        return compare_heads(conn, recorded_heads(project.instance, [BILLS], [tenant_id]))
    finally:
        conn.close()
