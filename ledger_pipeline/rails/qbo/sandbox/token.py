"""The OAuth 2 token endpoint: refresh_token grant with rotation, as Intuit's does it."""

from __future__ import annotations

from urllib.parse import parse_qs

import httpx

from . import responses as R
from .auth import (ACCESS_TOKEN_SECONDS, REFRESH_TOKEN_SECONDS, access_token, check_basic_auth, read_refresh_token,
                   realm_of_refresh_token, refresh_token)
from .faults import reset_error, token_fault_response, truncate
from .oddities import sleep_or_time_out, wrong_content_type
from .sandbox import QboSandbox
from .state import SharedState


def handle_token(sb: QboSandbox, request: httpx.Request) -> httpx.Response:
    if request.method != "POST":
        return R.oauth_error(405, "invalid_request")
    form = parse_qs(request.content.decode("utf-8", "replace"), keep_blank_values=True)
    presented = (form.get("refresh_token") or [""])[0]
    realm_hint = realm_of_refresh_token(presented)
    fired = sb.take_fault(realm_hint, "token") if realm_hint in sb.specs else None
    fault = fired[0] if fired else None
    if fault is not None:
        if fault.kind == "reset":
            raise reset_error(request, fired[1])
        if fault.kind == "slow":
            sleep_or_time_out(request, fault.delay)
        elif fault.kind == "wrong_content_type":
            return wrong_content_type()
        elif fault.kind not in ("malformed_page", "shift", "duplicate"):
            return token_fault_response(fault)
    response = _grant(sb, request, form, presented)
    return truncate(response) if fault is not None and fault.kind == "malformed_page" else response


def _grant(sb: QboSandbox, request: httpx.Request, form: dict[str, list[str]], presented: str) -> httpx.Response:
    if not check_basic_auth(request.headers.get("authorization")):
        return R.oauth_error(401, "invalid_client")
    if (form.get("grant_type") or [""])[0] != "refresh_token":
        return R.oauth_error(400, "unsupported_grant_type")
    if not presented:
        return R.oauth_error(400, "invalid_request")
    claim = read_refresh_token(presented)
    if claim is None or claim.realm_id not in sb.specs:
        return R.oauth_error(400, "invalid_grant")

    def rotate(state: SharedState) -> tuple[int, int] | None:
        current = state.generations.get(claim.realm_id, 0)
        if claim.generation != current or claim.realm_id in state.revoked:
            return None
        state.generations[claim.realm_id] = current + 1
        return current + 1, state.clock_us // 1_000_000

    rotated = sb.store.mutate(rotate)
    if rotated is None:
        return R.oauth_error(400, "invalid_grant")
    generation, now = rotated
    payload = {"token_type": "bearer", "access_token": access_token(claim.realm_id, now + ACCESS_TOKEN_SECONDS,
                                                                    generation),
               "expires_in": ACCESS_TOKEN_SECONDS, "refresh_token": refresh_token(claim.realm_id, generation),
               "x_refresh_token_expires_in": REFRESH_TOKEN_SECONDS}
    return httpx.Response(200, headers={"Content-Type": "application/json;charset=UTF-8", "Cache-Control": "no-store",
                                        "Pragma": "no-cache"}, content=R.dumps(payload))
