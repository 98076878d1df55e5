"""Tenants connect any subset of rails from the command line; bad input names its cause and changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger_pipeline import cli
from ledger_pipeline.lib.tenants import TenantRegistry
from ledger_pipeline.rails.qbo.sandbox import DEMO_COMPANIES
from ledger_pipeline.rails.stripe.sandbox import DEMO_ACCOUNTS
from ledger_pipeline_tests.helpers import tree_snapshot

REALM = DEMO_COMPANIES[0].realm_id
ACCOUNT = DEMO_ACCOUNTS[0].account_id


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LEDGER_DUCKDB_PATH", str(tmp_path / "ledger.duckdb"))
    monkeypatch.setenv("LEDGER_TENANTS_PATH", str(tmp_path / "tenants.json"))
    monkeypatch.setenv("LEDGER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return tmp_path


def _registry(env: Path) -> dict:
    return json.loads((env / "tenants.json").read_text())["tenants"]


def test_add_with_both_rails_then_disconnect_and_reconnect(env, capsys):
    assert cli.main(["tenants", "add", "acme", "--qbo-realm", REALM, "--stripe-account", ACCOUNT]) == 0
    assert _registry(env)["acme"] == {
        "qbo": {"realm_id": REALM, "credentials": "sandbox"},
        "stripe": {"account_id": ACCOUNT, "credentials": "sandbox"},
    }
    assert cli.main(["tenants", "list"]) == 0
    listed = capsys.readouterr().out
    assert f"qbo realm {REALM} (sandbox)" in listed and f"stripe account {ACCOUNT} (sandbox)" in listed

    assert cli.main(["tenants", "disconnect", "acme", "--rail", "stripe"]) == 0
    assert set(_registry(env)["acme"]) == {"qbo"}
    assert cli.main(["tenants", "connect", "acme", "--rail", "stripe", "--account", ACCOUNT]) == 0
    assert TenantRegistry(env / "tenants.json").get("acme").rails == ("qbo", "stripe")
    assert cli.main(["tenants", "connect", "acme", "--rail", "stripe", "--account", ACCOUNT]) == 0  # the same: no-op
    assert "already connected" in capsys.readouterr().out


def test_a_stripe_only_tenant_and_an_old_qbo_only_registry(env):
    (env / "tenants.json").write_text(json.dumps({"tenants": {"old": {"qbo": {"realm_id": REALM}}}}))
    assert cli.main(["tenants", "add", "shop", "--stripe-account", DEMO_ACCOUNTS[1].account_id]) == 0
    tenants = TenantRegistry(env / "tenants.json").load()
    assert tenants["old"].rails == ("qbo",) and tenants["shop"].rails == ("stripe",)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["tenants", "add", "acme"], "name at least one rail account"),
        (["tenants", "add", "acme", "--stripe-account", "9130350000000001"], "invalid Stripe account id"),
        (["tenants", "add", "acme", "--qbo-realm", ACCOUNT], "invalid QBO realm id"),
        (["tenants", "add", "acme", "--stripe-account", "acct_1NotADemoAccount"], "is not a sandbox account"),
        (["tenants", "add", "acme", "--stripe-account", ACCOUNT, "--refresh-token-env", "RT"], "is QBO's"),
        (["tenants", "connect", "acme", "--rail", "brex", "--account", "x"], "invalid choice: 'brex'"),
        (["tenants", "connect", "acme", "--rail", "plaid", "--account", "NoSuchItem"], "is not a sandbox account"),
        (["tenants", "connect", "acme", "--rail", "plaid", "--account", "a", "--access-token-env", "T"],
         "refused with sandbox credentials"),
        (["tenants", "connect", "ghost", "--rail", "stripe", "--account", ACCOUNT], "unknown tenant 'ghost'"),
        (["tenants", "disconnect", "acme", "--rail", "stripe"], "is not connected to stripe"),
        (["history", "--tenant", "acme", "--entity", "bills", "--id", "ch_1abc"], "invalid QBO id"),
        (["history", "--tenant", "acme", "--rail", "stripe", "--entity", "charges", "--id", "42"], "invalid Stripe id"),
        (["history", "--tenant", "acme", "--rail", "stripe", "--entity", "bills", "--id", "ch_1"], "unknown entity 'bills' on Stripe"),
        (["sandbox", "credentials", "--rail", "stripe", "--tenant", "acme"], "is not connected to stripe"),
    ],
)  # fmt: skip
def test_bad_rail_input_is_refused_by_name_and_changes_nothing(env, capsys, argv, expected):
    assert cli.main(["tenants", "add", "acme", "--qbo-realm", REALM]) == 0
    capsys.readouterr()
    before = tree_snapshot(env)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("ledger-pipeline: error: ") and expected in err and err.count("\n") == 1, err
    assert tree_snapshot(env) == before


def test_sandbox_credentials_print_one_json_object_per_rail(env, capsys):
    assert cli.main(["tenants", "add", "acme", "--qbo-realm", REALM, "--stripe-account", ACCOUNT]) == 0
    capsys.readouterr()
    assert cli.main(["sandbox", "credentials", "--rail", "stripe", "--tenant", "acme"]) == 0
    stripe = json.loads(capsys.readouterr().out)
    assert stripe["stripe_account"] == ACCOUNT and stripe["api_key"].startswith("sk_test_")
    assert cli.main(["sandbox", "credentials", "--rail", "qbo", "--tenant", "acme"]) == 0
    qbo = json.loads(capsys.readouterr().out)
    assert qbo["realm_id"] == REALM and qbo["refresh_token"].startswith("RT1-") and qbo["base_url"].endswith(":8765")



def _connections() -> list[tuple[str, object]]:
    """(the rail's title in messages, a maker of its connection with the given credential source)."""
    from ledger_pipeline.rails.plaid.rail import PlaidConnection, PlaidItemLink
    from ledger_pipeline.rails.plaid.sandbox import items_for
    from ledger_pipeline.rails.qbo.rail import QboConnection
    from ledger_pipeline.rails.ramp.rail import RampConnection
    from ledger_pipeline.rails.ramp.sandbox import businesses_for
    from ledger_pipeline.rails.stripe.rail import StripeConnection

    return [
        ("QBO", lambda c: QboConnection(REALM, c)), ("Stripe", lambda c: StripeConnection(ACCOUNT, c)),
        ("Plaid", lambda c: PlaidConnection(tuple(PlaidItemLink(i.item_id) for i in items_for(REALM)), c)),
        ("Ramp", lambda c: RampConnection(businesses_for(REALM)[0].business_id, c)),
    ]


@pytest.mark.parametrize("index", range(4))
def test_a_registry_entry_with_an_unknown_credential_source_is_refused_naming_the_rail(index):
    """A hand-edited registry reaches the connection classes without the CLI's choices: each refuses alike."""
    from ledger_pipeline.lib import ids

    title, make = _connections()[index]
    assert make("sandbox").credentials == "sandbox"
    with pytest.raises(ids.InvalidInput, match=f"^{title} credentials must be one of .*got 'ldap'"):
        make("ldap")
