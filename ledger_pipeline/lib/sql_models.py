"""SQL models in dbt_like_sql/: discovery, configuration and the tables each one reads.

A model lives at `dbt_like_sql/<schema>/<table>.sql` and builds `<schema>.<table>`.
Its upstream tables are read from the SQL itself with sqlglot, so adding a
model is adding a file. Optional header lines configure it:

    -- config: materialized=mirror
    -- config: key=qbo_id

A model that only restates another is not written out: the model it restates
declares it, and `<schema>/_template.sql` supplies its SQL. A stg view with

    -- config: key=qbo_id
    -- config: derive=mirror,history

gets `mirror.<table>` and `history.<table>` from `mirror/_template.sql` and
`history/_template.sql`, whose `{{source}}`, `{{table}}` and `{{key}}` are
filled with the view's name, its table name and its key (identifiers checked
here, never user input). A file `<schema>/<table>.sql` replaces the template
for that model: it is written only where a model says something specific.

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
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
TEMPLATE_FILE = "_template.sql"


class ModelError(ValueError):
    """A SQL model file that cannot be used as it stands."""


@dataclass(frozen=True)
class SqlModel:
    schema: str
    table: str
    path: Path  # the model's file, or for a derived model the template it was made from
    sql: str
    declared_by: Path | None = None  # a derived model: the file of the model whose `derive=` made it

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def origin(self) -> str:
        """Where the model is defined, for messages: its file, or its template and the file that declared it."""
        if self.declared_by is None:
            return str(self.path)
        return f"{self.path} (as {self.name}, declared by {self.declared_by})"

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
            raise ModelError(f"{self.origin}: {self.materialized} models need '-- config: key=<column>'")
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
                raise ModelError(f"{self.origin}: table {table.name!r} must be schema-qualified")
            deps.add((table.db, table.name))
        return tuple(sorted(deps))



MATERIALIZATIONS = ("view", "history", "mirror", "tenant_table")
ASSERTION_PREFIX = "assert_"


@dataclass(frozen=True)
class SqlAssertion:
    """`<schema>/assert_<table>__<name>.sql`: a query returning the rows that break an invariant of `<schema>.<table>`.

    Zero rows means the invariant holds. Each becomes an asset check named `<name>` on that model. Its config lines:
    `severity=warn` for a finding about the business rather than the pipeline (an open break: the check warns, the
    run's other checks and the demo still pass), `count_by=<column>` to count the rows by that column's values.
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

    @cached_property
    def config(self) -> dict[str, str]:
        return SqlModel(self.schema, self.table, self.path, self.sql).config

    @property
    def warns(self) -> bool:
        severity = self.config.get("severity", "error")
        if severity not in ("error", "warn"):
            raise ModelError(f"{self.path}: severity is error or warn, not {severity!r}")
        return severity == "warn"

    @property
    def count_by(self) -> str | None:
        column = self.config.get("count_by")
        if column is not None and not _IDENTIFIER.match(column):
            raise ModelError(f"{self.path}: count_by names one column")
        return column


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
        raise ModelError(f"{model.origin}: expected exactly one raw.* log view upstream, found {sorted(found)}")
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
            raise ModelError(f"{model.origin}: dependency cycle through {model.name}")
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


def _render(template: Path, text: str, values: dict[str, str]) -> str:
    """The template's text with each `{{name}}` replaced by its value (every value a checked identifier)."""

    def fill(match: re.Match) -> str:
        if match.group(1) not in values:
            raise ModelError(f"{template}: unknown placeholder {match.group(0)}; use one of {sorted(values)}")
        return values[match.group(1)]

    return _PLACEHOLDER.sub(fill, text)


def _derived(model: SqlModel, root: Path) -> list[SqlModel]:
    """The models a model's `-- config: derive=<schema>,...` line declares, each from `<schema>/_template.sql`."""
    schemas = [s for s in model.config.get("derive", "").split(",") if s]
    if not schemas:
        return []
    key = model.config.get("key", "")
    if not _IDENTIFIER.match(key):
        raise ModelError(f"{model.path}: derive= needs '-- config: key=<column>' (the key of every derived model)")
    if len(set(schemas)) != len(schemas):
        raise ModelError(f"{model.path}: derive={model.config['derive']} names a schema twice")
    derived = []
    for schema in schemas:
        template = root / schema / TEMPLATE_FILE
        if not _IDENTIFIER.match(schema) or not template.is_file():
            raise ModelError(f"{model.path}: derive={schema!r} has no template {template}")
        values = {"source": model.name, "table": model.table, "key": key}
        sql = _render(template, template.read_text(), values)
        derived.append(SqlModel(schema=schema, table=model.table, path=template, sql=sql, declared_by=model.path))
    return derived


@functools.cache
def load_models(root: Path = MODELS_ROOT) -> tuple[SqlModel, ...]:
    """Every model under root, written or derived, each after the models it reads (read once per process)."""
    return tuple(in_dependency_order(list(read_models(root))))


@functools.cache
def read_models(root: Path = MODELS_ROOT) -> tuple[SqlModel, ...]:
    """Every model under root, written or derived, by name: read and checked, their SQL not yet parsed (ordering
    them parses it, most of a second a process; the views' fingerprint needs only their text)."""
    written: dict[str, SqlModel] = {}
    for path in sorted(root.glob("*/*.sql")):
        if path.name.startswith(ASSERTION_PREFIX) or path.name == TEMPLATE_FILE:
            continue
        schema, table = path.parent.name, path.stem
        if not (_IDENTIFIER.match(schema) and _IDENTIFIER.match(table)):
            raise ModelError(f"{path}: schema and table names must be lower-case identifiers")
        model = SqlModel(schema=schema, table=table, path=path, sql=path.read_text())
        written[model.name] = model
    derived: dict[str, SqlModel] = {}
    for declaring in written.values():
        for model in _derived(declaring, root):
            if model.name in derived:
                raise ModelError(
                    f"{model.name} is defined twice: derived by {derived[model.name].declared_by} "
                    f"and by {model.declared_by}; keep one derive= or write {model.schema}/{model.table}.sql"
                )
            derived[model.name] = model
    # A written file replaces the template for its model.
    models = {**derived, **written}
    for model in models.values():
        if model.materialized not in MATERIALIZATIONS:
            raise ModelError(f"{model.origin}: materialized={model.materialized!r}; use one of {MATERIALIZATIONS}")
    return tuple(sorted(models.values(), key=lambda m: (m.schema, m.table)))
