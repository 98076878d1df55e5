"""One tree's sync of every tenant and entity, timed (run by bench/sync_trees.py with that tree's interpreter).

Arguments: tree, sandbox URL, sandbox state folder, ledger path, tenants as JSON [[tenant_id, realm_id], ...].
Prints {"first": seconds, "again": seconds}: a first sync of all of them, then one with nothing changed.
"""

import json
import sys
import time
from datetime import UTC, datetime

tree, base_url, state_dir, ledger, tenants = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
sys.path.insert(0, tree)  # the measured tree's code, whichever checkout this file came from

from ledger_pipeline.defs.resources import LedgerDuckDB, QboResource  # noqa: E402
from ledger_pipeline.lib.tenants import QboConnection, Tenant  # noqa: E402
from ledger_pipeline.rails.qbo.entities import ENTITIES  # noqa: E402
from ledger_pipeline.rails.qbo.sync import sync_entity  # noqa: E402

qbo = QboResource(state_dir=state_dir, sandbox_rate_limit=False, sandbox_url=base_url)
seconds = {}
with LedgerDuckDB(database=ledger).ledger() as conn:
    for name in ("first", "again"):
        started = time.perf_counter()
        for tenant_id, realm_id in tenants:
            with qbo.client(Tenant(tenant_id, QboConnection(realm_id))) as client:
                for entity in ENTITIES:
                    sync_entity(conn, client, tenant_id, entity, run_id=name, observed_at=datetime.now(UTC))
        seconds[name] = round(time.perf_counter() - started, 3)
print(json.dumps(seconds))
