"""Validation of every identifier that reaches SQL, file paths or a rail: reject early, name the problem."""

from __future__ import annotations

import ipaddress
import math
import os
import re
from fractions import Fraction
from pathlib import Path

TENANT_ID = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
ENV_VAR_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,127}$")
ENTITY_NAME = re.compile(r"^[A-Za-z][A-Za-z_]{0,39}$")
MAX_TIMESTAMP_CHARS = 40

MAX_PATH_CHARS = 1024
MAX_NAME_BYTES = 255  # one path component, as Linux file systems allow
MAX_ADVANCE_DAYS = 365.0
PLAIN_DECIMAL = re.compile(r"[0-9]{1,6}(?:\.[0-9]{1,12})?")  # --days: ASCII digits only
# Output files never go here, even for root: a typo or a hostile argument must not overwrite the system.
SYSTEM_DIRECTORIES = tuple(
    Path(p)
    for p in (
        "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/run",
        "/sbin", "/sys", "/usr", "/var/lib", "/var/log", "/var/run", "/var/spool",
    )
)  # fmt: skip
_SHOWN_CHARS = 80


class InvalidInput(ValueError):
    """An identifier or argument that the pipeline refuses to use."""


def shown(value: object) -> str:
    """repr() of a refused value, clipped so that a huge argument still gives a one-line message."""
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else f"{text[: _SHOWN_CHARS - 5]}...{text[-1]}"


def tenant_id(value: object) -> str:
    """A tenant id: lower-case letter first, then letters, digits, '_' or '-', at most 63 characters."""
    if not isinstance(value, str) or not TENANT_ID.fullmatch(value):
        raise InvalidInput(
            f"invalid tenant id {shown(value)}: use 1-63 characters, a lower-case letter first, "
            "then lower-case letters, digits, '_' or '-'"
        )
    return value


def env_var_name(value: object) -> str:
    """The name of an environment variable that holds a secret (never the secret itself)."""
    if not isinstance(value, str) or not ENV_VAR_NAME.fullmatch(value):
        # Not echoed: a secret pasted where its variable's name belongs must not reach a terminal or a log.
        raise InvalidInput(
            "invalid environment variable name (value not shown, in case it is a secret): expected the NAME of a "
            "variable, an upper-case letter then A-Z, 0-9 or '_', at most 128 characters"
        )
    return value


def entity_name(value: object) -> str:
    """An entity as a person types it ("bills", "Bill", "bill_payments"): letters and '_', at most 40."""
    if not isinstance(value, str) or not ENTITY_NAME.fullmatch(value.strip()):
        raise InvalidInput(f"unknown entity {shown(value)}: entity names are letters and '_', e.g. bills or Bill")
    return value.strip()


def timestamp_text(value: object) -> str:
    """A short, printable timestamp argument, before it is parsed (so a refusal never echoes a huge value)."""
    if not isinstance(value, str) or len(value) > MAX_TIMESTAMP_CHARS or not value.isprintable():
        raise InvalidInput(
            f"invalid timestamp {shown(value)}: expected ISO 8601 with a timezone, e.g. 2026-03-31T23:59:59Z"
        )
    return value


def output_file(value: object, suffixes: tuple[str, ...]) -> Path:
    """A file the CLI may create: printable name, known suffix, in an existing, writable, non-system directory.

    The check is on the resolved path, so `..` components and symlinks cannot
    lead a write into a system directory.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"invalid output path {shown(value)}: name a file")
    if len(value) > MAX_PATH_CHARS or any(len(os.fsencode(p)) > MAX_NAME_BYTES for p in Path(value).parts):
        raise InvalidInput(f"output path {shown(value)} is too long")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidInput(f"output path {shown(value)} contains control characters")
    path = Path(value)
    if path.suffix.lower() not in suffixes:
        raise InvalidInput(f"output file {shown(value)} must end in {' or '.join(suffixes)}")
    if path.is_dir():
        raise InvalidInput(f"output path {shown(value)} is a directory; name a file")
    if not path.parent.is_dir():
        raise InvalidInput(f"output directory {shown(str(path.parent))} does not exist")
    target = path.resolve()
    if target.parent == Path(target.anchor) or any(target.parent.is_relative_to(d) for d in SYSTEM_DIRECTORIES):
        raise InvalidInput(f"output path {shown(value)} is in the system directory {target.parent}; choose another")
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise InvalidInput(f"cannot write into {target.parent}: permission denied")
    return path


def advance_days(value: str | float) -> float:
    """How far to move the sandbox clock: one minute (1/1440 day) to 365 days.

    Text (what `--days` receives) must be a plain ASCII decimal such as 3, 0.5 or 2.25: no exponent,
    sign, '_', spaces, other scripts' digits, nan or inf, all of which float() would take.
    """
    expected = (
        f"expected a plain decimal number of days such as 3, 0.5 or 2.25, "
        f"from one minute (0.0007) to {MAX_ADVANCE_DAYS:g}"
    )
    if isinstance(value, str):
        if not PLAIN_DECIMAL.fullmatch(value):
            try:
                float(value)
                unparsable = ""
            except ValueError:
                unparsable = "invalid float value; "
            raise InvalidInput(f"invalid --days {shown(value)}: {unparsable}{expected}")
        days = Fraction(value)
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        days = Fraction(value)
    else:
        raise InvalidInput(f"invalid --days {shown(value)}: {expected}")
    if not Fraction(1, 1440) <= days <= MAX_ADVANCE_DAYS:
        raise InvalidInput(f"invalid --days {shown(value)}: {expected}")
    return value if isinstance(value, float) else float(days)


def port(value: int) -> int:
    """A TCP port to listen on: 1-65535."""
    if not 1 <= value <= 65535:
        raise InvalidInput(f"invalid port {value}: expected 1-65535")
    return value


def loopback_host(value: str) -> str:
    """The sandbox's admin endpoints have no auth, so it only ever listens on a loopback address."""
    if value == "localhost":
        return value
    try:
        loopback = ipaddress.ip_address(value).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise InvalidInput(f"invalid --host {shown(value)}: the sandbox listens only on loopback (127.0.0.1, ::1)")
    return value
