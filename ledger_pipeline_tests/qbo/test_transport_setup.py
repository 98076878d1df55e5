"""Per-client set-up made cheap without weakening it: one shared TLS context that still verifies, and a sandbox
server whose sockets do not wait on Nagle."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ledger_pipeline.lib.tls import shared_ssl_context
from ledger_pipeline.rails.qbo.client import QboClient, QboCredentials
from ledger_pipeline.rails.qbo.errors import QboError
from ledger_pipeline.rails.qbo.oauth import FileTokenStore
from ledger_pipeline.rails.qbo.sandbox import sandbox_credentials
from ledger_pipeline.rails.qbo.sandbox.server import RunningServer, _Handler

REALM = "9130350000000101"


@pytest.fixture
def self_signed_tls_server(tmp_path: Path) -> Iterator[str]:
    """An https://127.0.0.1:<port> endpoint with a certificate no CA signed; it only completes handshakes."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                try:
                    with context.wrap_socket(conn, server_side=True) as tls:
                        tls.recv(65536)  # a client that skipped verification gets this far; answer nothing
                except (ssl.SSLError, OSError):
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        try:  # wakes the accept() the thread is blocked in (closing the socket alone does not, on Linux)
            listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        listener.close()
        thread.join(timeout=5)


def _client(base_url: str, tmp_path: Path) -> QboClient:
    client_id, secret, refresh = sandbox_credentials(REALM)
    return QboClient(
        REALM, QboCredentials(client_id, secret, refresh), token_store=FileTokenStore(tmp_path / "tokens"),
        base_url=base_url, token_url=f"{base_url}/oauth2/v1/tokens/bearer", max_retries=0, backoff_base=0.0,
        timeout=5.0,
    )  # fmt: skip


def test_clients_share_one_tls_context_and_it_still_refuses_an_unsigned_certificate(
    self_signed_tls_server: str, tmp_path: Path
) -> None:
    first, second = _client(self_signed_tls_server, tmp_path), _client(self_signed_tls_server, tmp_path)
    try:
        context = shared_ssl_context()
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
        pools = [c._http._transport._pool for c in (first, second)]  # type: ignore[attr-defined]
        assert all(pool._ssl_context is context for pool in pools)
        with pytest.raises(QboError, match="CERTIFICATE_VERIFY_FAILED"):
            first.count("Bill")
    finally:
        first.close()
        second.close()


def test_sandbox_server_sets_tcp_nodelay_on_accepted_sockets(
    served_sandbox: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    handle = _Handler.handle

    def recording_handle(self: _Handler) -> None:
        seen.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        handle(self)

    monkeypatch.setattr(_Handler, "handle", recording_handle)
    with httpx.Client(base_url=served_sandbox.base_url) as http:
        assert http.get("/_sandbox").status_code == 200
    assert seen and all(seen), f"TCP_NODELAY per accepted socket: {seen}"
