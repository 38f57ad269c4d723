"""emulate(): apps built without http_client= talk to the emulator in-process, and only inside."""

from __future__ import annotations

import httpx
import pytest

from msal_async import ConfidentialClientApplication
from msal_async.testing import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, AuthorityEmulator, emulate

pytestmark = pytest.mark.anyio

SCOPES = ["https://graph.microsoft.com/.default"]


def production_app(**kwargs: object) -> ConfidentialClientApplication:
    return ConfidentialClientApplication(
        DEMO_CLIENT_ID,
        client_credential=DEMO_CLIENT_SECRET,
        authority="https://login.microsoftonline.com/contoso.onmicrosoft.com",
        **kwargs,  # type: ignore[arg-type]
    )


async def test_an_app_without_http_client_reaches_the_emulator() -> None:
    with emulate(AuthorityEmulator()) as emulator:
        async with production_app() as app:
            result = await app.acquire_token_for_client(SCOPES)
    assert result["token_source"] == "identity_provider", result
    assert emulator.counts["client_credentials"] == 1


async def test_proxies_are_bypassed_while_emulating() -> None:
    # A proxy would otherwise take the request to the network (mounts win over transport=).
    proxies = {"https": "http://127.0.0.1:9", "http": "http://127.0.0.1:9"}
    with emulate(AuthorityEmulator()) as emulator:
        async with production_app(proxies=proxies) as app:
            result = await app.acquire_token_for_client(SCOPES)
    assert "access_token" in result, result
    assert emulator.counts["client_credentials"] == 1


async def test_nested_blocks_route_to_the_innermost_then_restore() -> None:
    outer, inner = AuthorityEmulator(), AuthorityEmulator()
    with emulate(outer):
        with emulate(inner):
            async with production_app() as app:
                await app.acquire_token_for_client(SCOPES)
        async with production_app() as app:
            await app.acquire_token_for_client(SCOPES)
    assert inner.counts["client_credentials"] == 1
    assert outer.counts["client_credentials"] == 1


async def test_a_given_http_client_is_left_alone() -> None:
    own = AuthorityEmulator()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=own)) as http:
        with emulate(AuthorityEmulator()) as routed:
            async with production_app(http_client=http) as app:
                await app.acquire_token_for_client(SCOPES)
    assert own.counts["client_credentials"] == 1
    assert routed.counts["client_credentials"] == 0


async def test_outside_the_block_the_app_uses_the_network() -> None:
    with emulate(AuthorityEmulator()):
        pass
    # An unreachable authority on loopback proves the app built a real network client.
    app = ConfidentialClientApplication(
        DEMO_CLIENT_ID,
        client_credential=DEMO_CLIENT_SECRET,
        authority="https://127.0.0.1:9/contoso.onmicrosoft.com",
        instance_discovery=False,
    )
    async with app:
        with pytest.raises(Exception, match=r"127\.0\.0\.1"):
            await app.acquire_token_for_client(SCOPES)


def test_not_an_asgi_app_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="emulate"), emulate("not an app"):  # type: ignore[type-var]
        pass
