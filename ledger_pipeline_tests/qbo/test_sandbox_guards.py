"""Guard rails around the sandbox: a corrupt state file, a busy port and absurd admin values each give one clear
line (or a 400 naming the field) and change nothing.

The state file holds the simulated clock and the refresh-token generations every process shares; resetting it
silently would move the clock back and lose the books, so a corrupt one is always refused, naming the file.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import dagster as dg
import httpx
import pytest

from ledger_pipeline import cli
from ledger_pipeline.lib import ids
from ledger_pipeline.rails.qbo.sandbox import SANDBOX_BASE_URL, Fault, QboSandbox
from ledger_pipeline.rails.qbo.sandbox import server as sandbox_server
from ledger_pipeline.rails.qbo.sandbox.state import SandboxStateError
from ledger_pipeline_tests.helpers import failure_text, tree_snapshot

from .conftest import SMALL_COMPANIES, fetch_access_token

REALM = SMALL_COMPANIES[0].realm_id
STATE_FILE = "qbo_sandbox.json"


# --- a corrupt state file -------------------------------------------------------------------------------------------
def _edit(change: Callable[[dict], None]) -> Callable[[Path], None]:
    """A corruption that rewrites one part of a valid state file's JSON."""

    def corrupt(path: Path) -> None:
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))

    return corrupt


def _replace_with_directory(path: Path) -> None:
    path.unlink()
    path.mkdir()
    (path / "inside").write_text("x")


def _lock_is_a_directory(path: Path) -> None:
    lock = path.with_name(path.name + ".lock")
    lock.unlink(missing_ok=True)
    lock.mkdir()


def _dangling_symlink(path: Path) -> None:
    path.unlink()
    path.symlink_to(path.parent / "gone.json")


def _fault_slot(**fault) -> dict:
    return {"9130350000000001": [{"fault": {"kind": "throttle", **fault}, "passed": 0, "hits": 0}]}


CORRUPTIONS: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "is not valid JSON"),
    "empty": (lambda p: p.write_bytes(b""), "is empty"),
    "binary garbage": (lambda p: p.write_bytes(b"\x00\xff\xfe\x80\x81garbage\x00" * 20), "is not UTF-8 text"),
    "latin-1 bytes": (lambda p: p.write_bytes(b'{"format": 1, "fingerprint": "\xe9"}'), "is not UTF-8 text"),
    "a JSON list": (lambda p: p.write_text("[1, 2, 3]"), "expected a JSON object, found a list"),
    "a JSON number": (lambda p: p.write_text("42"), "expected a JSON object"),
    "deeply nested": (lambda p: p.write_text("[" * 100_000 + "]" * 100_000), "is not valid JSON"),
    "huge integer": (lambda p: p.write_text('{"clock_us": ' + "9" * 5000 + "}"), "is not valid JSON"),
    "other format": (_edit(lambda d: d.update(format=2)), "unsupported sandbox state format 2"),
    "no clock": (_edit(lambda d: d.pop("clock_us")), "'clock_us' must be a whole number"),
    "clock a string": (_edit(lambda d: d.update(clock_us="soon")), "'clock_us' must be a whole number"),
    "clock a float": (_edit(lambda d: d.update(clock_us=1.8e15)), "'clock_us' must be a whole number"),
    "clock a boolean": (_edit(lambda d: d.update(clock_us=True)), "'clock_us' must be a whole number"),
    "clock before genesis": (_edit(lambda d: d.update(clock_us=0)), "'clock_us' must be a whole number"),
    "clock past year 9999": (_edit(lambda d: d.update(clock_us=10**20)), "'clock_us' must be a whole number"),
    "fingerprint a number": (_edit(lambda d: d.update(fingerprint=7)), "'fingerprint' must be a string"),
    "another sandbox's": (_edit(lambda d: d.update(fingerprint="0" * 16)), "another seed"),
    "generations a list": (_edit(lambda d: d.update(refresh_generations=[1])), "must be an object"),
    "negative generation": (_edit(lambda d: d.update(refresh_generations={"9130350000000001": -1})),
                            "refresh_generations.9130350000000001"),
    "faults a list": (_edit(lambda d: d.update(faults=[])), "'faults' must be an object"),
    "fault slot without hits": (_edit(lambda d: d.update(faults={"1": [{"fault": {"kind": "throttle"}, "passed": 0}]})),
                                "'faults.1[0].hits' must be a whole number"),
    "fault of unknown kind": (_edit(lambda d: d.update(faults=_fault_slot(kind="meteor"))), "unknown fault kind"),
    "fault count infinite": (_edit(lambda d: d.update(faults=_fault_slot(count=float("inf")))), "count must be"),
    "fault delay 1e300": (_edit(lambda d: d.update(faults=_fault_slot(delay=1e300))), "delay must be"),
    "fault with a stray field": (_edit(lambda d: d.update(faults=_fault_slot(colour="red"))), "unknown fault field"),
    "touch too short": (_edit(lambda d: d.update(touches=[[1]])), "'touches[0]' must be a list"),
    "touch of wrong types": (_edit(lambda d: d.update(touches=[["x", 1, 2, 3]])), "'touches[0][0]'"),
    "skews nested wrongly": (_edit(lambda d: d.update(report_skews={"1": ["AgedPayables"]})),
                             "'report_skews.1' must be an object"),
    "skew in floats": (_edit(lambda d: d.update(report_skews={"1": {"AgedPayables": {"5": 1.5}}})),
                       "'report_skews.1.AgedPayables.5' must be a whole number"),
    "revoked a string": (_edit(lambda d: d.update(revoked="9130350000000001")), "'revoked' must be a list"),
    "drift of two items": (_edit(lambda d: d.update(drifts={"1": [["Bill", "5"]]})), "'drifts.1[0]'"),
    "a directory": (_replace_with_directory, "is a directory, not a file"),
    "a dangling symlink": (_dangling_symlink, "which does not exist"),
    "lock file a directory": (_lock_is_a_directory, "lock file"),
}


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """LEDGER_* in tmp_path, a valid sandbox state file made by the CLI, and a server that must never serve."""
    monkeypatch.setenv("LEDGER_DUCKDB_PATH", str(tmp_path / "ledger.duckdb"))
    monkeypatch.setenv("LEDGER_TENANTS_PATH", str(tmp_path / "tenants.json"))
    monkeypatch.setenv("LEDGER_STATE_DIR", str(tmp_path / "state"))

    def refuse_to_serve(*args, **kwargs):
        raise AssertionError("the sandbox server must not start")

    monkeypatch.setattr(sandbox_server._Server, "serve_forever", refuse_to_serve)
    assert cli.main(["sandbox", "advance", "--days", "1"]) == 0
    return tmp_path / "state"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    out, err = capsys.readouterr()
    assert err.startswith("ledger-pipeline: error: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err and len(err) < 600, err
    return err


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_a_corrupt_state_file_is_one_line_from_advance_and_serve_and_is_left_as_it_is(cli_env, capsys, name):
    corrupt, cause = CORRUPTIONS[name]
    state_file = cli_env / STATE_FILE
    corrupt(state_file)
    capsys.readouterr()
    before = tree_snapshot(cli_env)

    for argv in (["sandbox", "advance", "--days", "1"], ["sandbox", "serve", "--port", str(_free_port())]):
        assert cli.main(argv) == 2, argv
        err = _one_error_line(capsys)
        assert f"sandbox state file {state_file}" in err and cause in err, err
        if name not in ("another sandbox's", "lock file a directory"):
            assert "restore the file" in err and f"remove the state directory {cli_env}" in err, err
        assert tree_snapshot(cli_env) == before, "a corrupt state file must never be repaired or reset"


def test_a_state_directory_that_is_a_file_is_one_line(tmp_path, monkeypatch, capsys):
    not_a_dir = tmp_path / "state"
    not_a_dir.write_text("I am a file\n")
    monkeypatch.setenv("LEDGER_STATE_DIR", str(not_a_dir))

    assert cli.main(["sandbox", "advance", "--days", "1"]) == 2

    err = _one_error_line(capsys)
    assert f"its directory {not_a_dir} is not a directory" in err
    assert not_a_dir.read_text() == "I am a file\n"


def test_a_state_file_corrupted_while_in_use_fails_every_request_until_restored(sandbox, tmp_path):
    path = tmp_path / STATE_FILE
    box = QboSandbox(sandbox.companies, seed=11, rate_limit=None, state_path=path)
    box.advance(timedelta(hours=5))
    api = httpx.Client(transport=box.transport(), base_url=SANDBOX_BASE_URL)
    assert fetch_access_token(api, REALM)
    good = path.read_bytes()
    path.write_bytes(good[:40])

    with pytest.raises(SandboxStateError, match=f"sandbox state file {path}: is not valid JSON"):
        fetch_access_token(api, REALM)
    with pytest.raises(SandboxStateError):
        box.advance(timedelta(days=1))
    with pytest.raises(SandboxStateError):
        box.now  # noqa: B018
    assert path.read_bytes() == good[:40]

    path.write_bytes(good)  # restored: the clock and the token generation are where they were
    assert box.now == sandbox.now + timedelta(hours=5)
    assert box.store.view().generations == {REALM: 1}


def test_the_server_answers_500_naming_the_file_when_its_state_file_breaks(sandbox, tmp_path, capsys):
    path = tmp_path / STATE_FILE
    box = QboSandbox(sandbox.companies, seed=11, rate_limit=None, state_path=path)
    running = sandbox_server.start_in_thread(box)
    try:
        path.write_bytes(b"\xff\x00garbage")
        answer = httpx.get(f"{running.base_url}/_sandbox/clock", timeout=5)
    finally:
        running.stop()
    assert answer.status_code == 500
    assert answer.json()["error"].startswith(f"sandbox state file {path}: is not UTF-8 text")
    assert "Traceback" not in capsys.readouterr().err


def test_a_sync_on_a_corrupt_state_file_fails_naming_it_and_logs_nothing(project):
    project.add_tenant("acme")
    state_file = project.qbo.state_path / STATE_FILE
    state_file.parent.mkdir(parents=True)
    state_file.write_text('{"format": 1, "fingerprint": "')

    result = project.sync("acme", raise_on_error=False, asset_selection=[dg.AssetKey(["raw", "qbo_vendors"])])

    assert not result.success
    text = failure_text(result)
    assert f"sandbox state file {state_file}: is not valid JSON" in text, text
    assert "remove the state directory" in text
    assert state_file.read_text() == '{"format": 1, "fingerprint": "'
    assert project.query("select count(*) from raw.entity_log") == [(0,)]


def test_the_state_error_is_an_invalid_input_and_survives_pickling():
    import pickle

    error = SandboxStateError(Path("/x/qbo_sandbox.json"), "is empty")
    again = pickle.loads(pickle.dumps(error))
    assert isinstance(again, ids.InvalidInput) and str(again) == str(error)


# --- a busy port ----------------------------------------------------------------------------------------------------
def test_serve_on_a_busy_port_is_one_line_naming_host_and_port(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LEDGER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(sandbox_server._Server, "serve_forever", lambda *a, **k: pytest.fail("must not serve"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        assert cli.main(["sandbox", "serve", "--port", str(port)]) == 2

        err = _one_error_line(capsys)
        assert f"cannot serve the sandbox on 127.0.0.1:{port}: Address already in use" in err, err
        assert not (tmp_path / "state").exists(), "a refused serve writes no state"
        with pytest.raises(ids.InvalidInput, match=f"127.0.0.1:{port}"):
            sandbox_server.start_in_thread(QboSandbox(SMALL_COMPANIES, seed=11), "127.0.0.1", port)


# --- absurd admin values ------------------------------------------------------------------------------------------
BAD_ADMIN = [
    # (path, body, field)
    ("/_sandbox/clock", {"advance_seconds": 1e300}, "advance_seconds"),
    ("/_sandbox/clock", {"advance_seconds": float("inf")}, "advance_seconds"),
    ("/_sandbox/clock", {"advance_seconds": float("nan")}, "advance_seconds"),
    ("/_sandbox/clock", {"advance_seconds": -1}, "advance_seconds"),
    ("/_sandbox/clock", {"advance_seconds": 365 * 86400 + 1}, "advance_seconds"),
    ("/_sandbox/clock", {"advance_seconds": 10**400}, "advance_seconds"),
    ("/_sandbox/clock", {"advance_seconds": "90"}, "advance_seconds"),
    ("/_sandbox/clock", {"advance_seconds": True}, "advance_seconds"),
    ("/_sandbox/clock", {"advance_seconds": None}, "advance_seconds"),
    ("/_sandbox/clock", {"set": "9999-12-31T23:59:59Z"}, "set"),
    ("/_sandbox/clock", {"set": "2027-10-02T00:00:01Z"}, "set"),
    ("/_sandbox/clock", {"set": "2026-10-02T00:00:00+05:99"}, "set"),
    ("/_sandbox/clock", {"set": "2026-10-02T00:00:00+25:00"}, "set"),
    ("/_sandbox/clock", {"set": "2026-10-02T00:00:00"}, "set"),
    ("/_sandbox/clock", {"set": "2020-01-01T00:00:00Z"}, "set"),
    ("/_sandbox/clock", {"set": 1790812800}, "set"),
    (f"/_sandbox/faults/{REALM}", {"kind": "throttle", "count": float("inf")}, "count"),
    (f"/_sandbox/faults/{REALM}", {"kind": "throttle", "count": float("nan")}, "count"),
    (f"/_sandbox/faults/{REALM}", {"kind": "throttle", "count": -2}, "count"),
    (f"/_sandbox/faults/{REALM}", {"kind": "throttle", "count": 0}, "count"),
    (f"/_sandbox/faults/{REALM}", {"kind": "throttle", "count": 10_001}, "count"),
    (f"/_sandbox/faults/{REALM}", {"kind": "throttle", "count": 10**30}, "count"),
    (f"/_sandbox/faults/{REALM}", {"kind": "throttle", "count": 1.5}, "count"),
    (f"/_sandbox/faults/{REALM}", {"kind": "throttle", "count": "3"}, "count"),
    (f"/_sandbox/faults/{REALM}", {"kind": "throttle", "count": True}, "count"),
    (f"/_sandbox/faults/{REALM}", {"kind": "throttle", "after": -1}, "after"),
    (f"/_sandbox/faults/{REALM}", {"kind": "throttle", "after": 1e300}, "after"),
    (f"/_sandbox/faults/{REALM}", {"kind": "throttle", "after": 10_001}, "after"),
    (f"/_sandbox/faults/{REALM}", {"kind": "slow", "delay": 1e300}, "delay"),
    (f"/_sandbox/faults/{REALM}", {"kind": "slow", "delay": float("nan")}, "delay"),
    (f"/_sandbox/faults/{REALM}", {"kind": "slow", "delay": -0.5}, "delay"),
    (f"/_sandbox/faults/{REALM}", {"kind": "slow", "delay": 61}, "delay"),
    (f"/_sandbox/faults/{REALM}", {"kind": "throttle", "retry_after": float("inf")}, "retry_after"),
    (f"/_sandbox/faults/{REALM}", {"kind": "throttle", "retry_after": -1}, "retry_after"),
    (f"/_sandbox/faults/{REALM}", {"kind": "throttle", "retry_after": 3600}, "retry_after"),
    (f"/_sandbox/faults/{REALM}", {"kind": "server_error", "status": 600}, "status"),
    (f"/_sandbox/faults/{REALM}", {"kind": "server_error", "status": 503.5}, "status"),
    (f"/_sandbox/faults/{REALM}", {"kind": "duplicate", "rows": 0}, "rows"),
    (f"/_sandbox/faults/{REALM}", {"kind": "duplicate", "rows": 1001}, "rows"),
    (f"/_sandbox/skews/{REALM}", {"report": "AgedPayables", "entity_id": "1", "delta": "1e300"}, "delta"),
    (f"/_sandbox/skews/{REALM}", {"report": "AgedPayables", "entity_id": "1", "delta": 1e300}, "delta"),
    (f"/_sandbox/skews/{REALM}", {"report": "AgedPayables", "entity_id": "1", "delta": "NaN"}, "delta"),
    (f"/_sandbox/skews/{REALM}", {"report": "AgedPayables", "entity_id": "1", "delta": float("inf")}, "delta"),
    (f"/_sandbox/skews/{REALM}", {"report": "AgedPayables", "entity_id": "1", "delta": "0.001"}, "delta"),
    (f"/_sandbox/skews/{REALM}", {"report": "AgedPayables", "entity_id": "1", "delta": True}, "delta"),
]


def _state(sb: QboSandbox) -> dict:
    return sb.store.view().to_json()


@pytest.mark.parametrize(("path", "body", "field"), BAD_ADMIN, ids=lambda v: repr(v)[:50])
def test_admin_refuses_absurd_values_with_400_naming_field_and_range(sandbox, path, body, field):
    admin = httpx.Client(transport=sandbox.transport(), base_url=SANDBOX_BASE_URL)
    before = _state(sandbox)

    answer = admin.post(path, content=json.dumps(body).encode())  # json.dumps writes NaN and Infinity as JSON does

    assert answer.status_code == 400, answer.text
    error = answer.json()
    assert error["field"] == field and field in error["error"], error
    assert error["allowed"] and error["allowed"] in error["error"], error
    assert len(error["error"]) < 400
    assert _state(sandbox) == before


def test_admin_over_http_refuses_a_huge_clock_step(served_sandbox):
    before = served_sandbox.sandbox.now
    answer = httpx.post(f"{served_sandbox.base_url}/_sandbox/clock", content=b'{"advance_seconds": 1e300}', timeout=5)
    assert answer.status_code == 400 and answer.json()["field"] == "advance_seconds"
    assert "from 0 to 31536000 seconds" in answer.json()["allowed"]
    assert served_sandbox.sandbox.now == before


def test_admin_accepts_the_edges_of_each_range(sandbox):
    admin = httpx.Client(transport=sandbox.transport(), base_url=SANDBOX_BASE_URL)
    start = sandbox.now
    assert admin.post("/_sandbox/clock", json={"advance_seconds": 0}).status_code == 200
    assert admin.post("/_sandbox/clock", json={"advance_seconds": 0.5}).status_code == 200
    assert admin.post("/_sandbox/clock", json={"set": "2026-10-01T05:00:00+05:00"}).status_code == 200
    assert sandbox.now == start
    assert admin.post("/_sandbox/clock", json={"set": "2026-10-02T00:00:00-23:59"}).status_code == 200
    assert admin.post("/_sandbox/clock", json={"set": "2026-10-01T00:00:00Z"}).status_code == 200
    assert admin.post("/_sandbox/clock", json={"advance_seconds": 365 * 86400}).status_code == 200
    assert sandbox.now == start + timedelta(days=365)
    for fault in ({"kind": "throttle", "count": -1}, {"kind": "throttle", "count": 10_000, "after": 10_000},
                  {"kind": "slow", "delay": 60}, {"kind": "throttle", "retry_after": 0.5},
                  {"kind": "duplicate", "rows": 1000}, {"kind": "server_error", "status": 599}):
        assert admin.post(f"/_sandbox/faults/{REALM}", json=fault).status_code == 201, fault
    assert len(sandbox.faults(REALM)) == 6


def test_sandbox_methods_refuse_the_same_values(sandbox):
    before = _state(sandbox)
    for step in (timedelta(days=366), timedelta(seconds=-1), timedelta.max):
        with pytest.raises(ValueError, match="advance must be"):
            sandbox.advance(step)
    with pytest.raises(ValueError, match="at most 365 days after the clock"):
        sandbox.set_clock(sandbox.now + timedelta(days=365, seconds=1))
    for bad in ({"count": float("inf")}, {"count": -5}, {"after": float("nan")}, {"delay": 1e300},
                {"retry_after": float("-inf")}, {"rows": 10**9}, {"count": True}):
        with pytest.raises(ValueError, match=f"{next(iter(bad))} must be"):
            sandbox.inject(REALM, Fault("throttle", **bad))
    with pytest.raises(ValueError, match="delta must be"):
        sandbox.skew_report(REALM, "AgedPayables", "1", Decimal("1e300"))
    for odd_id in ("١", "01", "1.0", " 1"):
        with pytest.raises(ValueError, match="no live Bill"):
            sandbox.touch(REALM, "Bill", odd_id)
    assert _state(sandbox) == before
