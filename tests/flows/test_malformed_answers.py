"""A sign-in whose token response is malformed is an error dict and leaves no account behind.

Issue 10, finding 2, for the user flows: the auth code redemption's answer bent one field at a
time (``client_info: "!!!"``, an ID token without ``sub`` and no ``client_info``, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from msal_async import PublicClientApplication
from msal_async.testing import AuthorityEmulator

from ..hostile import NO_SUB, Bend
from .conftest import AUTHORITY, PUBLIC_CLIENT_ID, USERNAME, sign_in

pytestmark = pytest.mark.anyio


async def bent_sign_in(
    users: AuthorityEmulator, rewrite: Callable[[dict[str, Any]], dict[str, Any]]
) -> tuple[dict[str, Any], list[dict[str, Any]], int]:
    """Sign in with the token response bent; the result, the accounts and cached ATs after."""
    bend = Bend(users, rewrite)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=bend)) as http:
        app = PublicClientApplication(PUBLIC_CLIENT_ID, authority=AUTHORITY, http_client=http)
        result = await sign_in(app, http)
        accounts = await app.get_accounts()
        return result, accounts, len(list(app.token_cache.search("AccessToken")))


def _without_client_info_and_sub(body: dict[str, Any]) -> dict[str, Any]:
    body.pop("client_info", None)
    body["id_token"] = NO_SUB
    return body


@pytest.mark.parametrize(
    "rewrite",
    [
        lambda body: {**body, "client_info": "!!!"},
        _without_client_info_and_sub,
        lambda body: {**body, "refresh_in": "abc"},
        lambda body: {**body, "id_token": "not-a-jwt"},
    ],
    ids=["client_info !!!", "id_token without sub", "refresh_in abc", "id_token not a JWT"],
)
async def test_user_sign_in_with_a_malformed_answer_caches_nothing(
    users: AuthorityEmulator, rewrite: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    result, accounts, access_tokens = await bent_sign_in(users, rewrite)
    assert result["error"] == "invalid_response"
    assert "access_token" not in result
    assert accounts == []
    assert access_tokens == 0


async def test_an_id_token_with_a_sub_and_no_client_info_is_still_an_account(
    users: AuthorityEmulator,
) -> None:
    def adfs_like(body: dict[str, Any]) -> dict[str, Any]:
        body.pop("client_info", None)
        return body

    result, [account], _ = await bent_sign_in(users, adfs_like)
    assert "access_token" in result
    assert account["username"] == USERNAME
