"""The sandbox as a real HTTP server on localhost (stdlib ThreadingHTTPServer around `QboSandbox.handle`).

Every request becomes an httpx.Request and every httpx.Response goes back byte for byte, so the
server and the in-process transport answer identically. A `reset` fault closes the socket with an
RST instead of answering.
"""

from __future__ import annotations

import errno
import json
import socket
import struct
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, TextIO

import httpx

from ledger_pipeline.lib.ids import InvalidInput

from .auth import CLIENT_ID
from .sandbox import QboSandbox
from .state import SandboxStateError

_HOP_BY_HOP = {"content-length", "transfer-encoding", "connection", "keep-alive"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sandbox: QboSandbox | None) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        self.sandbox = sandbox

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        """A client that hung up mid-answer (its timeout, a killed process) is its business, not a traceback."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY on every accepted socket: http.server sends headers and body separately, and with
    # Nagle on the body then waits for the client's delayed ACK (~40 ms per small answer).
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_GET

    def log_message(self, format: str, *args: object) -> None:  # quiet: tokens travel in URLs of other tools
        return

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        host = self.headers.get("Host") or "127.0.0.1"
        request = httpx.Request(self.command, f"http://{host}{self.path}", headers=list(self.headers.items()),
                                content=body)
        try:
            response = self.server.sandbox.handle(request)
        except httpx.TransportError:
            self._reset()
            return
        except SandboxStateError as exc:  # the state file broke while serving: say so, once per request, no traceback
            print(f"ledger-pipeline: error: {exc}", file=sys.stderr, flush=True)
            response = httpx.Response(500, headers={"Content-Type": "application/json"},
                                      content=json.dumps({"error": str(exc)}).encode())
        self.send_response(response.status_code)
        for name, value in response.headers.multi_items():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.content)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.content)

    def _reset(self) -> None:
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass


@dataclass
class RunningServer:
    """A sandbox server running in a background thread (for tests and tools)."""

    sandbox: QboSandbox
    host: str
    port: int
    _server: _Server = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{f'[{self.host}]' if ':' in self.host else self.host}:{self.port}"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/oauth2/v1/tokens/bearer"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _listen(sandbox: QboSandbox | None, host: str, port: int) -> _Server:
    """The bound, listening server, or InvalidInput naming host:port and why (busy port, no such address)."""
    try:
        return _Server((host, port), sandbox)
    except OSError as exc:
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        cause = exc.strerror or str(exc)
        hint = "; stop whatever listens there or choose another --port" if exc.errno == errno.EADDRINUSE else ""
        raise InvalidInput(f"cannot serve the sandbox on {where}: {cause}{hint}") from None


def start_in_thread(sandbox: QboSandbox, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    server = _listen(sandbox, host, port)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name=f"qbo-sandbox-{server.server_address[1]}", daemon=True)
    thread.start()
    return RunningServer(sandbox, host, server.server_address[1], server, thread)


def serve(sandbox: QboSandbox | Callable[[], QboSandbox], host: str, port: int, *, out: TextIO | None = None) -> None:
    """Serve until interrupted, after announcing the base URL, realms and client id on one line.

    `sandbox` may be a function building it: it is then called once the port is bound, so a busy port
    (InvalidInput naming host:port) leaves the state file untouched.
    """
    server = _listen(sandbox if isinstance(sandbox, QboSandbox) else None, host, port)
    try:
        if not isinstance(sandbox, QboSandbox):
            sandbox = server.sandbox = sandbox()
        sandbox.store.check()  # a state file (or lock) that broke since the sandbox was built is refused first
    except BaseException:
        server.server_close()
        raise
    realms = ", ".join(f"{s.realm_id} ({s.name})" for s in sandbox.companies)
    base = f"http://{f'[{host}]' if ':' in host else host}:{server.server_address[1]}"
    (out or sys.stdout).write(f"QBO sandbox at {base} (token URL {base}/oauth2/v1/tokens/bearer); realms: {realms}; "
                              f"client id {CLIENT_ID}; demo credentials: docs/sandbox.md or sandbox_credentials()\n")
    (out or sys.stdout).flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
