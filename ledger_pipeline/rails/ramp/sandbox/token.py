"""POST /developer/v1/token: Basic client authentication, a form body, three grants.

`client_credentials` (a business's own API client; `scope` required, a subset of what it may have) answers an
access token alone; `authorization_code` and `refresh_token` (the many-business app) answer an access token and
a new refresh token. Rotation is strict: each refresh (and each code exchange) moves the business to the next
refresh-token generation in the QBO sandbox's shared state, so the token just used, and any older one, answers
invalid_grant in every process. Revocation (`RampSandbox.revoke`) refuses the app's refresh tokens until a code
is exchanged again (the admin re-authorised the app) or `reconnect` is called.
"""

from __future__ import annotations

from urllib.parse import parse_qs

import httpx

from .auth import (APP_ACCESS_SECONDS, CLIENT_CREDENTIALS_SECONDS, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI,
                   AccessClaim, access_token, basic_credentials, read_code, read_refresh_token, refresh_token, same,
                   state_key)
from .responses import OAuthError, json_response
from .sandbox import RampSandbox
from .spec import SCOPES

GRANTS = ("authorization_code", "client_credentials", "refresh_token")


def handle_token(sb: RampSandbox, request: httpx.Request, trace_id: str) -> httpx.Response:
    if request.method != "POST":
        raise OAuthError(405, "invalid_request", "the token endpoint takes POST")
    kind = request.headers.get("content-type", "application/x-www-form-urlencoded").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise OAuthError(400, "invalid_request", "the body must be application/x-www-form-urlencoded")
    try:
        form = {k: v[-1] for k, v in parse_qs(request.content.decode("utf-8"), keep_blank_values=True).items()}
    except UnicodeDecodeError:
        raise OAuthError(400, "invalid_request", "the body is not UTF-8") from None
    presented = basic_credentials(request.headers.get("authorization"))
    if presented is None:
        raise OAuthError(401, "invalid_client", "client authentication failed: send HTTP Basic client_id:secret")
    app = same(presented[0], CLIENT_ID) and same(presented[1], CLIENT_SECRET)
    own = sb.business_of_client(*presented)
    if not app and own is None:
        raise OAuthError(401, "invalid_client", "client authentication failed: unknown client or wrong secret")
    grant = form.get("grant_type")
    if not grant:
        raise OAuthError(400, "invalid_request", "grant_type is required")
    if grant not in GRANTS:
        raise OAuthError(400, "unsupported_grant_type", f"grant_type must be one of {', '.join(GRANTS)}")
    if (grant == "client_credentials") == app:
        raise OAuthError(400, "unauthorized_client", f"grant type {grant} is not enabled for this client")
    if grant == "client_credentials":
        assert own is not None
        return _answer(trace_id, _client_credentials(sb, own, form))
    code_or_token = form.get("code") if grant == "authorization_code" else form.get("refresh_token")
    if not code_or_token:
        raise OAuthError(400, "invalid_request", f"{'code' if grant == 'authorization_code' else 'refresh_token'} "
                         "is required")  # fmt: skip
    if grant == "authorization_code":
        return _exchange_code(sb, trace_id, code_or_token, form)
    return _refresh(sb, trace_id, code_or_token, form)


def _scopes(requested: str | None, allowed: tuple[str, ...], *, required: bool) -> tuple[str, ...]:
    if requested is None or not requested.strip():
        if required:
            raise OAuthError(400, "invalid_request", "scope is required with grant_type client_credentials")
        return allowed
    wanted = requested.split()
    unknown = [s for s in wanted if s not in allowed]
    if unknown:
        raise OAuthError(400, "invalid_scope", f"scope(s) not granted to this client: {' '.join(unknown)}")
    return tuple(s for s in SCOPES if s in wanted)


def _client_credentials(sb: RampSandbox, business_id: str, form: dict[str, str]) -> dict:
    scopes = _scopes(form.get("scope"), SCOPES, required=True)
    expires = sb.now_seconds() + CLIENT_CREDENTIALS_SECONDS
    token = access_token(AccessClaim(business_id, scopes, expires, app=False))
    return {"access_token": token, "expires_in": CLIENT_CREDENTIALS_SECONDS, "scope": " ".join(scopes),
            "token_type": "Bearer"}


def _exchange_code(sb: RampSandbox, trace_id: str, code: str, form: dict[str, str]) -> httpx.Response:
    if not form.get("redirect_uri"):
        raise OAuthError(400, "invalid_request", "redirect_uri is required with grant_type authorization_code")
    claim = read_code(code)
    if claim is None or claim[0] not in sb.businesses:
        raise OAuthError(400, "invalid_grant", "authorization code is invalid or expired")
    if form["redirect_uri"] != REDIRECT_URI:
        raise OAuthError(400, "invalid_grant", "redirect_uri does not match the one of the authorization request")
    business_id, scopes = claim
    key = state_key(business_id)

    def authorise(state) -> int:
        state.revoked.discard(key)
        state.generations[key] = state.generations.get(key, 0) + 1
        return state.generations[key]

    return _answer(trace_id, _app_tokens(sb, business_id, scopes, sb.qbo.store.mutate(authorise)))


def _refresh(sb: RampSandbox, trace_id: str, token: str, form: dict[str, str]) -> httpx.Response:
    claim = read_refresh_token(token)
    if claim is None or claim.business_id not in sb.businesses:
        raise OAuthError(400, "invalid_grant", "refresh token is invalid")
    scopes = _scopes(form.get("scope"), claim.scopes, required=False)
    key = state_key(claim.business_id)

    def rotate(state) -> int | None:
        if key in state.revoked or state.generations.get(key, 0) != claim.generation:
            return None
        state.generations[key] = claim.generation + 1
        return claim.generation + 1

    generation = sb.qbo.store.mutate(rotate)
    if generation is None:
        raise OAuthError(400, "invalid_grant", "refresh token is invalid, revoked or already used")
    return _answer(trace_id, _app_tokens(sb, claim.business_id, claim.scopes, generation, scopes))


def _app_tokens(sb: RampSandbox, business_id: str, scopes: tuple[str, ...], generation: int,
                access_scopes: tuple[str, ...] | None = None) -> dict:
    granted = access_scopes or scopes
    expires = sb.now_seconds() + APP_ACCESS_SECONDS
    return {"access_token": access_token(AccessClaim(business_id, granted, expires, app=True)),
            "expires_in": APP_ACCESS_SECONDS, "refresh_token": refresh_token(business_id, generation, scopes),
            "scope": " ".join(granted), "token_type": "Bearer"}


def _answer(trace_id: str, body: dict) -> httpx.Response:
    return json_response(200, body, trace_id, {"Cache-Control": "no-store"})
