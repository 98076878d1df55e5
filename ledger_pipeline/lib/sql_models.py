"""SQL models in dbt_like_sql/: discovery, configuration and the tables each one reads.

A model lives at `dbt_like_sql/<schema>/<table>.sql` and builds `<schema>.<table>`.
Its upstream tables are read from the SQL itself with sqlglot, so adding a
model is adding a file. Optional header lines configure it:

    -- config: materialized=mirror
    -- config: key=qbo_id
"""

from __future__ import annotations

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
        return self.config.get("materialized", "table")

    @property
    def key(self) -> str:
        key = self.config.get("key", "")
        if not _IDENTIFIER.match(key):
            raise ModelError(f"{self.path}: mirror models need '-- config: key=<column>'")
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

    @property
    def source(self) -> tuple[str, str]:
        """The one raw log view a mirror model derives from."""
        raw = [dep for dep in self.depends_on if dep[0] == "raw"]
        if len(raw) != 1:
            raise ModelError(f"{self.path}: a mirror reads exactly one raw.* view, found {raw}")
        return raw[0]


def load_models(root: Path = MODELS_ROOT) -> list[SqlModel]:
    """Every model under root, in a stable order."""
    models = []
    for path in sorted(root.glob("*/*.sql")):
        schema, table = path.parent.name, path.stem
        if not (_IDENTIFIER.match(schema) and _IDENTIFIER.match(table)):
            raise ModelError(f"{path}: schema and table names must be lower-case identifiers")
        models.append(SqlModel(schema=schema, table=table, path=path, sql=path.read_text()))
    return models
