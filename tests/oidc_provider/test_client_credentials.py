"""Client credentials against oidc-provider 8.x: a secret and private_key_jwt, two cold requests."""

from __future__ import annotations

from typing import Any

import pytest

from msal_async import ConfidentialClientApplication

from .harness import (
    CERT_CLIENT_ID,
    SECRET_CLIENT_ID,
    SECRET_CLIENT_SECRET,
    OidcProvider,
)

pytestmark = pytest.mark.anyio


async def two_cold_requests(
    provider: OidcProvider, client_id: str, credential: Any
) -> list[dict[str, Any]]:
    """One app, two scopes never asked before: two token requests in a row."""
    async with ConfidentialClientApplication(
        client_id,
        client_credential=credential,
        oidc_authority=provider.issuer,
        verify=provider.ca_file,
    ) as app:
        first = await app.acquire_token_for_client(["api:read"])
        second = await app.acquire_token_for_client(["api:write"])
    return [dict(first), dict(second)]


async def test_client_secret_two_cold_requests_are_both_accepted(
    oidc_provider: OidcProvider,
) -> None:
    results = await two_cold_requests(oidc_provider, SECRET_CLIENT_ID, SECRET_CLIENT_SECRET)
    for result in results:
        assert "access_token" in result, result
        assert result["token_source"] == "identity_provider"


@pytest.mark.parametrize("shape", ["thumbprint_credential", "certificate_credential"])
async def test_private_key_jwt_two_cold_requests_are_both_accepted(
    oidc_provider: OidcProvider, shape: str
) -> None:
    """msal 1.39 fails the second one (it re-sends its cached assertion's jti); we sign anew."""
    credential = getattr(oidc_provider.client_certificate, shape)
    results = await two_cold_requests(oidc_provider, CERT_CLIENT_ID, credential)
    for result in results:
        assert "access_token" in result, result
        assert result["token_source"] == "identity_provider"
    assert results[0]["access_token"] != results[1]["access_token"]
