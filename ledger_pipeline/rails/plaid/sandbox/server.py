"""The Plaid sandbox as a real HTTP server on loopback, for the official SDK and any other tool.

It reuses the QBO sandbox's stdlib ThreadingHTTPServer (which only needs an object with `handle`), so every
sandbox turns requests and answers into each other the same way; a `reset` fault closes the socket with an RST.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from typing import TextIO

from ledger_pipeline.rails.qbo.sandbox.server import _listen

from .sandbox import PlaidSandbox

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _check_host(host: str) -> None:
    if host not in LOOPBACK:
        raise ValueError(f"the Plaid sandbox serves on loopback only ({', '.join(LOOPBACK)}), not {host!r}")


def _base(host: str, port: int) -> str:
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


@dataclass
class RunningServer:
    """A Plaid sandbox server running in a background thread (for tests and tools)."""

    sandbox: PlaidSandbox
    host: str
    port: int
    _server: object = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    @property
    def base_url(self) -> str:
        return _base(self.host, self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_in_thread(sandbox: PlaidSandbox, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    _check_host(host)
    server = _listen(sandbox, host, port)  # type: ignore[arg-type] (any object with `handle` will do)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name=f"plaid-sandbox-{server.server_address[1]}", daemon=True)
    thread.start()
    return RunningServer(sandbox, host, server.server_address[1], server, thread)


def serve(sandbox: PlaidSandbox, host: str, port: int, *, out: TextIO | None = None) -> None:
    """Serve until interrupted, after announcing the base URL and the items on one line."""
    _check_host(host)
    server = _listen(sandbox, host, port)  # type: ignore[arg-type]
    items = ", ".join(f"{i.item_id} ({i.institution_name}, realm {i.realm_id})" for i in sandbox.items.values())
    (out or sys.stdout).write(f"Plaid sandbox at {_base(host, server.server_address[1])}; items: {items}; client id, "
                              "secret and access tokens: docs/sandbox.md or access_token_for()\n")
    (out or sys.stdout).flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
