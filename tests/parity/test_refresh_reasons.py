"""Telemetry refresh reasons, side by side with real msal on the same emulator.

msal tells the service why a flow with a cache went to the network: in
``x-client-current-telemetry: 4|<api id>,<reason>|`` the reason is 1 (force_refresh or a claims
challenge), 2 (no access token), 3 (an access token with less than 5 minutes left) or 4 (past its
``refresh_on``). The flows with a cache (``acquire_token_for_client``, ``acquire_token_silent``)
must send the same reason as msal in each case, and nothing else may differ beyond the README's
deliberate differences.
"""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
import msal
import pytest
import requests

import msal_async

from ..conftest import HttpsAuthority
from .harness import (
    APP_SCOPES,
    REDIRECT_URI,
    SCOPES,
    USER,
    Dicts,
    Outcome,
    browse,
    msal_cca,
    msal_pca,
    our_cca,
    our_pca,
    run,
)
from .test_differences import unexplained

pytestmark = pytest.mark.anyio

CLAIMS = '{"access_token": {"nbf": {"essential": true, "value": "1700000000"}}}'
OTHER_SCOPES = ["Mail.Read"]


def shift_access_tokens(cache: Any, **seconds_from_now: int) -> None:
    """Set ``expires_on`` / ``refresh_on`` of every cached access token, through the public API.

    The same for both libraries: their caches serialize to the same format.
    """
    state = json.loads(cache.serialize())
    now = int(time.time())
    for entry in state.get("AccessToken", {}).values():
        for name, delta in seconds_from_now.items():
            entry[name] = str(now + delta)
    cache.deserialize(json.dumps(state))


def current_telemetry(outcome: Outcome) -> list[str]:
    """The ``x-client-current-telemetry`` of each token request, in order."""
    return [
        r.headers["x-client-current-telemetry"]
        for r in outcome.requests
        if r.path.endswith("/token")
    ]


# --- acquire_token_for_client (api id 730) -------------------------------------------------


def msal_app_tokens(https: HttpsAuthority, session: requests.Session) -> Dicts:
    cache = msal.SerializableTokenCache()
    app = msal_cca(https, session, token_cache=cache)
    absent = app.acquire_token_for_client(APP_SCOPES)
    hit = app.acquire_token_for_client(APP_SCOPES)
    shift_access_tokens(cache, expires_on=60)
    expired = app.acquire_token_for_client(APP_SCOPES)
    shift_access_tokens(cache, refresh_on=-10)
    aging = app.acquire_token_for_client(APP_SCOPES)
    claims = app.acquire_token_for_client(APP_SCOPES, claims_challenge=CLAIMS)
    return {"absent": absent, "hit": hit, "expired": expired, "aging": aging, "claims": claims}


async def our_app_tokens(https: HttpsAuthority) -> Dicts:
    cache = msal_async.SerializableTokenCache()
    # Outside ``async with``, an aging token is refreshed inline, as msal does.
    app = our_cca(https, token_cache=cache)
    try:
        absent = await app.acquire_token_for_client(APP_SCOPES)
        hit = await app.acquire_token_for_client(APP_SCOPES)
        shift_access_tokens(cache, expires_on=60)
        expired = await app.acquire_token_for_client(APP_SCOPES)
        shift_access_tokens(cache, refresh_on=-10)
        aging = await app.acquire_token_for_client(APP_SCOPES)
        claims = await app.acquire_token_for_client(APP_SCOPES, claims_challenge=CLAIMS)
    finally:
        await app.aclose()
    return {"absent": absent, "hit": hit, "expired": expired, "aging": aging, "claims": claims}


async def test_acquire_token_for_client_sends_msals_refresh_reasons(
    https: HttpsAuthority,
) -> None:
    theirs, ours = await run(https, msal_app_tokens, our_app_tokens)
    expected = ["4|730,2|", "4|730,3|", "4|730,4|", "4|730,1|"]
    assert current_telemetry(theirs) == expected  # what msal 1.39 really sends
    assert current_telemetry(ours) == expected
    assert unexplained("refresh reasons", theirs, ours) == set()


async def test_an_aging_token_refreshed_in_the_background_sends_reason_4(
    https: HttpsAuthority,
) -> None:
    cache = msal_async.SerializableTokenCache()
    async with our_cca(https, token_cache=cache) as app:
        await app.acquire_token_for_client(APP_SCOPES)
        shift_access_tokens(cache, refresh_on=-10)
        start = len(https.emulator.requests)
        await app.acquire_token_for_client(APP_SCOPES)
    [refresh] = https.emulator.requests[start:]  # ended with the app's task group
    assert refresh.headers["x-client-current-telemetry"] == "4|730,4|"


# --- acquire_token_silent (api id 84) and acquire_token_by_refresh_token (85) ---------------


def msal_user_tokens(https: HttpsAuthority, session: requests.Session) -> Dicts:
    cache = msal.SerializableTokenCache()
    app = msal_pca(https, session, token_cache=cache)
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI, login_hint=USER)
    signed_in = app.acquire_token_by_auth_code_flow(flow, browse(https, flow["auth_uri"]))
    [account] = app.get_accounts()
    absent = app.acquire_token_silent(OTHER_SCOPES, account)
    shift_access_tokens(cache, expires_on=60)
    expired = app.acquire_token_silent(SCOPES, account)
    shift_access_tokens(cache, refresh_on=-10)
    aging = app.acquire_token_silent(SCOPES, account)
    forced = app.acquire_token_silent(SCOPES, account, force_refresh=True)
    claims = app.acquire_token_silent(SCOPES, account, claims_challenge=CLAIMS)
    migrated = app.acquire_token_by_refresh_token(signed_in["refresh_token"], SCOPES)
    return {
        "absent": absent,
        "expired": expired,
        "aging": aging,
        "force_refresh": forced,
        "claims": claims,
        "refresh token": migrated,
    }


async def our_user_tokens(https: HttpsAuthority) -> Dicts:
    cache = msal_async.SerializableTokenCache()
    app = our_pca(https, token_cache=cache)
    try:
        flow = await app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI, login_hint=USER)
        response = await anyio.to_thread.run_sync(browse, https, flow["auth_uri"])
        signed_in = await app.acquire_token_by_auth_code_flow(flow, response)
        [account] = await app.get_accounts()
        absent = await app.acquire_token_silent(OTHER_SCOPES, account)
        shift_access_tokens(cache, expires_on=60)
        expired = await app.acquire_token_silent(SCOPES, account)
        shift_access_tokens(cache, refresh_on=-10)
        aging = await app.acquire_token_silent(SCOPES, account)
        forced = await app.acquire_token_silent(SCOPES, account, force_refresh=True)
        claims = await app.acquire_token_silent(SCOPES, account, claims_challenge=CLAIMS)
        migrated = await app.acquire_token_by_refresh_token(signed_in["refresh_token"], SCOPES)
    finally:
        await app.aclose()
    results = {"absent": absent, "expired": expired, "aging": aging}
    results |= {"force_refresh": forced, "claims": claims}
    assert all(r is not None for r in results.values())
    return {**results, "refresh token": migrated}  # type: ignore[dict-item]


async def test_acquire_token_silent_sends_msals_refresh_reasons(https: HttpsAuthority) -> None:
    theirs, ours = await run(https, msal_user_tokens, our_user_tokens)
    expected = ["4|832,0|", "4|84,2|", "4|84,3|", "4|84,4|", "4|84,1|", "4|84,1|", "4|85,1|"]
    assert current_telemetry(theirs) == expected  # what msal 1.39 really sends
    assert current_telemetry(ours) == expected
    assert unexplained("refresh reasons", theirs, ours) == set()
