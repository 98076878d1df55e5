"""Official `stripe` SDK or our httpx client for the Stripe rail? Time both reading the same raw charge pages.

The mirror needs each object's JSON exactly as Stripe sent it, at volume. The SDK's stock
`HTTPXClient` builds its own httpx.Client and takes no transport, so in-process it is measured
through a minimal `stripe.HTTPClient` subclass (the SDK's documented extension point) that does;
over a loopback HTTP server the stock `HTTPXClient` is measured too. Both sides read the same
pre-encoded pages, so the server's cost is the same and small.

Run: .venv/bin/python -m bench.stripe_client_choice
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx
import stripe

from ledger_pipeline.rails.stripe.client import StripeClient

PAGES, PER_PAGE, ROUNDS = 30, 100, 3
SDK_OBJECTS = 300  # the SDK is timed on the first pages only: reading all of them takes minutes
ACCOUNT, KEY = "acct_1BenchTenant", "sk_test_bench_not_a_real_key"


def charge(n: int) -> dict:
    """A succeeded card charge shaped like the API's (2025 versions), ~2.5 kB of JSON."""
    created = 1_760_000_000 - n * 37
    amount = 1_000 + (n * 7919) % 250_000
    return {
        "id": f"ch_3Bench{n:018d}", "object": "charge", "amount": amount, "amount_captured": amount,
        "amount_refunded": 0, "application": None, "application_fee": None, "application_fee_amount": None,
        "balance_transaction": f"txn_3Bench{n:018d}",
        "billing_details": {
            "address": {"city": "Portland", "country": "US", "line1": f"{n % 900 + 100} Alder St", "line2": None,
                        "postal_code": "97205", "state": "OR"},
            "email": f"customer{n}@example.com", "name": f"Customer {n}", "phone": None, "tax_id": None,
        },
        "calculated_statement_descriptor": "ACME SUPPLY", "captured": True, "created": created, "currency": "usd",
        "customer": f"cus_Bench{n % 5000:08d}", "description": f"Invoice INV-{n:06d}", "destination": None,
        "dispute": None, "disputed": False, "failure_balance_transaction": None, "failure_code": None,
        "failure_message": None, "fraud_details": {}, "livemode": False,
        "metadata": {"invoice_id": f"INV-{n:06d}", "qbo_payment": str(40_000 + n)}, "on_behalf_of": None,
        "outcome": {"advice_code": None, "network_advice_code": None, "network_decline_code": None,
                    "network_status": "approved_by_network", "reason": None, "risk_level": "normal",
                    "risk_score": n % 100, "seller_message": "Payment complete.", "type": "authorized"},
        "paid": True, "payment_intent": f"pi_3Bench{n:018d}", "payment_method": f"pm_1Bench{n:016d}",
        "payment_method_details": {
            "card": {
                "amount_authorized": amount, "authorization_code": None, "brand": "visa",
                "checks": {"address_line1_check": "pass", "address_postal_code_check": "pass", "cvc_check": "pass"},
                "country": "US", "exp_month": 1 + n % 12, "exp_year": 2028,
                "extended_authorization": {"status": "disabled"}, "fingerprint": f"Fp{n:014d}", "funding": "credit",
                "incremental_authorization": {"status": "unavailable"},
                "installments": None, "last4": f"{n % 10000:04d}", "mandate": None,
                "multicapture": {"status": "unavailable"}, "network": "visa", "network_token": {"used": False},
                "network_transaction_id": f"{n:015d}",
                "overcapture": {"maximum_amount_capturable": amount, "status": "unavailable"},
                "regulated_status": "unregulated", "three_d_secure": None, "wallet": None,
            },
            "type": "card",
        },
        "radar_options": {}, "receipt_email": f"customer{n}@example.com", "receipt_number": None,
        "receipt_url": f"https://pay.stripe.com/receipts/payment/CAcaFwoVYWNjdF8xQmVuY2hUZW5hbnQo{n:020d}"
                       "KMqZ3MIGMgYb6xIG3nE6LBZvmWp8XWcQ3gkSMB2uT5tmHcP8iAZqRnJq7mN2DeUkCG1WvzXP0dQhuJ",
        "refunded": False,
        "refunds": {"object": "list", "data": [], "has_more": False, "total_count": 0,
                    "url": f"/v1/charges/ch_3Bench{n:018d}/refunds"},
        "review": None, "shipping": None, "source": None, "source_transfer": None, "statement_descriptor": None,
        "statement_descriptor_suffix": None, "status": "succeeded", "transfer_data": None, "transfer_group": None,
    }  # fmt: skip


def build_pages() -> tuple[dict[str | None, bytes], int]:
    """Pre-encoded list bodies keyed by the `starting_after` that asks for them; and bytes per object."""
    bodies: dict[str | None, bytes] = {}
    cursor: str | None = None
    for p in range(PAGES):
        data = [charge(p * PER_PAGE + i) for i in range(PER_PAGE)]
        envelope = {"object": "list", "data": data, "has_more": p < PAGES - 1, "url": "/v1/charges"}
        bodies[cursor] = json.dumps(envelope).encode()
        cursor = data[-1]["id"]
    return bodies, len(bodies[None]) // PER_PAGE


BODIES, OBJ_BYTES = build_pages()
HEADERS = {"content-type": "application/json", "request-id": "req_bench"}


def page_for(query: str) -> bytes:
    return BODIES[parse_qs(query).get("starting_after", [None])[0]]


def mock_transport() -> httpx.MockTransport:
    return httpx.MockTransport(
        lambda request: httpx.Response(200, headers=HEADERS, content=page_for(request.url.query.decode()))
    )


class TransportHTTPClient(stripe.HTTPClient):
    """The SDK's HTTP extension point, sending through any httpx transport (what the sandbox hands out)."""

    name = "httpx-transport"

    def __init__(self, transport: httpx.BaseTransport) -> None:
        super().__init__()
        self._http = httpx.Client(transport=transport)

    def request(self, method, url, headers, post_data=None):  # noqa: ANN001 - the SDK's signature
        response = self._http.request(method, url, headers=headers, content=post_data)
        return response.content, response.status_code, response.headers

    def close(self) -> None:
        self._http.close()


def sdk(http_client: stripe.HTTPClient, base: str, raw: str) -> Callable[[], list[dict]]:
    """The SDK listing every charge. raw="to_dict": auto_paging_iter + StripeObject.to_dict();
    raw="last_response": page by page, each page's `last_response.data` (the parsed body, not converted back)."""
    client = stripe.StripeClient(
        KEY, stripe_account=ACCOUNT, base_addresses={"api": base}, http_client=http_client, max_network_retries=0
    )

    def run() -> list[dict]:
        page = client.v1.charges.list({"limit": PER_PAGE})
        if raw == "to_dict":
            return [obj.to_dict() for obj in itertools.islice(page.auto_paging_iter(), SDK_OBJECTS)]
        out: list[dict] = []
        while not page.is_empty and len(out) < SDK_OBJECTS:
            out.extend(page.last_response.data["data"])
            page = page.next_page()
        return out

    return run


def ours(base: str, transport: httpx.BaseTransport | None) -> Callable[[], list[dict]]:
    client = StripeClient(ACCOUNT, KEY, base_url=base, transport=transport)
    return lambda: [obj for page in client.pages("charges") for obj in page.objects]


def ms_per_10k(run: Callable[[], list[dict]], rounds: int) -> float:
    """Best of `rounds`, checking the objects read are the ones served (same JSON once re-encoded)."""
    best, count = float("inf"), 0
    for _ in range(rounds):
        start = time.perf_counter()
        got = run()
        best, count = min(best, time.perf_counter() - start), len(got)
    want = [obj for body in BODIES.values() for obj in json.loads(body)["data"]][:count]
    assert count and json.dumps(got) == json.dumps(want), "objects differ from the served JSON"
    return best / count * 10_000 * 1000


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = page_for(urlsplit(self.path).query)
        self.send_response(200)
        for name, value in HEADERS.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    try:
        stripe.HTTPXClient(transport=mock_transport())  # type: ignore[call-arg]
        takes = "yes"
    except TypeError as exc:
        takes = f"no ({exc})"
    print(f"stripe {stripe.VERSION}: stripe.HTTPXClient(transport=...) accepted? {takes}")
    print(f"{PAGES} pages x {PER_PAGE} charges (SDK: the first {SDK_OBJECTS}), {OBJ_BYTES} bytes of JSON per charge;"
          f" ms per 10k objects, best of {ROUNDS} (SDK: one run)\n")

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    loop = f"http://127.0.0.1:{server.server_address[1]}"
    mem = "http://stripe.invalid"
    rows = [
        ("in-process MockTransport", "SDK auto_paging_iter + to_dict()",
         sdk(TransportHTTPClient(mock_transport()), mem, "to_dict"), ours(mem, mock_transport())),
        ("in-process MockTransport", "SDK pages, last_response.data",
         sdk(TransportHTTPClient(mock_transport()), mem, "last_response"), ours(mem, mock_transport())),
        ("loopback HTTP, stock HTTPXClient", "SDK auto_paging_iter + to_dict()",
         sdk(stripe.HTTPXClient(allow_sync_methods=True), loop, "to_dict"), ours(loop, None)),
    ]  # fmt: skip
    print(f"{'where':34} {'SDK way to raw dicts':34} {'SDK':>9} {'httpx':>9} {'SDK/httpx':>9}")
    for where, how, sdk_run, ours_run in rows:
        a, b = ms_per_10k(sdk_run, 1), ms_per_10k(ours_run, ROUNDS)
        print(f"{where:34} {how:34} {a:9.0f} {b:9.0f} {a / b:8.1f}x")
    server.shutdown()


if __name__ == "__main__":
    main()
