"""One tree's sync of every tenant and entity, timed (run by bench/sync_trees.py with that tree's interpreter).

Arguments: tree, sandbox URL, sandbox state folder, ledger path, tenants as JSON [[tenant_id, realm_id], ...].
Prints {"first": seconds, "again": seconds}: a first sync of all of them, then one with nothing changed.
Entity by entity over the tenants, as the log assets' steps run, with their read-ahead of tenants
(`lib.sync.syncs_ahead`, or the older tree's `_started_ahead`, at its default); the QBO entities every compared tree has.
"""

import json
import sys
import time
from types import SimpleNamespace

tree, base_url, state_dir, ledger, tenants = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
sys.path.insert(0, tree)  # the measured tree's code, whichever checkout this file came from

try:  # syncs started ahead in the core (lib/sync.syncs_ahead), as the log assets start them
    from ledger_pipeline.defs import log_assets  # noqa: E402
    from ledger_pipeline.defs.qbo.resources import QboResource  # noqa: E402
    from ledger_pipeline.lib.sync import close_sync, syncs_ahead  # noqa: E402
    from ledger_pipeline.rails.qbo.rail import RAIL, QboConnection  # noqa: E402

    def started_ahead(conn, qbo, lookup, entity, tenant_ids):
        return syncs_ahead(conn, RAIL.name, entity, tenant_ids, log_assets._session_for(qbo, lookup, RAIL))
except ImportError:
    try:  # the rail registry's layout before that: the start in the shared log-asset factory
        from ledger_pipeline.defs import log_assets  # noqa: E402
        from ledger_pipeline.defs.qbo.resources import QboResource  # noqa: E402
        from ledger_pipeline.rails.qbo.rail import RAIL, QboConnection  # noqa: E402

        def started_ahead(conn, qbo, lookup, entity, tenant_ids):
            return log_assets._started_ahead(conn, qbo, lookup, RAIL, entity, log_assets.SyncConfig(), tenant_ids)
    except ImportError:  # trees before it (78c4f68 and earlier)
        from ledger_pipeline.defs.qbo import assets as log_assets  # noqa: E402
        from ledger_pipeline.defs.resources import QboResource  # noqa: E402
        from ledger_pipeline.lib.tenants import QboConnection  # noqa: E402

        def started_ahead(conn, qbo, lookup, entity, tenant_ids):
            return log_assets._started_ahead(conn, qbo, lookup, entity, log_assets.QboSyncConfig(), tenant_ids)
    close_sync = log_assets._close
from ledger_pipeline.defs.resources import LedgerDuckDB  # noqa: E402
from ledger_pipeline.lib.tenants import Tenant  # noqa: E402
from ledger_pipeline.rails.qbo.entities import ENTITIES  # noqa: E402

# The entities every compared tree syncs (Deposit came with the Stripe rail): like is compared with like.
COMPARED = ("Vendor", "Customer", "Account", "Bill", "Invoice", "BillPayment", "Payment")

qbo = QboResource(state_dir=state_dir, sandbox_rate_limit=False, sandbox_url=base_url)
registry = {tenant_id: Tenant(tenant_id, QboConnection(realm_id)) for tenant_id, realm_id in tenants}
seconds = {}
with LedgerDuckDB(database=ledger).ledger() as conn:
    for name in ("first", "again"):
        started = time.perf_counter()
        for entity in (e for e in ENTITIES if e.name in COMPARED):
            lookup = SimpleNamespace(get=registry.get)
            for _, start in started_ahead(conn, qbo, lookup, entity, [*registry]):
                sync = start()
                try:
                    sync.run(conn, run_id=name)
                finally:
                    close_sync(sync)
        seconds[name] = round(time.perf_counter() - started, 3)
print(json.dumps(seconds))
