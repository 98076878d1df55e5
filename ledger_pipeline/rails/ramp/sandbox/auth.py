"""OAuth for the Ramp sandbox: documented demo keys, stateless signed tokens, strictly rotating refresh tokens.

Two kinds of client, as Ramp has them: the app serving many businesses (CLIENT_ID / CLIENT_SECRET; grants
`authorization_code` and `refresh_token`) and each business's own API client (`client_credentials_for`; grant
`client_credentials`). Tokens are `ramp_tok_` plus a signed claim (business, scopes, expiry or generation), so
any process checks them; only the current refresh-token generation of a business (kept in the QBO sandbox's
shared state) is accepted. The signing key is public on purpose: sandbox values, documented in docs/sandbox.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

from .spec import SCOPES

CLIENT_ID = "ramp_id_sbxLedgerPipelineDemoApp00000000000001"
CLIENT_SECRET = "ramp_sec_sbxLedgerPipelineDemoSecretNotForProduction001"
REDIRECT_URI = "https://ledger-pipeline.example/ramp/callback"  # the app's registered redirect URI
CLIENT_CREDENTIALS_SECONDS = 864_000  # 10 days, Ramp's documented lifetime for client-credentials tokens
APP_ACCESS_SECONDS = 3_600  # what Ramp's token example answers for the authorization-code grants
TOKEN_PREFIX = "ramp_tok_"
_KEY = b"ledger-pipeline ramp sandbox signing key (public, sandbox only)"
_SIG = 24
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def state_key(business_id: str) -> str:
    """The business's key in the QBO sandbox's shared state (refresh generations, revocations): never a realm."""
    return f"ramp:{business_id}"


def scope_mask(scopes: frozenset[str] | tuple[str, ...]) -> int:
    return sum(1 << i for i, name in enumerate(SCOPES) if name in scopes)


def scopes_of(mask: int) -> tuple[str, ...]:
    return tuple(name for i, name in enumerate(SCOPES) if mask >> i & 1)


def _chars(length: int, *parts: object) -> str:
    """`length` letters and digits derived from `parts` (Ramp's keys are prefixed base-62 strings)."""
    number = int.from_bytes(hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=64).digest(), "big")
    out = []
    for _ in range(length):
        number, digit = divmod(number, 62)
        out.append(_ALPHABET[digit])
    return "".join(out)


def client_credentials_for(business_id: str) -> tuple[str, str]:
    """(client_id, client_secret) of the business's own API client (grant `client_credentials`, every scope)."""
    return f"ramp_id_{_chars(40, 'client', business_id)}", f"ramp_sec_{_chars(48, 'secret', business_id)}"


def _sign(payload: str) -> str:
    return hmac.new(_KEY, payload.encode(), hashlib.sha256).hexdigest()[:_SIG]


def _seal(payload: str) -> str:
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=") + _sign(payload)


def _open(text: str, kind: str, fields: int) -> list[str] | None:
    """The fields of a sealed claim of `kind`, or None if it is not one (forged, cut, another kind)."""
    if not isinstance(text, str) or len(text) <= _SIG:
        return None
    body, sig = text[:-_SIG], text[-_SIG:]
    try:
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    if not hmac.compare_digest(sig, _sign(payload)):
        return None
    parts = payload.split("|")
    return parts[1:] if len(parts) == fields + 1 and parts[0] == kind else None


def authorization_code_for(business_id: str, scopes: tuple[str, ...] = SCOPES) -> str:
    """The code an admin of the business would hand the app after consenting to `scopes` (redirect URI
    REDIRECT_URI). Real codes live 10 minutes and work once; the sandbox's never expire and may be exchanged again,
    each exchange starting a new refresh-token generation (so tests and demos need no browser)."""
    return _seal(f"c|{business_id}|{scope_mask(scopes)}")


def read_code(code: str) -> tuple[str, tuple[str, ...]] | None:
    fields = _open(code, "c", 2)
    return None if fields is None or not fields[1].isdigit() else (fields[0], scopes_of(int(fields[1])))


def refresh_token(business_id: str, generation: int, scopes: tuple[str, ...] = SCOPES) -> str:
    return TOKEN_PREFIX + _seal(f"r|{business_id}|{generation}|{scope_mask(scopes)}")


def initial_refresh_token(business_id: str) -> str:
    """The business's first refresh token (every scope): valid until the first refresh or code exchange."""
    return refresh_token(business_id, 0)


@dataclass(frozen=True)
class RefreshClaim:
    business_id: str
    generation: int
    scopes: tuple[str, ...]


def read_refresh_token(token: str) -> RefreshClaim | None:
    fields = _open(token[len(TOKEN_PREFIX):], "r", 3) if token.startswith(TOKEN_PREFIX) else None
    if fields is None or not fields[1].isdigit() or not fields[2].isdigit():
        return None
    return RefreshClaim(fields[0], int(fields[1]), scopes_of(int(fields[2])))


@dataclass(frozen=True)
class AccessClaim:
    business_id: str
    scopes: tuple[str, ...]
    expires_at: int  # epoch seconds on the sandbox clock
    app: bool  # issued to the many-business app (revocable), not to the business's own client


def access_token(claim: AccessClaim) -> str:
    return TOKEN_PREFIX + _seal(f"a|{claim.business_id}|{scope_mask(claim.scopes)}|{claim.expires_at}|"
                                f"{'app' if claim.app else 'own'}")  # fmt: skip


def read_access_token(token: str) -> AccessClaim | None:
    fields = _open(token[len(TOKEN_PREFIX):], "a", 4) if token.startswith(TOKEN_PREFIX) else None
    if fields is None or not fields[1].isdigit() or not fields[2].isdigit() or fields[3] not in ("app", "own"):
        return None
    return AccessClaim(fields[0], scopes_of(int(fields[1])), int(fields[2]), fields[3] == "app")


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(client_id, client_secret) of an `Authorization: Basic` header, or None."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    client_id, colon, secret = decoded.partition(":")
    return (client_id, secret) if colon else None


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
