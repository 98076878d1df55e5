"""The official `stripe` SDK, unchanged but for its base address, against the sandbox over HTTP and in-process."""

from __future__ import annotations

import httpx
import pytest
import stripe

from ledger_pipeline.rails.stripe.sandbox import PLATFORM_KEY, Fault, RateLimit, StripeSandbox
from ledger_pipeline.rails.stripe.sandbox.server import RunningServer, start_in_thread

from .conftest import ACCOUNT, build


def sdk(base: str, *, key: str = PLATFORM_KEY, account: str = ACCOUNT, http_client=None) -> stripe.StripeClient:
    return stripe.StripeClient(key, base_addresses={"api": base}, stripe_account=account, max_network_retries=0,
                               http_client=http_client or stripe.RequestsClient())


class SandboxHTTPClient(stripe.HTTPClient):
    """The SDK's public hook for a custom HTTP client (`stripe.HTTPClient`), sending through the sandbox's
    in-process transport: everything above the socket (paging, parsing, errors) is the SDK's own."""

    name = "sandbox"

    def __init__(self, sb: StripeSandbox) -> None:
        super().__init__()
        self._http = httpx.Client(transport=sb.transport())

    def request(self, method, url, headers, post_data=None, *, _usage=None):  # noqa: ANN001, ANN201 - the SDK's
        response = self._http.request(method.upper(), url, headers=dict(headers or {}), content=post_data)
        return response.text, response.status_code, response.headers

    def close(self) -> None:
        self._http.close()


def in_process(sb: StripeSandbox) -> stripe.StripeClient:
    return sdk("http://stripe-sandbox.local", http_client=SandboxHTTPClient(sb))


@pytest.fixture(scope="module", params=["http", "in_process"])
def client(request, world: StripeSandbox, served: RunningServer) -> stripe.StripeClient:
    return sdk(served.base_url) if request.param == "http" else in_process(world)


def test_auto_paging_retrieve_and_expand(client: stripe.StripeClient) -> None:
    charges = list(client.v1.charges.list({"limit": 7}).auto_paging_iter())
    assert len(charges) > 20 and len({c.id for c in charges}) == len(charges)
    assert [c.created for c in charges] == sorted((c.created for c in charges), reverse=True)
    one = client.v1.charges.retrieve(charges[3].id, {"expand": ["balance_transaction"]})
    assert one.amount == charges[3].amount and one.balance_transaction.net == one.amount - one.balance_transaction.fee
    expanded = client.v1.charges.list({"limit": 3, "expand": ["data.customer"]})
    assert all(isinstance(c.customer, stripe.Customer) for c in expanded.data)


def test_payout_balance_transactions_balance_and_events(client: stripe.StripeClient) -> None:
    payout = next(p for p in client.v1.payouts.list({"limit": 100}).auto_paging_iter() if p.status == "paid")
    txns = list(client.v1.balance_transactions.list({"payout": payout.id, "limit": 3}).auto_paging_iter())
    assert sum(t.net for t in txns if t.type != "payout") == payout.amount
    assert [t.source for t in txns if t.type == "payout"] == [payout.id]
    balance = client.v1.balance.retrieve()
    assert balance.available[0].currency == "usd" and balance.pending[0].amount >= 0
    events = list(client.v1.events.list({"limit": 50, "types": ["charge.succeeded"]}).auto_paging_iter())
    assert events and all(isinstance(e.data.object, stripe.Charge) for e in events)


def test_the_module_level_api_lists_what_a_payout_settled(served: RunningServer, monkeypatch) -> None:
    """`stripe.BalanceTransaction.list(payout=...)`, the SDK's module-level API, pages what a paid payout settled; an
    unknown payout is the SDK's InvalidRequestError naming the parameter."""
    monkeypatch.setattr(stripe, "api_base", served.base_url)
    account = {"api_key": PLATFORM_KEY, "stripe_account": ACCOUNT}
    payout = next(iter(stripe.Payout.list(status="paid", limit=1, **account).data))
    txns = list(stripe.BalanceTransaction.list(payout=payout.id, limit=1, **account).auto_paging_iter())
    assert len(txns) >= 2 and len({t.id for t in txns}) == len(txns)  # a page each
    assert sum(t.net for t in txns if t.type != "payout") == payout.amount
    assert [t.source for t in txns if t.type == "payout"] == [payout.id]
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        stripe.BalanceTransaction.list(payout="po_nope", **account)
    assert (unknown.value.code, unknown.value.param, unknown.value.http_status) == ("resource_missing", "payout", 404)


def test_typed_errors(world: StripeSandbox, served: RunningServer) -> None:
    with pytest.raises(stripe.AuthenticationError):
        sdk(served.base_url, key="sk_test_notTheKey").v1.charges.list()
    with pytest.raises(stripe.PermissionError):
        sdk(served.base_url, account="acct_1Nobody000000000").v1.charges.list()
    with pytest.raises(stripe.InvalidRequestError) as bad:
        sdk(served.base_url).v1.charges.list({"limit": 500})
    assert bad.value.param == "limit"
    with pytest.raises(stripe.InvalidRequestError) as gone:
        sdk(served.base_url).v1.charges.retrieve("ch_missing")
    assert gone.value.code == "resource_missing" and gone.value.http_status == 404


def test_rate_limit_and_faults_are_typed() -> None:
    sb = build(days=1, rate_limit=RateLimit(per_second=1))
    server = start_in_thread(sb)
    try:
        client = sdk(server.base_url)
        client.v1.balance.retrieve()
        with pytest.raises(stripe.RateLimitError) as limited:
            client.v1.balance.retrieve()
        assert limited.value.json_body["error"]["code"] == "rate_limit" and limited.value.http_status == 429
        sb.limiter.limit = None
        sb.inject(ACCOUNT, Fault("server_error", status=500))
        with pytest.raises(stripe.APIError):
            client.v1.charges.list()
        sb.inject(ACCOUNT, Fault("reset"))
        with pytest.raises(stripe.APIConnectionError):
            client.v1.charges.list()
        assert client.v1.charges.list({"limit": 1}).data
    finally:
        server.stop()
