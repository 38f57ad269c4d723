"""Certificate credentials end to end: fresh assertions, replay-rejecting server, 50 tenants."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import msal
import pytest

from msal_async import ConfidentialClientApplication
from msal_async._region import region_detector
from msal_async.testing import DEMO_TENANT_ID, AuthorityEmulator

from ..conftest import ServeAuthority, requests_session_trusting
from ..credentials.certs import CERT_CLIENT_ID, CertSet, generate_cert_set

pytestmark = pytest.mark.anyio

AUTHORITY = f"https://login.microsoftonline.com/{DEMO_TENANT_ID}"


@pytest.fixture(scope="module")
def cert_set(tmp_path_factory: pytest.TempPathFactory) -> CertSet:
    return generate_cert_set(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def cert_emulator(cert_set: CertSet) -> AuthorityEmulator:
    emulator = AuthorityEmulator()
    emulator.register_client(CERT_CLIENT_ID, certificate=cert_set.cert_pem)
    return emulator


@pytest.fixture
async def cert_http(cert_emulator: AuthorityEmulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=cert_emulator)) as client:
        yield client


@pytest.fixture
def fresh_region() -> Iterator[None]:
    region_detector.forget()
    yield
    region_detector.forget()


def make(http: httpx.AsyncClient, credential: Any, **kwargs: Any) -> ConfidentialClientApplication:
    kwargs.setdefault("authority", AUTHORITY)
    return ConfidentialClientApplication(
        CERT_CLIENT_ID, client_credential=credential, http_client=http, **kwargs
    )


@pytest.mark.parametrize("name", ["pem+thumbprint", "pem+certificate", "pfx+passphrase"])
async def test_two_cold_requests_in_a_row_are_both_accepted(
    cert_set: CertSet, cert_emulator: AuthorityEmulator, cert_http: httpx.AsyncClient, name: str
) -> None:
    assert cert_emulator.reject_replayed_assertions
    app = make(cert_http, cert_set.credentials()[name])
    first = await app.acquire_token_for_client(["api://one/.default"])
    second = await app.acquire_token_for_client(["api://two/.default"])
    assert "access_token" in first, first
    assert "access_token" in second, second
    assert cert_emulator.counts["client_credentials"] == 2


def test_msal_reuses_its_assertion_and_a_strict_server_rejects_the_second(
    cert_set: CertSet, serve_authority: ServeAuthority
) -> None:
    """Why we sign per request: msal 1.39 re-sends one jti for 540 s (OIDC Core 9)."""
    emulator = AuthorityEmulator()
    emulator.register_client(CERT_CLIENT_ID, certificate=cert_set.cert_pem)
    with (
        serve_authority(emulator) as https,
        requests_session_trusting(https.ca_file) as session,
    ):
        app = msal.ConfidentialClientApplication(
            CERT_CLIENT_ID,
            client_credential=cert_set.credentials()["pem+certificate"],
            authority=https.authority,
            instance_discovery=False,
            http_client=session,
        )
        first = app.acquire_token_for_client(["api://one/.default"])
        second = app.acquire_token_for_client(["api://two/.default"])
    assert "access_token" in first
    assert second.get("error") == "invalid_client"
    assert "only be used once" in second["error_description"]


async def test_assertion_for_a_regional_request_names_the_central_endpoint(
    cert_set: CertSet, cert_emulator: AuthorityEmulator, cert_http: httpx.AsyncClient
) -> None:
    app = make(cert_http, cert_set.credentials()["pfx"], azure_region="westus")
    result = await app.acquire_token_for_client(["api://one/.default"])
    assert "access_token" in result, result
    [post] = [r for r in cert_emulator.requests if r.method == "POST"]
    assert post.headers["host"] == "westus.login.microsoft.com"


async def test_thousand_concurrent_calls_for_fifty_tenants(
    cert_set: CertSet,
    cert_emulator: AuthorityEmulator,
    cert_http: httpx.AsyncClient,
    fresh_region: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("REGION_NAME", raising=False)
    cert_emulator.region = "westus"
    tenants = [str(uuid.uuid4()) for _ in range(50)]
    for tenant in tenants:
        cert_emulator.add_tenant(tenant)
    credential = cert_set.credentials()["pem+certificate"]
    apps = [
        make(
            cert_http,
            credential,
            authority=f"https://login.microsoftonline.com/{tenant}",
            azure_region=True,
        )
        for tenant in tenants
    ]
    assert cert_emulator.requests == []  # constructors do no I/O
    results: list[dict[str, Any]] = []

    async def call(app: ConfidentialClientApplication) -> None:
        results.append(dict(await app.acquire_token_for_client(["api://fleet/.default"])))

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            for app in apps:
                tg.start_soon(call, app)
    assert len(results) == 1000
    assert all("access_token" in r for r in results), [r for r in results if "error" in r][:1]
    assert cert_emulator.counts["client_credentials"] == 50
    assert cert_emulator.counts["imds-region"] <= 1
    token_hosts = {r.headers["host"] for r in cert_emulator.requests if r.method == "POST"}
    assert token_hosts == {"westus.login.microsoft.com"}
    tids = {cert_emulator.decode(r["access_token"])["tid"] for r in results}
    assert tids == set(tenants)
    for app in apps:  # cached under the central environment: the next call is a hit
        environments = {at["environment"] for at in app.token_cache.search("AccessToken")}
        assert environments == {"login.microsoftonline.com"}


async def test_pfx_is_read_on_first_use_not_in_the_constructor(
    cert_set: CertSet,
    cert_emulator: AuthorityEmulator,
    cert_http: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    missing = tmp_path / "later.pfx"
    app = ConfidentialClientApplication(  # no I/O: the file does not exist yet
        CERT_CLIENT_ID,
        client_credential={"private_key_pfx_path": str(missing)},
        authority=AUTHORITY,
        http_client=cert_http,
    )
    with pytest.raises(ValueError, match=r"private_key_pfx_path.*cannot be read"):
        await app.acquire_token_for_client(["api://x/.default"])
    await anyio.Path(missing).write_bytes(await anyio.Path(cert_set.pfx_path).read_bytes())
    result = await app.acquire_token_for_client(["api://x/.default"])
    assert result["token_source"] == "identity_provider", result
