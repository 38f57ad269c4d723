"""Every refresh token the emulator issues is redeemable by its refresh grant, as in Entra.

One scenario per grant that issues refresh tokens: get the user's tokens through the app,
then refresh them twice (the refresh grant's own refresh token is redeemable too) for the
same account; another client may not redeem them.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import httpx
import msal
import pytest

from msal_async import ConfidentialClientApplication, PublicClientApplication
from msal_async.testing import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_TENANT_ID,
    AuthorityEmulator,
    FederationServer,
)

from ..conftest import HttpsAuthority, requests_session_trusting
from ..flows.conftest import sign_in

pytestmark = pytest.mark.anyio

AUTHORITY = f"https://login.microsoftonline.com/{DEMO_TENANT_ID}"
PUBLIC_CLIENT = "1d2c3b4a-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
OTHER_CLIENT = "2d2c3b4a-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
USER = "dana@contoso.onmicrosoft.com"
FEDERATED_USER = "erin@fabrikam.example"
PASSWORD = "p@ss word"
USER_OID = "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"
PUBLIC_SCOPES = ["User.Read"]
DOWNSTREAM = ["api://downstream/read"]

App = PublicClientApplication | ConfidentialClientApplication
Obtain = Callable[[AuthorityEmulator, httpx.AsyncClient], Awaitable[tuple[App, list[str]]]]


@pytest.fixture
async def http(emulator: AuthorityEmulator) -> AsyncIterator[httpx.AsyncClient]:
    """The emulator behind a federation server (AD FS for fabrikam.example), in process."""
    emulator.register_client(PUBLIC_CLIENT)
    emulator.register_client(OTHER_CLIENT)
    emulator.add_user(USER, password=PASSWORD)
    emulator.add_password_user(FEDERATED_USER, PASSWORD, federated=True)
    transport = httpx.ASGITransport(app=FederationServer(emulator))
    async with httpx.AsyncClient(transport=transport) as client:
        yield client


def public(http: httpx.AsyncClient) -> PublicClientApplication:
    return PublicClientApplication(PUBLIC_CLIENT, authority=AUTHORITY, http_client=http)


def confidential(http: httpx.AsyncClient) -> ConfidentialClientApplication:
    return ConfidentialClientApplication(
        DEMO_CLIENT_ID,
        client_credential=DEMO_CLIENT_SECRET,
        authority=AUTHORITY,
        http_client=http,
    )


def user_assertion(emulator: AuthorityEmulator) -> str:
    """The token a client app sent to our middle-tier API (audience: our API)."""
    return emulator.issue_access_token(
        audience=DEMO_CLIENT_ID,
        client_id="spa-client",
        user_oid=USER_OID,
        scp="access_as_user",
        extra_claims={"preferred_username": "frank@contoso.onmicrosoft.com"},
    )


async def by_auth_code(
    emulator: AuthorityEmulator, http: httpx.AsyncClient
) -> tuple[App, list[str]]:
    app = public(http)
    assert "access_token" in await sign_in(app, http, PUBLIC_SCOPES, login_hint=USER)
    return app, PUBLIC_SCOPES


async def by_device_code(
    emulator: AuthorityEmulator, http: httpx.AsyncClient
) -> tuple[App, list[str]]:
    emulator.device_flow.interval = 0
    app = public(http)
    flow = await app.initiate_device_flow(PUBLIC_SCOPES)
    emulator.approve_device_code(flow["user_code"], USER)
    assert "access_token" in await app.acquire_token_by_device_flow(flow)
    return app, PUBLIC_SCOPES


async def by_password(
    username: str, emulator: AuthorityEmulator, http: httpx.AsyncClient
) -> tuple[App, list[str]]:
    app = public(http)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # ROPC is deprecated for PCAs
        result = await app.acquire_token_by_username_password(username, PASSWORD, PUBLIC_SCOPES)
    assert "access_token" in result, result
    return app, PUBLIC_SCOPES


async def on_behalf_of(
    emulator: AuthorityEmulator, http: httpx.AsyncClient
) -> tuple[App, list[str]]:
    app = confidential(http)
    result = await app.acquire_token_on_behalf_of(user_assertion(emulator), DOWNSTREAM)
    assert "access_token" in result, result
    return app, DOWNSTREAM


async def by_user_fic(
    emulator: AuthorityEmulator, http: httpx.AsyncClient
) -> tuple[App, list[str]]:
    app = confidential(http)
    agent = emulator.issue_access_token(
        audience="api://AzureADTokenExchange", client_id=DEMO_CLIENT_ID
    )
    result = await app.acquire_token_by_user_federated_identity_credential(
        DOWNSTREAM, agent, username=USER
    )
    assert "access_token" in result, result
    return app, DOWNSTREAM


GRANTS: dict[str, Obtain] = {
    "authorization_code": by_auth_code,
    "device_code": by_device_code,
    "password": lambda e, h: by_password(USER, e, h),
    "saml_bearer (federated password)": lambda e, h: by_password(FEDERATED_USER, e, h),
    "on_behalf_of": on_behalf_of,
    "user_fic": by_user_fic,
}


@pytest.mark.parametrize("obtain", GRANTS.values(), ids=list(GRANTS))
async def test_the_refresh_token_of_every_grant_is_redeemable(
    obtain: Obtain, emulator: AuthorityEmulator, http: httpx.AsyncClient
) -> None:
    app, scopes = await obtain(emulator, http)
    [account] = await app.get_accounts()
    [rt] = app.token_cache.search("RefreshToken")
    for _ in range(2):  # the first refresh, then the refresh token that refresh returned
        result = await app.acquire_token_silent(scopes, account, force_refresh=True)
        assert result is not None
        assert result.get("token_source") == "identity_provider", result
    assert [a["home_account_id"] for a in await app.get_accounts()] == [
        account["home_account_id"]  # the same user: same object id in client_info
    ]
    other = await http.post(
        f"{AUTHORITY}/oauth2/v2.0/token",
        data={
            "client_id": OTHER_CLIENT,
            "grant_type": "refresh_token",
            "refresh_token": rt["secret"],
            "scope": " ".join(scopes),
        },
    )
    assert other.status_code == 400
    assert other.json()["error"] == "invalid_grant"


async def test_msal_refreshes_a_cached_obo_result(https_authority: HttpsAuthority) -> None:
    """The long-running OBO pattern of msal's docs: cache the OBO result, refresh it later."""
    assertion = user_assertion(https_authority.emulator)

    def run_msal() -> dict[str, Any]:
        with requests_session_trusting(https_authority.ca_file) as session:
            app = msal.ConfidentialClientApplication(
                DEMO_CLIENT_ID,
                client_credential=DEMO_CLIENT_SECRET,
                authority=https_authority.authority,
                instance_discovery=False,
                http_client=session,
            )
            assert "access_token" in app.acquire_token_on_behalf_of(assertion, DOWNSTREAM)
            [account] = app.get_accounts()
            refreshed: dict[str, Any] = app.acquire_token_silent_with_error(
                DOWNSTREAM, account, force_refresh=True
            )
        return refreshed

    refreshed = await anyio.to_thread.run_sync(run_msal)
    assert refreshed.get("token_source") == "identity_provider", refreshed
