"""One tree's sync of every tenant and entity, timed (run by bench/sync_trees.py with that tree's interpreter).

Arguments: tree, sandbox URL, sandbox state folder, ledger path, tenants as JSON [[tenant_id, realm_id], ...].
Prints {"first": seconds, "again": seconds}: a first sync of all of them, then one with nothing changed.
Entity by entity over the tenants, as the log assets' steps run; with the asset's read-ahead of
tenants (`_started_ahead`, at its default) where the tree has one.
"""

import json
import sys
import time
from datetime import UTC, datetime
from types import SimpleNamespace

tree, base_url, state_dir, ledger, tenants = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
sys.path.insert(0, tree)  # the measured tree's code, whichever checkout this file came from

from ledger_pipeline.defs.qbo import assets as log_assets  # noqa: E402
from ledger_pipeline.defs.resources import LedgerDuckDB, QboResource  # noqa: E402
from ledger_pipeline.lib.tenants import QboConnection, Tenant  # noqa: E402
from ledger_pipeline.rails.qbo.entities import ENTITIES  # noqa: E402
from ledger_pipeline.rails.qbo.sync import sync_entity  # noqa: E402

qbo = QboResource(state_dir=state_dir, sandbox_rate_limit=False, sandbox_url=base_url)
registry = {tenant_id: Tenant(tenant_id, QboConnection(realm_id)) for tenant_id, realm_id in tenants}
seconds = {}
with LedgerDuckDB(database=ledger).ledger() as conn:
    for name in ("first", "again"):
        started = time.perf_counter()
        for entity in ENTITIES:
            if hasattr(log_assets, "_started_ahead"):
                config = log_assets.QboSyncConfig()
                lookup = SimpleNamespace(get=registry.get)
                ahead = log_assets._started_ahead(conn, qbo, lookup, entity, config, [*registry])
                for _, start in ahead:
                    sync = start()
                    try:
                        sync.run(conn, run_id=name)
                    finally:
                        log_assets._close(sync)
                continue
            for tenant_id, tenant in registry.items():
                with qbo.client(tenant) as client:
                    sync_entity(conn, client, tenant_id, entity, run_id=name, observed_at=datetime.now(UTC))
        seconds[name] = round(time.perf_counter() - started, 3)
print(json.dumps(seconds))
