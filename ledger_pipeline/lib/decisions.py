"""People's decisions about the reconciliation, appended to the log beside the rails' data.

A decision is one version of its subject's chain entry: (tenant, `recon`, `decision`) is its chain and
`link:<link_id>` or `break:<break_id>` its entity, so a later decision about the same subject supersedes the
earlier one (op `updated`), both stay in the log, and `verify` checks them as it checks every chain. The recon
models read the latest version of each subject (raw.recon_decisions); rebuilding them from the log keeps them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

from ledger_pipeline.lib import ids, rails
from ledger_pipeline.lib.entity_log import LogWriter, Observation
from ledger_pipeline.lib.warehouse import fetch_one, rollback

_, RAIL, ENTITY_TYPE = rails.DECISIONS_LOG_VIEW  # read through raw.recon_decisions
SOURCE = "user"
# What each action decides about, and the table that names its subjects.
ACTIONS = {"confirm": "link", "reject": "link", "explain": "break"}
SUBJECT_TABLES = {"link": ("recon.links", "link_id"), "break": ("recon.breaks", "break_id")}
SUBJECT_ID_CHARS = 16  # links' and breaks' ids: 16 hex characters
MAX_BY_CHARS, MAX_WHY_CHARS = 100, 500


@dataclass(frozen=True)
class Decision:
    tenant_id: str
    action: str  # confirm | reject (a link), explain (a break)
    subject_id: str
    by: str
    why: str

    @property
    def subject_type(self) -> str:
        return ACTIONS[self.action]

    @property
    def entity_id(self) -> str:
        return f"{self.subject_type}:{self.subject_id}"

    def payload(self) -> dict[str, str]:
        return {"action": self.action, "subject_type": self.subject_type, "subject_id": self.subject_id,
                "by": self.by, "why": self.why}  # fmt: skip


def decision(tenant_id: str, action: str, subject_id: str, by: str, why: str) -> Decision:
    """A decision with every field checked, or InvalidInput naming the wrong one."""
    ids.tenant_id(tenant_id)
    if action not in ACTIONS:
        raise ids.InvalidInput(f"unknown decision {ids.shown(action)}; one of {', '.join(ACTIONS)}")
    subject = ACTIONS[action]
    if len(subject_id) != SUBJECT_ID_CHARS or any(c not in "0123456789abcdef" for c in subject_id):
        raise ids.InvalidInput(
            f"invalid {subject} id {ids.shown(subject_id)}: {SUBJECT_ID_CHARS} lower-case hex characters, "
            f"as {SUBJECT_TABLES[subject][0]} shows it"
        )
    by, why = by.strip(), why.strip()
    if not by or len(by) > MAX_BY_CHARS or not by.isprintable():
        raise ids.InvalidInput(f"--by must name who decides, 1-{MAX_BY_CHARS} printable characters")
    if not why or len(why) > MAX_WHY_CHARS or not why.isprintable():
        raise ids.InvalidInput(f"--why must say why, 1-{MAX_WHY_CHARS} printable characters")
    return Decision(tenant_id, action, subject_id, by, why)


def record(conn: duckdb.DuckDBPyConnection, made: Decision, run_id: str, now: datetime) -> int | None:
    """Append the decision to the log in its own transaction; return its seq, or None when it is the subject's
    latest decision already (the same action, by and why: nothing to append). The subject must be one the recon
    tables show for that tenant now, else InvalidInput and nothing is written."""
    table, column = SUBJECT_TABLES[made.subject_type]
    conn.execute("begin")
    try:
        exists = fetch_one(
            conn, "select count(*) from duckdb_tables() where schema_name = ? and table_name = ?", table.split(".")
        )[0] and fetch_one(
            conn, f"select count(*) from {table} where tenant_id = ? and {column} = ?",
            [made.tenant_id, made.subject_id],
        )[0]
        if not exists:
            raise ids.InvalidInput(
                f"tenant {made.tenant_id} has no {made.subject_type} {made.subject_id} in {table}: "
                f"a decision names one the reconciliation shows (`select {column} from {table} where tenant_id = ...`)"
            )
        writer = LogWriter(conn, made.tenant_id, RAIL, ENTITY_TYPE, run_id, now)
        writer.append([Observation(made.entity_id, made.payload(), SOURCE)])
        conn.execute("commit")
    except BaseException:
        rollback(conn)
        raise
    return writer.stats.head_seq if writer.stats.appended else None
