"""The Stripe client against a fake speaking Stripe's documented wire: paging, events, errors, retries, secrets."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from datetime import datetime, timezone
from urllib.parse import parse_qsl

import httpx
import pytest

from ledger_pipeline.rails.stripe.client import StripeClient
from ledger_pipeline.rails.stripe.errors import (
    StripeAuthError,
    StripeConnectionError,
    StripeError,
    StripeEventsExpired,
    StripeInvalidRequest,
    StripeMalformedResponse,
    StripeNotFound,
    StripePermissionError,
    StripeRateLimited,
    StripeServerError,
)

ACCOUNT = "acct_1TenantA"
KEY = "sk_test_51SuperSecretPlatformKey"
BASE = "https://api.stripe.test"


def charge(n: int) -> dict:
    return {"id": f"ch_{n:05d}", "object": "charge", "amount": 100 + n, "created": 1_700_000_000 + n * 10,
            "metadata": {}, "refunds": {"object": "list", "data": [], "has_more": False},
            "x_unknown": None}  # fmt: skip


def event(n: int) -> dict:
    return {"id": f"evt_{n:05d}", "object": "event", "type": "charge.updated", "created": 1_700_000_000 + n,
            "data": {"object": charge(n), "previous_attributes": {"amount": n}}}  # fmt: skip


def error_response(status: int, code: str | None, message: str, param: str | None = None, **headers: str):
    body = {"error": {"type": "invalid_request_error", "code": code, "message": message, "param": param}}
    return httpx.Response(status, json=body, headers={"Request-Id": f"req_{status}x", **headers})


class FakeStripe:
    """Lists newest first with starting_after / ending_before / created[...] / limit, like Stripe; faults queued."""

    def __init__(self, lists: dict[str, list[dict]] | None = None, objects: dict[str, dict] | None = None) -> None:
        self.lists = {name: sorted(rows, key=lambda o: (o["created"], o["id"]), reverse=True)
                      for name, rows in (lists or {}).items()}  # fmt: skip
        self.objects = objects or {}
        self.faults: list[Callable[[httpx.Request], httpx.Response]] = []
        self.requests: list[httpx.Request] = []

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def params(self, i: int) -> dict[str, str]:
        return dict(parse_qsl(self.requests[i].url.query.decode()))

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.faults:
            return self.faults.pop(0)(request)
        assert request.headers["authorization"] == f"Bearer {KEY}" and request.headers["stripe-account"] == ACCOUNT
        path = request.url.path.removeprefix("/v1/")
        if path in self.objects:
            return httpx.Response(200, json=self.objects[path], headers={"Request-Id": "req_obj"})
        if path not in self.lists:
            return error_response(404, "resource_missing", f"No such object: '{path}'", "id")
        q = dict(parse_qsl(request.url.query.decode()))
        rows = [o for o in self.lists[path]
                if o["created"] >= int(q.get("created[gte]", 0)) and o["created"] < int(q.get("created[lt]", 1 << 40))
                and all(o.get(k) == v for k, v in q.items() if k in ("payout",))]  # fmt: skip
        types = [v for k, v in q.items() if k.startswith("types[")]
        rows = [o for o in rows if not types or o["type"] in types]
        keys = {o["id"]: (o["created"], o["id"]) for o in self.lists[path]}  # a cursor need not match the filters
        limit = int(q.get("limit", 10))
        for cursor in ("starting_after", "ending_before"):
            if cursor in q and q[cursor] not in keys:
                return error_response(404, "resource_missing", f"No such object: '{q[cursor]}'", cursor)
        if "ending_before" in q:
            newer = [o for o in rows if (o["created"], o["id"]) > keys[q["ending_before"]]]
            data, has_more = newer[-limit:], len(newer) > limit
        else:
            after = keys.get(q.get("starting_after", ""), (1 << 40, ""))
            older = [o for o in rows if (o["created"], o["id"]) < after]
            data, has_more = older[:limit], len(older) > limit
        body = {"object": "list", "url": f"/v1/{path}", "has_more": has_more, "data": data}
        return httpx.Response(200, json=body, headers={"Request-Id": f"req_{len(self.requests)}"})


def make(fake: FakeStripe, **kwargs) -> tuple[StripeClient, list[float]]:
    sleeps: list[float] = []
    kwargs.setdefault("max_retries", 3)
    return StripeClient(ACCOUNT, KEY, base_url=BASE, transport=fake.transport(), sleep=sleeps.append, **kwargs), sleeps


def assert_named(exc: StripeError, resource: str, request_id: str, code: str | None) -> None:
    text = str(exc) + repr(exc)
    assert ACCOUNT in text and f"resource {resource}" in text and request_id in text
    assert code is None or code in text
    assert KEY not in text and exc.__cause__ is None and exc.__context__ is None


# --- list pages -------------------------------------------------------------------------------


def test_pages_newest_first_with_starting_after_and_raw_objects() -> None:
    charges = [charge(n) for n in range(250)]
    fake = FakeStripe({"charges": charges})
    client, _ = make(fake)
    pages = list(client.pages("charges"))
    assert [len(p.objects) for p in pages] == [100, 100, 50]
    assert [o["id"] for p in pages for o in p.objects] == [c["id"] for c in reversed(charges)]
    assert pages[0].objects[0] == charges[-1]  # exactly as sent, unknown fields and nulls included
    assert pages[0].newest_created == charges[-1]["created"] and pages[-1].oldest_created == charges[0]["created"]
    assert pages[1].request_id == "req_2"
    assert "starting_after" not in fake.params(0) and fake.params(0)["limit"] == "100"
    assert fake.params(1)["starting_after"] == pages[0].objects[-1]["id"]
    assert fake.params(2)["starting_after"] == pages[1].objects[-1]["id"]


def test_pages_created_brackets_limit_and_extra_params() -> None:
    fake = FakeStripe({"charges": [charge(n) for n in range(50)]})
    client, _ = make(fake)
    gte = datetime.fromtimestamp(1_700_000_100, timezone.utc)
    pages = list(client.pages("charges", created_gte=gte, created_lt=1_700_000_300, limit=7,
                              extra_params={"status": "succeeded", "expand": "x"}))  # fmt: skip
    got = [o["created"] for p in pages for o in p.objects]
    assert got == list(range(1_700_000_290, 1_700_000_099, -10)) and len(pages) == 3
    q = fake.params(0)
    sent = (q["created[gte]"], q["created[lt]"], q["limit"], q["status"])
    assert sent == ("1700000100", "1700000300", "7", "succeeded")


def test_empty_list_is_one_empty_page() -> None:
    client, _ = make(FakeStripe({"refunds": []}))
    pages = list(client.pages("refunds"))
    assert len(pages) == 1 and pages[0].objects == [] and pages[0].newest_created is None


@pytest.mark.parametrize(
    "kwargs",
    [{"limit": 0}, {"limit": 101}, {"extra_params": {"starting_after": "ch_1"}}, {"extra_params": {"created[gt]": 1}},
     {"extra_params": {"x": [1]}}, {"created_gte": datetime(2024, 1, 1)}, {"created_lt": "1700000000"}],
)  # fmt: skip
def test_pages_refuses_bad_arguments_before_any_request(kwargs: dict) -> None:
    fake = FakeStripe({"charges": []})
    client, _ = make(fake)
    with pytest.raises(ValueError):
        client.pages("charges", **kwargs)
    assert fake.requests == []


@pytest.mark.parametrize("resource", ["../v2/x", "charges?x=1", "", "Charges"])
def test_resource_and_ids_cannot_escape_the_path(resource: str) -> None:
    client, _ = make(FakeStripe())
    with pytest.raises(ValueError):
        client.pages(resource)
    with pytest.raises(ValueError):
        client.retrieve("charges", "ch_1/../../x")


def test_has_more_without_a_cursor_is_malformed_not_a_loop() -> None:
    fake = FakeStripe()
    fake.faults = [lambda r: httpx.Response(200, json={"object": "list", "data": [], "has_more": True})]
    client, _ = make(fake)
    with pytest.raises(StripeMalformedResponse, match="cannot be paged past"):
        list(client.pages("charges"))


def test_payout_balance_transactions_filters_and_pages() -> None:
    txns = [{"id": f"txn_{n:04d}", "object": "balance_transaction", "created": 1_700_000_000 + n,
             "payout": "po_1" if n % 2 else "po_2"} for n in range(300)]  # fmt: skip
    fake = FakeStripe({"balance_transactions": txns})
    client, _ = make(fake)
    got = client.payout_balance_transactions("po_1")
    assert len(got) == 150 and {t["payout"] for t in got} == {"po_1"} and len(fake.requests) == 2
    assert fake.params(0)["payout"] == "po_1"


# --- single objects -----------------------------------------------------------------------------


def test_retrieve_balance_and_deleted_objects() -> None:
    deleted = {"id": "cus_gone", "object": "customer", "deleted": True}
    balance = {"object": "balance", "available": [{"amount": 10, "currency": "usd"}], "pending": [], "livemode": False}
    client, _ = make(FakeStripe(objects={"customers/cus_gone": deleted, "balance": balance}))
    assert client.retrieve("customers", "cus_gone") == deleted
    assert client.balance() == balance


def test_missing_object_is_not_found_naming_account_resource_code_and_request_id() -> None:
    client, sleeps = make(FakeStripe())
    with pytest.raises(StripeNotFound) as caught:
        client.retrieve("charges", "ch_nope")
    assert_named(caught.value, "charges", "req_404x", "resource_missing")
    assert caught.value.status == 404 and caught.value.param == "id" and sleeps == []


# --- events -------------------------------------------------------------------------------------


def test_events_after_a_position_come_oldest_first_via_ending_before() -> None:
    fake = FakeStripe({"events": [event(n) for n in range(260)]})
    client, _ = make(fake)
    got = list(client.events(after_event_id="evt_00010"))
    assert [e["id"] for e in got] == [f"evt_{n:05d}" for n in range(11, 260)]
    assert got[0] == event(11)
    assert [fake.params(i)["ending_before"] for i in range(3)] == ["evt_00010", "evt_00110", "evt_00210"]


def test_events_up_to_date_is_empty_and_all_events_come_oldest_first() -> None:
    fake = FakeStripe({"events": [event(n) for n in range(130)]})
    client, _ = make(fake)
    assert list(client.events(after_event_id="evt_00129")) == []
    assert [e["id"] for e in client.events(after_event_id=None)] == [f"evt_{n:05d}" for n in range(130)]


def test_events_types_filter_is_sent_as_an_array() -> None:
    events = [event(n) for n in range(5)] + [{**event(5), "type": "customer.deleted"}]
    fake = FakeStripe({"events": events})
    client, _ = make(fake)
    got = list(client.events(after_event_id="evt_00000", types=["customer.deleted", "charge.refunded"]))
    assert [e["id"] for e in got] == ["evt_00005"]
    assert fake.params(0)["types[0]"] == "customer.deleted" and fake.params(0)["types[1]"] == "charge.refunded"


@pytest.mark.parametrize("status", [400, 404])
def test_refused_event_position_is_events_expired(status: int) -> None:
    fake = FakeStripe({"events": [event(n) for n in range(3)]})
    fake.faults = [lambda r: error_response(status, "resource_missing", "No such event: 'evt_old'", "ending_before")]
    client, sleeps = make(fake)
    with pytest.raises(StripeEventsExpired) as caught:
        list(client.events(after_event_id="evt_old"))
    assert_named(caught.value, "events", f"req_{status}x", "resource_missing")
    assert "evt_old" in str(caught.value) and sleeps == []


def test_other_invalid_events_requests_stay_invalid_request() -> None:
    fake = FakeStripe({"events": []})
    fake.faults = [lambda r: error_response(400, "parameter_invalid_string", "Invalid type", "types")]
    client, _ = make(fake)
    with pytest.raises(StripeInvalidRequest) as caught:
        list(client.events(after_event_id="evt_1", types=["nope"]))
    assert caught.value.param == "types" and "param types" in str(caught.value)


# --- retries ------------------------------------------------------------------------------------


def test_429_then_success_backs_off_and_honours_retry_after() -> None:
    fake = FakeStripe({"charges": [charge(1)]})
    fake.faults = [
        lambda r: error_response(429, "rate_limit", "Too many requests"),
        lambda r: error_response(429, "rate_limit", "Too many requests", **{"Retry-After": "7"}),
    ]
    client, sleeps = make(fake, backoff_base=0.5)
    assert [o["id"] for p in client.pages("charges") for o in p.objects] == ["ch_00001"]
    assert len(fake.requests) == 3 and 0 <= sleeps[0] <= 0.5 and sleeps[1] == 7.0


def test_backoff_grows_exponentially_then_gives_up_as_rate_limited() -> None:
    fake = FakeStripe()
    fake.faults = [lambda r: error_response(429, "rate_limit", "Too many requests")] * 10
    client, sleeps = make(fake, max_retries=4, backoff_base=1.0)
    with pytest.raises(StripeRateLimited) as caught:
        client.balance()
    assert len(fake.requests) == 5 and len(sleeps) == 4
    assert all(0 <= s <= 2**i for i, s in enumerate(sleeps))
    assert_named(caught.value, "balance", "req_429x", "rate_limit")
    assert "after 4 retries" in str(caught.value)


def test_should_retry_true_retries_a_409_and_false_stops_a_500() -> None:
    fake = FakeStripe(objects={"balance": {"object": "balance"}})
    fake.faults = [lambda r: error_response(409, "lock_timeout", "Try again", **{"Stripe-Should-Retry": "true"})]
    client, sleeps = make(fake)
    assert client.balance() == {"object": "balance"} and len(sleeps) == 1

    fake.faults = [lambda r: error_response(500, "api_error", "Boom", **{"Stripe-Should-Retry": "false"})]
    with pytest.raises(StripeServerError, match="Stripe-Should-Retry: false") as caught:
        client.balance()
    assert len(sleeps) == 1 and caught.value.request_id == "req_500x"


def test_should_retry_false_on_a_429_is_not_retried() -> None:
    fake = FakeStripe()
    fake.faults = [lambda r: error_response(429, "rate_limit", "No", **{"Stripe-Should-Retry": "false"})]
    client, sleeps = make(fake)
    with pytest.raises(StripeRateLimited):
        client.balance()
    assert sleeps == [] and len(fake.requests) == 1


def test_5xx_html_page_retried_then_server_error() -> None:
    fake = FakeStripe()
    fake.faults = [lambda r: httpx.Response(502, text="<html>bad gateway</html>", headers={"Request-Id": "req_gw"})] * 9
    client, sleeps = make(fake, max_retries=2)
    with pytest.raises(StripeServerError) as caught:
        client.retrieve("charges", "ch_1")
    assert len(fake.requests) == 3 and caught.value.status == 502 and "req_gw" in str(caught.value)


def test_too_long_retry_after_fails_now() -> None:
    fake = FakeStripe()
    fake.faults = [lambda r: error_response(503, None, "Down", **{"Retry-After": "86400"})]
    client, sleeps = make(fake)
    with pytest.raises(StripeServerError, match="too long"):
        client.balance()
    assert sleeps == []


def test_connection_errors_are_retried_and_never_leak_the_request() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"refused (headers {dict(request.headers)})", request=request)

    fake = FakeStripe(objects={"balance": {"object": "balance"}})
    fake.faults = [refuse]
    client, sleeps = make(fake)
    assert client.balance() == {"object": "balance"} and len(sleeps) == 1

    fake.faults = [refuse] * 9
    with pytest.raises(StripeConnectionError) as caught:
        client.balance()
    assert KEY not in str(caught.value) and "[redacted]" in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is None


def test_malformed_200_is_retried_then_malformed_response() -> None:
    fake = FakeStripe(objects={"balance": {"object": "balance"}})
    fake.faults = [lambda r: httpx.Response(200, text="<html>captive portal</html>")]
    client, sleeps = make(fake)
    assert client.balance() == {"object": "balance"} and len(sleeps) == 1
    fake.faults = [lambda r: httpx.Response(200, json={"object": "list", "data": "nope", "has_more": False})] * 9
    with pytest.raises(StripeMalformedResponse):
        list(client.pages("charges"))


# --- final errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "param", "cls"),
    [
        (401, None, None, StripeAuthError),
        (403, "account_invalid", None, StripePermissionError),
        (400, "account_invalid", None, StripePermissionError),
        (403, "secret_key_required", None, StripePermissionError),
        (400, "parameter_unknown", "foo", StripeInvalidRequest),
        (402, "card_declined", None, StripeError),
    ],
)
def test_final_errors_by_status_name_everything_but_the_key(status, code, param, cls) -> None:
    fake = FakeStripe()
    # Stripe masks keys in its messages; a sandbox or proxy might not, so the client scrubs them too.
    fake.faults = [lambda r: error_response(status, code, f"Invalid API Key provided: {KEY}", param)]
    client, sleeps = make(fake)
    with pytest.raises(cls) as caught:
        list(client.pages("customers"))
    assert type(caught.value) is cls and sleeps == [] and caught.value.param == param
    assert_named(caught.value, "customers", f"req_{status}x", code)
    assert "[redacted]" in str(caught.value)


def test_errors_pickle_with_their_fields() -> None:
    exc = StripeInvalidRequest(ACCOUNT, "charges", "bad", status=400, code="x", param="limit", request_id="req_1")
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is StripeInvalidRequest and str(back) == str(exc) and back.param == "limit"


def test_constructor_checks_and_repr_hide_the_key() -> None:
    with pytest.raises(ValueError):
        StripeClient("acct_1\r\nX-Evil: 1", KEY)
    with pytest.raises(StripeAuthError):
        StripeClient(ACCOUNT, "")
    with StripeClient(ACCOUNT, KEY, base_url=BASE, transport=FakeStripe().transport()) as c:
        assert KEY not in repr(c) and ACCOUNT in repr(c)


def test_headers_sent() -> None:
    fake = FakeStripe(objects={"balance": {"object": "balance"}})
    client, _ = make(fake, stripe_version="2025-01-27.acacia")
    client.balance()
    headers = fake.requests[0].headers
    assert headers["authorization"] == f"Bearer {KEY}" and headers["stripe-account"] == ACCOUNT
    assert headers["stripe-version"] == "2025-01-27.acacia" and fake.requests[0].method == "GET"


# --- against the sandbox ------------------------------------------------------------------------


def test_against_the_sandbox_transport() -> None:
    sandbox = pytest.importorskip("ledger_pipeline.rails.stripe.sandbox")
    from .conftest import ACCOUNT as SANDBOX_ACCOUNT, build

    world = build()
    with StripeClient(SANDBOX_ACCOUNT, sandbox.PLATFORM_KEY, base_url=sandbox.SANDBOX_BASE_URL,
                      transport=world.transport(), sleep=lambda s: None) as client:  # fmt: skip
        charges = [o for p in client.pages("charges") for o in p.objects]
        keys = [(c["created"], c["id"]) for c in charges]
        assert charges and keys == sorted(keys, reverse=True) and len(set(keys)) == len(keys)
        headers = {"Authorization": f"Bearer {sandbox.PLATFORM_KEY}", "Stripe-Account": SANDBOX_ACCOUNT}
        raw = httpx.Client(transport=world.transport(), base_url=sandbox.SANDBOX_BASE_URL, headers=headers)
        first = raw.get("/v1/charges", params={"limit": 100}).json()["data"]
        assert charges[: len(first)] == first  # the same JSON as plain httpx reads it
        assert client.retrieve("charges", charges[0]["id"]) == charges[0]
        assert isinstance(client.balance(), dict)
        events = list(client.events(after_event_id=None))
        assert [e["created"] for e in events] == sorted(e["created"] for e in events)
        if len(events) > 1:
            assert [e["id"] for e in client.events(after_event_id=events[0]["id"])] == [e["id"] for e in events[1:]]
        with pytest.raises(StripeEventsExpired):
            list(client.events(after_event_id="evt_doesnotexist"))
        with pytest.raises(StripeNotFound):
            client.retrieve("charges", "ch_doesnotexist")
    with StripeClient(SANDBOX_ACCOUNT, "sk_test_wrong_key_123", base_url=sandbox.SANDBOX_BASE_URL,
                      transport=world.transport(), sleep=lambda s: None) as bad:  # fmt: skip
        with pytest.raises(StripeAuthError) as caught:
            bad.balance()
        assert "sk_test_wrong_key_123" not in str(caught.value)
    json.dumps(charges)  # raw dicts stay JSON-serialisable as they came
