"""QBO's token stores: the core's (lib/token_store.py), one entry per realm, files named `qbo_tokens_<realm>`."""

from __future__ import annotations

import os

from ledger_pipeline.lib import token_store
from ledger_pipeline.lib.token_store import StoredTokens, TokenStore
from ledger_pipeline.rails.qbo import rail

__all__ = ["FileTokenStore", "MemoryTokenStore", "StoredTokens", "TokenStore", "validate_realm_id"]


def validate_realm_id(realm_id: object) -> str:
    """A realm id is 1-20 ASCII digits (the rail's one rule); anything else is refused before it reaches a URL or
    a path."""
    return rail.realm_id(realm_id)


class MemoryTokenStore(token_store.MemoryTokenStore):
    def __init__(self) -> None:
        super().__init__(validate_realm_id)


class FileTokenStore(token_store.FileTokenStore):
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        super().__init__(directory, "qbo_tokens", validate_realm_id)
