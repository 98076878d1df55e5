"""Every `--output` a user names is safe: no write through a link, into the ledger or a token, or over a file.

Issue 20, defect 1: `as-of --output` followed symlinks and hard links and
overwrote any file, so a link named like a report destroyed the ledger. Each
test runs the real CLI on a copy of the session's shared ledger
(shared_ledger.py), with its state dir (tokens, sandbox clock) and registry.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import polars as pl
import pytest

from ledger_pipeline import cli
from ledger_pipeline_tests.shared_ledger import SharedLedger

AT = "2099-01-01T00:00:00Z"  # after the shared ledger was built (as-of reads when versions were observed)
AS_OF = ["as-of", "--tenant", "acme", "--entity", "bills", "--at", AT, "--output"]


def _as_of(output: Path, *flags: str) -> list[str]:
    return [*AS_OF, str(output), *flags]


def _export(output: Path, *flags: str) -> list[str]:
    return ["export-tenant", "acme", "--output", str(output), *flags]


COMMANDS = {"as-of": (_as_of, ".csv"), "export-tenant": (_export, ".duckdb")}


class Files:
    """A copy of the shared ledger, state dir and registry in tmp_path/project; outputs go in tmp_path/out."""

    def __init__(self, root: Path, shared: SharedLedger) -> None:
        self.project = root / "project"
        self.out = root / "out"
        self.out.mkdir()
        self.project.mkdir()
        shutil.copy2(shared.root / "ledger.duckdb", self.ledger)
        shutil.copytree(shared.root / "state", self.state)
        shutil.copy2(shared.root / "tenants.json", self.tenants)

    ledger = property(lambda self: self.project / "ledger.duckdb")
    state = property(lambda self: self.project / "state")
    tenants = property(lambda self: self.project / "tenants.json")

    def token(self) -> Path:
        tokens = sorted((self.state / "qbo_tokens").glob("*.json"))
        assert tokens, "the shared ledger's sync stored no refresh token"
        return tokens[0]

    def digests(self) -> dict[str, str]:
        """Every protected file's content, to show that a refusal left each byte alone."""
        files = [self.ledger, self.tenants, *(p for p in self.state.rglob("*") if p.is_file())]
        return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture
def files(shared_ledger: SharedLedger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Files:
    f = Files(tmp_path, shared_ledger)
    monkeypatch.setenv("LEDGER_DUCKDB_PATH", str(f.ledger))
    monkeypatch.setenv("LEDGER_STATE_DIR", str(f.state))
    monkeypatch.setenv("LEDGER_TENANTS_PATH", str(f.tenants))
    return f


def _refused(capsys, argv: list[str], *phrases: str) -> str:
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("ledger-pipeline: error: ") and err.count("\n") == 1, (out, err)
    assert all(p in err for p in phrases), err
    return err


def test_a_symlink_to_the_ledger_is_refused_and_the_ledger_still_verifies(files, capsys):
    before = files.digests()
    link = files.out / "report.csv"
    link.symlink_to(files.ledger)

    for flags in ((), ("--force",)):
        _refused(capsys, _as_of(link, *flags), str(link), "symbolic link")

    assert files.digests() == before and link.is_symlink()
    assert cli.main(["verify"]) == 0
    assert "verify: OK" in capsys.readouterr().out


@pytest.mark.parametrize("command", COMMANDS)
def test_a_hard_link_of_the_ledger_is_refused_even_with_force(files, capsys, command):
    argv, suffix = COMMANDS[command]
    before = files.digests()
    link = files.out / f"report{suffix}"
    os.link(files.ledger, link)

    for flags in ((), ("--force",)):
        _refused(capsys, argv(link, *flags), str(link), "hard link of the ledger", str(files.ledger))

    assert files.digests() == before and os.stat(link).st_ino == os.stat(files.ledger).st_ino
    assert sorted(p.name for p in files.out.iterdir()) == [link.name]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("protected", ["token", "registry"])
def test_a_hard_link_of_a_token_or_the_registry_is_refused_even_with_force(files, capsys, command, protected):
    argv, suffix = COMMANDS[command]
    target = files.token() if protected == "token" else files.tenants
    before = files.digests()
    link = files.out / f"report{suffix}"
    os.link(target, link)

    for flags in ((), ("--force",)):
        _refused(capsys, argv(link, *flags), str(link), "hard link of", str(target))

    assert files.digests() == before
    assert sorted(p.name for p in files.out.iterdir()) == [link.name]


def test_an_output_in_the_state_directory_is_refused(files, capsys):
    before = files.digests()
    _refused(capsys, _as_of(files.state / "report.csv"), "state directory")
    assert files.digests() == before and not (files.state / "report.csv").exists()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_an_existing_file_is_kept_without_force_and_replaced_atomically_with_force(files, capsys, suffix):
    fresh = files.out / f"fresh{suffix}"
    assert cli.main(_as_of(fresh)) == 0
    assert f"to {fresh}\n" in capsys.readouterr().out
    target = files.out / f"report{suffix}"
    target.write_text("an analyst's earlier report\n")
    inode = target.stat().st_ino

    _refused(capsys, _as_of(target), str(target), "already exists", "--force")
    assert target.read_text() == "an analyst's earlier report\n"

    assert cli.main(_as_of(target, "--force")) == 0
    assert f"to {target} (replaced the existing file)" in capsys.readouterr().out
    assert target.read_bytes() == fresh.read_bytes()
    read = pl.read_parquet if suffix == ".parquet" else pl.read_csv
    assert read(target).height == read(fresh).height > 0
    assert target.stat().st_ino != inode  # a new file renamed into place, not the old one rewritten
    assert sorted(p.name for p in files.out.iterdir()) == sorted([fresh.name, target.name])  # no temp file left


@pytest.mark.parametrize("command", COMMANDS)
def test_a_dangling_symlink_is_refused_and_nothing_is_created(files, capsys, command):
    argv, suffix = COMMANDS[command]
    missing = files.out / f"missing{suffix}"
    link = files.out / f"report{suffix}"
    link.symlink_to(missing)

    for flags in ((), ("--force",)):
        _refused(capsys, argv(link, *flags), str(link), "symbolic link")

    assert not missing.exists() and link.is_symlink()
    assert sorted(p.name for p in files.out.iterdir()) == [link.name]


@pytest.mark.parametrize("ledger", ["loop", "long name"])
def test_export_with_an_unreadable_ledger_names_the_ledger_not_the_output(files, capsys, monkeypatch, ledger):
    if ledger == "loop":
        path = files.project / "loop.duckdb"
        path.symlink_to(path)
    else:
        path = files.project / ("x" * 300 + ".duckdb")  # ENAMETOOLONG when opened
    monkeypatch.setenv("LEDGER_DUCKDB_PATH", str(path))
    output = files.out / "acme.duckdb"

    err = _refused(capsys, _export(output), "ledger", str(path))

    assert "cannot write" not in err and str(output) not in err
    assert list(files.out.iterdir()) == []
