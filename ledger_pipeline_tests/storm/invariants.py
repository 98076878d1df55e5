"""What must hold after every kill and after the storm: chains intact, nothing lost, nothing doubled.

Each function returns findings rather than asserting, so the soak can print
them all and the test can assert on the whole report.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import duckdb

from ledger_pipeline.defs.stripe.resources import API_VERSION
from ledger_pipeline.lib import rails, warehouse
from ledger_pipeline.lib.canonical import canonical_json, sha256_hex
from ledger_pipeline.lib.sql_models import load_models
from ledger_pipeline.lib.verify import verify
from ledger_pipeline.rails.plaid.client import PlaidClient
from ledger_pipeline.rails.plaid.sandbox import CLIENT_ID, access_token_for
from ledger_pipeline.rails.plaid.sandbox import SANDBOX_BASE_URL as PLAID_BASE_URL
from ledger_pipeline.rails.qbo.entities import ENTITIES
from ledger_pipeline.rails.qbo.sandbox.render_txn import tombstone
from ledger_pipeline.rails.stripe.client import StripeClient
from ledger_pipeline.rails.stripe.entities import ENTITIES as STRIPE_ENTITIES
from ledger_pipeline.rails.stripe.sandbox import PLATFORM_KEY, SANDBOX_BASE_URL
from ledger_pipeline.rails.stripe.sync import listed
from ledger_pipeline_tests.storm.layout import StormProject

# Columns that say when and how a version reached the mirror, not what it holds: they may differ from a reference.
RUN_COLUMNS = ("last_synced_at", "sync_source", "log_seq")

# A version repeats when its payload *and* its op do: a delete may carry the object as last logged (Stripe).
_REPEATED_SQL = """
select tenant_id, entity_type, entity_id, seq from (
    select *, lag(payload_hash) over w as prev, lag(op = 'deleted') over w as prev_deleted
    from raw.entity_log
    window w as (partition by tenant_id, rail, entity_type, entity_id order by seq)
) where payload_hash = prev and (op = 'deleted') = prev_deleted order by seq
"""
_TWICE_SQL = """
select tenant_id, entity_type, entity_id, payload_hash, count(*) - 1 from raw.entity_log
group by tenant_id, rail, entity_type, entity_id, payload_hash, op = 'deleted' having count(*) > 1
"""
# A Stripe list version has no update time: its cursor is the newest `created` listed (Stripe's epoch seconds).
_CURSOR_SQL = """
select c.tenant_id, c.entity_type, c.updated_since,
    max(coalesce(l.source_updated_at, to_timestamp(try_cast(l.payload ->> 'created' as bigint)))) as newest
from meta.sync_cursors c left join raw.entity_log l
  on l.tenant_id = c.tenant_id and l.rail = c.rail and l.entity_type = c.entity_type
where c.updated_since is not null
group by all having newest is null or c.updated_since > newest
"""


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)
    lost: int = 0
    duplicated: int = 0
    versions: int = 0

    def add(self, other: Findings) -> None:
        self.problems += other.problems
        self.lost += other.lost
        self.duplicated += other.duplicated


def after_kill(project: StormProject) -> Findings:
    """Cheap checks of the file a killed child left: chains and seqs, no doubled version, cursors behind rows."""
    if not project.db_path.exists():
        return Findings()
    conn = warehouse.connect(project.db_path, read_only=True)
    try:
        return _log_findings(conn)
    finally:
        conn.close()


def _log_findings(conn: duckdb.DuckDBPyConnection) -> Findings:
    found = Findings()
    report = verify(conn)
    found.versions = report.rows
    found.problems += [f"verify: {p}" for p in report.problems]
    for tenant, entity, entity_id, seq in conn.execute(_REPEATED_SQL).fetchall():
        found.problems.append(f"{tenant} {entity} {entity_id}: seq {seq} repeats the payload logged just before it")
    for tenant, entity, entity_id, payload_hash, extra in conn.execute(_TWICE_SQL).fetchall():
        found.duplicated += extra
        found.problems.append(f"{tenant} {entity} {entity_id}: payload {payload_hash[:12]}.. logged {extra + 1} times")
    for tenant, entity, since, newest in conn.execute(_CURSOR_SQL).fetchall():
        found.problems.append(f"{tenant} {entity}: cursor {since} points past the newest logged row ({newest})")
    return found


def final(project: StormProject, reference: StormProject, instants: list[datetime]) -> Findings:
    """Everything the storm promises, checked once the final clean sync has run."""
    conn = warehouse.connect(project.db_path, read_only=True)
    ref = warehouse.connect(reference.db_path, read_only=True)
    try:
        found = _log_findings(conn)
        found.add(_mirrors_equal_truth(conn, project))
        found.add(_payloads_were_produced(conn, project, instants))
        found.add(_matches_reference(conn, ref, project.tenant_id))
    finally:
        conn.close()
        ref.close()
    return found


STORM_RAILS = ("qbo", "stripe", "plaid")  # the rails the storm's tenant connects (layout.py); Ramp's kills: test_ramp_sync


def mirrors() -> list[tuple[str, str]]:
    """(mirror, key column) of every entity of every rail the storm's tenant connects, e.g. ("mirror.stripe_charges",
    "stripe_id")."""
    keys = {m.table: m.config["key"] for m in load_models() if m.schema == "stg"}
    return [(f"mirror.{r.name}_{e.table}", keys[f"{r.name}_{e.table}"]) for r in rails.all_rails().values()
            if r.name in STORM_RAILS for e in r.entities]  # fmt: skip


def published(conn: duckdb.DuckDBPyConnection, tenant_id: str, mirror: str, key: str) -> dict[str, str]:
    """{id: payload hash} of what a mirror publishes for a tenant, its quarantined rows included."""
    rows = conn.execute(
        f"select {key}, payload_hash from {mirror} where tenant_id = ? union all "
        "select entity_id, payload_hash from quarantine.mirror_rows where model = ? and tenant_id = ?",
        [tenant_id, mirror, tenant_id],
    ).fetchall()
    return dict(rows)


def rail_truth(project: StormProject) -> dict[str, dict[str, str]]:
    """Mirror -> {id: payload hash} of every object the rails hold now: QBO's live objects, what Stripe lists."""
    box = project.sandbox()
    truth = {
        f"mirror.qbo_{e.table}": {i: _hash(p) for i, p in box.live_objects(project.realm_id, e.name).items()}
        for e in ENTITIES
    }
    transport = project.stripe_sandbox().transport()
    with StripeClient(project.stripe_account_id, PLATFORM_KEY, base_url=SANDBOX_BASE_URL, transport=transport,
                      stripe_version=API_VERSION) as client:  # fmt: skip
        for e in STRIPE_ENTITIES:
            truth[f"mirror.stripe_{e.table}"] = {o["id"]: _hash(o) for o in listed(client, e)}
    truth |= {f"mirror.plaid_{table}": {i: _hash(o) for i, o in found.items()} for table, found in plaid_truth(project).items()}
    return truth


def plaid_truth(project: StormProject) -> dict[str, dict[str, dict]]:
    """Table -> {id: object} of what Plaid shows now for the project's items: each item, its accounts (with the
    item the log adds), and its transactions read whole from an empty cursor."""
    from ledger_pipeline.rails.plaid.sandbox import SECRET

    items = project.plaid_item_ids
    found: dict[str, dict[str, dict]] = {"items": {}, "accounts": {}, "transactions": {}}
    with PlaidClient(CLIENT_ID, SECRET, {i: access_token_for(i) for i in items}, base_url=PLAID_BASE_URL,
                     transport=project.plaid_sandbox().transport()) as client:  # fmt: skip
        for item_id in items:
            found["items"][item_id] = client.item(item_id)
            found["accounts"] |= {a["account_id"]: {**a, "item_id": item_id} for a in client.accounts(item_id)}
            cursor, more = "", True
            while more:
                page = client.transactions_sync(item_id, cursor)
                found["transactions"] |= {t["transaction_id"]: t for t in (*page.added, *page.modified)}
                for removed in page.removed:
                    found["transactions"].pop(removed["transaction_id"], None)
                cursor, more = page.next_cursor, page.has_more
    return found


def _hash(payload: dict) -> str:
    return sha256_hex(canonical_json(payload))


def _mirrors_equal_truth(conn: duckdb.DuckDBPyConnection, project: StormProject) -> Findings:
    found = Findings()
    truths = rail_truth(project)
    for table, key in mirrors():
        truth = truths[table]
        rows = conn.execute(
            f"select count(*) - count(distinct {key}) from {table} where tenant_id = ?", [project.tenant_id]
        ).fetchall()[0][0]
        found.duplicated += rows
        mirror = published(conn, project.tenant_id, table, key)
        missing = sorted(i for i in truth if mirror.get(i) != truth[i])
        extra = sorted(set(mirror) - set(truth))
        found.lost += len(missing)
        if missing or extra or rows:
            found.problems.append(
                f"{table}: {len(missing)} missing or stale (e.g. {missing[:5]}), "
                f"{len(extra)} not on the rail (e.g. {extra[:5]}), {rows} duplicated"
            )
    return found


def _payloads_were_produced(conn: duckdb.DuckDBPyConnection, project: StormProject, instants: list[datetime]) -> Findings:
    """Every logged QBO payload is one the sandbox served at one of the instants the children ran at.

    Stripe's are not replayed: an event carries its object as of the event, between the instants.
    """
    produced = sandbox_versions(project, instants)
    found = Findings()
    rows = conn.execute(
        "select entity_type, entity_id, payload_hash, seq from raw.entity_log where tenant_id = ? and rail = 'qbo' "
        "order by seq",
        [project.tenant_id],
    ).fetchall()
    foreign = [(entity, entity_id, seq) for entity, entity_id, h, seq in rows if h not in produced.get(entity, ())]
    for entity, entity_id, seq in foreign[:10]:
        found.problems.append(f"log seq {seq} ({entity} {entity_id}) holds a payload the sandbox never served")
    if len(foreign) > 10:
        found.problems.append(f"... {len(foreign) - 10} more logged payloads the sandbox never served")
    return found


def sandbox_versions(project: StormProject, instants: list[datetime]) -> dict[str, set[str]]:
    """Payload hashes per entity of every object the sandbox showed at these instants, tombstones included.

    A second sandbox with the same seed and companies is replayed forward through
    the instants, so it serves the same objects the storm's children were served.
    """
    produced: dict[str, set[str]] = {e.name: set() for e in ENTITIES}
    with tempfile.TemporaryDirectory(prefix="storm-truth-") as tmp:
        box = StormProject(tmp, project.tenant_id, project.company, project.scale).sandbox()
        for instant in sorted(set(instants)):
            box.set_clock(instant)
            for entity in ENTITIES:
                for payload in box.live_objects(project.realm_id, entity.name).values():
                    produced[entity.name].add(sha256_hex(canonical_json(payload)))
        for entity in ENTITIES:
            produced[entity.name] |= _tombstones(box, project.realm_id, entity.name)
    return produced


def _tombstones(box, realm_id: str, entity: str) -> set[str]:
    """Hashes of what CDC (with the deletion time) and the id sweep (without) would log for each deleted object."""
    hashes = {
        sha256_hex(canonical_json({"Id": i, "domain": "QBO", "status": "Deleted"}))
        for i in box.deleted_ids(realm_id, entity)
    }
    with box.lock:  # the sandbox's own plumbing: its table of deletions, keyed (second << 32 | slot + 1)
        company = box.searcher(realm_id, box.store.view().clock_us).company
        for key in company.books.tables[entity].tombs:
            hashes.add(sha256_hex(canonical_json(tombstone(company, (key & 0xFFFFFFFF) - 1, key >> 32))))
    return hashes


def _matches_reference(conn: duckdb.DuckDBPyConnection, ref: duckdb.DuckDBPyConnection, tenant_id: str) -> Findings:
    """The storm's mirrors equal a clean run's, and its log holds every version the clean run logged."""
    found = Findings()
    for table, _ in mirrors():
        query = f"select * exclude ({', '.join(RUN_COLUMNS)}) from {table} where tenant_id = ? order by all"
        storm_rows = conn.execute(query, [tenant_id]).fetchall()
        ref_rows = ref.execute(query, [tenant_id]).fetchall()
        if storm_rows != ref_rows:
            absent = Counter(map(repr, ref_rows)) - Counter(map(repr, storm_rows))
            found.problems.append(
                f"{table}: {len(storm_rows)} rows after the storm, {len(ref_rows)} in the reference run, "
                f"{sum(absent.values())} of the reference's rows absent or different"
            )
    versions = "select rail, entity_type, entity_id, payload_hash from raw.entity_log where tenant_id = ?"
    logged = Counter(conn.execute(versions, [tenant_id]).fetchall())
    missing = [v for v in ref.execute(versions, [tenant_id]).fetchall() if v not in logged]
    found.lost += len(missing)
    if missing:
        found.problems.append(f"{len(missing)} versions the reference run logged are not in the storm's log: {missing[:3]}")
    return found


def mirror_snapshot(project: StormProject) -> dict[str, list[tuple]]:
    """Every mirror row of the tenant, all columns, for comparing an incremental mirror with its full rebuild."""
    conn = warehouse.connect(project.db_path, read_only=True)
    try:
        return {
            table: conn.execute(f"select * from {table} where tenant_id = ? order by all", [project.tenant_id]).fetchall()
            for table, _ in mirrors()
        }
    finally:
        conn.close()


def log_rows(project: StormProject) -> int:
    conn = warehouse.connect(project.db_path, read_only=True)
    try:
        return conn.execute("select count(*) from raw.entity_log").fetchall()[0][0]
    finally:
        conn.close()
