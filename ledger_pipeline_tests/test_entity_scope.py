"""The entity scopes that let one statement over a model serve many tenants, and keep each tenant's rows apart."""

from __future__ import annotations

import duckdb

from ledger_pipeline.lib.entity_scope import EntityScope


def test_whole_tenants_share_a_scope_up_to_the_limit_and_a_larger_tenant_stands_alone():
    sizes = {"a": 3, "b": 4, "c": 10, "d": 1, "e": 2}
    scopes = list(EntityScope.whole_tenants(sizes, 7))
    assert [s.tenant_ids for s in scopes] == [["a", "b"], ["c"], ["d", "e"]]
    assert list(EntityScope.whole_tenants({}, 7)) == []


def test_each_scope_selects_exactly_its_entities():
    conn = duckdb.connect()
    conn.execute("create table t as select * from (values ('a', '1'), ('a', '2'), ('b', '1'), ('b', '3'), "
                 "('c', '1')) v(tenant_id, id)")  # fmt: skip

    def selected(scope: EntityScope) -> list[tuple[str, str]]:
        condition, params = scope.condition("tenant_id", "id")
        return conn.execute(f"select tenant_id, id from t where {condition} order by all", params).fetchall()

    assert selected(EntityScope.listed([["a", "2"], ["b", "1"]])) == [("a", "2"), ("b", "1")]  # not ('a','1')
    assert selected(EntityScope.listed([["b", "1"], ["b", "3"]])) == [("b", "1"), ("b", "3")]
    assert selected(EntityScope(["a", "c"])) == [("a", "1"), ("a", "2"), ("c", "1")]
    assert selected(EntityScope.tenant("b")) == [("b", "1"), ("b", "3")]
    assert selected(EntityScope.tenant("a", "2", "9")) == [("a", "2")]
