"""The Stripe sandbox as a real HTTP server on loopback, for the official SDK and any other tool.

It reuses the QBO sandbox's stdlib ThreadingHTTPServer (which only needs an object with `handle`),
so both servers turn requests and answers into each other byte for byte the same way; a `reset`
fault closes the socket with an RST instead of answering.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from typing import TextIO

from ledger_pipeline.rails.qbo.sandbox.server import _listen

from .sandbox import StripeSandbox

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _check_host(host: str) -> None:
    if host not in LOOPBACK:
        raise ValueError(f"the Stripe sandbox serves on loopback only ({', '.join(LOOPBACK)}), not {host!r}")


@dataclass
class RunningServer:
    """A Stripe sandbox server running in a background thread (for tests and tools)."""

    sandbox: StripeSandbox
    host: str
    port: int
    _server: object = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{f'[{self.host}]' if ':' in self.host else self.host}:{self.port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_in_thread(sandbox: StripeSandbox, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    _check_host(host)
    server = _listen(sandbox, host, port)  # type: ignore[arg-type] (any object with `handle` will do)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name=f"stripe-sandbox-{server.server_address[1]}", daemon=True)
    thread.start()
    return RunningServer(sandbox, host, server.server_address[1], server, thread)


def serve(sandbox: StripeSandbox, host: str, port: int, *, out: TextIO | None = None) -> None:
    """Serve until interrupted, after announcing the base URL and the connected accounts on one line."""
    _check_host(host)
    server = _listen(sandbox, host, port)  # type: ignore[arg-type]
    accounts = ", ".join(f"{a.account_id} ({a.business_name})" for a in sandbox.accounts.values())
    base = f"http://{f'[{host}]' if ':' in host else host}:{server.server_address[1]}"
    (out or sys.stdout).write(f"Stripe sandbox at {base}; accounts: {accounts}; platform key: docs/sandbox.md or "
                              "sandbox_credentials()\n")
    (out or sys.stdout).flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
