"""A rail's sandbox as a real HTTP server on loopback, for official SDKs and any other tool.

It reuses the QBO sandbox's stdlib ThreadingHTTPServer (which only needs an object with `handle`), so every
sandbox turns requests and answers into each other byte for byte the same way; a `reset` fault closes the socket
with an RST instead of answering.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from typing import Any, TextIO

from ledger_pipeline.rails.qbo.sandbox.server import _listen

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def check_loopback(host: str, title: str) -> None:
    if host not in LOOPBACK:
        raise ValueError(f"the {title} sandbox serves on loopback only ({', '.join(LOOPBACK)}), not {host!r}")


def base_url(host: str, port: int) -> str:
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


@dataclass
class RunningServer:
    """A sandbox server running in a background thread (for tests and tools)."""

    sandbox: Any
    host: str
    port: int
    _server: object = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    @property
    def base_url(self) -> str:
        return base_url(self.host, self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_in_thread(sandbox: Any, host: str, port: int, title: str) -> RunningServer:
    """Serve `sandbox` (any object with `handle(httpx.Request)`) in a daemon thread; port 0 picks a free one."""
    check_loopback(host, title)
    server = _listen(sandbox, host, port)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name=f"{title.lower()}-sandbox-{server.server_address[1]}", daemon=True)  # fmt: skip
    thread.start()
    return RunningServer(sandbox, host, server.server_address[1], server, thread)


def serve(sandbox: Any, host: str, port: int, title: str, announce: str, out: TextIO | None = None) -> None:
    """Serve until interrupted, after one line naming the base URL and `announce` (what the sandbox holds)."""
    check_loopback(host, title)
    server = _listen(sandbox, host, port)
    (out or sys.stdout).write(f"{title} sandbox at {base_url(host, server.server_address[1])}; {announce}\n")
    (out or sys.stdout).flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
