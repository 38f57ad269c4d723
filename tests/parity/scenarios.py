"""The scenarios each library runs: every flow, its failures, and calls with bad arguments."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import anyio
import msal
import requests

import msal_async
from msal_async.testing import DEMO_CLIENT_ID, Fault

from ..conftest import HttpsAuthority
from .harness import (
    APP_SCOPES,
    DOWNSTREAM,
    PASSWORD,
    REDIRECT_URI,
    SCOPES,
    USER,
    Dicts,
    MsalSide,
    OurSide,
    browse,
    msal_cca,
    msal_pca,
    our_cca,
    our_outcome,
    our_pca,
    outcome,
)
from .option_scenarios import msal_call_options, our_call_options

_TOKENS: dict[tuple[int, str], str] = {}


def user_assertion(https: HttpsAuthority) -> str:
    """The token a client app sent to our API (one per emulator: both libraries send it)."""
    key = (id(https.emulator), "user")
    if key not in _TOKENS:
        _TOKENS[key] = https.emulator.issue_access_token(
            audience=DEMO_CLIENT_ID,
            client_id="spa-client",
            user_oid="5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d",
            scp="access_as_user",
            extra_claims={"preferred_username": USER},
        )
    return _TOKENS[key]


# --- the scenarios ------------------------------------------------------------------------


def msal_client_credentials(https: HttpsAuthority, session: requests.Session) -> Dicts:
    app = msal_cca(https, session, app_name="parity", app_version="1.0")
    first = app.acquire_token_for_client(APP_SCOPES)
    hit = app.acquire_token_for_client(APP_SCOPES)
    app.remove_tokens_for_client()
    wrong = msal.ConfidentialClientApplication(
        DEMO_CLIENT_ID,
        client_credential="wrong",
        authority=https.authority,
        instance_discovery=False,
        http_client=session,
    ).acquire_token_for_client(APP_SCOPES)
    return {"result": first, "cache hit": hit, "error": wrong}


async def our_client_credentials(https: HttpsAuthority) -> Dicts:
    async with our_cca(https, app_name="parity", app_version="1.0") as app:
        first = await app.acquire_token_for_client(APP_SCOPES)
        hit = await app.acquire_token_for_client(APP_SCOPES)
        await app.remove_tokens_for_client()
    async with msal_async.ConfidentialClientApplication(
        DEMO_CLIENT_ID,
        client_credential="wrong",
        authority=https.authority,
        instance_discovery=False,
        verify=https.ca_file,
    ) as wrong_app:
        wrong = await wrong_app.acquire_token_for_client(APP_SCOPES)
    return {"result": first, "cache hit": hit, "error": wrong}


def msal_on_behalf_of(https: HttpsAuthority, session: requests.Session) -> Dicts:
    app = msal_cca(https, session)
    result = app.acquire_token_on_behalf_of(user_assertion(https), DOWNSTREAM)
    [account] = app.get_accounts()
    silent = app.acquire_token_silent(DOWNSTREAM, account)
    return {"result": result, "account": account, "silent": silent}


async def our_on_behalf_of(https: HttpsAuthority) -> Dicts:
    async with our_cca(https) as app:
        result = await app.acquire_token_on_behalf_of(user_assertion(https), DOWNSTREAM)
        [account] = await app.get_accounts()
        silent = await app.acquire_token_silent(DOWNSTREAM, account)
    assert silent is not None
    return {"result": result, "account": account, "silent": silent}


def fic(https: HttpsAuthority) -> str:
    """An agent's federated identity credential (one per emulator)."""
    key = (id(https.emulator), "fic")
    if key not in _TOKENS:
        _TOKENS[key] = https.emulator.issue_access_token(
            audience="api://AzureADTokenExchange", client_id=DEMO_CLIENT_ID
        )
    return _TOKENS[key]


def msal_user_fic(https: HttpsAuthority, session: requests.Session) -> Dicts:
    app = msal_cca(https, session)
    result = app.acquire_token_by_user_federated_identity_credential(
        DOWNSTREAM, fic(https), username=USER
    )
    return {"result": result}


async def our_user_fic(https: HttpsAuthority) -> Dicts:
    async with our_cca(https) as app:
        result = await app.acquire_token_by_user_federated_identity_credential(
            DOWNSTREAM, fic(https), username=USER
        )
    return {"result": result}


def msal_auth_code(https: HttpsAuthority, session: requests.Session) -> Dicts:
    app = msal_pca(https, session)
    flow = app.initiate_auth_code_flow(
        SCOPES, redirect_uri=REDIRECT_URI, login_hint=USER, prompt="select_account", max_age=3600
    )
    result = app.acquire_token_by_auth_code_flow(flow, browse(https, flow["auth_uri"]))
    [account] = app.get_accounts()
    hit = app.acquire_token_silent(SCOPES, account)
    refreshed = app.acquire_token_silent(SCOPES, account, force_refresh=True)
    migrated = app.acquire_token_by_refresh_token(result["refresh_token"], SCOPES)
    app.remove_account(account)
    return {
        "auth code flow": flow,
        "result": result,
        "account": account,
        "cache hit": hit,
        "refreshed": refreshed,
        "refresh token migration": migrated,
    }


async def our_auth_code(https: HttpsAuthority) -> Dicts:
    async with our_pca(https) as app:
        flow = await app.initiate_auth_code_flow(
            SCOPES,
            redirect_uri=REDIRECT_URI,
            login_hint=USER,
            prompt="select_account",
            max_age=3600,
        )
        auth_response = await anyio.to_thread.run_sync(browse, https, flow["auth_uri"])
        result = await app.acquire_token_by_auth_code_flow(flow, auth_response)
        [account] = await app.get_accounts()
        hit = await app.acquire_token_silent(SCOPES, account)
        refreshed = await app.acquire_token_silent(SCOPES, account, force_refresh=True)
        migrated = await app.acquire_token_by_refresh_token(result["refresh_token"], SCOPES)
        await app.remove_account(account)
    assert hit is not None
    assert refreshed is not None
    return {
        "auth code flow": flow,
        "result": result,
        "account": account,
        "cache hit": hit,
        "refreshed": refreshed,
        "refresh token migration": migrated,
    }


def msal_authorization_code(https: HttpsAuthority, session: requests.Session) -> Dicts:
    app = msal_pca(https, session)
    url = app.get_authorization_request_url(SCOPES, redirect_uri=REDIRECT_URI, state="s1")
    code = browse(https, url)["code"]
    result = app.acquire_token_by_authorization_code(code, SCOPES, redirect_uri=REDIRECT_URI)
    return {"result": result}


async def our_authorization_code(https: HttpsAuthority) -> Dicts:
    async with our_pca(https) as app:
        url = await app.get_authorization_request_url(SCOPES, redirect_uri=REDIRECT_URI, state="s1")
        code = (await anyio.to_thread.run_sync(browse, https, url))["code"]
        result = await app.acquire_token_by_authorization_code(
            code, SCOPES, redirect_uri=REDIRECT_URI
        )
    return {"result": result}


def msal_device_flow(https: HttpsAuthority, session: requests.Session) -> Dicts:
    app = msal_pca(https, session)
    flow = app.initiate_device_flow(SCOPES)
    flow_keys = dict(flow)
    return {"device flow": flow_keys, "result": app.acquire_token_by_device_flow(flow)}


async def our_device_flow(https: HttpsAuthority) -> Dicts:
    async with our_pca(https) as app:
        flow = await app.initiate_device_flow(SCOPES)
        flow_keys = dict(flow)
        return {"device flow": flow_keys, "result": await app.acquire_token_by_device_flow(flow)}


def msal_password(https: HttpsAuthority, session: requests.Session) -> Dicts:
    app = msal_pca(https, session)
    return {"result": app.acquire_token_by_username_password(USER, PASSWORD, SCOPES)}


async def our_password(https: HttpsAuthority) -> Dicts:
    async with our_pca(https) as app:
        return {"result": await app.acquire_token_by_username_password(USER, PASSWORD, SCOPES)}


def msal_failures(https: HttpsAuthority, session: requests.Session) -> Dicts:
    emulator = https.emulator
    app = msal_pca(https, session)
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI, login_hint=USER)
    app.acquire_token_by_auth_code_flow(flow, browse(https, flow["auth_uri"]))
    [account] = app.get_accounts()
    emulator.revoke_refresh_tokens(USER)
    revoked = outcome(
        lambda: app.acquire_token_silent_with_error(SCOPES, account, force_refresh=True)
    )
    none = outcome(lambda: app.acquire_token_silent(SCOPES, account, force_refresh=True))
    cca = msal_cca(https, session)
    emulator.inject(Fault.server_error(status=500), grant_type="client_credentials")
    server_error = outcome(lambda: cca.acquire_token_for_client(["api://5xx/.default"]))
    emulator.inject(Fault.too_many_requests(retry_after=1), grant_type="client_credentials")
    throttled = outcome(lambda: cca.acquire_token_for_client(["api://429/.default"]))
    return {
        "silent_with_error, refresh token revoked": revoked,
        "silent, refresh token revoked": none,
        "token endpoint 500": server_error,
        "token endpoint 429": throttled,
    }


async def our_failures(https: HttpsAuthority) -> Dicts:
    emulator = https.emulator
    async with our_pca(https) as app:
        flow = await app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI, login_hint=USER)
        auth_response = await anyio.to_thread.run_sync(browse, https, flow["auth_uri"])
        await app.acquire_token_by_auth_code_flow(flow, auth_response)
        [account] = await app.get_accounts()
        emulator.revoke_refresh_tokens(USER)
        revoked = await our_outcome(
            lambda: app.acquire_token_silent_with_error(SCOPES, account, force_refresh=True)
        )
        none = await our_outcome(
            lambda: app.acquire_token_silent(SCOPES, account, force_refresh=True)
        )
    async with our_cca(https) as cca:
        emulator.inject(Fault.server_error(status=500), grant_type="client_credentials")
        server_error = await our_outcome(
            lambda: cca.acquire_token_for_client(["api://5xx/.default"])
        )
        emulator.inject(Fault.too_many_requests(retry_after=1), grant_type="client_credentials")
        throttled = await our_outcome(lambda: cca.acquire_token_for_client(["api://429/.default"]))
    return {
        "silent_with_error, refresh token revoked": revoked,
        "silent, refresh token revoked": none,
        "token endpoint 500": server_error,
        "token endpoint 429": throttled,
    }


def bad_calls(
    pca: Any, cca: Any, flow: Mapping[str, Any], fic: str
) -> dict[str, Callable[[], Any]]:
    """Calls with a bad argument or a bad credential, in the order they are made.

    Those that send a request come first: a difference in what is sent (a request msal sends
    and we refuse) would show again in the next request's ``x-client-last-telemetry``.
    """
    state = flow["state"]
    return {
        "acquire_token_by_refresh_token(unknown token)": lambda: pca.acquire_token_by_refresh_token(
            "not-a-refresh-token", SCOPES
        ),
        "acquire_token_by_username_password(wrong password)": lambda: (
            pca.acquire_token_by_username_password(USER, "wrong", SCOPES)
        ),
        "acquire_token_on_behalf_of(foreign assertion)": lambda: cca.acquire_token_on_behalf_of(
            "not-a-token", DOWNSTREAM
        ),
        "acquire_token_by_refresh_token(str scopes)": lambda: pca.acquire_token_by_refresh_token(
            "rt", "User.Read"
        ),
        "initiate_auth_code_flow(str scopes)": lambda: pca.initiate_auth_code_flow("User.Read"),
        "initiate_auth_code_flow(reserved scope)": lambda: pca.initiate_auth_code_flow(["openid"]),
        "acquire_token_by_auth_code_flow(state mismatch)": lambda: (
            pca.acquire_token_by_auth_code_flow(dict(flow), {"state": "other", "code": "c"})
        ),
        "acquire_token_by_auth_code_flow(no state)": lambda: pca.acquire_token_by_auth_code_flow(
            dict(flow), {"code": "c"}
        ),
        "acquire_token_by_auth_code_flow(scopes not in flow)": lambda: (
            pca.acquire_token_by_auth_code_flow(
                dict(flow), {"state": state, "code": "c"}, scopes=["Mail.Read"]
            )
        ),
        "acquire_token_by_auth_code_flow(error response)": lambda: (
            pca.acquire_token_by_auth_code_flow(dict(flow), {"state": state, "error": "denied"})
        ),
        "get_authorization_request_url(str scopes)": lambda: pca.get_authorization_request_url(
            "User.Read"
        ),
        "acquire_token_by_authorization_code(str scopes)": lambda: (
            pca.acquire_token_by_authorization_code("c", "User.Read")
        ),
        "acquire_token_silent(account None)": lambda: pca.acquire_token_silent(SCOPES, None),
        "acquire_token_silent(unknown account)": lambda: pca.acquire_token_silent(
            SCOPES, {"home_account_id": "a.b", "environment": "127.0.0.1", "username": "x"}
        ),
        "initiate_device_flow(reserved scope)": lambda: pca.initiate_device_flow(["profile"]),
        "acquire_token_by_device_flow(empty flow)": lambda: pca.acquire_token_by_device_flow({}),
        "acquire_token_for_client(str scopes)": lambda: cca.acquire_token_for_client(
            "api://x/.default"
        ),
        "acquire_token_for_client(force_refresh)": lambda: cca.acquire_token_for_client(
            APP_SCOPES, force_refresh=True
        ),
        "acquire_token_for_client(fmi_path not str)": lambda: cca.acquire_token_for_client(
            APP_SCOPES, fmi_path=5
        ),
        "acquire_token_for_client(forwarded_client_claims not str)": lambda: (
            cca.acquire_token_for_client(APP_SCOPES, forwarded_client_claims=5)
        ),
        "acquire_token_on_behalf_of(reserved scope)": lambda: cca.acquire_token_on_behalf_of(
            "assertion", ["openid"]
        ),
        "user_fic(no user)": lambda: cca.acquire_token_by_user_federated_identity_credential(
            DOWNSTREAM, fic
        ),
        "user_fic(two users)": lambda: cca.acquire_token_by_user_federated_identity_credential(
            DOWNSTREAM, fic, username=USER, user_object_id="x"
        ),
        "acquire_token_for_client(claims not JSON)": lambda: cca.acquire_token_for_client(
            APP_SCOPES, claims_challenge="{not json"
        ),
    }


def msal_bad_calls(https: HttpsAuthority, session: requests.Session) -> Dicts:
    pca, cca = msal_pca(https, session), msal_cca(https, session)
    flow = pca.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)
    calls = bad_calls(pca, cca, flow, fic(https))
    return {f"call {name}": outcome(call) for name, call in calls.items()}


async def our_bad_calls(https: HttpsAuthority) -> Dicts:
    async with our_pca(https) as pca, our_cca(https) as cca:
        flow = await pca.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)
        calls = bad_calls(pca, cca, flow, fic(https))
        return {f"call {name}": await our_outcome(call) for name, call in calls.items()}


def msal_auth_response_error(https: HttpsAuthority, session: requests.Session) -> Dicts:
    app = msal_pca(https, session)
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)
    denied = app.acquire_token_by_auth_code_flow(
        flow, {"state": flow["state"], "error": "access_denied"}
    )
    return {"denied": denied, "next": app.acquire_token_by_refresh_token("bogus", SCOPES)}


async def our_auth_response_error(https: HttpsAuthority) -> Dicts:
    async with our_pca(https) as app:
        flow = await app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)
        denied = await app.acquire_token_by_auth_code_flow(
            flow, {"state": flow["state"], "error": "access_denied"}
        )
        return {
            "denied": denied,
            "next": await app.acquire_token_by_refresh_token("bogus", SCOPES),
        }


SCENARIOS: dict[str, tuple[MsalSide, OurSide]] = {
    "auth response error": (msal_auth_response_error, our_auth_response_error),
    "bad calls": (msal_bad_calls, our_bad_calls),
    "failures": (msal_failures, our_failures),
    "client credentials": (msal_client_credentials, our_client_credentials),
    "on behalf of": (msal_on_behalf_of, our_on_behalf_of),
    "user fic": (msal_user_fic, our_user_fic),
    "auth code flow and silent": (msal_auth_code, our_auth_code),
    "authorization code (deprecated)": (msal_authorization_code, our_authorization_code),
    "device flow": (msal_device_flow, our_device_flow),
    "password": (msal_password, our_password),
    "per-call options": (msal_call_options, our_call_options),
}
