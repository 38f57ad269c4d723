"""Wire parity and cache interop with real msal 1.39 for user tokens, over HTTPS loopback."""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import msal
import pytest
import requests

from msal_async import PublicClientApplication, SerializableTokenCache
from msal_async.testing import RecordedRequest, parse_auth_response

from ..conftest import HttpsAuthority
from ..test_wire_parity import GENERIC_HEADERS, msal_session

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::UserWarning")]

CLIENT_ID = "0e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b"
USERNAME = "parity@contoso.onmicrosoft.com"
SCOPES = ["User.Read"]
REDIRECT_URI = "http://localhost:8765/"
# Per-request values: random by design.
RANDOM_QUERY = {"state", "nonce", "code_challenge"}
RANDOM_FORM = {"code", "code_verifier", "refresh_token"}
VARYING_HEADERS = {"client-request-id", "x-client-sku", "x-client-ver", "x-client-last-telemetry"}


@pytest.fixture
def https(https_authority: HttpsAuthority) -> HttpsAuthority:
    """The module's HTTPS emulator with a public client and a signed-in user."""
    https_authority.emulator.register_client(CLIENT_ID)
    https_authority.emulator.add_user(USERNAME)
    return https_authority


def posts(https: HttpsAuthority, start: int, grant_type: str) -> list[RecordedRequest]:
    return [r for r in https.emulator.requests[start:] if r.form.get("grant_type") == grant_type]


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def msal_app(https: HttpsAuthority, session: requests.Session, **kwargs: Any) -> Any:
    return msal.PublicClientApplication(
        CLIENT_ID,
        authority=https.authority,
        http_client=session,
        instance_discovery=False,
        **kwargs,
    )


def msal_sign_in(https: HttpsAuthority, cache: Any = None, **flow_kwargs: Any) -> dict[str, Any]:
    with msal_session(https) as session:
        app = msal_app(https, session, token_cache=cache)
        flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI, **flow_kwargs)
        location = session.get(flow["auth_uri"], allow_redirects=False).headers["location"]
        result: dict[str, Any] = app.acquire_token_by_auth_code_flow(
            flow, parse_auth_response(location)
        )
        result["_auth_uri"] = flow["auth_uri"]
        return result


def ours(https: HttpsAuthority, **kwargs: Any) -> PublicClientApplication:
    return PublicClientApplication(
        CLIENT_ID,
        authority=https.authority,
        verify=https.ca_file,
        instance_discovery=False,
        **kwargs,
    )


async def our_sign_in(app: PublicClientApplication, https: HttpsAuthority, **kw: Any) -> Any:
    flow = await app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI, **kw)
    context = ssl.create_default_context(cafile=https.ca_file)
    async with httpx.AsyncClient(verify=context) as browser:
        location = (await browser.get(flow["auth_uri"])).headers["location"]
    result = dict(await app.acquire_token_by_auth_code_flow(flow, parse_auth_response(location)))
    result["_auth_uri"] = flow["auth_uri"]
    return result


def assert_same_request(theirs: RecordedRequest, mine: RecordedRequest) -> None:
    assert mine.path == theirs.path
    assert set(mine.form) == set(theirs.form)
    for name in set(theirs.form) - RANDOM_FORM:
        assert mine.form[name] == theirs.form[name], name
    their_headers = set(theirs.headers) - GENERIC_HEADERS
    assert set(mine.headers) - GENERIC_HEADERS == their_headers
    for name in their_headers - VARYING_HEADERS:
        assert mine.headers[name] == theirs.headers[name], name


async def test_auth_code_flow_matches_msal(https: HttpsAuthority) -> None:
    options = {"login_hint": USERNAME, "prompt": "select_account", "max_age": 3600}
    start = len(https.emulator.requests)
    theirs = await anyio.to_thread.run_sync(lambda: msal_sign_in(https, **options))
    middle = len(https.emulator.requests)
    async with ours(https) as app:
        mine = await our_sign_in(app, https, **options)
    assert "access_token" in theirs
    assert "access_token" in mine
    their_query, my_query = query_of(theirs["_auth_uri"]), query_of(mine["_auth_uri"])
    assert set(my_query) == set(their_query)
    for name in set(their_query) - RANDOM_QUERY:
        assert my_query[name] == their_query[name], name
    assert urlsplit(mine["_auth_uri"]).path == urlsplit(theirs["_auth_uri"]).path
    [their_post] = posts(https, start, "authorization_code")[:1]
    [my_post] = posts(https, middle, "authorization_code")
    assert_same_request(their_post, my_post)


async def test_silent_refresh_and_rt_migration_match_msal(https: HttpsAuthority) -> None:
    def theirs_refresh() -> str:
        cache = msal.SerializableTokenCache()
        msal_sign_in(https, cache=cache)
        with msal_session(https) as session:
            app = msal_app(https, session, token_cache=cache)
            [account] = app.get_accounts()
            assert app.acquire_token_silent(SCOPES, account, force_refresh=True)
            rt = next(iter(cache.search("RefreshToken")))["secret"]
            assert "access_token" in app.acquire_token_by_refresh_token(rt, SCOPES)
        return str(rt)

    start = len(https.emulator.requests)
    await anyio.to_thread.run_sync(theirs_refresh)
    middle = len(https.emulator.requests)
    async with ours(https) as app:
        await our_sign_in(app, https)
        [account] = await app.get_accounts()
        assert await app.acquire_token_silent(SCOPES, account, force_refresh=True)
        rt = next(iter(app.token_cache.search("RefreshToken")))["secret"]
        assert "access_token" in await app.acquire_token_by_refresh_token(rt, SCOPES)
    their_silent, their_migration = posts(https, start, "refresh_token")[:2]
    my_silent, my_migration = posts(https, middle, "refresh_token")
    assert_same_request(their_silent, my_silent)
    assert_same_request(their_migration, my_migration)


async def test_msal_cache_serves_our_silent_calls_then_refreshes(https: HttpsAuthority) -> None:
    cache = msal.SerializableTokenCache()
    signed = await anyio.to_thread.run_sync(lambda: msal_sign_in(https, cache=cache))
    mine = SerializableTokenCache()
    mine.deserialize(cache.serialize())
    start = len(https.emulator.requests)
    async with ours(https, token_cache=mine) as app:
        [account] = await app.get_accounts(username=USERNAME)
        hit = await app.acquire_token_silent(SCOPES, account)
        assert hit is not None
        assert hit["access_token"] == signed["access_token"]
        assert hit["token_source"] == "cache"
        assert len(https.emulator.requests) == start  # no HTTP at all
        fresh = await app.acquire_token_silent(SCOPES, account, force_refresh=True)
    assert fresh is not None
    assert fresh["token_source"] == "identity_provider"
    [refresh] = posts(https, start, "refresh_token")
    assert refresh.form["refresh_token"] == signed["refresh_token"]


async def test_our_cache_serves_msal_silent_calls_then_refreshes(https: HttpsAuthority) -> None:
    async with ours(https, token_cache=SerializableTokenCache()) as app:
        signed = await our_sign_in(app, https)
        state = app.token_cache.serialize()  # type: ignore[attr-defined]

    def theirs() -> tuple[dict[str, Any], int, dict[str, Any]]:
        cache = msal.SerializableTokenCache()
        cache.deserialize(state)
        with msal_session(https) as session:
            app = msal_app(https, session, token_cache=cache)
            start = len(https.emulator.requests)
            [account] = app.get_accounts(username=USERNAME)
            hit = app.acquire_token_silent(SCOPES, account)
            sent = len(https.emulator.requests) - start
            fresh = app.acquire_token_silent(SCOPES, account, force_refresh=True)
        return hit, sent, fresh

    hit, sent, fresh = await anyio.to_thread.run_sync(theirs)
    assert hit["access_token"] == signed["access_token"]
    assert hit["token_source"] == "cache"
    assert sent == 0
    assert fresh["token_source"] == "identity_provider"
