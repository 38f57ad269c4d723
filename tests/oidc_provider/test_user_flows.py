"""oidc-provider interop for user tokens: auth code + PKCE, silent, refresh (oidc_authority=)."""

from __future__ import annotations

import anyio
import pytest

from msal_async import Prompt, PublicClientApplication

from .harness import PUBLIC_CLIENT_ID, OidcProvider

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::UserWarning")]

REDIRECT_URI = "http://localhost:53118/callback"
SCOPES = ["api:read"]


async def test_auth_code_pkce_silent_and_refresh(oidc_provider: OidcProvider) -> None:
    async with PublicClientApplication(
        PUBLIC_CLIENT_ID, oidc_authority=oidc_provider.issuer, verify=oidc_provider.ca_file
    ) as app:
        # oidc-provider grants offline_access in the auth code flow only with prompt=consent.
        flow = await app.initiate_auth_code_flow(
            SCOPES, redirect_uri=REDIRECT_URI, prompt=Prompt.CONSENT
        )
        auth_response = await anyio.to_thread.run_sync(
            lambda: oidc_provider.auth_response(flow["auth_uri"], username="bob")
        )
        signed_in = await app.acquire_token_by_auth_code_flow(flow, auth_response)
        assert "access_token" in signed_in, signed_in
        assert signed_in["id_token_claims"]["sub"] == "bob"
        assert "refresh_token" in signed_in

        [account] = await app.get_accounts()
        assert account["home_account_id"] == "bob"  # no client_info: msal falls back to sub
        cached = await app.acquire_token_silent(SCOPES, account)
        assert cached is not None
        assert cached["token_source"] == "cache"
        assert cached["access_token"] == signed_in["access_token"]

        # msal re-requests "openid profile offline_access"; we ask only for what was granted.
        refreshed = await app.acquire_token_silent_with_error(SCOPES, account, force_refresh=True)
        assert refreshed is not None
        assert "access_token" in refreshed, refreshed
        assert refreshed["token_source"] == "identity_provider"
        again = await app.acquire_token_silent_with_error(SCOPES, account, force_refresh=True)
        assert again is not None
        assert "access_token" in again, again  # the rotated RT was stored in place


async def test_device_flow_with_a_provider_that_sends_no_message_or_interval(
    oidc_provider: OidcProvider,
) -> None:
    async with PublicClientApplication(
        PUBLIC_CLIENT_ID, oidc_authority=oidc_provider.issuer, verify=oidc_provider.ca_file
    ) as app:
        flow = await app.initiate_device_flow(SCOPES)
        assert "user_code" in flow, flow
        assert flow["interval"] == 5  # msal's default when the provider sends none
        assert flow["user_code"] in flow["message"]  # synthesized, as Entra words it
        assert flow["verification_uri"] in flow["message"]
        # The user signs in on another device before the app's first poll: no waiting.
        await anyio.to_thread.run_sync(
            lambda: oidc_provider.confirm_device_code(flow["user_code"], username="dave")
        )
        result = await app.acquire_token_by_device_flow(flow)
        assert "access_token" in result, result
        assert result["id_token_claims"]["sub"] == "dave"
        [account] = await app.get_accounts()
        cached = await app.acquire_token_silent(SCOPES, account)
        assert cached is not None
        assert cached["access_token"] == result["access_token"]
