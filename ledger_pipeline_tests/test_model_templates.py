"""Mirror and history models made from dbt_like_sql/<schema>/_template.sql (lib/sql_models.py).

A stg view's `-- config: derive=mirror,history` declares them; they must build what the hand-written
copies they replaced built (REFERENCE below is that SQL as it was written per entity, comments aside),
a written file must replace the template, and a model declared twice must be refused, naming both.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ledger_pipeline.lib.sql_models import MODELS_ROOT, TEMPLATE_FILE, ModelError, load_models
from ledger_pipeline.rails.qbo.entities import ENTITIES
from ledger_pipeline_tests.shared_ledger import SharedLedger

# The SQL of the files dbt_like_sql/{mirror,history}/qbo_<entities>.sql before the templates, per materialization.
REFERENCE = {
    "mirror": """
        with versions as (select * from stg.qbo_{table}),
        latest as (
            select * from versions
            qualify row_number() over (partition by tenant_id, qbo_id order by log_seq desc) = 1
        ),
        final as (select * exclude (op) from latest where op <> 'deleted')
        select * from final
    """,
    "history": """
        with versions as (select * from stg.qbo_{table}),
        final as (
            select
                *,
                last_synced_at as valid_from,
                lead(last_synced_at) over (partition by tenant_id, qbo_id order by log_seq) as valid_to,
                valid_to is null and op <> 'deleted' as is_current
            from versions
        )
        select * from final
    """,
}
DERIVED = [(schema, f"qbo_{e.table}") for e in ENTITIES for schema in ("mirror", "history")]


def _models() -> dict[str, object]:
    return {m.name: m for m in load_models()}


def test_every_qbo_stg_view_derives_its_mirror_and_history_from_the_templates():
    models = _models()
    for schema, table in DERIVED:
        model = models[f"{schema}.{table}"]
        assert (model.materialized, model.key) == (schema, "qbo_id")
        assert model.path == MODELS_ROOT / schema / TEMPLATE_FILE
        assert model.declared_by == MODELS_ROOT / "stg" / f"{table}.sql"
        assert model.depends_on == (("stg", table),)
        assert not (MODELS_ROOT / schema / f"{table}.sql").exists(), "a copy of the template is written out again"
    assert TEMPLATE_FILE not in {m.path.name for m in models.values() if m.declared_by is None}
    assert not any(m.schema in ("mirror", "history") and m.declared_by is None for m in models.values())


def test_the_qbo_models_are_what_the_files_made_before():
    found = {(m.name, m.materialized, m.config.get("key")) for m in load_models() if m.table.startswith("qbo_")}
    expected = {(f"stg.qbo_{e.table}", "view", "qbo_id") for e in ENTITIES} | {
        (f"{schema}.{table}", schema, "qbo_id") for schema, table in DERIVED
    }
    assert found == expected


def test_descriptions_name_the_stg_view_and_the_template():
    bills = _models()["mirror.qbo_bills"]
    comments = [line for line in bills.sql.splitlines() if line.startswith("--")]
    assert "stg.qbo_bills" in comments[0] and "{{" not in bills.sql
    assert bills.path.name == TEMPLATE_FILE and "declared by" in bills.origin and "stg/qbo_bills.sql" in bills.origin


@pytest.mark.parametrize(("schema", "table"), DERIVED)
def test_derived_model_builds_what_the_written_file_built(shared_ledger: SharedLedger, schema: str, table: str):
    model = _models()[f"{schema}.{table}"]
    reference = REFERENCE[schema].format(table=table.removeprefix("qbo_"))
    query = shared_ledger.project.query
    assert query(f"describe select * from ({model.body})") == query(f"describe {reference}")
    differences = f"""
        select count(*), (select count(*) from ({reference})) from (
            (select * from ({model.body}) except all select * from ({reference}))
            union all
            (select * from ({reference}) except all select * from ({model.body}))
        )
    """
    different, rows = query(differences)[0]
    assert different == 0 and rows > 0
    if schema == "history":  # the table the run kept holds exactly what the old SQL computes from the log
        kept = f"select count(*) from (select * from {model.name} except all select * from ({reference}))"
        assert query(kept)[0][0] == 0
        assert query(f"select count(*) from {model.name}")[0][0] == rows


def _tree(root: Path, files: dict[str, str]) -> Path:
    """A models folder with the real templates and the given files."""
    for schema in ("mirror", "history"):
        (root / schema).mkdir(parents=True)
        shutil.copy(MODELS_ROOT / schema / TEMPLATE_FILE, root / schema / TEMPLATE_FILE)
    for name, sql in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(sql)
    return root


STG = "-- config: key={key}\n-- config: derive={derive}\nselect * from raw.{table}\n"


def test_a_new_rail_gets_its_models_with_its_own_key(tmp_path: Path):
    root = _tree(tmp_path, {"stg/stripe_charges.sql": STG.format(key="stripe_id", derive="mirror,history",
                                                                  table="stripe_charges")})
    models = {m.name: m for m in load_models(root)}
    assert sorted(models) == ["history.stripe_charges", "mirror.stripe_charges", "stg.stripe_charges"]
    mirror = models["mirror.stripe_charges"]
    assert (mirror.materialized, mirror.key, mirror.depends_on) == ("mirror", "stripe_id", (("stg", "stripe_charges"),))
    assert "partition by tenant_id, stripe_id order by log_seq desc" in mirror.sql
    assert [m.name for m in load_models(root)][0] == "stg.stripe_charges"  # dependency order holds


def test_only_the_declared_schemas_are_derived(tmp_path: Path):
    root = _tree(tmp_path, {"stg/acme_things.sql": STG.format(key="acme_id", derive="history", table="acme_things")})
    assert sorted(m.name for m in load_models(root)) == ["history.acme_things", "stg.acme_things"]


def test_a_written_file_replaces_the_template(tmp_path: Path):
    specific = "-- Specific.\n-- config: materialized=mirror\n-- config: key=acme_id\nselect * from stg.acme_things\n"
    root = _tree(tmp_path, {
        "stg/acme_things.sql": STG.format(key="acme_id", derive="mirror,history", table="acme_things"),
        "mirror/acme_things.sql": specific,
    })
    models = {m.name: m for m in load_models(root)}
    assert models["mirror.acme_things"].sql == specific
    assert models["mirror.acme_things"].path == root / "mirror" / "acme_things.sql"
    assert models["mirror.acme_things"].declared_by is None
    assert models["history.acme_things"].path == root / "history" / TEMPLATE_FILE


def test_a_model_derived_twice_is_refused_naming_both(tmp_path: Path):
    root = _tree(tmp_path, {
        "stg/acme_things.sql": STG.format(key="acme_id", derive="mirror", table="acme_things"),
        "staging/acme_things.sql": STG.format(key="acme_id", derive="mirror", table="acme_things"),
    })
    with pytest.raises(ModelError, match="mirror.acme_things is defined twice") as raised:
        load_models(root)
    assert "stg/acme_things.sql" in str(raised.value) and "staging/acme_things.sql" in str(raised.value)


@pytest.mark.parametrize(
    ("stg", "template", "message"),
    [
        (STG.format(key="acme_id", derive="marts", table="t"), None, "derive='marts' has no template"),
        (STG.format(key="acme_id", derive="mirror,mirror", table="t"), None, "names a schema twice"),
        ("-- config: derive=mirror\nselect * from raw.t\n", None, "derive= needs '-- config: key=<column>'"),
        (STG.format(key="acme_id", derive="mirror", table="t"), "select {{ owner }} from {{source}}",
         r"unknown placeholder \{\{ owner \}\}"),
    ],
)
def test_unusable_declarations_and_templates_are_refused(tmp_path: Path, stg: str, template: str | None, message: str):
    root = _tree(tmp_path, {"stg/t.sql": stg})
    if template is not None:
        (root / "mirror" / TEMPLATE_FILE).write_text(template)
    with pytest.raises(ModelError, match=message):
        load_models(root)
