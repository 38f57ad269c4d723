"""Fixtures of the user-token flow tests: a public client, a signed-in user, a sign-in helper."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from msal_async import PublicClientApplication
from msal_async.testing import (
    DEMO_TENANT_ID,
    AuthorityEmulator,
    parse_auth_response,
    parse_form_post,
)

PUBLIC_CLIENT_ID = "5c7a1e4e-1b5c-4a8e-9d11-2f3c4b5a6d7e"
USERNAME = "alice@contoso.onmicrosoft.com"
AUTHORITY = f"https://login.microsoftonline.com/{DEMO_TENANT_ID}"
SCOPES = ["User.Read"]
REDIRECT_URI = "http://localhost:8400/callback"


@pytest.fixture
def users(emulator: AuthorityEmulator) -> AuthorityEmulator:
    """The emulator with a public client registered and Alice signed in."""
    emulator.register_client(PUBLIC_CLIENT_ID)
    emulator.add_user(USERNAME, name="Alice")
    return emulator


@pytest.fixture
def make_pca(users: AuthorityEmulator, http: httpx.AsyncClient) -> Callable[..., Any]:
    """Build a PublicClientApplication wired to the emulator."""

    def make(client_id: str = PUBLIC_CLIENT_ID, **kwargs: Any) -> PublicClientApplication:
        kwargs.setdefault("authority", AUTHORITY)
        kwargs.setdefault("http_client", http)
        return PublicClientApplication(client_id, **kwargs)

    return make


async def browse(http: httpx.AsyncClient, auth_uri: str) -> dict[str, str]:
    """Play the browser: GET the authorize URL, read the auth response (redirect or form)."""
    response = await http.get(auth_uri)
    if response.status_code == 302:
        return parse_auth_response(response.headers["location"])
    assert response.status_code == 200, response.text
    return parse_form_post(response.text)


async def sign_in(
    app: Any, http: httpx.AsyncClient, scopes: list[str] | None = None, **kwargs: Any
) -> dict[str, Any]:
    """Run the auth code flow, playing the browser with one GET to the authorize endpoint."""
    kwargs.setdefault("response_mode", "form_post")
    kwargs.setdefault("redirect_uri", REDIRECT_URI)
    flow = await app.initiate_auth_code_flow(scopes or SCOPES, **kwargs)
    auth_response = await browse(http, flow["auth_uri"])
    result: dict[str, Any] = await app.acquire_token_by_auth_code_flow(flow, auth_response)
    return result


def token_requests(emulator: AuthorityEmulator, grant_type: str) -> list[Any]:
    """The token POSTs the emulator received for one grant."""
    return [r for r in emulator.requests if r.form.get("grant_type") == grant_type]
