"""oidc-provider: after ``force_refresh=True`` a silent call returns the newest access token.

The provider rotates the public client's refresh token on every use, so each forced refresh
writes a new access token and a new refresh token. A caller who forced a refresh (its resource
rejected the old token) must never be given an older token back by the next silent call.
"""

from __future__ import annotations

import anyio
import pytest

from msal_async import Prompt, PublicClientApplication

from .harness import PUBLIC_CLIENT_ID, OidcProvider

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::UserWarning")]

REDIRECT_URI = "http://localhost:53119/callback"
SCOPES = ["api:read"]


async def test_silent_after_force_refresh_returns_the_newest_token(
    oidc_provider: OidcProvider,
) -> None:
    async with PublicClientApplication(
        PUBLIC_CLIENT_ID, oidc_authority=oidc_provider.issuer, verify=oidc_provider.ca_file
    ) as app:
        flow = await app.initiate_auth_code_flow(
            SCOPES, redirect_uri=REDIRECT_URI, prompt=Prompt.CONSENT
        )
        auth_response = await anyio.to_thread.run_sync(
            lambda: oidc_provider.auth_response(flow["auth_uri"], username="erin")
        )
        signed_in = await app.acquire_token_by_auth_code_flow(flow, auth_response)
        assert "refresh_token" in signed_in, signed_in
        [account] = await app.get_accounts()
        cached = await app.acquire_token_silent(SCOPES, account)
        assert cached is not None
        assert cached["access_token"] == signed_in["access_token"]

        seen = {signed_in["access_token"]}
        latest = signed_in["access_token"]
        for _ in range(2):
            refreshed = await app.acquire_token_silent_with_error(
                SCOPES, account, force_refresh=True
            )
            assert refreshed is not None
            assert "access_token" in refreshed, refreshed
            assert refreshed["token_source"] == "identity_provider"
            assert refreshed["access_token"] not in seen
            seen.add(refreshed["access_token"])
            latest = refreshed["access_token"]

            after = await app.acquire_token_silent(SCOPES, account)
            assert after is not None
            assert after["token_source"] == "cache"
            assert after["access_token"] == refreshed["access_token"]
        # One access token for these scopes is left: the older grants' ones were replaced.
        assert [at["secret"] for at in app.token_cache.search("AccessToken")] == [latest]
