"""Ramp's token stores: the core's (lib/token_store.py), one entry per business, files named `ramp_tokens_<id>`."""

from __future__ import annotations

import os

from ledger_pipeline.lib import token_store
from ledger_pipeline.rails.ramp.rail import object_id

__all__ = ["FileTokenStore", "MemoryTokenStore"]


class MemoryTokenStore(token_store.MemoryTokenStore):
    def __init__(self) -> None:
        super().__init__(object_id)


class FileTokenStore(token_store.FileTokenStore):
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        super().__init__(directory, "ramp_tokens", object_id)
