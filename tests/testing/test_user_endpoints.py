"""The emulator's authorize endpoint and its authorization_code / refresh_token grants."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from msal_async.testing import (
    DEMO_TENANT_ID,
    AuthorityEmulator,
    parse_auth_response,
    parse_form_post,
)

pytestmark = pytest.mark.anyio

CLIENT = "6f1e2d3c-4b5a-4968-8776-655443322110"
FAMILY_SIBLING = "7f1e2d3c-4b5a-4968-8776-655443322110"
BASE = f"https://login.microsoftonline.com/{DEMO_TENANT_ID}/oauth2/v2.0"
VERIFIER = "v" * 43
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=")


@pytest.fixture
async def client(emulator: AuthorityEmulator) -> AsyncIterator[httpx.AsyncClient]:
    emulator.register_client(CLIENT)
    emulator.register_client(FAMILY_SIBLING)
    emulator.add_user("carol@contoso.onmicrosoft.com", name="Carol")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator)) as http:
        yield http


def authorize(**extra: str) -> str:
    query = {
        "client_id": CLIENT,
        "response_type": "code",
        "redirect_uri": "http://localhost/cb",
        "scope": "User.Read openid profile offline_access",
        "state": "st",
        "nonce": "n0",
        "code_challenge": CHALLENGE.decode(),
        "code_challenge_method": "S256",
        "client_info": "1",
        **extra,
    }
    return f"{BASE}/authorize?{urlencode(query)}"


async def redeem(http: httpx.AsyncClient, code: str, **extra: str) -> httpx.Response:
    form = {
        "client_id": CLIENT,
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": "http://localhost/cb",
        "code_verifier": VERIFIER,
        "scope": "User.Read openid profile offline_access",
        "client_info": "1",
        **extra,
    }
    return await http.post(f"{BASE}/token", data=form)


async def test_query_redirect_then_code_with_pkce(
    client: httpx.AsyncClient, emulator: AuthorityEmulator
) -> None:
    response = await client.get(authorize())
    assert response.status_code == 302
    auth = parse_auth_response(response.headers["location"])
    assert auth["state"] == "st"
    assert "client_info" in auth
    body = (await redeem(client, auth["code"])).json()
    claims = emulator.decode(body["id_token"])
    assert claims["nonce"] == "n0"
    assert "auth_time" in claims
    assert claims["preferred_username"] == "carol@contoso.onmicrosoft.com"
    assert body["refresh_token"] in emulator.user_tokens.refresh_tokens
    again = await redeem(client, auth["code"])  # single use
    assert again.json()["error"] == "invalid_grant"


async def test_form_post_and_bad_verifier(client: httpx.AsyncClient) -> None:
    response = await client.get(authorize(response_mode="form_post"))
    assert response.status_code == 200
    fields = parse_form_post(response.text)
    assert fields["state"] == "st"
    bad = await redeem(client, fields["code"], code_verifier="w" * 43)
    assert bad.json()["error"] == "invalid_grant"
    assert bad.json()["error_codes"] == [501481]


async def test_no_user_is_the_sign_in_page_or_login_required(emulator: AuthorityEmulator) -> None:
    emulator.register_client(CLIENT)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator)) as http:
        page = await http.get(authorize())
        silent = await http.get(authorize(prompt="none"))
    assert page.status_code == 200
    assert "<h1>Sign in</h1>" in page.text
    assert parse_auth_response(silent.headers["location"])["error"] == "login_required"


async def refresh(http: httpx.AsyncClient, rt: str, client_id: str = CLIENT) -> dict[str, Any]:
    form = {"client_id": client_id, "grant_type": "refresh_token", "refresh_token": rt}
    form["scope"] = "User.Read openid profile offline_access"
    result: dict[str, Any] = (await http.post(f"{BASE}/token", data=form)).json()
    return result


async def test_refresh_rotates_revokes_and_serves_the_family(
    client: httpx.AsyncClient, emulator: AuthorityEmulator
) -> None:
    emulator.add_family_client(CLIENT)
    emulator.refresh_in = 120
    auth = parse_auth_response((await client.get(authorize())).headers["location"])
    first = (await redeem(client, auth["code"])).json()
    assert first["foci"] == "1"
    assert first["refresh_in"] == 120
    rotated = await refresh(client, first["refresh_token"])
    assert rotated["refresh_token"] != first["refresh_token"]
    stranger = await refresh(client, rotated["refresh_token"], FAMILY_SIBLING)
    assert stranger["error"] == "invalid_grant"
    assert "client_mismatch" in stranger["error_additional_info"]
    emulator.add_family_client(FAMILY_SIBLING)
    sibling = await refresh(client, rotated["refresh_token"], FAMILY_SIBLING)
    assert "access_token" in sibling
    assert emulator.revoke_refresh_tokens("carol@contoso.onmicrosoft.com") >= 1
    revoked = await refresh(client, sibling["refresh_token"])
    assert revoked["error"] == "invalid_grant"
    unknown = await refresh(client, "nope")
    assert unknown["error"] == "invalid_grant"
