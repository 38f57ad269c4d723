"""Per-call ``timeout=``, ``params=`` and ``headers=``, side by side with real msal.

msal relays the keyword arguments it does not know to its HTTP client's ``post``: ``params``
becomes the token request's query string and ``timeout`` bounds that request. msal 1.39 passes
its own ``headers=`` to the same call, so a caller's ``headers=`` raises TypeError there; we merge
them under the library's own headers (a deliberate difference, in the README). What httpx cannot
take per request (``verify``, ``proxies``, ``cert``) is refused at the call, saying where it goes.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import pytest
import requests

from msal_async.testing import Fault

from ..conftest import HttpsAuthority
from .harness import (
    APP_SCOPES,
    DOWNSTREAM,
    PASSWORD,
    REDIRECT_URI,
    SCOPES,
    USER,
    Dicts,
    Outcome,
    browse,
    msal_cca,
    msal_pca,
    our_cca,
    our_outcome,
    our_pca,
    outcome,
    run,
)
from .scenarios import fic, user_assertion
from .test_differences import unexplained

pytestmark = pytest.mark.anyio

PARAMS = {"slice": "testslice", "dc": "ESTS-PUB-WUS2-AZ1-FD000-TEST1"}
#: A per-call timeout long enough for the emulator: it changes nothing on the wire.
TIMEOUT = 30


def token_posts(outcome: Outcome) -> list[Any]:
    return [r for r in outcome.requests if r.path.endswith("/token")]


# --- params= and timeout= on every token request ---------------------------------------------


def user_calls(
    app: Any, signed_in: Mapping[str, Any], account: Any
) -> dict[str, Callable[[], Any]]:
    """The user flows that send a token request, each with ``params=`` and ``timeout=``."""
    options: dict[str, Any] = {"params": PARAMS, "timeout": TIMEOUT}
    return {
        "acquire_token_silent(force_refresh)": lambda: app.acquire_token_silent(
            SCOPES, account, force_refresh=True, **options
        ),
        "acquire_token_silent_with_error(force_refresh)": lambda: (
            app.acquire_token_silent_with_error(SCOPES, account, force_refresh=True, **options)
        ),
        "acquire_token_by_refresh_token": lambda: app.acquire_token_by_refresh_token(
            signed_in["refresh_token"], SCOPES, **options
        ),
        "acquire_token_by_username_password": lambda: app.acquire_token_by_username_password(
            USER, PASSWORD, SCOPES, **options
        ),
    }


def app_calls(app: Any, https: HttpsAuthority) -> dict[str, Callable[[], Any]]:
    """The confidential client flows, each with ``params=`` and ``timeout=``."""
    options: dict[str, Any] = {"params": PARAMS, "timeout": TIMEOUT}
    return {
        "acquire_token_for_client": lambda: app.acquire_token_for_client(APP_SCOPES, **options),
        "acquire_token_on_behalf_of": lambda: app.acquire_token_on_behalf_of(
            user_assertion(https), DOWNSTREAM, **options
        ),
        "user_fic": lambda: app.acquire_token_by_user_federated_identity_credential(
            DOWNSTREAM, fic(https), username=USER, **options
        ),
    }


def msal_params(https: HttpsAuthority, session: requests.Session) -> Dicts:
    options: dict[str, Any] = {"params": PARAMS, "timeout": TIMEOUT}
    app = msal_pca(https, session)
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI, login_hint=USER)
    signed_in = app.acquire_token_by_auth_code_flow(
        flow, browse(https, flow["auth_uri"]), **options
    )
    url = app.get_authorization_request_url(SCOPES, redirect_uri=REDIRECT_URI)
    by_code = app.acquire_token_by_authorization_code(
        browse(https, url)["code"], SCOPES, redirect_uri=REDIRECT_URI, **options
    )
    [account] = app.get_accounts()
    results: Dicts = {"acquire_token_by_auth_code_flow": signed_in}
    results["acquire_token_by_authorization_code"] = by_code
    results |= {k: outcome(c) for k, c in user_calls(app, signed_in, account).items()}
    cca = msal_cca(https, session)
    return results | {k: outcome(c) for k, c in app_calls(cca, https).items()}


async def our_params(https: HttpsAuthority) -> Dicts:
    options: dict[str, Any] = {"params": PARAMS, "timeout": TIMEOUT}
    async with our_pca(https) as app:
        flow = await app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI, login_hint=USER)
        response = await anyio.to_thread.run_sync(browse, https, flow["auth_uri"])
        signed_in = await app.acquire_token_by_auth_code_flow(flow, response, **options)
        url = await app.get_authorization_request_url(SCOPES, redirect_uri=REDIRECT_URI)
        code = (await anyio.to_thread.run_sync(browse, https, url))["code"]
        by_code = await app.acquire_token_by_authorization_code(
            code, SCOPES, redirect_uri=REDIRECT_URI, **options
        )
        [account] = await app.get_accounts()
        results: Dicts = {"acquire_token_by_auth_code_flow": signed_in}
        results["acquire_token_by_authorization_code"] = by_code
        for name, call in user_calls(app, signed_in, account).items():
            results[name] = await our_outcome(call)
    async with our_cca(https) as cca:
        for name, call in app_calls(cca, https).items():
            results[name] = await our_outcome(call)
    return results


async def test_params_go_to_the_query_string_of_every_token_request(
    https: HttpsAuthority,
) -> None:
    theirs, ours = await run(https, msal_params, our_params)
    posts = token_posts(theirs)
    assert len(posts) == 9
    assert all(r.query == PARAMS for r in posts)  # msal 1.39 really relays them
    assert len(token_posts(ours)) == len(posts)
    assert all(r.query == PARAMS for r in token_posts(ours))
    assert unexplained("params", theirs, ours) == set()


def msal_device_flow(https: HttpsAuthority, session: requests.Session) -> Dicts:
    app = msal_pca(https, session)
    flow = app.initiate_device_flow(SCOPES, params=PARAMS, timeout=TIMEOUT)
    flow_keys = dict(flow)
    result = app.acquire_token_by_device_flow(flow, params=PARAMS, timeout=TIMEOUT)
    return {"device flow": flow_keys, "result": result}


async def our_device_flow(https: HttpsAuthority) -> Dicts:
    async with our_pca(https) as app:
        flow = await app.initiate_device_flow(SCOPES, params=PARAMS, timeout=TIMEOUT)
        flow_keys = dict(flow)
        result = await app.acquire_token_by_device_flow(flow, params=PARAMS, timeout=TIMEOUT)
    return {"device flow": flow_keys, "result": result}


async def test_params_on_the_device_flow(https: HttpsAuthority, device_approval: None) -> None:
    theirs, ours = await run(https, msal_device_flow, our_device_flow)
    posts = [r for r in theirs.requests if r.method == "POST"]
    assert len(posts) >= 2  # the device code request and the polls
    assert all(r.query == PARAMS for r in posts)
    assert all(r.query == PARAMS for r in ours.requests if r.method == "POST")
    assert unexplained("device flow", theirs, ours) == set()


# --- headers= ---------------------------------------------------------------------------------


def msal_headers(https: HttpsAuthority, session: requests.Session) -> Dicts:
    app = msal_cca(https, session)
    call = app.acquire_token_for_client
    return {"headers": outcome(lambda: call(APP_SCOPES, headers={"x-ms-custom": "1"}))}


async def test_msal_refuses_headers_and_we_merge_them(https: HttpsAuthority) -> None:
    async def ours(https: HttpsAuthority) -> Dicts:
        async with our_cca(https) as app:
            result = await app.acquire_token_for_client(
                ["api://headers/.default"], headers={"X-Ms-Custom": "1"}
            )
        return {"headers": result}

    theirs, mine = await run(https, msal_headers, ours)
    # msal 1.39 passes its own headers= too: "got multiple values for keyword argument".
    [raised] = theirs.dicts["headers"]
    assert raised == "raised TypeError"
    assert "headers" in theirs.dicts["headers"][raised]
    assert token_posts(theirs) == []
    [post] = token_posts(mine)
    assert "access_token" in mine.dicts["headers"]
    assert post.headers["x-ms-custom"] == "1"
    assert post.headers["x-client-sku"] == "MSAL.Python.Async"


@pytest.mark.parametrize(
    "header", ["x-client-sku", "X-Client-Ver", "client-request-id", "x-client-last-telemetry"]
)
async def test_headers_cannot_replace_the_librarys_own(https: HttpsAuthority, header: str) -> None:
    start = len(https.emulator.requests)
    async with our_cca(https) as app:
        with pytest.raises(ValueError, match=f"headers cannot replace .*{header}"):
            await app.acquire_token_for_client(APP_SCOPES, headers={header: "mine"})
    assert https.emulator.requests[start:] == []


# --- timeout= ---------------------------------------------------------------------------------


def msal_timeout(https: HttpsAuthority, session: requests.Session) -> Dicts:
    https.emulator.inject(Fault.latency(3), grant_type="client_credentials", times=2)
    app = msal_cca(https, session)
    start = time.monotonic()
    result = outcome(lambda: app.acquire_token_for_client(["api://slow/.default"], timeout=0.3))
    return {"result": result, "seconds": {"elapsed": time.monotonic() - start}}


async def our_timeout(https: HttpsAuthority) -> Dicts:
    https.emulator.inject(Fault.latency(3), grant_type="client_credentials", times=2)
    async with our_cca(https) as app:
        start = time.monotonic()
        result = await our_outcome(
            lambda: app.acquire_token_for_client(["api://slow/.default"], timeout=0.3)
        )
    return {"result": result, "seconds": {"elapsed": time.monotonic() - start}}


async def test_timeout_bounds_the_token_request_as_in_msal(https: HttpsAuthority) -> None:
    theirs, ours = await run(https, msal_timeout, our_timeout)
    # Each gives up long before the emulator's 3 s delay ends (2.5 s leaves room for a slow CI).
    assert theirs.dicts["seconds"]["elapsed"] < 2.5
    assert ours.dicts["seconds"]["elapsed"] < 2.5
    # msal lets requests' ReadTimeout through; ours is MsalTransportError (README: Errors).
    assert list(theirs.dicts["result"]) == ["raised ReadTimeout"]
    [(raised, message)] = ours.dicts["result"].items()
    assert raised == "raised MsalTransportError"
    assert "timed out" in message.lower() or "timeout" in message.lower()


def msal_silent_timeout(https: HttpsAuthority, session: requests.Session) -> Dicts:
    app = msal_pca(https, session)
    app.acquire_token_by_username_password(USER, PASSWORD, SCOPES)
    [account] = app.get_accounts()
    https.emulator.inject(Fault.latency(3), grant_type="refresh_token", times=2)
    start = time.monotonic()
    result = outcome(
        lambda: app.acquire_token_silent(SCOPES, account, force_refresh=True, timeout=0.3)
    )
    return {"result": result, "seconds": {"elapsed": time.monotonic() - start}}


async def our_silent_timeout(https: HttpsAuthority) -> Dicts:
    async with our_pca(https) as app:
        await app.acquire_token_by_username_password(USER, PASSWORD, SCOPES)
        [account] = await app.get_accounts()
        https.emulator.inject(Fault.latency(3), grant_type="refresh_token", times=2)
        start = time.monotonic()
        result = await our_outcome(
            lambda: app.acquire_token_silent(SCOPES, account, force_refresh=True, timeout=0.3)
        )
    return {"result": result, "seconds": {"elapsed": time.monotonic() - start}}


async def test_timeout_bounds_a_silent_refresh_as_in_msal(https: HttpsAuthority) -> None:
    theirs, ours = await run(https, msal_silent_timeout, our_silent_timeout)
    assert theirs.dicts["seconds"]["elapsed"] < 2.5
    assert ours.dicts["seconds"]["elapsed"] < 2.5
    assert list(theirs.dicts["result"]) == ["raised ReadTimeout"]
    assert list(ours.dicts["result"]) == ["raised MsalTransportError"]


# --- what cannot be honoured per call -----------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "hint"),
    [
        ({"verify": False}, "verify= on the app's constructor"),
        ({"proxies": {"https": "http://proxy:8080"}}, "proxies= on the app's constructor"),
        ({"cert": "client.pem"}, "an http_client configured with the certificate"),
        ({"allow_redirects": False}, "timeout=, params=, headers="),
    ],
)
async def test_what_httpx_cannot_take_per_request_raises_type_error_at_the_call(
    https: HttpsAuthority, kwargs: dict[str, Any], hint: str
) -> None:
    start = len(https.emulator.requests)
    async with our_cca(https) as app:
        with pytest.raises(TypeError, match=re.escape(hint)) as raised:
            await app.acquire_token_for_client(APP_SCOPES, **kwargs)
    assert "acquire_token_for_client()" in str(raised.value)
    assert https.emulator.requests[start:] == []  # refused before any request


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"timeout": "5"}, TypeError),
        ({"timeout": 0}, ValueError),
        ({"params": {"a": 1}}, TypeError),
        ({"headers": ["x-a: 1"]}, TypeError),
    ],
)
async def test_bad_per_call_options_name_the_parameter(
    https: HttpsAuthority, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    async with our_pca(https) as app:
        with pytest.raises(error, match=next(iter(kwargs))):
            await app.acquire_token_by_refresh_token("rt", SCOPES, **kwargs)
