"""Switches that change what a realm *is* rather than how one request fails: revoked connections (and
reconnecting), and drifted data.

Both live in the shared state (so every process sees them) and stay until cleared: `reconnect` ends a
revocation, `clear_drifts` ends data drift. Mixed into `QboSandbox`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..entities import entity as lookup_entity
from .drift import check_drift
from .state import SharedState

if TYPE_CHECKING:
    from .sandbox import QboSandbox


class SandboxSwitches:
    """Revocation and data drift (see docs/sandbox.md); `self` is a QboSandbox."""

    def revoke(self: QboSandbox, realm_id: str) -> None:
        """The company disconnected the app: every refresh token of the realm gets invalid_grant and every
        access token 401, until `reconnect`."""
        self._realm(realm_id)
        self.store.mutate(lambda s: s.revoked.add(realm_id))

    def is_revoked(self: QboSandbox, realm_id: str) -> bool:
        return realm_id in self.store.view().revoked

    def reconnect(self: QboSandbox, realm_id: str) -> None:
        """Forget every rotation and any revocation: the documented initial refresh token works again
        (QBO: reconnect the app)."""
        self._realm(realm_id)

        def forget(state: SharedState) -> None:
            state.generations.pop(realm_id, None)
            state.revoked.discard(realm_id)
        self.store.mutate(forget)

    def drift(self: QboSandbox, realm_id: str, entity: str, object_id: str, kind: str) -> None:
        """Show one live object rewritten by `kind` from now on (see drift.DRIFT_KINDS), as a new version.

        Several kinds may stack on one object; asking for the same one twice changes nothing more.
        """
        self._realm(realm_id)
        lookup_entity(entity)
        check_drift(entity, kind)
        self.touch(realm_id, entity, object_id)  # validates the Id; the drifted payload is a new version
        row = (entity, str(object_id), kind)

        def add(state: SharedState) -> None:
            rows = state.drifts.setdefault(realm_id, [])
            if row not in rows:
                rows.append(row)
        self.store.mutate(add)

    def drifts(self: QboSandbox, realm_id: str) -> list[tuple[str, str, str]]:
        """(entity, Id, kind) of every drift switched on for a realm, in the order they were."""
        return list(self.store.view().drifts.get(realm_id, []))

    def clear_drifts(self: QboSandbox, realm_id: str | None = None) -> None:
        """Objects show their real payload again (without a new version: use `touch` if readers must notice)."""
        if realm_id is not None:
            self._realm(realm_id)
        self.store.mutate(lambda s: s.drifts.clear() if realm_id is None else s.drifts.pop(realm_id, None))

    def drift_map(self: QboSandbox, realm_id: str) -> dict[tuple[str, str], list[str]]:
        """(entity, real Id) -> kinds, for rewriting answers."""
        found: dict[tuple[str, str], list[str]] = {}
        for entity, object_id, kind in self.store.view().drifts.get(realm_id, []):
            found.setdefault((entity, object_id), []).append(kind)
        return found
