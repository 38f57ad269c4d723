"""msal_async.azure.AzureCredential: azure-core's async credential protocols on an msal_async app."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.core.credentials_async import AsyncSupportsTokenInfo, AsyncTokenCredential
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError
from azure.core.pipeline import AsyncPipeline
from azure.core.pipeline.policies import AsyncBearerTokenCredentialPolicy
from azure.core.pipeline.transport import AsyncHttpTransport
from azure.core.rest import HttpRequest
from azure.keyvault.secrets.aio import SecretClient

from msal_async import (
    ConfidentialClientApplication,
    ManagedIdentityClient,
    PublicClientApplication,
    SystemAssignedManagedIdentity,
)
from msal_async.azure import AzureCredential, resolve_tenant
from msal_async.testing import (
    DEMO_CLIENT_ID,
    DEMO_TENANT_ID,
    AuthorityEmulator,
    ManagedIdentityEmulator,
    TLSFiles,
)

from .conftest import ServeHttps
from .resource_server import API_RESOURCE, VAULT_RESOURCE, ProtectedResource

pytestmark = pytest.mark.anyio

AUTHORITY = f"https://login.microsoftonline.com/{DEMO_TENANT_ID}"
OTHER_TENANT = "5f3c2b1a-0e9d-4c8b-a7f6-e5d4c3b2a190"
API_SCOPE = f"{API_RESOURCE}/.default"
VAULT_SCOPE = f"{VAULT_RESOURCE}/.default"
PUBLIC_CLIENT_ID = "0c1f4a7e-5b3d-4e2a-9f80-7d6c5b4a3e21"
Make = Callable[..., ConfidentialClientApplication]


def token_posts(emulator: AuthorityEmulator) -> list[dict[str, str]]:
    return [r.form for r in emulator.requests if r.method == "POST"]


# -- the protocol ----------------------------------------------------------------------------


async def test_it_is_an_azure_core_async_credential(make_cca: Make) -> None:
    credential = AzureCredential(make_cca())
    assert isinstance(credential, AsyncTokenCredential)
    assert isinstance(credential, AsyncSupportsTokenInfo)


async def test_get_token_and_get_token_info_share_the_cached_token(
    make_cca: Make, emulator: AuthorityEmulator
) -> None:
    emulator.refresh_in = 1800
    credential = AzureCredential(make_cca())
    before = int(time.time())
    token = await credential.get_token(API_SCOPE)
    assert isinstance(token, AccessToken)
    assert emulator.decode(token.token)["aud"] == API_RESOURCE
    assert before + 3600 - 2 <= token.expires_on <= int(time.time()) + 3600
    info = await credential.get_token_info(API_SCOPE)
    assert isinstance(info, AccessTokenInfo)
    assert info.token == token.token
    assert info.token_type == "Bearer"
    assert info.refresh_on is not None
    assert before + 1800 - 2 <= info.refresh_on <= int(time.time()) + 1800
    assert emulator.counts["client_credentials"] == 1


async def test_refresh_on_is_none_when_the_authority_sends_no_hint(make_cca: Make) -> None:
    info = await AzureCredential(make_cca()).get_token_info(API_SCOPE)
    assert info.refresh_on is None


async def test_scopes_are_required(make_cca: Make) -> None:
    credential = AzureCredential(make_cca())
    with pytest.raises(ValueError, match="at least one scope"):
        await credential.get_token()
    with pytest.raises(ValueError, match="at least one scope"):
        await credential.get_token_info()


async def test_constructor_arguments_are_checked(make_cca: Make) -> None:
    with pytest.raises(TypeError, match="ConfidentialClientApplication"):
        AzureCredential(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="additionally_allowed_tenants"):
        AzureCredential(make_cca(), additionally_allowed_tenants="*")
    with pytest.raises(TypeError, match="get_accounts"):
        AzureCredential(make_cca(), account={"username": "x"})


async def test_close_and_async_with_close_the_app() -> None:
    app = ConfidentialClientApplication(DEMO_CLIENT_ID, client_credential="s", authority=AUTHORITY)
    async with AzureCredential(app):
        pass
    with pytest.raises(RuntimeError, match="closed"):
        await app.acquire_token_for_client([API_SCOPE])


# -- errors -----------------------------------------------------------------------------------


async def test_an_error_dict_becomes_client_authentication_error(make_cca: Make) -> None:
    credential = AzureCredential(make_cca(client_credential="wrong-secret"))
    with pytest.raises(ClientAuthenticationError) as caught:
        await credential.get_token(API_SCOPE)
    text = str(caught.value)
    assert text.startswith("invalid_client: AADSTS")
    assert "correlation_id" in text
    assert "wrong-secret" not in text


async def test_an_unreachable_authority_is_a_service_request_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        app = ConfidentialClientApplication(
            DEMO_CLIENT_ID, client_credential="secret", authority=AUTHORITY, http_client=http
        )
        with pytest.raises(ServiceRequestError):
            await AzureCredential(app).get_token(API_SCOPE)


# -- claims, CAE, tenants ---------------------------------------------------------------------


async def test_claims_bypass_the_cache_and_are_sent(
    make_cca: Make, emulator: AuthorityEmulator
) -> None:
    credential = AzureCredential(make_cca())
    first = await credential.get_token(API_SCOPE)
    claims = '{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}'
    second = await credential.get_token(API_SCOPE, claims=claims)
    assert second.token != first.token
    assert json.loads(token_posts(emulator)[-1]["claims"]) == json.loads(claims)


async def test_enable_cae_declares_cp1_in_one_sibling_app(
    make_cca: Make, emulator: AuthorityEmulator
) -> None:
    credential = AzureCredential(make_cca())
    cae = await credential.get_token(API_SCOPE, enable_cae=True)
    assert emulator.decode(cae.token)["xms_cc"] == ["CP1"]
    again = await credential.get_token_info("api://other/.default", options={"enable_cae": True})
    assert emulator.decode(again.token)["xms_cc"] == ["CP1"]
    posts = token_posts(emulator)
    assert [json.loads(p["claims"]) for p in posts] == [
        {"access_token": {"xms_cc": {"values": ["CP1"]}}}
    ] * 2
    # the same token is then served from the cache without another request
    assert (await credential.get_token(API_SCOPE, enable_cae=True)).token == cae.token
    assert len(token_posts(emulator)) == 2


async def test_an_app_that_declares_cp1_is_used_as_it_is(
    make_cca: Make, emulator: AuthorityEmulator
) -> None:
    credential = AzureCredential(make_cca(client_capabilities=["cp1"]))
    await credential.get_token(API_SCOPE, enable_cae=True)
    await credential.get_token(API_SCOPE, enable_cae=False)
    assert emulator.counts["client_credentials"] == 1


async def test_cae_claims_merge_with_the_challenge(
    make_cca: Make, emulator: AuthorityEmulator
) -> None:
    credential = AzureCredential(make_cca())
    claims = '{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}'
    await credential.get_token(API_SCOPE, claims=claims, enable_cae=True)
    sent = json.loads(token_posts(emulator)[-1]["claims"])
    assert sent == {
        "access_token": {
            "nbf": {"essential": True, "value": "1700000000"},
            "xms_cc": {"values": ["CP1"]},
        }
    }


async def test_another_tenant_is_refused_unless_allowed(
    make_cca: Make, emulator: AuthorityEmulator
) -> None:
    emulator.add_tenant(OTHER_TENANT)
    with pytest.raises(ClientAuthenticationError, match="additionally_allowed_tenants"):
        await AzureCredential(make_cca()).get_token(API_SCOPE, tenant_id=OTHER_TENANT)
    assert emulator.requests == []
    for allowed in ([OTHER_TENANT.upper()], ["*"]):
        emulator.reset()
        credential = AzureCredential(make_cca(), additionally_allowed_tenants=allowed)
        away = await credential.get_token(API_SCOPE, tenant_id=OTHER_TENANT)
        home = await credential.get_token(API_SCOPE, tenant_id=DEMO_TENANT_ID)
        assert emulator.decode(away.token)["tid"] == OTHER_TENANT
        assert emulator.decode(home.token)["tid"] == DEMO_TENANT_ID
        again = await credential.get_token(API_SCOPE, tenant_id=OTHER_TENANT)
        assert again.token == away.token  # its sibling app shares the cache
        assert emulator.counts["client_credentials"] == 2


async def test_concurrent_callers_for_another_tenant_share_one_request(
    make_cca: Make, emulator: AuthorityEmulator
) -> None:
    emulator.add_tenant(OTHER_TENANT)
    app = make_cca()
    credential = AzureCredential(app, additionally_allowed_tenants=["*"])
    tokens: set[str] = set()

    async def call() -> None:
        tokens.add((await credential.get_token(API_SCOPE, tenant_id=OTHER_TENANT)).token)

    async with anyio.create_task_group() as tg:
        for _ in range(100):
            tg.start_soon(call)
    assert len(tokens) == 1
    assert emulator.counts["client_credentials"] == 1
    realms = {entry["realm"] for entry in app.token_cache.search("AccessToken")}
    assert realms == {OTHER_TENANT}  # in the app's own cache


def test_tenant_resolution_follows_azure_identity() -> None:
    assert resolve_tenant("contoso", None, allowed=()) is None
    assert resolve_tenant("contoso", "CONTOSO", allowed=()) is None
    assert resolve_tenant("contoso", "fabrikam", allowed=("*",)) == "fabrikam"
    assert resolve_tenant("contoso", "fabrikam", allowed=("Fabrikam",)) == "fabrikam"
    assert resolve_tenant("organizations", "fabrikam", allowed=()) == "fabrikam"
    with pytest.raises(ClientAuthenticationError):
        resolve_tenant("organizations", "fabrikam", allowed=("other",))
    assert resolve_tenant("adfs", "fabrikam", allowed=(), switchable=False) is None
    disabled = {"AZURE_IDENTITY_DISABLE_MULTITENANTAUTH": "true"}
    assert resolve_tenant("contoso", "fabrikam", allowed=(), environ=disabled) is None
    for bad in ("", "a/b", "../x", "x?y", "t t"):
        with pytest.raises(ValueError, match="tenant"):
            resolve_tenant("contoso", bad, allowed=("*",))


# -- managed identity and users ---------------------------------------------------------------


async def test_a_managed_identity_asks_for_the_scopes_resource(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mi = ManagedIdentityEmulator()
    monkeypatch.delenv("MSI_ENDPOINT", raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", "http://127.0.0.1:1" + mi.APP_SERVICE_PATH)
    monkeypatch.setenv("IDENTITY_HEADER", mi.secret)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mi)) as http:
        client = ManagedIdentityClient(SystemAssignedManagedIdentity(), http_client=http)
        credential = AzureCredential(client)
        token = await credential.get_token(VAULT_SCOPE, tenant_id=OTHER_TENANT, enable_cae=True)
        assert mi.decode(token.token)["aud"] == VAULT_RESOURCE
        assert mi.requests[-1].query["resource"] == VAULT_RESOURCE
        await credential.get_token(VAULT_SCOPE)
        assert mi.counts["app_service"] == 1
        with pytest.raises(ValueError, match="exactly one scope"):
            await credential.get_token(VAULT_SCOPE, API_SCOPE)
    with pytest.raises(ValueError, match="ManagedIdentityClient"):
        AzureCredential(client, account={"home_account_id": "x"})


async def sign_in(emulator: AuthorityEmulator, app: PublicClientApplication, user: str) -> None:
    emulator.device_flow.interval = 0
    flow = await app.initiate_device_flow(["User.Read"])
    emulator.approve_device_code(flow["user_code"], user)
    assert "access_token" in await app.acquire_token_by_device_flow(flow)


async def test_a_public_app_serves_its_signed_in_user_silently(
    emulator: AuthorityEmulator, http: httpx.AsyncClient
) -> None:
    emulator.register_client(PUBLIC_CLIENT_ID)
    app = PublicClientApplication(PUBLIC_CLIENT_ID, authority=AUTHORITY, http_client=http)
    credential = AzureCredential(app)
    with pytest.raises(ClientAuthenticationError, match="interaction_required: No account"):
        await credential.get_token("User.Read")
    await sign_in(emulator, app, "alice@contoso.onmicrosoft.com")
    token = await credential.get_token("Files.Read")
    assert emulator.decode(token.token)["scp"] == "Files.Read"
    await sign_in(emulator, app, "bob@contoso.onmicrosoft.com")
    with pytest.raises(ClientAuthenticationError, match="2 accounts"):
        await credential.get_token("Files.Read")
    [bob] = await app.get_accounts(username="bob@contoso.onmicrosoft.com")
    bobs = await AzureCredential(app, account=bob).get_token("Files.Read")
    assert emulator.decode(bobs.token)["upn"] == "bob@contoso.onmicrosoft.com"


async def test_a_forgotten_account_needs_interaction(
    emulator: AuthorityEmulator, http: httpx.AsyncClient
) -> None:
    emulator.register_client(PUBLIC_CLIENT_ID)
    app = PublicClientApplication(PUBLIC_CLIENT_ID, authority=AUTHORITY, http_client=http)
    await sign_in(emulator, app, "alice@contoso.onmicrosoft.com")
    [account] = await app.get_accounts()
    await app.remove_account(account)
    with pytest.raises(ClientAuthenticationError, match="interaction_required"):
        await AzureCredential(app, account=account).get_token("User.Read")


def test_a_missing_azure_core_says_what_to_install() -> None:
    code = "import sys; sys.modules['azure'] = None; import msal_async.azure"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert 'pip install "msal-async[azure]"' in done.stderr.splitlines()[-1]


# -- through azure-core's pipeline and a real Azure SDK client --------------------------------


@dataclass
class Served:
    """The protected resource over HTTPS on 127.0.0.1, and what trusts it."""

    resource: ProtectedResource
    base_url: str
    tls: TLSFiles


@pytest.fixture
def served(
    emulator: AuthorityEmulator, serve_https: ServeHttps, tls_files: TLSFiles
) -> Iterator[Served]:
    resource = ProtectedResource(emulator, AUTHORITY, {"db-password": "s3cr3t-value"})
    with serve_https(resource) as base_url:
        yield Served(resource, base_url, tls_files)


def azure_transport(backend: str, ca_file: Path) -> AsyncHttpTransport[Any, Any]:
    """azure-core's own transport for the running event loop, trusting the test CA."""
    if backend == "trio":
        from azure.core.pipeline.transport import TrioRequestsTransport

        trio_transport: AsyncHttpTransport[Any, Any] = TrioRequestsTransport(
            connection_verify=str(ca_file)
        )
        return trio_transport
    from azure.core.pipeline.transport import AioHttpTransport

    aiohttp_transport: AsyncHttpTransport[Any, Any] = AioHttpTransport(
        connection_verify=str(ca_file)
    )
    return aiohttp_transport


async def test_200_requests_through_the_bearer_policy_send_one_token_request(
    make_cca: Make, emulator: AuthorityEmulator, served: Served, anyio_backend: str
) -> None:
    credential = AzureCredential(make_cca())
    policy = AsyncBearerTokenCredentialPolicy(credential, API_SCOPE)
    statuses: list[int] = []
    async with AsyncPipeline(azure_transport(anyio_backend, served.tls.ca_file), [policy]) as pipe:

        async def call(i: int) -> None:
            response = await pipe.run(HttpRequest("GET", f"{served.base_url}/api/items/{i}"))
            statuses.append(response.http_response.status_code)

        async with anyio.create_task_group() as tg:
            for i in range(200):
                tg.start_soon(call, i)
    assert statuses == [200] * 200
    assert emulator.counts["client_credentials"] == 1


async def test_pipelines_sharing_one_credential_share_one_token_request(
    make_cca: Make, emulator: AuthorityEmulator, served: Served, anyio_backend: str
) -> None:
    """azure-core's lock is per policy; across pipelines the app's single flight does it."""
    credential = AzureCredential(make_cca())
    pipelines = [
        AsyncPipeline(
            azure_transport(anyio_backend, served.tls.ca_file),
            [AsyncBearerTokenCredentialPolicy(credential, API_SCOPE)],
        )
        for _ in range(10)
    ]
    statuses: list[int] = []

    async def call(pipe: AsyncPipeline[Any, Any], i: int) -> None:
        response = await pipe.run(HttpRequest("GET", f"{served.base_url}/api/items/{i}"))
        statuses.append(response.http_response.status_code)

    async with anyio.create_task_group() as tg:
        for pipe in pipelines:
            for i in range(5):
                tg.start_soon(call, pipe, i)
    for pipe in pipelines:
        await pipe.__aexit__()
    assert statuses == [200] * 50
    assert emulator.counts["client_credentials"] == 1


def secret_client(served: Served, credential: AzureCredential, backend: str) -> SecretClient:
    return SecretClient(
        served.base_url,
        credential,
        transport=azure_transport(backend, served.tls.ca_file),
        verify_challenge_resource=False,  # the vault is on 127.0.0.1, not *.vault.azure.net
    )


async def test_key_vault_secret_client_through_its_challenge(
    make_cca: Make, emulator: AuthorityEmulator, served: Served, anyio_backend: str
) -> None:
    credential = AzureCredential(make_cca())
    values: list[str | None] = []
    async with secret_client(served, credential, anyio_backend) as client:

        async def fetch() -> None:
            values.append((await client.get_secret("db-password")).value)

        async with anyio.create_task_group() as tg:
            for _ in range(100):
                tg.start_soon(fetch)
    assert values == ["s3cr3t-value"] * 100
    assert emulator.counts["client_credentials"] == 1
    [post] = token_posts(emulator)
    assert post["scope"] == VAULT_SCOPE
    # Key Vault's client always enables CAE: the token request declares CP1
    assert json.loads(post["claims"]) == {"access_token": {"xms_cc": {"values": ["CP1"]}}}
    assert served.resource.status_counts[401] >= 1  # the challenge came first


async def test_key_vault_cae_claims_challenge_gets_a_fresh_token(
    make_cca: Make, emulator: AuthorityEmulator, served: Served, anyio_backend: str
) -> None:
    credential = AzureCredential(make_cca())
    async with secret_client(served, credential, anyio_backend) as client:
        await client.get_secret("db-password")
        revoked = served.resource.seen_tokens[-1]
        served.resource.revoke(revoked)
        secret = await client.get_secret("db-password")
    assert secret.value == "s3cr3t-value"
    last = token_posts(emulator)[-1]
    expected = json.loads(served.resource.claims_challenge())
    expected["access_token"]["xms_cc"] = {"values": ["CP1"]}
    assert json.loads(last["claims"]) == expected
    fresh = served.resource.seen_tokens[-1]
    assert fresh != revoked
    assert emulator.counts["client_credentials"] == 2
    # the fresh token replaced the revoked one in the cache: the next call uses it
    assert (await credential.get_token(VAULT_SCOPE, enable_cae=True)).token == fresh


def test_claims_challenge_header_is_what_azure_core_decodes() -> None:
    """The fake resource's header is base64url without padding, as Entra-protected APIs send."""
    resource = ProtectedResource(AuthorityEmulator(), AUTHORITY, {})
    resource.revoke("t")
    _, _, headers = resource._handle("/api/x", "Bearer t")
    encoded = headers["www-authenticate"].split('claims="')[1].rstrip('"')
    padded = encoded + "=" * (-len(encoded) % 4)
    assert json.loads(base64.urlsafe_b64decode(padded)) == json.loads(resource.claims_challenge())
