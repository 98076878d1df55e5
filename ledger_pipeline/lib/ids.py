"""Validation of every identifier that reaches SQL, file paths or a rail: reject early, name the problem."""

from __future__ import annotations

import re

TENANT_ID = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
QBO_REALM_ID = re.compile(r"^[0-9]{1,20}$")
ENV_VAR_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,127}$")


class InvalidInput(ValueError):
    """An identifier or argument that the pipeline refuses to use."""


def tenant_id(value: object) -> str:
    """A tenant id: lower-case letter first, then letters, digits, '_' or '-', at most 63 characters."""
    if not isinstance(value, str) or not TENANT_ID.fullmatch(value):
        raise InvalidInput(
            f"invalid tenant id {value!r}: use 1-63 characters, a lower-case letter first, "
            "then lower-case letters, digits, '_' or '-'"
        )
    return value


def qbo_realm_id(value: object) -> str:
    """A QBO realm (company) id: 1-20 digits."""
    if not isinstance(value, str) or not QBO_REALM_ID.fullmatch(value):
        raise InvalidInput(f"invalid QBO realm id {value!r}: expected 1-20 digits")
    return value


def env_var_name(value: object) -> str:
    """The name of an environment variable that holds a secret (never the secret itself)."""
    if not isinstance(value, str) or not ENV_VAR_NAME.fullmatch(value):
        raise InvalidInput(f"invalid environment variable name {value!r}: expected A-Z, 0-9 and '_'")
    return value
