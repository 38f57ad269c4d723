"""msal_async.BearerAuth: an httpx.Auth sending the app's token and answering claims challenges."""

from __future__ import annotations

import json
from collections.abc import Callable

import anyio
import httpx
import pytest

from msal_async import (
    BearerAuth,
    ConfidentialClientApplication,
    ManagedIdentityClient,
    MsalServiceError,
    PublicClientApplication,
    SystemAssignedManagedIdentity,
)
from msal_async.testing import (
    DEMO_TENANT_ID,
    AuthorityEmulator,
    TLSFiles,
)

from .conftest import ServeHttps
from .resource_server import API_RESOURCE, ProtectedResource

pytestmark = pytest.mark.anyio

AUTHORITY = f"https://login.microsoftonline.com/{DEMO_TENANT_ID}"
SCOPES = [f"{API_RESOURCE}/.default"]
PUBLIC_CLIENT_ID = "0c1f4a7e-5b3d-4e2a-9f80-7d6c5b4a3e21"
Make = Callable[..., ConfidentialClientApplication]


def resource_client(
    emulator: AuthorityEmulator, auth: BearerAuth
) -> tuple[ProtectedResource, httpx.AsyncClient]:
    resource = ProtectedResource(emulator, AUTHORITY, {})
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=resource), base_url="https://api.test", auth=auth
    )
    return resource, client


async def test_requests_carry_the_apps_token(make_cca: Make, emulator: AuthorityEmulator) -> None:
    resource, client = resource_client(emulator, BearerAuth(make_cca(), SCOPES))
    async with client:
        response = await client.get("/api/orders")
    assert response.status_code == 200
    assert response.json()["path"] == "/api/orders"
    [token] = resource.seen_tokens
    assert emulator.decode(token)["aud"] == API_RESOURCE


async def test_concurrent_requests_share_one_acquisition(
    make_cca: Make, emulator: AuthorityEmulator
) -> None:
    resource, client = resource_client(emulator, BearerAuth(make_cca(), SCOPES))
    statuses: list[int] = []
    async with client:

        async def call(i: int) -> None:
            statuses.append((await client.get(f"/api/orders/{i}")).status_code)

        async with anyio.create_task_group() as tg:
            for i in range(100):
                tg.start_soon(call, i)
    assert statuses == [200] * 100
    assert emulator.counts["client_credentials"] == 1
    assert len(set(resource.seen_tokens)) == 1


async def test_a_claims_challenge_gets_a_new_token_and_one_retry(
    make_cca: Make, emulator: AuthorityEmulator
) -> None:
    resource, client = resource_client(emulator, BearerAuth(make_cca(), SCOPES))
    async with client:
        await client.post("/api/orders", json={"item": 1})
        revoked = resource.seen_tokens[-1]
        resource.revoke(revoked)
        response = await client.post("/api/orders", json={"item": 2})
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [401]
    last_post = [r for r in emulator.requests if r.method == "POST"][-1]
    assert json.loads(last_post.form["claims"]) == json.loads(resource.claims_challenge())
    assert resource.seen_tokens[-1] != revoked
    assert emulator.counts["client_credentials"] == 2


async def test_concurrent_challenges_for_one_revoked_token_acquire_once(
    make_cca: Make, emulator: AuthorityEmulator
) -> None:
    resource, client = resource_client(emulator, BearerAuth(make_cca(), SCOPES))
    async with client:
        await client.get("/api/warm")
        resource.revoke(resource.seen_tokens[-1])
        statuses: list[int] = []

        async def call(i: int) -> None:
            statuses.append((await client.get(f"/api/orders/{i}")).status_code)

        async with anyio.create_task_group() as tg:
            for i in range(50):
                tg.start_soon(call, i)
    assert statuses == [200] * 50
    assert emulator.counts["client_credentials"] == 2  # the first, and one with the claims


async def test_a_second_401_is_returned_not_retried_again(
    make_cca: Make, emulator: AuthorityEmulator
) -> None:
    resource, client = resource_client(emulator, BearerAuth(make_cca(), SCOPES))
    async with client:
        await client.get("/api/warm")
        resource.revoke(resource.seen_tokens[-1])
        original_revoke = resource.seen_tokens.copy()
        # revoke every token from now on: the retry is challenged too
        resource.revoked = _Everything()
        response = await client.get("/api/orders")
    assert response.status_code == 401
    assert len(response.history) == 1
    assert len(resource.seen_tokens) == len(original_revoke) + 2


class _Everything(set[str]):
    def __contains__(self, item: object) -> bool:
        return True


async def test_a_401_without_claims_is_returned_as_is(
    make_cca: Make, emulator: AuthorityEmulator
) -> None:
    _, client = resource_client(emulator, BearerAuth(make_cca(), SCOPES))
    async with client:
        response = await client.get("/secrets/x")  # a token for another audience
    assert response.status_code == 403
    assert emulator.counts["client_credentials"] == 1


async def test_errors_raise_msal_service_error_without_secrets(
    make_cca: Make, emulator: AuthorityEmulator
) -> None:
    _, client = resource_client(
        emulator, BearerAuth(make_cca(client_credential="wrong-secret-7f3a"), SCOPES)
    )
    async with client:
        with pytest.raises(MsalServiceError) as caught:
            await client.get("/api/orders")
    assert caught.value.error == "invalid_client"
    assert "correlation_id" in str(caught.value)
    assert "wrong-secret-7f3a" not in str(caught.value)


async def test_a_public_apps_user_token(
    emulator: AuthorityEmulator, http: httpx.AsyncClient
) -> None:
    emulator.register_client(PUBLIC_CLIENT_ID)
    emulator.device_flow.interval = 0
    app = PublicClientApplication(PUBLIC_CLIENT_ID, authority=AUTHORITY, http_client=http)
    flow = await app.initiate_device_flow(["User.Read"])
    emulator.approve_device_code(flow["user_code"], "alice@contoso.onmicrosoft.com")
    await app.acquire_token_by_device_flow(flow)
    resource, client = resource_client(emulator, BearerAuth(app, [f"{API_RESOURCE}/Orders.Read"]))
    async with client:
        response = await client.get("/api/me")
    assert response.status_code == 200
    assert emulator.decode(resource.seen_tokens[0])["upn"] == "alice@contoso.onmicrosoft.com"


def test_sync_clients_are_refused() -> None:
    app = ConfidentialClientApplication("client", client_credential="s", authority=AUTHORITY)
    transport = httpx.MockTransport(lambda r: httpx.Response(200))
    with (
        httpx.Client(transport=transport, auth=BearerAuth(app, SCOPES)) as client,
        pytest.raises(RuntimeError, match="async-only"),
    ):
        client.get("https://api.test/")


async def test_arguments_are_checked(make_cca: Make) -> None:
    with pytest.raises(TypeError, match="list of strings"):
        BearerAuth(make_cca(), "api://orders/.default")
    with pytest.raises(ValueError, match="at least one scope"):
        BearerAuth(make_cca(), [])
    with pytest.raises(TypeError, match="PublicClientApplication"):
        BearerAuth(object(), SCOPES)  # type: ignore[arg-type]
    async with httpx.AsyncClient() as http:
        mi = ManagedIdentityClient(SystemAssignedManagedIdentity(), http_client=http)
        with pytest.raises(ValueError, match="exactly one scope"):
            BearerAuth(mi, ["https://a/.default", "https://b/.default"])


async def test_over_https_to_a_real_server(
    make_cca: Make, emulator: AuthorityEmulator, serve_https: ServeHttps, tls_files: TLSFiles
) -> None:
    import ssl

    resource = ProtectedResource(emulator, AUTHORITY, {})
    with serve_https(resource) as base_url:
        verify = ssl.create_default_context(cafile=str(tls_files.ca_file))
        async with httpx.AsyncClient(auth=BearerAuth(make_cca(), SCOPES), verify=verify) as c:
            await c.get(f"{base_url}/api/one")
            resource.revoke(resource.seen_tokens[-1])
            response = await c.put(f"{base_url}/api/two", content=b"a body sent twice")
    assert response.status_code == 200
    assert emulator.counts["client_credentials"] == 2


async def test_a_challenge_already_answered_by_another_request_reuses_its_token(
    make_cca: Make, emulator: AuthorityEmulator
) -> None:
    """Two requests sent with the same revoked token; the second 401 arrives after the first
    was answered: it takes the new token from the cache instead of acquiring again."""
    resource = ProtectedResource(emulator, AUTHORITY, {})
    auth = BearerAuth(make_cca(), SCOPES)
    first = auth.async_auth_flow(httpx.Request("GET", "https://api.test/api/a"))
    second = auth.async_auth_flow(httpx.Request("GET", "https://api.test/api/b"))
    sent_first, sent_second = await first.__anext__(), await second.__anext__()
    revoked = sent_first.headers["authorization"]
    assert sent_second.headers["authorization"] == revoked
    resource.revoke(revoked.removeprefix("Bearer "))
    challenge = resource._handle("/api/a", revoked)[2]
    retried_first = await first.asend(httpx.Response(401, headers=challenge))
    retried_second = await second.asend(httpx.Response(401, headers=challenge))
    await first.aclose()
    await second.aclose()
    assert retried_first.headers["authorization"] != revoked
    assert retried_second.headers["authorization"] == retried_first.headers["authorization"]
    assert emulator.counts["client_credentials"] == 2
