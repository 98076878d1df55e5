"""SQL models in dbt_like_sql/: discovery, configuration and the tables each one reads.

A model lives at `dbt_like_sql/<schema>/<table>.sql` and builds `<schema>.<table>`.
Its upstream tables are read from the SQL itself with sqlglot, so adding a
model is adding a file. Optional header lines configure it:

    -- config: materialized=mirror
    -- config: key=qbo_id

Materializations: `view` (a DuckDB view), `mirror` (a table refreshed per
tenant for the entities whose log changed, validated, see lib/mirrors.py),
`history` (every version, refreshed the same way but with no contract: it keeps
what was logged, plus a table macro `<schema>.<table>_as_of(tenant, as_of_ts)`)
and `tenant_table` (a table whose tenant rows are replaced on each refresh).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import sqlglot
from sqlglot import exp

MODELS_ROOT = Path(__file__).resolve().parents[2] / "dbt_like_sql"
_CONFIG_LINE = re.compile(r"^--\s*config:\s*(\w+)\s*=\s*([\w,]+)\s*$")
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")


class ModelError(ValueError):
    """A SQL model file that cannot be used as it stands."""


@dataclass(frozen=True)
class SqlModel:
    schema: str
    table: str
    path: Path
    sql: str

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.table}"

    @cached_property
    def config(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for line in self.sql.splitlines():
            match = _CONFIG_LINE.match(line.strip())
            if match:
                found[match.group(1)] = match.group(2)
        return found

    @property
    def materialized(self) -> str:
        return self.config.get("materialized", "view")

    @property
    def key(self) -> str:
        key = self.config.get("key", "")
        if not _IDENTIFIER.match(key):
            raise ModelError(f"{self.path}: {self.materialized} models need '-- config: key=<column>'")
        return key

    @cached_property
    def body(self) -> str:
        """The select statement, newline-framed and without its semicolon, ready to wrap in a subquery.

        The text runs as written: re-generating it through sqlglot would rewrite
        DuckDB's JSON arrow operators.
        """
        return "\n" + self.sql.strip().rstrip(";") + "\n"

    @cached_property
    def depends_on(self) -> tuple[tuple[str, str], ...]:
        """(schema, table) of every table the model reads, CTE names excluded."""
        tree = sqlglot.parse_one(self.sql, read="duckdb")
        ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
        deps = set()
        for table in tree.find_all(exp.Table):
            if table.name in ctes and not table.db:
                continue
            if not table.db:
                raise ModelError(f"{self.path}: table {table.name!r} must be schema-qualified")
            deps.add((table.db, table.name))
        return tuple(sorted(deps))



MATERIALIZATIONS = ("view", "history", "mirror", "tenant_table")
ASSERTION_PREFIX = "assert_"


@dataclass(frozen=True)
class SqlAssertion:
    """`<schema>/assert_<table>__<name>.sql`: a query returning the rows that break an invariant of `<schema>.<table>`.

    Zero rows means the invariant holds. Each becomes an asset check named `<name>` on that model.
    """

    schema: str
    table: str
    name: str
    path: Path
    sql: str

    @property
    def target(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def description(self) -> str:
        return " ".join(line.lstrip("- ").strip() for line in self.sql.splitlines() if line.startswith("--"))

    @cached_property
    def body(self) -> str:
        return "\n" + self.sql.strip().rstrip(";") + "\n"

    @cached_property
    def depends_on(self) -> tuple[tuple[str, str], ...]:
        return SqlModel(self.schema, self.table, self.path, self.sql).depends_on


@functools.cache
def load_assertions(root: Path = MODELS_ROOT) -> tuple[SqlAssertion, ...]:
    """Every assertion file under root."""
    found = []
    for path in sorted(root.glob(f"*/{ASSERTION_PREFIX}*.sql")):
        table, sep, name = path.stem[len(ASSERTION_PREFIX):].partition("__")
        if not sep or not (_IDENTIFIER.match(table) and _IDENTIFIER.match(name)):
            raise ModelError(f"{path}: name assertions assert_<table>__<check name>.sql")
        found.append(SqlAssertion(path.parent.name, table, name, path, path.read_text()))
    return tuple(found)


def log_source(model: SqlModel, models: dict[str, SqlModel]) -> str:
    """The one raw.* log view a model derives from, followed through the models it reads."""
    found: set[str] = set()
    pending = [model]
    while pending:
        current = pending.pop()
        for schema, table in current.depends_on:
            name = f"{schema}.{table}"
            if schema == "raw":
                found.add(name)
            elif name in models:
                pending.append(models[name])
    if len(found) != 1:
        raise ModelError(f"{model.path}: expected exactly one raw.* log view upstream, found {sorted(found)}")
    return found.pop()


def in_dependency_order(models: list[SqlModel]) -> list[SqlModel]:
    """Models sorted so that each comes after the models it reads."""
    by_name = {m.name: m for m in models}
    ordered: list[SqlModel] = []
    state: dict[str, str] = {}

    def visit(model: SqlModel) -> None:
        if state.get(model.name) == "done":
            return
        if state.get(model.name) == "visiting":
            raise ModelError(f"{model.path}: dependency cycle through {model.name}")
        state[model.name] = "visiting"
        for schema, table in model.depends_on:
            upstream = by_name.get(f"{schema}.{table}")
            if upstream is not None:
                visit(upstream)
        state[model.name] = "done"
        ordered.append(model)

    for model in models:
        visit(model)
    return ordered


@functools.cache
def load_models(root: Path = MODELS_ROOT) -> tuple[SqlModel, ...]:
    """Every model under root, each after the models it reads (read once per process)."""
    models = []
    for path in sorted(root.glob("*/*.sql")):
        if path.name.startswith(ASSERTION_PREFIX):
            continue
        schema, table = path.parent.name, path.stem
        if not (_IDENTIFIER.match(schema) and _IDENTIFIER.match(table)):
            raise ModelError(f"{path}: schema and table names must be lower-case identifiers")
        model = SqlModel(schema=schema, table=table, path=path, sql=path.read_text())
        if model.materialized not in MATERIALIZATIONS:
            raise ModelError(f"{path}: materialized={model.materialized!r}; use one of {MATERIALIZATIONS}")
        models.append(model)
    return tuple(in_dependency_order(models))
