"""Every input is validated: each CLI subcommand's arguments, and tenant ids that reach Dagster as partition keys.

Hostile values (SQL injection, path traversal, control characters, huge or
out-of-range values) must be refused with one clear line on stderr and exit 2,
before anything is written: the temporary project folder stays as it was.
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from ledger_pipeline import cli
from ledger_pipeline.defs.partitions import TENANTS
from ledger_pipeline.defs.resources import TenantRegistryResource
from ledger_pipeline.defs.sensors import tenant_registry_sensor
from ledger_pipeline.lib import ids
from ledger_pipeline.rails.qbo import rail as qbo_rail
from ledger_pipeline.rails.qbo.sandbox import DEMO_COMPANIES
from ledger_pipeline_tests.helpers import failure_text, tree_snapshot

REALM = DEMO_COMPANIES[0].realm_id
AT = "2026-10-02T00:00:00Z"
LONG = "a" * 10_000
INJECTIONS = ["acme' or '1'='1", "acme; drop table raw.entity_log", "acme\"; --", "acme/*", "acme' union select 1 --"]
TRAVERSALS = ["../../etc/passwd", "..", "acme/../../x", "/etc/passwd", "~root"]
ODD_IDS = ["Acme", "1acme", "", " acme", "acme ", "acme\n", "acme\x00", "acmé", "ａｃｍｅ", "acme\u200b", "a" * 64]
ODD_IDS.append(LONG)
BAD_TENANTS = [*INJECTIONS, *TRAVERSALS, *ODD_IDS]


def _cases() -> list:
    """(argv, expected phrase) for every subcommand and argument; {tmp} is the test's project folder."""
    cases = []
    for tenant in BAD_TENANTS:
        cases += [
            (["tenants", "add", tenant, "--qbo-realm", REALM], "invalid tenant id"),
            (["verify", "--tenant", tenant], "invalid tenant id"),
            (["as-of", "--tenant", tenant, "--entity", "bills", "--at", AT], "invalid tenant id"),
            (["history", "--tenant", tenant, "--entity", "bills", "--id", "1"], "invalid tenant id"),
            (["export-tenant", tenant, "--output", "{tmp}/out.duckdb"], "invalid tenant id"),
        ]
    for realm in ["1 or 1=1", "9130350000000001'--", "../1", "-1", "", "1" * 21, "١٢٣", "0x10", LONG]:
        cases.append((["tenants", "add", "acme", "--qbo-realm", realm], "invalid QBO realm id"))
    cases += [
        (["tenants", "add", "acme", "--qbo-realm", "42"], "not a sandbox account"),
        (["tenants", "add", "acme", "--qbo-realm", REALM, "--credentials", "ldap"], "invalid choice: 'ldap'"),
        (["tenants", "add", "acme", "--qbo-realm", REALM, "--credentials", "env"], "environment variable name"),
        (["tenants", "add", "acme", "--qbo-realm", REALM, "--credentials", "env", "--refresh-token-env", "X;rm"],
         "environment variable name"),
        (["tenants", "add", "acme", "--qbo-realm", REALM, "--credentials", "env", "--refresh-token-env", "lower"],
         "environment variable name"),
        (["tenants", "add", "acme", "--qbo-realm", REALM, "--refresh-token-env", "QBO_RT"],
         "only used with credentials 'env'"),
        (["tenants", "add", "acme", "--qbo-realm", REALM, "--refresh-token-env", "a b"], "environment variable name"),
        (["tenants", "add", "acme"], "name at least one rail account: --qbo-realm"),
        (["tenants", "list", "--all"], "unrecognized arguments"),
        (["demo", "acme"], "unrecognized arguments"),
        (["nosuch"], "invalid choice"),
    ]  # fmt: skip
    for entity in ["bills; drop table raw.entity_log", "../bills", "Bill' --", "", "items", LONG]:
        cases += [
            (["as-of", "--tenant", "acme", "--entity", entity, "--at", AT], "unknown entity"),
            (["history", "--tenant", "acme", "--entity", entity, "--id", "1"], "unknown entity"),
        ]
    for at, phrase in [
        ("2026-10-02T00:00:00Z' or '1'='1", "invalid timestamp"), ("2026-10-02", "invalid timestamp"),
        ("2026-10-02T00:00:00", "has no timezone"), ("2026-02-30T00:00:00Z", "invalid timestamp"),
        ("0001-01-01T00:00:00+05:00", "out of range"), ("9999-12-31T23:59:59-05:00", "out of range"),
        ("now", "invalid timestamp"), (LONG, "invalid timestamp"),
    ]:  # fmt: skip
        cases.append((["as-of", "--tenant", "acme", "--entity", "bills", "--at", at], phrase))
    for object_id in ["1 or 1=1", "1; drop table raw.entity_log", "-1", "1e5", "../1", "1" * 21, "", LONG]:
        cases.append((["history", "--tenant", "acme", "--entity", "bills", "--id", object_id], "invalid QBO id"))
    outputs = [
        ("../../etc/passwd", "must end in"), ("/etc/cron.d/x{suffix}", "system directory"),
        ("/usr/lib/x{suffix}", "system directory"), ("/proc/self/x{suffix}", "system directory"),
        ("/x{suffix}", "system directory"), ("{tmp}/../../../../../../../../etc/x{suffix}", "system directory"),
        ("{tmp}/etc_link/x{suffix}", "system directory"), ("{tmp}/missing/x{suffix}", "does not exist"),
        ("{tmp}/x.exe", "must end in"), ("{tmp}/x{suffix}\n", "control characters"),
        ("{tmp}/x\r{suffix}", "control characters"), ("{tmp}/" + "x" * 300 + "{suffix}", "too long"),
        ("{tmp}/" + "d/" * 600 + "x{suffix}", "too long"), ("", "name a file"),
    ]  # fmt: skip
    for output, phrase in outputs:
        cases.append((["as-of", "--tenant", "acme", "--entity", "bills", "--at", AT, "--output",
                       output.format(tmp="{tmp}", suffix=".csv")], phrase))  # fmt: skip
        cases.append((["export-tenant", "acme", "--output", output.format(tmp="{tmp}", suffix=".duckdb")], phrase))
    cases += [
        (["export-tenant", "acme", "--output", "{tmp}/x.csv"], "must end in .duckdb"),
        (["export-tenant", "acme", "--output", "{tmp}/existing.duckdb"], "already exists"),
        (["export-tenant", "acme"], "required: --output"),
    ]
    for days, phrase in [("0", "invalid --days"), ("-1", "invalid --days"), ("nan", "invalid --days"),
                         ("inf", "invalid --days"), ("366", "invalid --days"), ("1e9", "invalid --days"),
                         ("x", "invalid float value"), ("1; rm -rf /", "invalid float value")]:  # fmt: skip
        cases.append((["sandbox", "advance", "--days", days], phrase))
    for port, phrase in [("0", "invalid port"), ("65536", "invalid port"), ("-1", "invalid port"),
                         ("http", "invalid int value"), ("8765; rm", "invalid int value")]:  # fmt: skip
        cases.append((["sandbox", "serve", "--port", port], phrase))
    for host in ["0.0.0.0", "::", "example.com", "10.0.0.1", "127.0.0.1; rm -rf /", ""]:
        cases.append((["sandbox", "serve", "--host", host], "loopback"))
    return cases


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with no ledger, registry or state yet; serving the sandbox would be a test failure."""
    monkeypatch.setenv("LEDGER_DUCKDB_PATH", str(tmp_path / "ledger.duckdb"))
    monkeypatch.setenv("LEDGER_TENANTS_PATH", str(tmp_path / "tenants.json"))
    monkeypatch.setenv("LEDGER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("QBO_RT", raising=False)

    def refuse_to_serve(*args, **kwargs):
        raise AssertionError("the sandbox server must not start for refused arguments")

    monkeypatch.setattr("ledger_pipeline.rails.qbo.sandbox.server.serve", refuse_to_serve)
    (tmp_path / "existing.duckdb").write_text("keep me\n")
    (tmp_path / "etc_link").symlink_to("/etc")
    return tmp_path


@pytest.mark.parametrize(("argv", "expected"), _cases(), ids=lambda v: repr(v)[:60] if isinstance(v, list) else None)
def test_cli_refuses_bad_arguments_with_one_line_and_writes_nothing(env, capsys, argv, expected):
    before = tree_snapshot(env)
    argv = [a.replace("{tmp}", str(env)) for a in argv]

    assert cli.main(argv) == 2

    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("ledger-pipeline: error: ") and expected in err, err
    assert err.endswith("\n") and err.count("\n") == 1 and len(err) < 400, err
    assert tree_snapshot(env) == before


@pytest.mark.parametrize(
    ("check", "value"),
    [
        (ids.tenant_id, "a"), (ids.tenant_id, "a" * 63), (ids.tenant_id, "acme-eu_2"),
        (qbo_rail.realm_id, "1"), (qbo_rail.realm_id, "9" * 20), (ids.env_var_name, "QBO_REFRESH_TOKEN_ACME"),
        (ids.advance_days, 0.01), (ids.advance_days, 365.0), (ids.port, 1), (ids.port, 65535),
        (ids.loopback_host, "127.0.0.1"), (ids.loopback_host, "127.0.0.2"), (ids.loopback_host, "::1"),
        (ids.loopback_host, "localhost"),
    ],
)  # fmt: skip
def test_good_values_pass_the_same_validators(check, value):
    assert check(value) == value


def test_good_cli_arguments_are_accepted(env, capsys):
    """The refusals above are not blanket ones: valid values of the same arguments go through."""
    assert cli.main(["sandbox", "advance", "--days", "0.5"]) == 0
    assert cli.main(["tenants", "add", "a" * 63, "--qbo-realm", REALM]) == 0
    out = env / "nested" / "acme.csv"
    out.parent.mkdir()
    assert ids.output_file(str(out), (".csv",)) == out
    assert ids.output_file("relative.duckdb", (".duckdb",)) == Path("relative.duckdb")
    assert cli.main(["as-of", "--tenant", "acme", "--entity", "bills", "--at", AT, "--output", str(out)]) == 2
    assert "no ledger database" in capsys.readouterr().err  # got past every argument check to the ledger itself
    assert json.loads((env / "tenants.json").read_text())["tenants"]["a" * 63]["qbo"]["realm_id"] == REALM


# --- the Dagster side: partition keys are tenant ids too -------------------------------------------------------

BAD_KEYS = ["acme' or '1'='1", "acme; drop table raw.entity_log", "../../etc/passwd", "Acme", "a" * 64]
TABLES = ["raw.entity_log", "meta.sync_cursors", "meta.model_watermarks", "quarantine.mirror_rows",
          "mirror.qbo_bills", "marts.ap_aging"]  # fmt: skip


def _rows_written(project) -> dict[str, int]:
    if not project.db_path.exists():
        return {}
    existing = {r[0] for r in project.query("select table_schema || '.' || table_name from information_schema.tables")}
    return {t: n for t in TABLES if t in existing and (n := project.query(f"select count(*) from {t}")[0][0])}


@pytest.mark.parametrize("key", BAD_KEYS)
def test_a_partition_key_that_is_not_a_tenant_id_fails_the_run_naming_it(project, key):
    project.add_tenant("acme")
    project.instance.add_dynamic_partitions(TENANTS.name, [key])

    result = project.sync(key, raise_on_error=False)

    assert not result.success
    text = failure_text(result)
    assert f"invalid tenant id {ids.shown(key)}" in text and "rail qbo" in text, text
    assert _rows_written(project) == {}
    assert list(project.registry.load()) == ["acme"]


def test_model_assets_alone_refuse_a_partition_key_that_is_not_a_tenant_id(project):
    key = "acme' or '1'='1"
    project.instance.add_dynamic_partitions(TENANTS.name, [key])

    result = project.sync(key, raise_on_error=False, asset_selection=[dg.AssetKey(["mirror", "qbo_vendors"])])

    assert not result.success and "invalid tenant id" in failure_text(result)
    assert _rows_written(project) == {}


def test_sensor_refuses_a_registry_entry_with_a_bad_tenant_id(project):
    project.add_tenant("acme")
    body = json.loads(project.registry.path.read_text())
    body["tenants"]["acme' or '1'='1"] = {"qbo": {"realm_id": REALM, "credentials": "sandbox"}}
    project.registry.path.write_text(json.dumps(body))
    resource = TenantRegistryResource(path=str(project.registry.path))

    result = tenant_registry_sensor(dg.build_sensor_context(instance=project.instance, resources={"tenants": resource}))

    assert isinstance(result, dg.SkipReason) and "invalid tenant id \"acme' or '1'='1\"" in result.skip_message
    assert project.instance.get_dynamic_partitions(TENANTS.name) == ["acme"]
