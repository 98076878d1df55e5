"""DAGSTER_HOME (issue 20): a missing, relative or non-folder DAGSTER_HOME, or a dagster.yaml that is not Dagster
settings, is one line naming it and the fix (exit 2) from every command that opens a Dagster instance, never a
Dagster traceback; and `verify`, a read-only audit, creates nothing in a DAGSTER_HOME that holds no instance."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest

from ledger_pipeline import cli
from ledger_pipeline.lib import warehouse

# (name, how to make the bad DAGSTER_HOME under tmp (returns the value), a phrase of the one line)
BAD_HOMES = {
    "relative": (lambda tmp: "relative/dagster_home", "is a relative path"),
    "missing": (lambda tmp: str(tmp / "no_such_folder"), "does not exist"),
    "a file": (lambda tmp: _write(tmp / "home_file", "x\n").as_posix(), "is not a folder"),
    "yaml that does not parse": (lambda tmp: _home(tmp, "storage: [sqlite,\n"), "is not valid YAML"),
    "yaml that is a list": (lambda tmp: _home(tmp, "- storage\n- sqlite\n"), "not a mapping of Dagster settings"),
    "yaml Dagster refuses": (lambda tmp: _home(tmp, "no_such_setting: 1\n"), "Dagster refuses the settings"),
    "dagster.yaml is a folder": (lambda tmp: _home(tmp, None), "is not a file"),
}
COMMANDS = {
    "verify": ["verify"],
    "demo": ["demo"],
    "tenants add": ["tenants", "add", "zeta", "--qbo-realm", "9130350000000001"],
}


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _home(tmp: Path, config: str | None) -> str:
    home = tmp / "dagster_home"
    home.mkdir()
    if config is None:
        (home / "dagster.yaml").mkdir()
    else:
        _write(home / "dagster.yaml", config)
    return str(home)


def _listing(root: Path) -> dict[str, bytes | str]:
    found: dict[str, bytes | str] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            found[str(path.relative_to(root))] = "dir" if path.is_dir() else path.read_bytes()
    return found


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty ledger (verify passes on it: no chain is broken), registry and state in tmp_path."""
    warehouse.connect(tmp_path / "ledger.duckdb").close()
    monkeypatch.setenv("LEDGER_DUCKDB_PATH", str(tmp_path / "ledger.duckdb"))
    monkeypatch.setenv("LEDGER_TENANTS_PATH", str(tmp_path / "tenants.json"))
    monkeypatch.setenv("LEDGER_STATE_DIR", str(tmp_path / "state"))
    return tmp_path


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("bad", BAD_HOMES)
def test_a_bad_dagster_home_is_one_line_naming_it_and_exit_2(env, monkeypatch, capsys, bad, command):
    make, phrase = BAD_HOMES[bad]
    value = make(env)
    monkeypatch.setenv("DAGSTER_HOME", value)
    before = _listing(env)
    code = cli.main(COMMANDS[command])
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert code == 2, captured
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    assert lines[0].startswith("ledger-pipeline: error: ") and phrase in lines[0], lines[0]
    assert "DAGSTER_HOME" in lines[0]
    if command != "tenants add":  # `tenants add` writes the registry before the partition (cli._tenants)
        assert _listing(env) == before, "nothing is created or changed when DAGSTER_HOME is refused"


def test_verify_with_an_empty_dagster_home_creates_nothing_there(env, monkeypatch, capsys):
    home = env / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    assert cli.main(["verify"]) == 0
    captured = capsys.readouterr()
    assert "verify: OK" in captured.out
    assert "holds no Dagster instance" in captured.err and "were not compared" in captured.err
    assert list(home.iterdir()) == [], "a read-only audit created Dagster's files"


def test_verify_still_compares_heads_in_a_dagster_home_that_holds_an_instance(env, monkeypatch, capsys):
    home = env / "dagster_home"
    home.mkdir()
    with dg.DagsterInstance.from_config(str(home)):  # an instance, as a first Dagster run leaves it (no runs)
        pass
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    assert cli.main(["verify"]) == 0
    captured = capsys.readouterr()
    assert "0 chain heads recorded in Dagster's event log match" in captured.out, captured


def test_demo_without_dagster_home_says_to_set_it(env, monkeypatch, capsys):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    before = _listing(env)
    assert cli.main(["demo"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and "DAGSTER_HOME is not set" in lines[0] and "make demo" in lines[0], captured.err
    assert _listing(env) == before
