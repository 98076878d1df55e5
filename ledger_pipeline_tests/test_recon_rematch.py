"""Re-matching only what changed (lib/rematch.py): after incremental syncs and people's decisions, the
reconciliation step re-matches the objects near a change only, and every table it refreshes is the one a full
rebuild (every object matched again) gives. The same over hundreds of random edits of objects' keys that make
candidates compete (amounts within windows, shared references), with decisions between them."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from ledger_pipeline.defs.models.assets import COLUMNS, MODELS, RECONCILIATION_MODELS, RECONCILIATION_STEP
from ledger_pipeline.lib import decisions, ledger_views, warehouse
from ledger_pipeline.lib.marts import refresh_tenant_tables
from ledger_pipeline_tests.helpers import failure_text

RECONCILED = [dg.AssetKey([m.schema, m.table]) for m in RECONCILIATION_MODELS]
LINKS = dg.AssetKey(["recon", "links"])


def _tables(project) -> dict[str, list[tuple]]:
    return {m.name: project.query(f"select * from {m.name} order by all") for m in RECONCILIATION_MODELS}


def _rematched(project) -> dict[str, int]:
    """What the last refresh of recon.links matched, from its materialisation's metadata."""
    record = project.instance.fetch_materializations(LINKS, limit=1).records[0]
    metadata = record.asset_materialization.metadata
    return {name: metadata[name].value for name in ("objects", "objects_changed", "objects_rematched")}


def _rebuilt(project) -> dict[str, list[tuple]]:
    """The reconciliation step alone, every object matched again; its tables after it."""
    result = project.sync(
        "acme", asset_selection=RECONCILED,
        run_config={"ops": {RECONCILIATION_STEP: {"config": {"full_rebuild": True}}}},
    )  # fmt: skip
    assert result.success, failure_text(result)
    counts = _rematched(project)
    assert counts["objects_rematched"] == counts["objects"] > 0, counts
    return _tables(project)


def _decide(project, action: str, link_id: str) -> None:
    config = {"action": action, "subject_id": link_id, "by": "dana", "why": "checked with the bank"}
    result = project.defs.resolve_job_def("record_decision").execute_in_process(
        partition_key="acme", instance=project.instance, run_config={"ops": {"raw__recon_decisions": {"config": config}}}
    )
    assert result.success, failure_text(result)


def test_rematching_what_changed_gives_what_a_full_rebuild_gives(broken_acme):
    project = broken_acme  # synced once: every object matched, its keys saved
    assert project.query("select count(*) > 0 from meta.link_keys_matched where tenant_id = 'acme'") == [(True,)]

    # A day: a few objects change. People decide about two links on the way (a decision changes no object).
    (rejected,), (confirmed,) = project.query(
        "select link_id from recon.links where flow = 'payout_bank' and status = 'matched' order by link_id limit 2"
    )
    _decide(project, "reject", rejected)
    _decide(project, "confirm", confirmed)
    project.sandbox.advance(timedelta(days=1))
    assert project.sync("acme").success
    day = _rematched(project)
    assert 0 < day["objects_changed"] <= day["objects_rematched"] < day["objects"] / 2, day
    statuses = dict(project.query("select link_id, status from recon.links where link_id in (?, ?)",
                                  [rejected, confirmed]))  # fmt: skip
    assert statuses == {rejected: "rejected", confirmed: "confirmed"}
    incremental = _tables(project)
    assert incremental == _rebuilt(project)

    # Ten days more: pending bank items post, payouts land, bills are paid; a rebuild changed nothing to match.
    project.sandbox.advance(timedelta(days=10))
    assert project.sync("acme").success
    weeks = _rematched(project)
    assert day["objects_changed"] < weeks["objects_changed"] <= weeks["objects_rematched"] < weeks["objects"], weeks
    incremental = _tables(project)
    assert incremental == _rebuilt(project)

    # Once more with the clock where it was: nothing changed, nothing is matched again, the links stand.
    links = incremental["recon.links"]
    assert project.sync("acme").success
    assert _rematched(project) == {"objects": weeks["objects"], "objects_changed": 0, "objects_rematched": 0}
    incremental = _tables(project)
    assert incremental["recon.links"] == links
    assert incremental == _rebuilt(project)


def test_deleted_links_are_matched_again_whole(broken_acme):
    """Saved keys without the links they matched (an operator emptied the table) make no difference."""
    project = broken_acme
    links = project.query("select * from recon.links order by all")
    conn = project.connect()
    try:
        conn.execute("delete from recon.links")
    finally:
        conn.close()
    assert project.sync("acme", asset_selection=RECONCILED).success
    assert project.query("select * from recon.links order by all") == links
    counts = _rematched(project)
    assert counts["objects_rematched"] == counts["objects"], counts


KEYS, LINKS_MODEL = ({m.name: m for m in MODELS}[name] for name in ("recon.link_keys", "recon.links"))
DAY0 = datetime(2026, 3, 1, tzinfo=UTC)


def _object(rng: random.Random, side: str, number: int) -> list[tuple]:
    """Key rows of one made-up object: a payment (`from`) or a bank transaction (`to`) of flow payment_bank, by an
    amount of three within 14 days of the payment, and by one of six references: candidates compete often."""
    rail, entity_type, within = ("qbo", "Payment", 14) if side == "from" else ("plaid", "transaction", None)
    amount = rng.choice((100, 200, 300))
    at = DAY0 + timedelta(days=rng.randrange(40))
    rows = [("acme", "payment_bank", "amount_date", side, rail, entity_type, f"{side}{number}", amount, str(amount),
             at, within)]  # fmt: skip
    if rng.random() < 0.5:
        rows.append(("acme", "payment_bank", "reference", side, rail, entity_type, f"{side}{number}", amount,
                     f"ref{rng.randrange(6)}", None, None))  # fmt: skip
    return rows


def _matched_whole(conn) -> list[tuple]:
    """recon.links as matching every object gives it (the model with no scope), without writing it."""
    return conn.execute(f"select * from ({LINKS_MODEL.body}) order by all").fetchall()


@pytest.mark.parametrize("seed", [1, 2])
def test_random_edits_and_decisions_rematched_equal_matching_everything(tmp_path, seed):
    rng = random.Random(seed)
    conn = warehouse.connect(tmp_path / "ledger.duckdb")
    try:
        ledger_views.ensure(conn)
        columns = ", ".join(f"{name} {kind}" for name, kind in COLUMNS[KEYS.name])
        conn.execute(f"create schema recon; create table {KEYS.name} ({columns})")
        objects = {(side, n): _object(rng, side, n) for side in ("from", "to") for n in range(12)}
        rematched = []
        for step in range(40):
            for _ in range(rng.randrange(1, 4)):  # add, drop or change an object
                side, n = rng.choice(("from", "to")), rng.randrange(16)
                if (side, n) in objects and rng.random() < 0.3:
                    del objects[side, n]
                else:
                    objects[side, n] = _object(rng, side, n)
            conn.execute(f"delete from {KEYS.name}")
            conn.executemany(f"insert into {KEYS.name} values ({', '.join('?' * 11)})",
                             [row for rows in objects.values() for row in rows])  # fmt: skip
            links = conn.execute("select link_id from recon.links order by link_id").fetchall() if step else []
            if links and rng.random() < 0.3:  # a person confirms or rejects a link shown now
                made = decisions.decision("acme", rng.choice(("confirm", "reject")), rng.choice(links)[0], "dana",
                                          "checked")  # fmt: skip
                decisions.record(conn, made, "test", DAY0 + timedelta(minutes=step))
            refreshed = refresh_tenant_tables(conn, [LINKS_MODEL], ["acme"])[LINKS_MODEL.name].rematch
            rematched.append(refreshed.rematched / refreshed.objects)
            assert conn.execute("select * from recon.links order by all").fetchall() == _matched_whole(conn), step
        assert conn.execute("select count(distinct status) from recon.links").fetchone()[0] >= 3
        assert min(rematched[1:]) < 0.5 < rematched[0] == 1.0, rematched  # in part after the first, not all
    finally:
        conn.close()
