"""ManagedIdentityClient end to end against the MI emulator: every source, msal's caching."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx
import pytest

from msal_async import (
    ManagedIdentityClient,
    ManagedIdentityError,
    SystemAssignedManagedIdentity,
    TokenCache,
    UserAssignedManagedIdentity,
)
from msal_async.testing import FakeClock, ManagedIdentityEmulator

from .conftest import Served

pytestmark = pytest.mark.anyio

VAULT = "https://vault.azure.net"
E = ManagedIdentityEmulator


def use_source(monkeypatch: pytest.MonkeyPatch, emulator: E, source: str) -> None:
    base = "http://mi.test"
    env = {
        "imds": {"AZURE_POD_IDENTITY_AUTHORITY_HOST": base},
        "app_service": {
            "IDENTITY_ENDPOINT": base + E.APP_SERVICE_PATH,
            "IDENTITY_HEADER": emulator.secret,
        },
        "machine_learning": {
            "MSI_ENDPOINT": base + E.MACHINE_LEARNING_PATH,
            "MSI_SECRET": emulator.secret,
        },
        "arc": {"IDENTITY_ENDPOINT": base + E.IMDS_PATH, "IMDS_ENDPOINT": base},
    }[source]
    for name, value in env.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("source", ["imds", "app_service", "machine_learning", "arc"])
@pytest.mark.parametrize("identity", ["system", "user"])
async def test_each_source_issues_and_then_serves_from_cache(
    monkeypatch: pytest.MonkeyPatch,
    mi_emulator: E,
    mi_http: httpx.AsyncClient,
    arc_client_class: type[ManagedIdentityClient],
    source: str,
    identity: str,
) -> None:
    use_source(monkeypatch, mi_emulator, source)
    managed: Any = (
        SystemAssignedManagedIdentity()
        if identity == "system"
        else UserAssignedManagedIdentity(client_id="aaaabbbb-0000-1111-2222-333344445555")
    )
    cache = TokenCache()
    client = arc_client_class(managed, http_client=mi_http, token_cache=cache)
    first = await client.acquire_token_for_client(resource=VAULT)
    assert first["token_source"] == "identity_provider", first
    assert mi_emulator.decode(first["access_token"])["aud"] == VAULT
    assert first["refresh_in"] == first["expires_in"] // 2  # half-life for >= 2 h tokens
    second = await client.acquire_token_for_client(resource=VAULT)
    assert second["token_source"] == "cache"
    assert second["access_token"] == first["access_token"]
    assert mi_emulator.counts[source] == (2 if source == "arc" else 1)  # Arc: 401, then token
    [entry] = cache.search("AccessToken")
    expected_client = managed["Id"] or "SYSTEM_ASSIGNED_MANAGED_IDENTITY"
    assert (entry["environment"], entry["realm"], entry["client_id"]) == (
        "localhost",
        "managed_identity",
        expected_client,
    )


async def test_concurrent_callers_share_one_request(
    monkeypatch: pytest.MonkeyPatch, mi_emulator: E, mi_http: httpx.AsyncClient
) -> None:
    use_source(monkeypatch, mi_emulator, "imds")
    client = ManagedIdentityClient(SystemAssignedManagedIdentity(), http_client=mi_http)
    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(lambda: client.acquire_token_for_client(resource=VAULT))
    assert mi_emulator.counts["imds"] == 1


async def test_aging_token_is_refreshed_and_failure_falls_back(
    monkeypatch: pytest.MonkeyPatch, mi_emulator: E, mi_http: httpx.AsyncClient, clock: FakeClock
) -> None:
    use_source(monkeypatch, mi_emulator, "imds")
    client = ManagedIdentityClient(SystemAssignedManagedIdentity(), http_client=mi_http)
    clock.set(1_000_000.0)
    first = await client.acquire_token_for_client(resource=VAULT)
    clock.advance(first["refresh_in"] + 1)  # past half-life, far from expiry
    second = await client.acquire_token_for_client(resource=VAULT)
    assert second["token_source"] == "identity_provider"
    assert mi_emulator.counts["imds"] == 2
    clock.advance(second["refresh_in"] + 1)
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://mi.test/broken")
    third = await client.acquire_token_for_client(resource=VAULT)  # 404 HTML -> fallback
    assert third["token_source"] == "cache"
    assert third["access_token"] == second["access_token"]


async def test_claims_challenge_bypasses_the_cache(
    monkeypatch: pytest.MonkeyPatch, mi_emulator: E, mi_http: httpx.AsyncClient
) -> None:
    use_source(monkeypatch, mi_emulator, "imds")
    client = ManagedIdentityClient(SystemAssignedManagedIdentity(), http_client=mi_http)
    first = await client.acquire_token_for_client(resource=VAULT)
    challenge = json.dumps({"access_token": {"nbf": {"essential": True, "value": "1"}}})
    second = await client.acquire_token_for_client(resource=VAULT, claims_challenge=challenge)
    assert second["access_token"] != first["access_token"]
    assert mi_emulator.counts["imds"] == 2


async def test_endpoint_errors_come_back_as_error_dicts(
    monkeypatch: pytest.MonkeyPatch, mi_emulator: E, mi_http: httpx.AsyncClient
) -> None:
    use_source(monkeypatch, mi_emulator, "app_service")
    monkeypatch.setenv("IDENTITY_HEADER", "wrong")
    client = ManagedIdentityClient(SystemAssignedManagedIdentity(), http_client=mi_http)
    result = await client.acquire_token_for_client(resource=VAULT)
    assert result == {"error": "invalid_scope", "error_description": "400, bad header"}
    with pytest.raises(ValueError, match="resource"):
        await client.acquire_token_for_client(resource="")


async def test_arc_that_ignores_a_user_assigned_identity_fails_closed(
    monkeypatch: pytest.MonkeyPatch,
    mi_emulator: E,
    mi_http: httpx.AsyncClient,
    arc_client_class: type[ManagedIdentityClient],
) -> None:
    mi_emulator.echo_user_assigned = False
    use_source(monkeypatch, mi_emulator, "arc")
    client = arc_client_class(UserAssignedManagedIdentity(object_id="o-1"), http_client=mi_http)
    with pytest.raises(ManagedIdentityError, match="did not confirm"):
        await client.acquire_token_for_client(resource=VAULT)


async def test_arc_on_an_unsupported_platform(
    monkeypatch: pytest.MonkeyPatch, mi_emulator: E, mi_http: httpx.AsyncClient
) -> None:
    from msal_async import ArcPlatformNotSupportedError

    class Nowhere(ManagedIdentityClient):
        ARC_KEY_DIRECTORIES = {}  # noqa: RUF012 - a test override

    use_source(monkeypatch, mi_emulator, "arc")
    client = Nowhere(SystemAssignedManagedIdentity(), http_client=mi_http)
    with pytest.raises(ArcPlatformNotSupportedError):
        await client.acquire_token_for_client(resource=VAULT)


async def test_service_fabric_pins_the_server_certificate(
    monkeypatch: pytest.MonkeyPatch, served: Served
) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", served.https_url + E.SERVICE_FABRIC_PATH)
    monkeypatch.setenv("IDENTITY_HEADER", served.emulator.secret)
    monkeypatch.setenv("IDENTITY_SERVER_THUMBPRINT", served.thumbprint.upper())
    async with (
        httpx.AsyncClient(trust_env=False) as http,
        ManagedIdentityClient(
            UserAssignedManagedIdentity(client_id="ignored"),
            http_client=http,
            client_capabilities=["CP1"],
        ) as client,
    ):
        result = await client.acquire_token_for_client(resource=VAULT)
        assert result["token_source"] == "identity_provider", result
        last = served.emulator.requests[-1]
        assert last.query["xms_cc"] == "CP1"
        challenge = '{"access_token":{"nbf":{"essential":true,"value":"1"}}}'
        await client.acquire_token_for_client(resource=VAULT, claims_challenge=challenge)
        import hashlib

        expected = hashlib.sha256(result["access_token"].encode()).hexdigest()
        assert served.emulator.requests[-1].query["token_sha256_to_refresh"] == expected


async def test_service_fabric_rejects_another_certificate_before_sending_the_secret(
    monkeypatch: pytest.MonkeyPatch, served: Served
) -> None:
    from msal_async import MsalTransportError

    monkeypatch.setenv("IDENTITY_ENDPOINT", served.https_url + E.SERVICE_FABRIC_PATH)
    monkeypatch.setenv("IDENTITY_HEADER", served.emulator.secret)
    monkeypatch.setenv("IDENTITY_SERVER_THUMBPRINT", "0" * 40)
    before = len(served.emulator.requests)
    async with (
        httpx.AsyncClient(trust_env=False) as http,
        ManagedIdentityClient(SystemAssignedManagedIdentity(), http_client=http) as client,
    ):
        with pytest.raises(MsalTransportError):
            await client.acquire_token_for_client(resource=VAULT)
    assert len(served.emulator.requests) == before  # nothing reached the server


def test_constructor_validates_without_io() -> None:
    with pytest.raises(ManagedIdentityError, match="Incorrect managed_identity"):
        ManagedIdentityClient({"foo": "bar"}, http_client=httpx.AsyncClient())
    with pytest.raises(TypeError, match=r"httpx\.AsyncClient"):
        ManagedIdentityClient(SystemAssignedManagedIdentity(), http_client=object())
    ManagedIdentityClient(
        {"ManagedIdentityIdType": "ClientId", "Id": "x"}, http_client=httpx.AsyncClient()
    )


@pytest.mark.parametrize("how", ["aclose", "async with"])
async def test_a_closed_client_is_closed(
    monkeypatch: pytest.MonkeyPatch, mi_emulator: E, mi_http: httpx.AsyncClient, how: str
) -> None:
    """After aclose() (or `async with`), a cached resource raises as a new one does."""
    use_source(monkeypatch, mi_emulator, "imds")
    client = ManagedIdentityClient(SystemAssignedManagedIdentity(), http_client=mi_http)
    assert "access_token" in await client.acquire_token_for_client(resource=VAULT)
    if how == "aclose":
        await client.aclose()
    else:
        async with client:
            pass
    expected = (
        "This ManagedIdentityClient was closed (aclose() or the end of `async with`); "
        "create a new one"
    )
    for resource in (VAULT, "https://storage.azure.com"):
        with pytest.raises(RuntimeError) as raised:
            await client.acquire_token_for_client(resource=resource)
        assert str(raised.value) == expected
    with pytest.raises(RuntimeError, match="was closed"):
        await client.__aenter__()
    assert mi_emulator.counts["imds"] == 1
    assert not mi_http.is_closed  # the caller's client stays open
    await client.aclose()
