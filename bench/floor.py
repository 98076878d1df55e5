"""The floor: what reading the same pages costs with no database at all.

Same client (built by the same QboResource the pipeline uses), same requests (the keyset query
feed of every entity, and a first sync's CDC read of the deletions of the last 30 days), JSON parsed
into objects and counted, then dropped.
"""

from __future__ import annotations

import time

from bench.workload import Paths, Workload
from ledger_pipeline.defs.qbo.resources import QboResource
from ledger_pipeline.lib.tenants import Tenant
from ledger_pipeline.rails.qbo.rail import QboConnection
from ledger_pipeline.rails.qbo.entities import ENTITIES
from ledger_pipeline.rails.qbo.sync import FIRST_DELETIONS


def fetch_and_parse(workload: Workload, paths: Paths, sandbox_url: str) -> dict:
    qbo = QboResource(state_dir=str(paths.state_dir), sandbox_rate_limit=False, sandbox_url=sandbox_url)
    counts: dict[str, dict[str, int]] = {}
    pages = tombstones = 0
    started = time.perf_counter()
    for tenant_id, spec in zip(workload.tenant_ids, workload.companies):
        per_entity = counts[tenant_id] = {}
        with qbo.client(Tenant(tenant_id, QboConnection(spec.realm_id))) as client:
            for entity in ENTITIES:
                ids: set[str] = set()
                for page in client.pages(entity.name):
                    pages += 1
                    ids.update(obj["Id"] for obj in page.objects)  # re-read seconds count once
                per_entity[entity.name] = len(ids)
                if not entity.is_name_list:
                    since = client.server_now() - FIRST_DELETIONS
                    tombstones += len({obj["Id"] for obj in client.changes(entity.name, since=since)
                                       if obj.get("status") == "Deleted"})
    seconds = time.perf_counter() - started
    objects = sum(sum(c.values()) for c in counts.values())
    return {"seconds": round(seconds, 4), "objects": objects, "tombstones": tombstones, "pages": pages,
            "per_tenant": counts}


if __name__ == "__main__":  # `python -m bench.floor T N FOLDER URL`: one floor pass, its seconds (bench.sync_trees)
    import sys
    from pathlib import Path

    tenants, objects, folder, url = sys.argv[1:5]
    print(fetch_and_parse(Workload(int(tenants), int(objects)), Paths(Path(folder)), url)["seconds"])
