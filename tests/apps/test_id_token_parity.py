"""An ID token whose header msal tolerates is accepted here too (issue 11, item 1).

msal decodes only an ID token's payload (``id_token.split(".")[1]``); we parsed the header as
well and answered ``invalid_response: ... not a JWT``, so no account was cached and later
silent calls failed. The same sign-in runs through real msal 1.39 and through msal_async,
against one emulator (over HTTPS) whose token responses carry an ID token with a header
segment that is not base64url JSON: both cache an account, and both serve a later silent call
from the cache and then refresh it. The nonce and ``max_age`` checks still apply.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import msal
import pytest

from msal_async import SerializableTokenCache
from msal_async.testing import AuthorityEmulator

from ..conftest import HttpsAuthority, ServeAuthority
from ..hostile import Bend
from ..test_wire_parity import msal_session
from .test_user_wire_parity import CLIENT_ID, SCOPES, USERNAME, msal_sign_in, our_sign_in, ours

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::UserWarning")]

BROKEN_HEADER = "!!not-a-jose-header!!"


def break_the_header(body: dict[str, Any]) -> dict[str, Any]:
    if "id_token" in body:
        body["id_token"] = BROKEN_HEADER + body["id_token"][body["id_token"].index(".") :]
    return body


@pytest.fixture(scope="module")
def bent(serve_authority: ServeAuthority) -> Iterator[HttpsAuthority]:
    """The emulator over HTTPS, every token response's ID token with an unparseable header."""
    emulator = AuthorityEmulator()
    emulator.register_client(CLIENT_ID)
    emulator.add_user(USERNAME)
    with serve_authority(emulator, front=Bend(emulator, break_the_header)) as https:
        yield https


def msal_scenario(https: HttpsAuthority) -> dict[str, Any]:
    cache = msal.SerializableTokenCache()
    signed = msal_sign_in(https, cache=cache)
    with msal_session(https) as session:
        app = msal.PublicClientApplication(
            CLIENT_ID,
            authority=https.authority,
            http_client=session,
            instance_discovery=False,
            token_cache=cache,
        )
        accounts = app.get_accounts()
        silent = app.acquire_token_silent(SCOPES, accounts[0])
        refreshed = app.acquire_token_silent(SCOPES, accounts[0], force_refresh=True)
    return {"signed": signed, "accounts": accounts, "silent": silent, "refreshed": refreshed}


async def our_scenario(https: HttpsAuthority) -> dict[str, Any]:
    async with ours(https, token_cache=SerializableTokenCache()) as app:
        signed = await our_sign_in(app, https, max_age=3600)  # nonce and max_age still checked
        accounts = await app.get_accounts()
        silent = await app.acquire_token_silent(SCOPES, accounts[0])
        refreshed = await app.acquire_token_silent(SCOPES, accounts[0], force_refresh=True)
    return {"signed": signed, "accounts": accounts, "silent": silent, "refreshed": refreshed}


async def test_an_id_token_with_a_broken_header_is_accepted_as_msal_does(
    bent: HttpsAuthority,
) -> None:
    theirs = await anyio.to_thread.run_sync(msal_scenario, bent)
    mine = await our_scenario(bent)
    for outcome in (theirs, mine):
        assert outcome["signed"]["id_token"].startswith(BROKEN_HEADER)  # the bent one arrived
        assert outcome["signed"]["id_token_claims"]["preferred_username"] == USERNAME
        [account] = outcome["accounts"]
        assert account["username"] == USERNAME
        assert outcome["silent"]["token_source"] == "cache"
        assert outcome["refreshed"]["token_source"] == "identity_provider"
    assert mine["accounts"][0]["home_account_id"] == theirs["accounts"][0]["home_account_id"]
