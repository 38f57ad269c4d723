"""msal_async.instrument(): OpenTelemetry spans and metrics, read back with the SDK's in-memory
exporter and metric reader; never a token, a secret, a username or a URL query in them."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import msal_async
from msal_async import (
    ConfidentialClientApplication,
    ManagedIdentityClient,
    PublicClientApplication,
    SystemAssignedManagedIdentity,
)
from msal_async.testing import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_TENANT_ID,
    AuthorityEmulator,
    FakeClock,
    Fault,
    ManagedIdentityEmulator,
)

pytestmark = pytest.mark.anyio

SCOPE = ["api://resource/.default"]
Make = Callable[..., ConfidentialClientApplication]


@dataclass
class Recorded:
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def acquisitions(self) -> list[ReadableSpan]:
        return [s for s in self.finished() if "msal.api" in (s.attributes or {})]

    def points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        data = self.metrics.get_metrics_data()
        found = []
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found += [(dict(p.attributes or {}), p) for p in metric.data.data_points]
        return found

    def total(self, name: str, **attributes: Any) -> int:
        return sum(
            int(getattr(point, "value", getattr(point, "count", 0)))
            for attrs, point in self.points(name)
            if all(attrs.get(k) == v for k, v in attributes.items())
        )

    def text(self) -> str:
        """Everything recorded, as text: names, attributes, events and metric attributes."""
        parts = []
        for span in self.finished():
            parts += [span.name, str(dict(span.attributes or {})), str(span.status.description)]
            parts += [str(e.name) + str(dict(e.attributes or {})) for e in span.events]
        data = self.metrics.get_metrics_data()
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    parts += [metric.name]
                    parts += [str(dict(p.attributes or {})) for p in metric.data.data_points]
        return "\n".join(parts)


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    msal_async.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        yield Recorded(exporter, reader)
    finally:
        msal_async.uninstrument()
        meter_provider.shutdown()
        tracer_provider.shutdown()


async def test_a_fetch_then_a_hit(make_cca: Make, recorded: Recorded) -> None:
    app = make_cca()
    first = await app.acquire_token_for_client(SCOPE)
    second = await app.acquire_token_for_client(SCOPE)
    assert second["token_source"] == "cache"

    fetch, hit = recorded.acquisitions()
    assert fetch.name == "ConfidentialClientApplication.acquire_token_for_client"
    assert dict(fetch.attributes or {}) == {
        "msal.api": "acquire_token_for_client",
        "msal.cache_hit": False,
        "msal.token_source": "identity_provider",
        "msal.grant": "client_credentials",
        "msal.refresh_reason": "no_cached_token",
        "msal.joined_shared_request": False,
    }
    assert dict(hit.attributes or {}) == {
        "msal.api": "acquire_token_for_client",
        "msal.cache_hit": True,
        "msal.token_source": "cache",
    }
    [request] = [s for s in recorded.finished() if s.name == "msal_async token request"]
    assert request.parent is not None
    assert request.parent.span_id == fetch.context.span_id
    assert (request.attributes or {})["msal.grant"] == "client_credentials"
    posts = [s for s in recorded.finished() if s.name == "POST"]
    [post] = posts
    assert post.parent is not None
    assert post.parent.span_id == request.context.span_id
    assert (post.attributes or {})["http.response.status_code"] == 200
    assert (post.attributes or {})["server.address"] == "login.microsoftonline.com"
    assert str((post.attributes or {})["url.full"]).endswith("/oauth2/v2.0/token")
    gets = [s for s in recorded.finished() if s.name == "GET"]
    assert gets  # discovery, in the acquisition that needed it
    assert all(g.parent is not None for g in gets)
    assert all(g.parent.span_id == fetch.context.span_id for g in gets if g.parent is not None)

    assert recorded.total("msal_async.cache.hits") == 1
    assert recorded.total("msal_async.cache.misses") == 1
    assert recorded.total("msal_async.token.requests", **{"msal.grant": "client_credentials"}) == 1
    assert recorded.total("msal_async.token.request.duration") == 1  # one recorded latency
    assert recorded.total("msal_async.cache.size", **{"msal.credential_type": "AccessToken"}) == 1
    text = recorded.text()
    assert first["access_token"] not in text
    assert DEMO_CLIENT_SECRET not in text
    assert "?" not in text  # no URL query anywhere


async def test_concurrent_callers_show_who_joined(
    make_cca: Make, recorded: Recorded, emulator: AuthorityEmulator
) -> None:
    app = make_cca()
    await app.prefetch()  # discovery done: every caller goes straight to the token request
    emulator.inject(Fault.latency(0.5))  # the leader's request is still out when the rest ask
    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(app.acquire_token_for_client, SCOPE)
    joined = [
        (s.attributes or {}).get("msal.joined_shared_request") for s in recorded.acquisitions()
    ]
    assert sorted(joined, key=str) == [False, True, True, True, True]
    assert recorded.total("msal_async.token.requests") == 1


async def test_an_error_is_recorded_by_its_code(
    make_cca: Make, recorded: Recorded, emulator: AuthorityEmulator
) -> None:
    app = make_cca(client_credential="not-the-secret")
    result = await app.acquire_token_for_client(SCOPE)
    assert result["error"] == "invalid_client"
    [span] = recorded.acquisitions()
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "invalid_client"
    [post] = [s for s in recorded.finished() if s.name == "POST"]
    assert (post.attributes or {})["http.response.status_code"] == 401
    assert recorded.total("msal_async.token.requests", **{"error.type": "invalid_client"}) == 1
    assert recorded.total("msal_async.cache.misses") == 1
    assert "not-the-secret" not in recorded.text()


async def test_a_throttled_request_is_counted(
    make_cca: Make, recorded: Recorded, emulator: AuthorityEmulator
) -> None:
    emulator.inject(Fault.too_many_requests(retry_after=60))
    app = make_cca()
    assert "error" in await app.acquire_token_for_client(SCOPE)
    assert "error" in await app.acquire_token_for_client(SCOPE)  # held: not sent
    assert emulator.counts["client_credentials"] == 1
    assert recorded.total("msal_async.throttle.holds", **{"http.request.method": "POST"}) == 1


async def test_background_refresh_outcomes(
    make_cca: Make, recorded: Recorded, emulator: AuthorityEmulator, clock: FakeClock
) -> None:
    emulator.refresh_in = 1
    async with make_cca() as app:
        first = await app.acquire_token_for_client(SCOPE)
        clock.set(first["refresh_on"] + 1.0)
        await app.acquire_token_for_client(SCOPE)
    assert recorded.total("msal_async.refresh.background", outcome="success") == 1
    async with make_cca() as app:
        first = await app.acquire_token_for_client(SCOPE)
        clock.set(first["refresh_on"] + 1.0)
        emulator.inject(Fault.server_error(status=503))
        await app.acquire_token_for_client(SCOPE)
    assert recorded.total("msal_async.refresh.background", outcome="failure") == 1
    reasons = [
        (s.attributes or {}).get("msal.refresh_reason")
        for s in recorded.finished()
        if s.name == "msal_async token request"
    ]
    assert reasons == ["no_cached_token", "aging", "no_cached_token", "aging"]


async def test_user_flows_never_record_the_username_or_password(
    emulator: AuthorityEmulator, http: httpx.AsyncClient, recorded: Recorded
) -> None:
    username, password = "alice@contoso.onmicrosoft.com", "alice-password-1"
    emulator.add_user(username, password=password)
    app = ConfidentialClientApplication(
        DEMO_CLIENT_ID,
        client_credential=DEMO_CLIENT_SECRET,
        authority=f"https://login.microsoftonline.com/{DEMO_TENANT_ID}",
        http_client=http,
    )
    result = await app.acquire_token_by_username_password(username, password, ["User.Read"])
    assert "access_token" in result, result
    [account] = await app.get_accounts()
    silent = await app.acquire_token_silent(["User.Read"], account)
    assert silent is not None
    assert [(s.attributes or {})["msal.api"] for s in recorded.acquisitions()] == [
        "acquire_token_by_username_password",
        "acquire_token_silent",  # one span: silent_with_error inside it is not counted again
    ]
    text = recorded.text()
    for secret in (username, "alice", password, result["access_token"], result["refresh_token"]):
        assert secret not in text
    assert result["id_token"] not in text


async def test_uninstrument_puts_the_original_methods_back() -> None:
    original = ConfidentialClientApplication.acquire_token_for_client
    silent = PublicClientApplication.acquire_token_silent
    msal_async.instrument()
    try:
        assert msal_async.ConfidentialClientApplication.acquire_token_for_client is not original
        assert PublicClientApplication.acquire_token_silent is not silent
        msal_async.instrument()  # again: still one wrapper
        wrapped = ConfidentialClientApplication.acquire_token_for_client
        assert wrapped.__wrapped__ is original  # type: ignore[attr-defined]
    finally:
        msal_async.uninstrument()
    assert ConfidentialClientApplication.acquire_token_for_client is original
    assert PublicClientApplication.acquire_token_silent is silent


async def test_without_opentelemetry_instrument_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(ImportError, match=r"pip install 'msal-async\[otel\]'"):
        msal_async.instrument()
    assert ConfidentialClientApplication.acquire_token_for_client.__name__ == (
        "acquire_token_for_client"
    )
    assert not hasattr(ConfidentialClientApplication.acquire_token_for_client, "__wrapped__")


async def test_managed_identity_acquisitions(
    recorded: Recorded, monkeypatch: pytest.MonkeyPatch
) -> None:
    mi = ManagedIdentityEmulator()
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://mi.test")
    for name in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "MSI_SECRET"):
        monkeypatch.delenv(name, raising=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mi)) as http:
        client = ManagedIdentityClient(SystemAssignedManagedIdentity(), http_client=http)
        first = await client.acquire_token_for_client(resource="https://vault.azure.net")
        await client.acquire_token_for_client(resource="https://vault.azure.net")
    fetch, hit = recorded.acquisitions()
    assert fetch.name == "ManagedIdentityClient.acquire_token_for_client"
    assert (fetch.attributes or {})["msal.grant"] == "managed_identity"
    assert (fetch.attributes or {})["msal.cache_hit"] is False
    assert (hit.attributes or {})["msal.cache_hit"] is True
    [get] = [s for s in recorded.finished() if s.name == "GET"]
    assert (get.attributes or {})["http.response.status_code"] == 200
    assert recorded.total("msal_async.token.requests", **{"msal.grant": "managed_identity"}) == 1
    assert recorded.total("msal_async.cache.hits") == 1
    text = recorded.text()
    assert first["access_token"] not in text
    assert "vault.azure.net" not in text  # the resource is in the query, never recorded
