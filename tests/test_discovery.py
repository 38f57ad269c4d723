"""Discovery is lazy, single-flight and memoised, and fails (without memoising) as msal does."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest

from msal_async._authority import Authority, AuthorityEndpoints
from msal_async._discovery import Discovery
from msal_async._errors import MsalServiceError, MsalTransportError
from msal_async._transport import Transport
from msal_async.testing import DEMO_TENANT_ID, AuthorityEmulator, Fault

pytestmark = pytest.mark.anyio

PUBLIC = "https://login.microsoftonline.com"
DOMAIN_AUTHORITY = f"{PUBLIC}/contoso.onmicrosoft.com"


@asynccontextmanager
async def _discovery(app: Any) -> AsyncIterator[Discovery]:
    """A Discovery on a real Transport whose httpx client talks to ``app`` in process."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
        yield Discovery(Transport(http_client=client))


class _StaticApp:
    """A tiny ASGI server answering fixed responses by path (for what the emulator won't do)."""

    def __init__(self, routes: dict[str, tuple[int, str]]) -> None:
        self.routes = routes
        self.paths: list[str] = []

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        assert scope["type"] == "http"
        self.paths.append(scope["path"])
        status, body = self.routes.get(scope["path"], (404, "Not Found"))
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body.encode()})


def _openid_configuration(root: str, *, issuer: str) -> str:
    return json.dumps(
        {
            "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
            "token_endpoint": f"{root}/oauth2/v2.0/token",
            "issuer": issuer,
        }
    )


# --- laziness, single flight, memo ---


async def test_parsing_does_no_io_and_resolve_discovers_once() -> None:
    emulator = AuthorityEmulator()
    async with _discovery(emulator) as discovery:
        authority = Authority.parse(DOMAIN_AUTHORITY)
        assert discovery.cached(authority) is None
        assert emulator.requests == []
        endpoints = await discovery.resolve(authority)
    assert endpoints == AuthorityEndpoints(
        token_endpoint=f"{PUBLIC}/{DEMO_TENANT_ID}/oauth2/v2.0/token",
        authorization_endpoint=f"{PUBLIC}/{DEMO_TENANT_ID}/oauth2/v2.0/authorize",
        device_authorization_endpoint=f"{PUBLIC}/{DEMO_TENANT_ID}/oauth2/v2.0/devicecode",
        issuer=f"{PUBLIC}/{DEMO_TENANT_ID}/v2.0",
        tenant=DEMO_TENANT_ID,  # the realm, re-derived from the token endpoint
        instance="login.microsoftonline.com",
    )
    assert [r.path for r in emulator.requests] == [
        "/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration"
    ]
    assert emulator.counts["discovery"] == 0  # a well-known host needs no instance discovery


async def test_hundred_concurrent_resolves_share_one_request() -> None:
    emulator = AuthorityEmulator(latency=0.05)
    authority = Authority.parse(DOMAIN_AUTHORITY)
    results: list[AuthorityEndpoints] = []

    async def resolve(discovery: Discovery) -> None:
        results.append(await discovery.resolve(authority))

    async with _discovery(emulator) as discovery, anyio.create_task_group() as tg:
        for _ in range(100):
            tg.start_soon(resolve, discovery)
    assert emulator.counts["openid-configuration"] == 1
    assert len(results) == 100
    assert all(result is results[0] for result in results)


async def test_result_is_memoised_per_discovery_and_per_authority() -> None:
    emulator = AuthorityEmulator()
    async with _discovery(emulator) as discovery:
        authority = Authority.parse(DOMAIN_AUTHORITY)
        first = await discovery.resolve(authority)
        assert await discovery.resolve(Authority.parse(DOMAIN_AUTHORITY)) is first
        assert discovery.cached(authority) is first
        assert emulator.counts["openid-configuration"] == 1
        other = await discovery.resolve(Authority.parse(f"{PUBLIC}/organizations"))
        assert other.tenant == "organizations"
        assert emulator.counts["openid-configuration"] == 2


@pytest.mark.parametrize("cancel_leader", [True, False])
async def test_a_cancelled_caller_does_not_cancel_the_shared_request(cancel_leader: bool) -> None:
    emulator = AuthorityEmulator(latency=0.1)
    authority = Authority.parse(DOMAIN_AUTHORITY)
    results: list[AuthorityEndpoints] = []
    async with _discovery(emulator) as discovery:

        async def patient() -> None:
            results.append(await discovery.resolve(authority))

        async with anyio.create_task_group() as tg:
            if not cancel_leader:
                tg.start_soon(patient)
                await anyio.sleep(0.01)  # let the patient caller lead the flight
            else:
                tg.start_soon(patient)  # starts only once this task awaits: it follows
            with anyio.move_on_after(0.02) as impatient:
                await discovery.resolve(authority)
    assert impatient.cancelled_caught
    assert [r.tenant for r in results] == [DEMO_TENANT_ID]
    assert emulator.counts["openid-configuration"] == 1
    assert discovery.cached(authority) == results[0]


# --- failures ---


async def test_server_error_raises_service_error_and_is_not_memoised() -> None:
    emulator = AuthorityEmulator()
    emulator.inject(Fault.server_error(status=503), endpoint="openid-configuration")
    async with _discovery(emulator) as discovery:
        authority = Authority.parse(DOMAIN_AUTHORITY)
        with pytest.raises(MsalServiceError, match="HTTP Error: 503") as error:
            await discovery.resolve(authority)
        assert error.value.kwargs["status_code"] == 503
        assert discovery.cached(authority) is None
        endpoints = await discovery.resolve(authority)  # the next call retries
    assert endpoints.tenant == DEMO_TENANT_ID
    assert emulator.counts["openid-configuration"] == 2


async def test_unknown_tenant_raises_msal_value_error_and_is_not_memoised() -> None:
    emulator = AuthorityEmulator()
    async with _discovery(emulator) as discovery:
        authority = Authority.parse(f"{PUBLIC}/nonexistent.onmicrosoft.com")
        for _ in range(2):
            with pytest.raises(ValueError, match="Unable to get authority configuration for") as e:
                await discovery.resolve(authority)
            assert f"{PUBLIC}/nonexistent.onmicrosoft.com" in str(e.value)
            assert "HTTP status: 400" in str(e.value.__cause__)
    assert emulator.counts["openid-configuration"] == 2


async def test_concurrent_callers_all_get_the_error() -> None:
    emulator = AuthorityEmulator(latency=0.05)
    emulator.inject(Fault.server_error(status=500), endpoint="openid-configuration")
    authority = Authority.parse(DOMAIN_AUTHORITY)
    errors: list[BaseException] = []

    async def resolve(discovery: Discovery) -> None:
        try:
            await discovery.resolve(authority)
        except MsalServiceError as exc:
            errors.append(exc)

    async with _discovery(emulator) as discovery, anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(resolve, discovery)
    assert len(errors) == 10
    assert emulator.counts["openid-configuration"] == 1


async def test_malformed_configuration_raises_value_error() -> None:
    emulator = AuthorityEmulator()
    emulator.inject(Fault.malformed_json(), endpoint="openid-configuration")
    async with _discovery(emulator) as discovery:
        with pytest.raises(ValueError, match="Unable to get authority configuration"):
            await discovery.resolve(Authority.parse(DOMAIN_AUTHORITY))


async def test_unexpected_status_raises_runtime_error() -> None:
    path = "/t/v2.0/.well-known/openid-configuration"
    async with _discovery(_StaticApp({path: (204, "")})) as discovery:
        with pytest.raises(RuntimeError, match="Unable to complete OIDC Discovery: 204"):
            await discovery.resolve(Authority.parse(f"{PUBLIC}/t"))


async def test_transport_failure_propagates_and_is_not_memoised() -> None:
    # Port 1 on the loopback refuses connections: a real socket failure, no stand-in.
    async with httpx.AsyncClient() as client:
        discovery = Discovery(Transport(http_client=client))
        authority = Authority.parse("https://127.0.0.1:1/common", instance_discovery=False)
        for _ in range(2):
            with pytest.raises(MsalTransportError):
                await discovery.resolve(authority)
        assert discovery.cached(authority) is None


# --- instance discovery ---


async def test_unknown_host_runs_instance_discovery_first() -> None:
    emulator = AuthorityEmulator()
    async with _discovery(emulator) as discovery:
        endpoints = await discovery.resolve(
            Authority.parse("https://private.cloud/contoso.onmicrosoft.com")
        )
    first, second = emulator.requests
    assert first.path == "/common/discovery/instance"
    assert first.headers["host"] == "login.microsoftonline.com"
    assert first.query == {
        "authorization_endpoint": "https://private.cloud/contoso.onmicrosoft.com/oauth2/v2.0/authorize",
        "api-version": "1.0",
    }
    assert second.headers["host"] == "private.cloud"
    assert second.path == "/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration"
    assert endpoints.token_endpoint == f"https://private.cloud/{DEMO_TENANT_ID}/oauth2/v2.0/token"
    assert endpoints.instance == "private.cloud"


async def test_invalid_instance_raises_msal_value_error() -> None:
    emulator = AuthorityEmulator()
    emulator.invalid_instances.add("evil.example")
    async with _discovery(emulator) as discovery:
        authority = Authority.parse("https://evil.example/tenant")
        with pytest.raises(ValueError, match=r"^invalid_instance: The authority you provided"):
            await discovery.resolve(authority)
        assert discovery.cached(authority) is None
    assert emulator.counts["openid-configuration"] == 0


async def test_instance_discovery_server_error() -> None:
    emulator = AuthorityEmulator()
    emulator.inject(Fault.server_error(status=502), endpoint="discovery")
    async with _discovery(emulator) as discovery:
        authority = Authority.parse("https://private.cloud/common")
        with pytest.raises(MsalServiceError, match="HTTP Error: 502"):
            await discovery.resolve(authority)
        assert (await discovery.resolve(authority)).tenant == "common"
    assert emulator.counts["discovery"] == 2


@pytest.mark.parametrize("kwargs", [{"instance_discovery": False}, {"validate_authority": False}])
async def test_instance_discovery_can_be_skipped(kwargs: dict[str, Any]) -> None:
    emulator = AuthorityEmulator()
    emulator.invalid_instances.add("private.cloud")
    async with _discovery(emulator) as discovery:
        await discovery.resolve(Authority.parse("https://private.cloud/common", **kwargs))
    assert emulator.counts["discovery"] == 0
    assert emulator.counts["openid-configuration"] == 1


async def test_custom_instance_discovery_endpoint() -> None:
    emulator = AuthorityEmulator()
    custom = "https://discovery.example/common/discovery/instance"
    async with _discovery(emulator) as discovery:
        await discovery.resolve(
            Authority.parse("https://private.cloud/common", instance_discovery=custom)
        )
    assert emulator.requests[0].headers["host"] == "discovery.example"
    assert emulator.counts["discovery"] == 1


# --- OIDC authority ---


async def test_oidc_authority_with_matching_issuer() -> None:
    emulator = AuthorityEmulator()
    oidc = f"{PUBLIC}/{DEMO_TENANT_ID}/v2.0"
    async with _discovery(emulator) as discovery:
        endpoints = await discovery.resolve(Authority.parse(oidc_authority_url=oidc))
    assert [r.path for r in emulator.requests] == [
        f"/{DEMO_TENANT_ID}/v2.0/.well-known/openid-configuration"
    ]
    assert endpoints.issuer == oidc
    assert endpoints.tenant == DEMO_TENANT_ID


async def test_oidc_authority_with_foreign_issuer_is_rejected() -> None:
    path = "/tenant/.well-known/openid-configuration"
    body = _openid_configuration("https://idp.example/tenant", issuer="https://evil.example/x")
    app = _StaticApp({path: (200, body)})
    authority = Authority.parse(oidc_authority_url="https://idp.example/tenant")
    async with _discovery(app) as discovery:
        with pytest.raises(
            ValueError, match=r"The issuer 'https://evil\.example/x' does not match"
        ):
            await discovery.resolve(authority)
        assert discovery.cached(authority) is None
    assert app.paths == [path]


async def test_oidc_authority_unavailable() -> None:
    authority = Authority.parse(oidc_authority_url="https://idp.example/tenant")
    async with _discovery(_StaticApp({})) as discovery:
        with pytest.raises(ValueError, match="Unable to get OIDC authority configuration for"):
            await discovery.resolve(authority)


# --- region ---


async def test_resolve_regional_uses_the_central_realm_and_regional_host() -> None:
    emulator = AuthorityEmulator()
    async with _discovery(emulator) as discovery:
        regional = await discovery.resolve_regional(Authority.parse(DOMAIN_AUTHORITY), "westus")
    central, regional_request = emulator.requests
    assert central.headers["host"] == "login.microsoftonline.com"
    assert regional_request.headers["host"] == "westus.login.microsoft.com"
    assert regional_request.path == f"/{DEMO_TENANT_ID}/v2.0/.well-known/openid-configuration"
    assert regional.token_endpoint == (
        f"https://westus.login.microsoft.com/{DEMO_TENANT_ID}/oauth2/v2.0/token"
    )
    assert regional.instance == "westus.login.microsoft.com"
    assert emulator.counts["discovery"] == 0


# --- aliases ---


async def test_aliases_are_fetched_once_and_exclude_the_instance() -> None:
    emulator = AuthorityEmulator(latency=0.02)
    found: list[list[str]] = []

    async def aliases(discovery: Discovery, instance: str) -> None:
        found.append(await discovery.aliases(instance))

    async with _discovery(emulator) as discovery:
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(aliases, discovery, "login.microsoftonline.com")
        assert await discovery.aliases("login.microsoftonline.com") == found[0]
        assert await discovery.aliases("private.cloud") == []  # same metadata document
        assert emulator.counts["discovery"] == 1
        # A well-known host asks itself (msal's discovery host rule): one more document.
        assert await discovery.aliases("login.windows.net") == [
            "login.microsoftonline.com",
            "login.microsoft.com",
            "sts.windows.net",
        ]
        assert emulator.counts["discovery"] == 2
    assert found[0] == ["login.windows.net", "login.microsoft.com", "sts.windows.net"]
    assert all(result == found[0] for result in found)
    request = emulator.requests[0]
    assert request.path == "/common/discovery/instance"
    assert request.query == {
        "api-version": "1.1",
        "authorization_endpoint": f"{PUBLIC}/common/oauth2/authorize",
    }
    assert request.headers["accept"] == "application/json"


async def test_aliases_of_an_unknown_host() -> None:
    emulator = AuthorityEmulator()
    async with _discovery(emulator) as discovery:
        assert await discovery.aliases("private.cloud") == []
    assert emulator.requests[0].headers["host"] == "login.microsoftonline.com"


@pytest.mark.parametrize(
    ("url", "kwargs"),
    [
        (f"{PUBLIC}/common", {"instance_discovery": False}),
        ("https://contoso.com/common", {"validate_authority": False}),
        ("https://contoso.com/adfs", {}),
        ("https://login.b2clogin.com/contoso/b2c_policy", {}),
    ],
)
async def test_aliases_are_skipped_when_msal_skips_them(url: str, kwargs: dict[str, Any]) -> None:
    emulator = AuthorityEmulator()
    authority = Authority.parse(url, **kwargs)
    async with _discovery(emulator) as discovery:
        assert await discovery.aliases(authority.instance, authority=authority) == []
    assert emulator.requests == []


async def test_alias_failure_raises_and_is_not_memoised() -> None:
    emulator = AuthorityEmulator()
    emulator.inject(Fault.server_error(status=500), endpoint="discovery")
    async with _discovery(emulator) as discovery:
        with pytest.raises(MsalServiceError, match="HTTP Error: 500"):
            await discovery.aliases("login.microsoftonline.com")
        assert "login.windows.net" in await discovery.aliases("login.microsoftonline.com")
    assert emulator.counts["discovery"] == 2


async def test_alias_metadata_that_is_not_json() -> None:
    app = _StaticApp({"/common/discovery/instance": (200, "<html>")})
    async with _discovery(app) as discovery:
        with pytest.raises(ValueError, match="is not JSON"):
            await discovery.aliases("login.microsoftonline.com")


async def test_resolve_tells_the_authority_its_endpoints() -> None:
    """app.authority.token_endpoint & co. (msal's attributes) are readable after discovery."""
    emulator = AuthorityEmulator()
    async with _discovery(emulator) as discovery:
        authority, twin = Authority.parse(DOMAIN_AUTHORITY), Authority.parse(DOMAIN_AUTHORITY)
        assert not hasattr(authority, "token_endpoint")
        endpoints = await discovery.resolve(authority)
        await discovery.resolve(twin)  # answered from the memo: it learns them too
    for known in (authority, twin):
        assert known.token_endpoint == endpoints.token_endpoint
        assert known.authorization_endpoint == endpoints.authorization_endpoint
        assert known.device_authorization_endpoint == endpoints.device_authorization_endpoint
    assert emulator.counts["openid-configuration"] == 1
