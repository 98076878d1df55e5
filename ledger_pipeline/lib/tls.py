"""The one verifying TLS context every rail client of a process shares: loading the CA bundle costs ~30 ms
(up to 0.25 s on a busy machine) per client, and a sync opens a client per tenant and entity."""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """httpx's own default (certifi's bundle, or SSL_CERT_FILE / SSL_CERT_DIR when set), built once; certificate
    and host name checks stay on. An SSLContext is safe to share between threads."""
    return httpx.create_ssl_context(verify=True)
