"""app._derive(): a sibling for another tenant or capability set sharing cache and transport."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from msal_async import ConfidentialClientApplication
from msal_async.testing import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, AuthorityEmulator

from ..conftest import HttpsAuthority

pytestmark = pytest.mark.anyio

SCOPE = ["api://resource/.default"]
OTHER_TENANT = "5f3c2b1a-0e9d-4c8b-a7f6-e5d4c3b2a190"
Make = Callable[..., ConfidentialClientApplication]


async def test_a_tenant_sibling_asks_its_tenant_and_shares_the_cache(
    make_cca: Make, emulator: AuthorityEmulator
) -> None:
    emulator.add_tenant(OTHER_TENANT)
    app = make_cca()
    sibling = app._derive(tenant=OTHER_TENANT)
    assert sibling.token_cache is app.token_cache
    assert type(sibling) is ConfidentialClientApplication
    home = await app.acquire_token_for_client(SCOPE)
    away = await sibling.acquire_token_for_client(SCOPE)
    assert emulator.decode(home["access_token"])["tid"] == DEMO_TENANT_ID
    assert emulator.decode(away["access_token"])["tid"] == OTHER_TENANT
    token_paths = [r.path for r in emulator.requests if r.method == "POST"]
    assert token_paths == [
        f"/{DEMO_TENANT_ID}/oauth2/v2.0/token",
        f"/{OTHER_TENANT}/oauth2/v2.0/token",
    ]
    realms = sorted(entry["realm"] for entry in app.token_cache.search("AccessToken"))
    assert realms == sorted([DEMO_TENANT_ID, OTHER_TENANT])
    # the original app is untouched
    assert app.authority.tenant == DEMO_TENANT_ID
    assert (await app.acquire_token_for_client(SCOPE))["token_source"] == "cache"


async def test_a_capability_sibling_declares_cp1_and_the_original_does_not(
    make_cca: Make, emulator: AuthorityEmulator
) -> None:
    app = make_cca()
    cae = app._derive(client_capabilities=["CP1"])
    await cae.acquire_token_for_client(["api://cae/.default"])
    await app.acquire_token_for_client(["api://plain/.default"])
    cae_request, plain_request = [r for r in emulator.requests if r.method == "POST"]
    assert json.loads(cae_request.form["claims"]) == {
        "access_token": {"xms_cc": {"values": ["CP1"]}}
    }
    assert "claims" not in plain_request.form


def test_an_adfs_authority_has_no_tenant_to_switch_to() -> None:
    app = ConfidentialClientApplication(
        "client", client_credential="secret", authority="https://adfs.contoso.com/adfs"
    )
    with pytest.raises(ValueError, match="no tenants"):
        app._derive(tenant=OTHER_TENANT)


async def test_the_sibling_uses_the_apps_own_http_client_and_its_settings(
    https_authority: HttpsAuthority,
) -> None:
    https_authority.emulator.add_tenant(OTHER_TENANT)
    app = ConfidentialClientApplication(
        DEMO_CLIENT_ID,
        client_credential=DEMO_CLIENT_SECRET,
        authority=https_authority.authority,
        instance_discovery=False,
        verify=https_authority.ca_file,  # a sibling without it would fail TLS verification
    )
    sibling = app._derive(tenant=OTHER_TENANT)
    result = await sibling.acquire_token_for_client(SCOPE)
    assert "access_token" in result, result
    await app.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await sibling.acquire_token_for_client(["api://other/.default"])
