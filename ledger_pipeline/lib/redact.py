"""Text from a rail on its way into an error message or a log line: known secrets scrubbed out, length bounded.

A sandbox or a proxy may echo a key or a token back in an error body. Every rail client registers the
secrets it holds with its `Secrets` and passes whatever came back from the wire through `redact`.
"""

from __future__ import annotations

REDACTED = "[redacted]"
MAX_TEXT = 300  # characters of wire text kept in a message


def clip(value: object) -> str | None:
    """Wire text on one line and at most MAX_TEXT characters; None stays None."""
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


class Secrets:
    """The secrets one client holds (keys, tokens), to be scrubbed out of any text it puts into an error."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self._secrets)} secrets)"

    def add_secret(self, value: str | None) -> None:
        if value and len(value) >= 4:  # shorter strings would redact ordinary words
            self._secrets.add(value)

    def redact(self, text: str | None) -> str | None:
        if text is None:
            return None
        for secret in sorted(self._secrets, key=len, reverse=True):  # a longer secret may contain a shorter one
            text = text.replace(secret, REDACTED)
        return text
