"""app.prefetch(): discovery, region and a token warmed at start-up, not on the first request."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from msal_async import (
    ConfidentialClientApplication,
    MsalTransportError,
    PublicClientApplication,
)
from msal_async._region import region_detector
from msal_async.testing import DEMO_TENANT_ID, AuthorityEmulator

pytestmark = pytest.mark.anyio

SCOPE = ["api://resource/.default"]
PUBLIC_CLIENT_ID = "0c1f4a7e-5b3d-4e2a-9f80-7d6c5b4a3e21"
AUTHORITY = f"https://login.microsoftonline.com/{DEMO_TENANT_ID}"
Make = Callable[..., ConfidentialClientApplication]


@pytest.fixture(autouse=True)
def clean_region(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("REGION_NAME", raising=False)
    monkeypatch.delenv("MSAL_FORCE_REGION", raising=False)
    region_detector.forget()
    yield
    region_detector.forget()


async def test_without_scopes_only_discovery_is_warmed(
    make_cca: Make, emulator: AuthorityEmulator
) -> None:
    app = make_cca()
    assert await app.prefetch() is None
    assert emulator.counts["openid-configuration"] == 1
    assert emulator.counts["client_credentials"] == 0
    before = len(emulator.requests)
    result = await app.acquire_token_for_client(SCOPE)
    assert result["token_source"] == "identity_provider"
    # the first real acquisition sends the token request and nothing else
    assert [r.path for r in emulator.requests[before:]] == [f"/{DEMO_TENANT_ID}/oauth2/v2.0/token"]


async def test_with_scopes_a_confidential_app_holds_the_client_token(
    make_cca: Make, emulator: AuthorityEmulator
) -> None:
    app = make_cca()
    warmed = await app.prefetch(SCOPE)
    assert warmed is not None
    assert warmed["token_source"] == "identity_provider"
    before = len(emulator.requests)
    result = await app.acquire_token_for_client(SCOPE)
    assert result["token_source"] == "cache"
    assert result["access_token"] == warmed["access_token"]
    assert len(emulator.requests) == before


async def test_a_failed_token_comes_back_as_the_error_dict(
    make_cca: Make, emulator: AuthorityEmulator
) -> None:
    warmed = await make_cca(client_credential="wrong-secret").prefetch(SCOPE)
    assert warmed is not None
    assert warmed["error"] == "invalid_client"


async def test_region_is_detected_by_prefetch_not_by_the_first_request(
    make_cca: Make, emulator: AuthorityEmulator
) -> None:
    emulator.region = "centralus"
    app = make_cca(azure_region=True)
    await app.prefetch()
    assert emulator.counts["imds-region"] == 1
    before = len(emulator.requests)
    await app.acquire_token_for_client(SCOPE)
    new = emulator.requests[before:]
    assert [(r.method, r.headers["host"]) for r in new] == [
        ("POST", "centralus.login.microsoft.com")
    ]


async def test_an_unreachable_authority_fails_at_start_up() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        app = ConfidentialClientApplication(
            "client", client_credential="secret", authority=AUTHORITY, http_client=http
        )
        with pytest.raises(MsalTransportError):
            await app.prefetch()


async def sign_in(emulator: AuthorityEmulator, app: PublicClientApplication, user: str) -> None:
    emulator.device_flow.interval = 0
    flow = await app.initiate_device_flow(["User.Read"])
    emulator.approve_device_code(flow["user_code"], user)
    result = await app.acquire_token_by_device_flow(flow)
    assert "access_token" in result, result


async def test_a_public_app_warms_the_single_cached_account(
    emulator: AuthorityEmulator, http: httpx.AsyncClient
) -> None:
    emulator.register_client(PUBLIC_CLIENT_ID)
    app = PublicClientApplication(PUBLIC_CLIENT_ID, authority=AUTHORITY, http_client=http)
    assert await app.prefetch(["User.Read"]) is None  # nobody signed in: nothing to warm
    await sign_in(emulator, app, "alice@contoso.onmicrosoft.com")
    warmed = await app.prefetch(["Files.Read"])
    assert warmed is not None
    assert warmed["token_source"] == "identity_provider"  # redeemed the refresh token
    [account] = await app.get_accounts()
    again = await app.acquire_token_silent(["Files.Read"], account)
    assert again is not None
    assert again["token_source"] == "cache"


async def test_a_public_app_with_several_accounts_warms_no_token(
    emulator: AuthorityEmulator, http: httpx.AsyncClient
) -> None:
    emulator.register_client(PUBLIC_CLIENT_ID)
    app = PublicClientApplication(PUBLIC_CLIENT_ID, authority=AUTHORITY, http_client=http)
    await sign_in(emulator, app, "alice@contoso.onmicrosoft.com")
    await sign_in(emulator, app, "bob@contoso.onmicrosoft.com")
    before = emulator.counts["refresh_token"]
    assert await app.prefetch(["Files.Read"]) is None
    assert emulator.counts["refresh_token"] == before
