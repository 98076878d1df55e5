"""Which entities a statement over a SQL model covers, as a condition DuckDB pushes down to the log scan."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class EntityScope:
    """Listed (tenant, id) pairs of any tenants, every entity of some tenants, or one tenant's inclusive range.

    Every condition sits on the model's partition columns (tenant and key), so DuckDB pushes it through the
    window down to the log scan: only the covered entities' versions are typed and windowed, whichever
    tenants they belong to. Pairs and tenant lists let one statement serve a run's tenants: planning a model
    costs ~8 ms, executing it for a few entities less (30 tenants' changed bills: 14 ms in one statement,
    210 ms in 30).
    A range is how a whole tenant is cut into batches: a list of 25k ids cost 3x the single pass at 1M
    (3.5 s against 1.2 s for 351k bill versions), a range 1.3x.
    """

    tenant_ids: list[str]
    pairs: list[list[str]] | None = None  # [tenant_id, entity_id] of each listed entity
    first: str | None = None
    last: str | None = None

    @classmethod
    def listed(cls, pairs: list[list[str]]) -> EntityScope:
        return cls(list(dict.fromkeys(tenant_id for tenant_id, _ in pairs)), pairs=pairs)

    @classmethod
    def tenant(cls, tenant_id: str, first: str | None = None, last: str | None = None) -> EntityScope:
        return cls([tenant_id], first=first, last=last)

    @classmethod
    def whole_tenants(cls, sizes: dict[str, int], limit: int) -> Iterator[EntityScope]:
        """Every entity of each tenant of `sizes` ({tenant: entities}), as many tenants a scope as hold `limit`
        entities together (a larger tenant alone)."""
        group: list[str] = []
        held = 0
        for tenant_id, size in sizes.items():
            if group and held + size > limit:
                yield cls(group)
                group, held = [], 0
            group.append(tenant_id)
            held += size
        if group:
            yield cls(group)

    def condition(self, tenant: str, key: str) -> tuple[str, list[object]]:
        """SQL condition on the tenant and key columns (for after a where) and its parameters."""
        if self.pairs is not None and len(self.tenant_ids) > 1:
            return (
                f"list_contains(?::varchar[], {tenant}) and list_contains(?::varchar[][], [{tenant}, {key}])",
                [self.tenant_ids, self.pairs],
            )
        if self.pairs is None and len(self.tenant_ids) > 1:
            return tenants_condition(tenant, self.tenant_ids)
        (tenant_id,) = self.tenant_ids
        if self.pairs is not None:  # one tenant: its ids alone also let zone maps on the key skip row groups
            return f"{tenant} = ? and list_contains(?::varchar[], {key})", [tenant_id, [i for _, i in self.pairs]]
        if self.first is not None:
            return f"{tenant} = ? and {key} between ? and ?", [tenant_id, self.first, self.last]
        return tenants_condition(tenant, self.tenant_ids)


def tenants_condition(column: str, tenant_ids: list[str]) -> tuple[str, list[object]]:
    """`column` is one of the tenants: an equality for one (zone maps skip other tenants' row groups), else a list."""
    if len(tenant_ids) == 1:
        return f"{column} = ?", [tenant_ids[0]]
    return f"list_contains(?::varchar[], {column})", [list(tenant_ids)]
