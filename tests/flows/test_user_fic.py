"""acquire_token_by_user_federated_identity_credential: the user_fic grant, and parity with msal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import msal
import pytest

from msal_async import ConfidentialClientApplication
from msal_async.testing import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, AuthorityEmulator

from ..conftest import HttpsAuthority, requests_session_trusting

pytestmark = pytest.mark.anyio

SCOPES = ["api://downstream/read"]
USER = "agent-user@contoso.onmicrosoft.com"
GENERIC_HEADERS = {"host", "user-agent", "accept-encoding", "connection", "content-length"}


def fic(emulator: AuthorityEmulator) -> str:
    """An agent instance token, as the emulator issues it."""
    return emulator.issue_access_token(
        audience="api://AzureADTokenExchange", client_id=DEMO_CLIENT_ID
    )


def user_fic_posts(emulator: AuthorityEmulator, start: int = 0) -> list[Any]:
    return [r for r in emulator.requests[start:] if r.form.get("grant_type") == "user_fic"]


async def test_by_username_caches_the_user_for_silent_calls(
    make_cca: Callable[..., ConfidentialClientApplication], emulator: AuthorityEmulator
) -> None:
    emulator.add_user(USER, sign_in=False)
    app = make_cca()
    result = await app.acquire_token_by_user_federated_identity_credential(
        SCOPES, fic(emulator), username=USER
    )
    assert result["token_source"] == "identity_provider"
    assert result["id_token_claims"]["preferred_username"] == USER
    [post] = user_fic_posts(emulator)
    assert post.form["username"] == USER
    assert "user_id" not in post.form
    assert post.form["scope"] == "api://downstream/read offline_access openid profile"
    assert post.headers["x-anchormailbox"] == f"upn:{USER}"
    [account] = await app.get_accounts(username=USER)
    assert account["account_source"] == "user_fic"
    silent = await app.acquire_token_silent(SCOPES, account)
    assert silent is not None
    assert silent["access_token"] == result["access_token"]


async def test_by_object_id(
    make_cca: Callable[..., ConfidentialClientApplication], emulator: AuthorityEmulator
) -> None:
    oid = "0a0b0c0d-0000-4000-8000-0000000000f1"
    emulator.add_user(USER, oid=oid, sign_in=False)
    app = make_cca()
    result = await app.acquire_token_by_user_federated_identity_credential(
        SCOPES, fic(emulator), user_object_id=oid
    )
    assert "access_token" in result, result
    [post] = user_fic_posts(emulator)
    assert post.form["user_id"] == oid
    assert post.headers["x-anchormailbox"] == f"Oid:{oid}@{emulator.tenant_id}"


async def test_unknown_user_and_foreign_credential_are_error_dicts(
    make_cca: Callable[..., ConfidentialClientApplication], emulator: AuthorityEmulator
) -> None:
    app = make_cca()
    unknown = await app.acquire_token_by_user_federated_identity_credential(
        SCOPES, fic(emulator), username="nobody@contoso.onmicrosoft.com"
    )
    assert unknown["error"] == "invalid_grant"
    emulator.add_user(USER, sign_in=False)
    foreign = await app.acquire_token_by_user_federated_identity_credential(
        SCOPES, "not.a.jwt", username=USER
    )
    assert foreign["error"] == "invalid_grant"
    assert foreign["correlation_id"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"assertion": ""}, "assertion is required"),
        ({}, "Either username or user_object_id"),
        ({"username": "a@b.c", "user_object_id": "x"}, "mutually exclusive"),
    ],
)
async def test_bad_arguments_raise_msals_messages(
    make_cca: Callable[..., ConfidentialClientApplication],
    kwargs: dict[str, Any],
    message: str,
) -> None:
    kwargs.setdefault("assertion", "fic")
    with pytest.raises(ValueError, match=message):
        await make_cca().acquire_token_by_user_federated_identity_credential(SCOPES, **kwargs)


async def test_request_matches_msal(https_authority: HttpsAuthority) -> None:
    emulator = https_authority.emulator
    emulator.add_user(USER, sign_in=False)
    credential = fic(emulator)

    def theirs() -> dict[str, Any]:
        with requests_session_trusting(https_authority.ca_file) as session:
            app = msal.ConfidentialClientApplication(
                DEMO_CLIENT_ID,
                client_credential=DEMO_CLIENT_SECRET,
                authority=https_authority.authority,
                instance_discovery=False,
                http_client=session,
            )
            result: dict[str, Any] = app.acquire_token_by_user_federated_identity_credential(
                SCOPES, credential, username=USER
            )
            return result

    start = len(emulator.requests)
    assert "access_token" in await anyio.to_thread.run_sync(theirs)
    middle = len(emulator.requests)
    async with ConfidentialClientApplication(
        DEMO_CLIENT_ID,
        client_credential=DEMO_CLIENT_SECRET,
        authority=https_authority.authority,
        instance_discovery=False,
        verify=https_authority.ca_file,
    ) as app:
        ours = await app.acquire_token_by_user_federated_identity_credential(
            SCOPES, credential, username=USER
        )
    assert "access_token" in ours
    [their_post] = user_fic_posts(emulator, start)[:1]
    [our_post] = user_fic_posts(emulator, middle)
    assert our_post.form == their_post.form
    assert {k for k in our_post.headers if k not in GENERIC_HEADERS} == {
        k for k in their_post.headers if k not in GENERIC_HEADERS
    }
    assert our_post.headers["x-anchormailbox"] == their_post.headers["x-anchormailbox"]
    assert our_post.headers["x-client-current-telemetry"] == "4|950,0|"
