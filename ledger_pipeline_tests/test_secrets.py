"""Secrets never leak: after real syncs, token refreshes and failed runs, no known secret value is anywhere.

The sandbox's client secret and every access and refresh token it issued (read
back from what the pipeline stored, and re-derived from the sandbox's token
generations) are searched for in stdout and stderr, every log record, every
event, run (tags, config) and snapshot in Dagster's instance, the text of a
raised exception, every file of the project, and the DuckDB file, both as
bytes and as values (DuckDB compresses strings, so bytes alone could hide one).
Only the token store may hold tokens, and only with mode 0600.
"""

from __future__ import annotations

import base64
import json
import logging
import stat
import traceback
from datetime import timedelta
from pathlib import Path

import dagster as dg
import duckdb
import httpx
import pytest
from dagster._serdes import serialize_value

from ledger_pipeline.rails.qbo.sandbox import CLIENT_ID, CLIENT_SECRET, SANDBOX_BASE_URL, SANDBOX_TOKEN_URL, Fault
from ledger_pipeline.rails.qbo.sandbox.auth import read_refresh_token, refresh_token
from ledger_pipeline.rails.qbo.token_store import FileTokenStore, StoredTokens
from ledger_pipeline_tests.helpers import failure_text, op_config

HOURS_PAST_EXPIRY = timedelta(hours=2)


def _secrets(saved: list[StoredTokens], external: list[str]) -> dict[str, str]:
    """{value: what it is} of every secret: the client secret, and every token issued, whole and as its signature."""
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()  # an Authorization header's value
    found = {CLIENT_SECRET: "client secret", basic: "basic auth"}
    tokens = {t for s in saved for t in (s.refresh_token, s.access_token) if t} | set(external)
    generations: dict[str, int] = {}
    for token in tokens:
        claim = read_refresh_token(token)
        if claim is not None:
            generations[claim.realm_id] = max(generations.get(claim.realm_id, 0), claim.generation)
    tokens |= {refresh_token(realm, g) for realm, top in generations.items() for g in range(top + 1)}
    for token in tokens:
        kind = "refresh token" if token.startswith("RT1-") else "access token"
        found[token] = kind
        found[token.replace(".", "-").rsplit("-", 1)[1]] = f"{kind} signature"
    return found


def _event_log(instance: dg.DagsterInstance) -> str:
    """Every run (tags, config), its job and plan snapshots, and every event of every run, serialised."""
    parts = []
    for run in instance.get_runs():
        parts.append(serialize_value(run))
        parts.append(serialize_value(instance.get_job_snapshot(run.job_snapshot_id)))
        if run.execution_plan_snapshot_id:
            parts.append(serialize_value(instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)))
        parts += [serialize_value(entry) for entry in instance.all_logs(run.run_id)]
    return "\n".join(parts)


def _log_records(records: list[logging.LogRecord]) -> str:
    parts = []
    for record in records:
        parts += [record.getMessage(), repr(record.__dict__)]
        if record.exc_info:
            parts.append("".join(traceback.format_exception(*record.exc_info)))
    return "\n".join(parts)


def _duckdb_values(path: Path) -> str:
    conn = duckdb.connect(str(path), read_only=True)
    try:
        relations = conn.execute("select schema_name, table_name from duckdb_tables()").fetchall()
        return "\n".join(repr(conn.execute(f'select * from "{s}"."{t}"').fetchall()) for s, t in relations)
    finally:
        conn.close()


def _files(root: Path, allowed: set[Path]) -> dict[str, bytes]:
    """Every file under root but the token store's own files, by path."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path not in allowed
    }


def test_no_secret_reaches_output_logs_dagster_exceptions_or_duckdb(project, capfd, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    saved: list[StoredTokens] = []
    original_save = FileTokenStore.save

    def recording_save(self: FileTokenStore, realm_id: str, tokens: StoredTokens) -> None:
        saved.append(tokens)
        original_save(self, realm_id, tokens)

    monkeypatch.setattr(FileTokenStore, "save", recording_save)
    box = project.sandbox
    realm = project.add_tenant("acme", company=0)
    flaky = project.with_qbo(max_retries=1, backoff_base=0.0)
    results = []

    # A clean sync with run config; the access token is refused mid-paging (401), so it is refreshed during the run.
    box.inject(realm, Fault("expire_token", endpoint="query", after=3))
    results.append(project.sync("acme", run_config=op_config("raw__", batch_size=500)))
    # 5xx from the API, then from the token endpoint: both runs fail after their retries.
    box.inject(realm, Fault("server_error", endpoint="query", count=-1, status=503))
    results.append(flaky.sync("acme", raise_on_error=False))
    box.clear_faults()
    box.advance(HOURS_PAST_EXPIRY)  # the hour ran out: the next run must refresh first
    box.inject(realm, Fault("server_error", endpoint="token", count=-1, status=500))
    results.append(flaky.sync("acme", raise_on_error=False))
    box.clear_faults()
    # Another client rotates the refresh token behind the pipeline's back: invalid_grant, the run fails.
    current = FileTokenStore(project.qbo.state_path / "qbo_tokens").load(realm)
    with httpx.Client(transport=box.transport(), base_url=SANDBOX_BASE_URL) as http:
        grant = http.post(
            SANDBOX_TOKEN_URL,
            auth=(CLIENT_ID, CLIENT_SECRET),
            data={"grant_type": "refresh_token", "refresh_token": current.refresh_token},
        ).json()
    external = [grant["access_token"], grant["refresh_token"]]
    with pytest.raises(Exception) as raised:  # whatever Dagster raises, its whole text is searched
        project.sync("acme")
    exception_text = "".join(traceback.format_exception(raised.value)) + repr(raised.value)
    # Reconnected: the stored token is refused, the configured one works (a refresh), the run succeeds.
    box.reconnect(realm)
    results.append(project.sync("acme"))

    assert [r.success for r in results] == [True, False, False, True]
    assert "HTTP 503" in failure_text(results[1]) and "token endpoint answered HTTP 500" in failure_text(results[2])
    assert "invalid_grant" in exception_text
    secrets = _secrets(saved, external)
    assert len({t.refresh_token for t in saved}) >= 2 and len({t.access_token for t in saved}) == len(saved) >= 3

    out, err = capfd.readouterr()
    store_dir = project.qbo.state_path / "qbo_tokens"
    token_files = {p for p in store_dir.iterdir() if p.name.endswith(".json")}
    channels = {
        "stdout": out,
        "stderr": err,
        "log records": _log_records(caplog.records),
        "dagster event log and runs": _event_log(project.instance),
        "in-process results": "\n".join(serialize_value(e) for r in results for e in r.all_events),
        "exception": exception_text,
        "duckdb values": _duckdb_values(project.db_path),
        # every other file as bytes: ledger.duckdb (and a .wal if one is left), tenants.json, the sandbox state
        **{f"file {name}": data.decode("latin-1") for name, data in _files(project.root, token_files).items()},
    }
    assert "invalid_grant" in channels["dagster event log and runs"] and "refreshing" in channels["log records"]
    assert "RUN_SUCCESS" in channels["stderr"] and "batch_size" in channels["dagster event log and runs"]
    assert "file ledger.duckdb" in channels
    leaks = {(where, what) for where, text in channels.items() for value, what in secrets.items() if value in text}
    assert not leaks, sorted(leaks)

    assert {p.name for p in token_files} == {f"qbo_tokens_{realm}.json"}
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in token_files)
    assert stat.S_IMODE(store_dir.stat().st_mode) & 0o077 == 0
    stored = json.loads((store_dir / f"qbo_tokens_{realm}.json").read_text())
    assert (stored["refresh_token"], stored["access_token"]) == (saved[-1].refresh_token, saved[-1].access_token)
