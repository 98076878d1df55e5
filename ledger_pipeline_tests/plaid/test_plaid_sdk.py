"""The official `plaid-python` SDK, unchanged but for its host and keys, against the sandbox over real HTTP,
with its strict type and enum checks on (the default)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Iterator

import plaid
import pytest
from plaid.api import plaid_api
from plaid.model.accounts_balance_get_request import AccountsBalanceGetRequest
from plaid.model.accounts_get_request import AccountsGetRequest
from plaid.model.item_get_request import ItemGetRequest
from plaid.model.transactions_sync_request import TransactionsSyncRequest
from plaid.model.transactions_sync_request_options import TransactionsSyncRequestOptions

from ledger_pipeline.rails.plaid.sandbox import CLIENT_ID, SECRET, access_token_for
from ledger_pipeline.rails.plaid.sandbox.server import RunningServer, start_in_thread

from .conftest import BANK, CARD, TOKEN, build, client, sync_all


def sdk(base_url: str, secret: str = SECRET) -> plaid_api.PlaidApi:
    configuration = plaid.Configuration(host=base_url, api_key={"clientId": CLIENT_ID, "secret": secret})
    return plaid_api.PlaidApi(plaid.ApiClient(configuration))  # sends Plaid-Version: 2020-09-14 itself


@pytest.fixture(scope="module")
def api(served: RunningServer) -> plaid_api.PlaidApi:
    return sdk(served.base_url)


def test_item_and_accounts(api: plaid_api.PlaidApi) -> None:
    item = api.item_get(ItemGetRequest(access_token=TOKEN))
    assert item.item.item_id == BANK.item_id and item.item.institution_name == "First Platypus Bank"
    assert item.item.error is None and item.item.update_type == "background" and item.request_id
    accounts = api.accounts_get(AccountsGetRequest(access_token=TOKEN))
    assert [a.account_id for a in accounts.accounts] == [a.account_id for a in BANK.accounts]
    assert str(accounts.accounts[0].subtype) == "checking" and str(accounts.accounts[1].type) == "depository"
    card = api.accounts_balance_get(AccountsBalanceGetRequest(access_token=access_token_for(CARD.item_id)))
    balances = card.accounts[0].balances
    assert str(card.accounts[0].subtype) == "credit card" and balances.limit == 50_000.0
    assert balances.available == pytest.approx(balances.limit - balances.current)
    assert balances.last_updated_datetime is not None


@pytest.fixture(scope="module")
def moved() -> Iterator[tuple[RunningServer, dict[str, str]]]:
    """A sandbox whose clock moved 6 days after each item was read whole (plain httpx; the SDK's strict parsing
    costs ~10 ms a transaction, so it reads the 6 days of changes): the server and each item's cursor."""
    sb = build(days=10)
    http = client(sb)
    cursors = {item.item_id: sync_all(http, access_token_for(item.item_id))[1] for item in (BANK, CARD)}
    sb.qbo.advance(timedelta(days=6))
    server = start_in_thread(sb)
    try:
        yield server, cursors
    finally:
        server.stop()


@pytest.mark.parametrize("item", [BANK, CARD], ids=["bank", "card"])
def test_transactions_sync_pages_to_the_end(moved, item) -> None:
    server, cursors = moved
    api, token, cursor = sdk(server.base_url), access_token_for(item.item_id), cursors[item.item_id]
    added, modified, removed, pages = [], [], [], 0
    count = 4 if item is BANK else 1  # the card bank is quiet: a few purchases a week
    options = TransactionsSyncRequestOptions(include_original_description=True)
    while True:
        page = api.transactions_sync(TransactionsSyncRequest(access_token=token, cursor=cursor, count=count,
                                                             options=options))
        added += page.added
        modified += page.modified
        removed += page.removed
        pages += 1
        cursor = page.next_cursor
        if not page.has_more:
            break
    assert pages > 1 and len({t.transaction_id for t in added}) == len(added) > 1
    assert str(page.transactions_update_status) == "HISTORICAL_UPDATE_COMPLETE"
    assert {t.payment_channel for t in added} <= {"online", "in store", "other"}
    assert all(isinstance(t.amount, float) and t.iso_currency_code == "USD" for t in added)
    assert all(t.original_description for t in added + modified)
    if item is BANK:
        assert any(t.pending for t in added) and any(t.pending_transaction_id for t in added) and removed
        assert any(t.check_number for t in added)
    else:
        assert not any(t.pending for t in added) and added[0].datetime is None
    empty = api.transactions_sync(TransactionsSyncRequest(access_token=token, cursor=cursor))
    assert (empty.added, empty.modified, empty.removed, empty.has_more) == ([], [], [], False)


def test_errors_are_api_exceptions_with_plaids_body() -> None:
    sb = build(days=2)
    server = start_in_thread(sb)
    try:
        api = sdk(server.base_url)
        with pytest.raises(plaid.ApiException) as bad_token:
            api.accounts_get(AccountsGetRequest(access_token="access-sandbox-0e0e0e0e-0000-4000-8000-000000000000"))
        body = json.loads(bad_token.value.body)
        assert bad_token.value.status == 400 and body["error_code"] == "INVALID_ACCESS_TOKEN"
        assert {"error_type", "error_message", "display_message", "request_id"} <= set(body)
        sb.require_login(BANK.item_id)
        with pytest.raises(plaid.ApiException) as login:
            api.transactions_sync(TransactionsSyncRequest(access_token=TOKEN))
        body = json.loads(login.value.body)
        assert (body["error_type"], body["error_code"]) == ("ITEM_ERROR", "ITEM_LOGIN_REQUIRED")
        item = api.item_get(ItemGetRequest(access_token=TOKEN)).item  # the SDK parses the item's error too
        assert item.error.error_code == "ITEM_LOGIN_REQUIRED" and str(item.error.error_type) == "ITEM_ERROR"
        sb.relogin(BANK.item_id)
        assert api.transactions_sync(TransactionsSyncRequest(access_token=TOKEN, count=1)).has_more
        with pytest.raises(plaid.ApiException) as keys:
            sdk(server.base_url, secret="f" * 30).item_get(ItemGetRequest(access_token=TOKEN))
        assert json.loads(keys.value.body)["error_code"] == "INVALID_API_KEYS"
    finally:
        server.stop()
