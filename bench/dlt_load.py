"""The competitor: dlt paging the same sandbox endpoints and merging into DuckDB on (tenant, Id).

Written the way dlt's docs suggest for a REST API: its RESTClient with a paginator for QBO's
STARTPOSITION/MAXRESULTS paging, the same bearer token our client obtained (QBO's OAuth refresh
is ours; dlt only presents the token), one merge resource per entity, pages yielded whole.
`default` leaves every setting alone; `tuned` is dlt's documented performance advice for this
shape of load: parquet files between stages (dlt still normalises: nested lines become child
tables), as many normalize workers as cores, and resources extracted in parallel threads
(`parallelized=True`). Larger writer buffers were tried too and did not help.
"""

from __future__ import annotations

import os
import time
from typing import Any

import dlt
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.auth import BearerTokenAuth
from dlt.sources.helpers.rest_client.paginators import BasePaginator

from bench.workload import Paths, Workload, entity_names

PAGE = 1000
NAME_LISTS = {"Vendor", "Customer", "Account"}
MODES = ("default", "tuned")


class QboStartPosition(BasePaginator):
    """QBO pages by STARTPOSITION inside the query text; a short page is the last one."""

    def __init__(self, select: str) -> None:
        super().__init__()
        self.select = select
        self.start = 1

    def _query(self) -> str:
        return f"{self.select} STARTPOSITION {self.start} MAXRESULTS {PAGE}"

    def init_request(self, request: Any) -> None:
        request.params["query"] = self._query()

    def update_state(self, response: Any, data: list | None = None) -> None:
        self._has_next_page = bool(data) and len(data) == PAGE

    def update_request(self, request: Any) -> None:
        self.start += PAGE
        request.params["query"] = self._query()


def qbo_source(sandbox_url: str, realms: dict[str, str], tokens: dict[str, str], parallel: bool) -> list:
    """One merge resource per entity, reading every tenant's company; `parallel` extracts them in threads."""

    def make(entity: str) -> Any:
        where = " WHERE Active IN (true,false)" if entity in NAME_LISTS else ""
        select = f"SELECT * FROM {entity}{where} ORDERBY MetaData.LastUpdatedTime"

        @dlt.resource(name=entity.lower(), write_disposition="merge", primary_key=("tenant_id", "Id"),
                      parallelized=parallel)
        def pages() -> Any:
            for tenant_id, realm in realms.items():
                client = RESTClient(base_url=f"{sandbox_url}/v3/company/{realm}", auth=BearerTokenAuth(tokens[realm]))
                for page in client.paginate(
                    "query", params={"minorversion": "75"}, paginator=QboStartPosition(select),
                    data_selector=f"QueryResponse.{entity}",
                ):  # fmt: skip
                    for obj in page:
                        obj["tenant_id"] = tenant_id
                    yield page

        return pages

    return [make(entity) for entity in entity_names()]


def load(workload: Workload, paths: Paths, sandbox_url: str, mode: str, tokens: dict[str, str]) -> dict:
    if mode not in MODES:
        raise ValueError(f"dlt mode must be one of {MODES}")
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
    realms = {t: s.realm_id for t, s in zip(workload.tenant_ids, workload.companies)}
    db_path = paths.root / f"dlt_{mode}.duckdb"
    db_path.unlink(missing_ok=True)
    pipeline = dlt.pipeline(
        pipeline_name=f"bench_{mode}", destination=dlt.destinations.duckdb(str(db_path)), dataset_name="qbo",
        pipelines_dir=str(paths.root / f"dlt_pipelines_{mode}"),
    )  # fmt: skip
    pipeline.drop()  # no state from an earlier benchmark run
    tuned = mode == "tuned"
    source = qbo_source(sandbox_url, realms, tokens, parallel=tuned)
    file_format = "parquet" if tuned else None
    workers = (os.cpu_count() or 1) if tuned else 1
    stages = {}
    started = time.perf_counter()
    pipeline.extract(source, loader_file_format=file_format)
    stages["extract"] = time.perf_counter() - started
    pipeline.normalize(workers=workers)
    stages["normalize"] = time.perf_counter() - started - stages["extract"]
    info = pipeline.load()
    seconds = time.perf_counter() - started
    stages["load"] = seconds - stages["extract"] - stages["normalize"]
    info.raise_on_failed_jobs()
    rows = _row_counts(db_path)
    return {
        "mode": mode, "seconds": round(seconds, 4), "stages": {k: round(v, 4) for k, v in stages.items()},
        "loader_file_format": file_format or "default (insert_values)", "normalize_workers": workers,
        "parallelized_resources": tuned,
        "objects": sum(rows[e.lower()] for e in entity_names()), "tables": rows,
    }  # fmt: skip


def _row_counts(db_path: Any) -> dict[str, int]:
    import duckdb

    conn = duckdb.connect(str(db_path), read_only=True)
    try:
        tables = [r[0] for r in conn.execute(
            "select table_name from information_schema.tables where table_schema = 'qbo' "
            "and table_name not like '_dlt%'"
        ).fetchall()]  # fmt: skip
        return {t: conn.execute(f'select count(*) from qbo."{t}"').fetchone()[0] for t in tables}
    finally:
        conn.close()
