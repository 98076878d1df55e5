"""DAGSTER_HOME, checked before Dagster opens an instance there, so a bad one is one line naming it, not a traceback.

Plain Python (no Dagster import): `ledger_pipeline.commands.dagster_instance` calls `check` before
`DagsterInstance.get()`, and `verify` asks `holds_instance` so that a read-only audit never creates
Dagster's database files in a folder that has none yet.
"""

from __future__ import annotations

import os
from pathlib import Path

VARIABLE = "DAGSTER_HOME"
CONFIG_FILE = "dagster.yaml"
FIX = "set DAGSTER_HOME to the absolute path of an existing folder (make demo and make ui use .dagster_home/)"


class DagsterHomeError(RuntimeError):
    """DAGSTER_HOME is unset, relative, not a folder, or its dagster.yaml cannot be read as settings."""


def configured() -> str | None:
    """The variable's value, or None when it is unset or empty."""
    return os.environ.get(VARIABLE) or None


def check() -> Path:
    """The Dagster home folder, or DagsterHomeError naming the variable (or its dagster.yaml) and the fix.

    Checks what Dagster would refuse with a traceback: unset, relative (Dagster needs an absolute path),
    missing or not a folder, and a dagster.yaml (when present) that is not a YAML mapping. Creates nothing.
    """
    raw = configured()
    if raw is None:
        raise DagsterHomeError(f"{VARIABLE} is not set: {FIX}")
    home = Path(os.path.expanduser(raw))  # as Dagster reads it
    if not home.is_absolute():
        raise DagsterHomeError(f"{VARIABLE}={raw!r} is a relative path: {FIX}")
    config = home / CONFIG_FILE
    try:
        if not home.exists():
            raise DagsterHomeError(f"{VARIABLE}={raw!r} does not exist: create the folder or {FIX}")
        if not home.is_dir():
            raise DagsterHomeError(f"{VARIABLE}={raw!r} is not a folder: {FIX}")
        if not (config.exists() or config.is_symlink()):
            return home
        if not config.is_file():
            raise DagsterHomeError(
                f"{config} (in {VARIABLE}) is not a file: remove it or copy deploy/dagster.yaml there"
            )
        text = config.read_bytes()
    except OSError as exc:
        raise DagsterHomeError(
            f"cannot read {exc.filename or config} (in {VARIABLE}): {exc.strerror or exc}; {FIX}"
        ) from None
    import yaml  # here, not at import: the CLI imports this module on every command

    try:
        settings = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError) as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise DagsterHomeError(
            f"{config} (in {VARIABLE}) is not valid YAML{at}: fix it or replace it with deploy/dagster.yaml"
        ) from None
    if settings is not None and not isinstance(settings, dict):
        raise DagsterHomeError(
            f"{config} (in {VARIABLE}) holds a YAML {type(settings).__name__}, not a mapping of Dagster settings: "
            "fix it or replace it with deploy/dagster.yaml"
        )
    return home


def holds_instance(home: Path) -> bool:
    """Whether a Dagster instance was set up in home: a dagster.yaml, or the history/ folder of Dagster's default
    sqlite storage. Opening an instance in a folder with neither creates its database files there."""
    return (home / CONFIG_FILE).exists() or (home / "history").exists()
