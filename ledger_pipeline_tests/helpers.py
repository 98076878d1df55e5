"""Reading what a pipeline run did: mirror contents, sandbox truth, log counts, failure messages."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from ledger_pipeline.lib.canonical import canonical_json, sha256_hex
from ledger_pipeline.rails.qbo.entities import ENTITIES, QboEntity


def truth(project, realm: str, entity: QboEntity) -> dict[str, str]:
    """{id: payload hash} of what the sandbox holds now (inactive name-list rows included)."""
    return {i: sha256_hex(canonical_json(p)) for i, p in project.sandbox.live_objects(realm, entity.name).items()}


def mirror(project, tenant_id: str, entity: QboEntity) -> dict[str, str]:
    rows = project.query(f"select qbo_id, payload_hash from mirror.qbo_{entity.table} where tenant_id = ?", [tenant_id])
    return dict(rows)


def all_truth(project, realm: str) -> dict[str, dict[str, str]]:
    return {e.name: truth(project, realm, e) for e in ENTITIES}


def log_count(project, tenant_id: str | None = None) -> int:
    if tenant_id is None:
        return project.query("select count(*) from raw.entity_log")[0][0]
    return project.query("select count(*) from raw.entity_log where tenant_id = ?", [tenant_id])[0][0]


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    """Every step failure's message and description, joined."""
    parts = []
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            data = event.step_failure_data
            error = data.error
            while error is not None:
                parts.append(error.message)
                error = error.cause
            if data.user_failure_data and data.user_failure_data.description:
                parts.append(data.user_failure_data.description)
    return "\n".join(parts)


def op_config(asset_prefix: str, **config) -> dict:
    """Run config giving the same config to every op of the sync job whose name starts with the prefix."""
    from ledger_pipeline.defs.models.assets import REFRESHED_ASSETS, TABLE_ASSETS
    from ledger_pipeline.defs.qbo.assets import LOG_ASSETS

    ops = {}
    for asset in [*LOG_ASSETS, *REFRESHED_ASSETS, *TABLE_ASSETS]:
        name = asset.op.name
        if name.startswith(asset_prefix):
            ops[name] = {"config": config}
    return {"ops": ops}


# Every vendor named by any version of a bill or bill payment with a version logged after the mark, read
# through the staging models (not the check's own query).
CHANGED_VENDORS = """
select distinct vendor_id from stg.qbo_bills where tenant_id = $t and vendor_id is not null
  and qbo_id in (select qbo_id from stg.qbo_bills where tenant_id = $t and log_seq > $mark)
union
select distinct vendor_id from stg.qbo_bill_payments where tenant_id = $t and vendor_id is not null
  and qbo_id in (select qbo_id from stg.qbo_bill_payments where tenant_id = $t and log_seq > $mark)
"""


def whole_book_config(*reports: str) -> dict:
    """Run config that has the control totals of those reports (default: all) compare every party with QBO's
    whole report, as the nightly audit does."""
    from ledger_pipeline.defs.qbo.checks import whole_book_ops

    ops = whole_book_ops()
    return {"ops": {n: c for n, c in ops.items() if not reports or any(n.endswith(f"_{r.lower()}") for r in reports)}}


def threads_left(prefix: str, wait: float = 10.0) -> list[str]:
    """Names of live threads starting with `prefix` once they had up to `wait` seconds to end."""
    import threading
    import time

    deadline = time.monotonic() + wait
    while True:
        left = [t.name for t in threading.enumerate() if t.name.startswith(prefix)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


def tree_snapshot(root: Path) -> dict[str, bytes | str]:
    """Every path under root (root itself as "") with its bytes (files), target (symlinks, not followed) or "dir":
    equal before and after a refused command means it changed nothing there."""
    found: dict[str, bytes | str] = {"": "dir" if root.is_dir() else root.read_bytes()}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            key = str(path.relative_to(root))
            found[key] = os.readlink(path) if path.is_symlink() else "dir" if path.is_dir() else path.read_bytes()
    return found
