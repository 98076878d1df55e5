"""The models' column schemas are derived once per version of the code and SQL, then read from the user's cache:
every process that loads the definitions (run workers, CLI commands) would otherwise spend a second on them."""

from __future__ import annotations

import dataclasses

from ledger_pipeline.lib import catalog
from ledger_pipeline.lib.sql_models import load_models


def test_columns_are_derived_once_then_read_and_a_changed_model_derives_again(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    models = list(load_models())
    derived = catalog._derive(models)
    calls = []
    monkeypatch.setattr(catalog, "_derive", lambda m: calls.append(len(m)) or derived)

    assert catalog.model_columns(models) == derived and len(calls) == 1
    (cached,) = (tmp_path / "ledger_pipeline").glob("model-columns-*.json")
    assert catalog.model_columns(models) == derived and len(calls) == 1  # read back, tuples and all

    cached.write_text("{not json")  # a torn or foreign file is derived again and replaced
    assert catalog.model_columns(models) == derived and len(calls) == 2
    changed = [dataclasses.replace(models[0], sql=models[0].sql + "\n-- edited"), *models[1:]]
    catalog.model_columns(changed)
    assert len(calls) == 3 and len(list((tmp_path / "ledger_pipeline").glob("model-columns-*.json"))) == 2


def test_a_cache_folder_that_cannot_be_written_still_gives_the_columns(tmp_path, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))  # a file where the folder should be
    models = list(load_models())
    assert catalog.model_columns(models) == catalog._derive(models)
