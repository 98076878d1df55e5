"""A tenant's log keeps its one company, and the registry that names it is exactly what it says (issue 20, defect 2
and the registry's messages of defect 7)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger_pipeline import cli
from ledger_pipeline.lib.tenants import Tenant, TenantError, TenantRegistry
from ledger_pipeline.rails.qbo.rail import QboConnection
from ledger_pipeline.rails.qbo.sandbox import DEMO_COMPANIES
from ledger_pipeline_tests.helpers import failure_text, log_count

REALM_A, REALM_B = DEMO_COMPANIES[0].realm_id, DEMO_COMPANIES[1].realm_id


def _registry_file(path: Path, text: str) -> TenantRegistry:
    path.write_text(text)
    return TenantRegistry(path)


def _cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *argv: str) -> int:
    monkeypatch.setenv("LEDGER_TENANTS_PATH", str(tmp_path / "tenants.json"))
    monkeypatch.setenv("LEDGER_DUCKDB_PATH", str(tmp_path / "ledger.duckdb"))
    monkeypatch.setenv("LEDGER_STATE_DIR", str(tmp_path / "state"))
    return cli.main(list(argv))


def test_a_changed_company_is_refused_before_anything_is_read(shared_ledger_copy) -> None:
    project = shared_ledger_copy  # acme synced on company 0
    before = log_count(project, "acme")
    (project.root / "tenants.json").write_text(json.dumps({"tenants": {"acme": {"qbo": {"realm_id": REALM_B}}}}))

    result = project.sync("acme", raise_on_error=False)

    assert not result.success
    message = failure_text(result)
    assert f"holds company {REALM_A}" in message and f"now names {REALM_B}" in message, message
    assert log_count(project, "acme") == before
    assert project.query("select rail, account_id from meta.tenant_bindings where tenant_id = 'acme'") == [
        ("qbo", REALM_A)
    ]


def test_a_retired_tenant_keeps_its_log_and_its_company(synced_acme) -> None:
    """Moving to another company is a new tenant; the retired id can come back only with its own company."""
    project = synced_acme  # acme synced once, on company 0
    logged = log_count(project, "acme")
    project.registry.retire("acme")
    assert "acme" not in project.registry.load()
    project.registry.add(Tenant("acme2", QboConnection(REALM_B)))
    project.instance.add_dynamic_partitions("tenants", ["acme2"])
    assert project.sync("acme2").success

    project.registry.add(Tenant("acme", QboConnection(DEMO_COMPANIES[2].realm_id)))  # the old id, a new company
    refused = project.sync("acme", raise_on_error=False)
    assert not refused.success and f"holds company {REALM_A}" in failure_text(refused)

    project.registry.retire("acme")
    project.registry.add(Tenant("thief", QboConnection(REALM_A)))  # acme's company under another id
    project.instance.add_dynamic_partitions("tenants", ["thief"])
    stolen = project.sync("thief", raise_on_error=False)
    assert not stolen.success and "already the company of tenant acme's log" in failure_text(stolen)
    assert log_count(project, "acme") == logged
    assert log_count(project, "thief") == 0


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    body = f'{{"tenants": {{"acme": {{"qbo": {{"realm_id": "{REALM_A}"}}}}, "acme": {{"qbo": {{"realm_id": "{REALM_B}"}}}}}}}}'
    with pytest.raises(TenantError, match=r"'acme' appears twice"):
        _registry_file(tmp_path / "tenants.json", body).load()


def test_two_tenants_cannot_share_a_company(tmp_path: Path) -> None:
    shared = {"tenants": {"acme": {"qbo": {"realm_id": REALM_A}}, "bluebird": {"qbo": {"realm_id": REALM_A}}}}
    with pytest.raises(TenantError, match=f"acme and bluebird both name QBO realm {REALM_A}"):
        _registry_file(tmp_path / "tenants.json", json.dumps(shared)).load()
    registry = TenantRegistry(tmp_path / "other.json")
    registry.add(Tenant("acme", QboConnection(REALM_A)))
    with pytest.raises(TenantError, match=f"both name QBO realm {REALM_A}"):
        registry.add(Tenant("bluebird", QboConnection(REALM_A)))
    assert list(registry.load()) == ["acme"]


@pytest.mark.parametrize(
    ("text", "cause"),
    [
        ('{"tenant": {}}', 'expected an object {"tenants"'),
        ('{"tenants": {"acme": "9130350000000001"}}', "the entry of tenant 'acme' is not an object"),
        ('{"tenants": {"acme": {"qbo": {"realm": "1"}}}}', "unknown or missing keys ['realm']"),
        ('{"tenants": {"acme": {"qbo": {"realm_id": "1"}, "max_age": 5}}}', "unknown keys ['max_age']"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"tenants": {"Acme!": {}}}', "invalid tenant id"),
        (b"\xff\xfe".decode("latin-1"), "not valid JSON"),
    ],
)
def test_registry_errors_name_the_cause(tmp_path: Path, text: str, cause: str) -> None:
    with pytest.raises(TenantError) as refused:
        _registry_file(tmp_path / "tenants.json", text).load()
    assert cause in str(refused.value) and str(tmp_path / "tenants.json") in str(refused.value)


def test_registry_file_problems_are_one_line(monkeypatch, tmp_path: Path, capsys) -> None:
    (tmp_path / "tenants.json").mkdir()
    assert _cli(monkeypatch, tmp_path, "tenants", "list") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tenants.json cannot be read: Is a directory" in err


def test_a_dangling_symlink_registry_is_not_replaced(monkeypatch, tmp_path: Path, capsys) -> None:
    link = tmp_path / "tenants.json"
    link.symlink_to(tmp_path / "elsewhere" / "tenants.json")
    assert _cli(monkeypatch, tmp_path, "tenants", "add", "acme", "--qbo-realm", REALM_A) == 2
    assert "is a symlink" in capsys.readouterr().err
    assert link.is_symlink() and not link.exists()


def test_a_refused_refresh_token_variable_is_not_echoed(monkeypatch, tmp_path: Path, capsys) -> None:
    token = "AB11-pasted-refresh-token-value"
    argv = ["tenants", "add", "acme", "--qbo-realm", REALM_A, "--credentials", "env", "--refresh-token-env", token]
    assert _cli(monkeypatch, tmp_path, *argv) == 2
    captured = capsys.readouterr()
    assert "environment variable name" in captured.err
    assert token not in captured.err + captured.out
    assert not (tmp_path / "tenants.json").exists()


def test_tenants_add_refuses_another_tenants_company(monkeypatch, tmp_path: Path, capsys) -> None:
    assert _cli(monkeypatch, tmp_path, "tenants", "add", "acme", "--qbo-realm", REALM_A) == 0
    assert _cli(monkeypatch, tmp_path, "tenants", "add", "bluebird", "--qbo-realm", REALM_A) == 2
    assert f"both name QBO realm {REALM_A}" in capsys.readouterr().err
    assert list(TenantRegistry(tmp_path / "tenants.json").load()) == ["acme"]


def test_tenants_retire_drops_the_partition_and_the_registry_entry(monkeypatch, tmp_path: Path, capsys):
    import dagster as dg

    from ledger_pipeline.defs.partitions import TENANTS

    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    assert _cli(monkeypatch, tmp_path, "tenants", "add", "acme", "--qbo-realm", REALM_A) == 0
    with dg.DagsterInstance.get() as instance:
        assert instance.has_dynamic_partition(TENANTS.name, "acme")

    assert _cli(monkeypatch, tmp_path, "tenants", "retire", "acme") == 0
    assert "tenant acme retired" in capsys.readouterr().out
    with dg.DagsterInstance.get() as instance:
        assert not instance.has_dynamic_partition(TENANTS.name, "acme")
    assert TenantRegistry(tmp_path / "tenants.json").load() == {}
    assert _cli(monkeypatch, tmp_path, "tenants", "retire", "acme") == 2
    assert "unknown tenant 'acme'" in capsys.readouterr().err
