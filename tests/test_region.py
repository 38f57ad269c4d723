"""Region (ESTS-R): azure_region semantics, env vars, one shared IMDS probe, regional host."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, MutableMapping
from typing import Any

import anyio
import httpx
import msal
import pytest

from msal_async import ConfidentialClientApplication, PublicClientApplication
from msal_async._region import RegionDetector, configured_region, region_detector
from msal_async._singleflight import SingleFlight
from msal_async._transport import Transport
from msal_async.testing import DEMO_TENANT_ID, AuthorityEmulator

pytestmark = pytest.mark.anyio

Make = Callable[..., ConfidentialClientApplication]
SCOPE = ["api://resource/.default"]
AUTHORITY = f"https://login.microsoftonline.com/{DEMO_TENANT_ID}"


@pytest.fixture(autouse=True)
def clean_region(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("REGION_NAME", raising=False)
    monkeypatch.delenv("MSAL_FORCE_REGION", raising=False)
    region_detector.forget()
    yield
    region_detector.forget()


def posts(emulator: AuthorityEmulator) -> list[str]:
    return [r.headers["host"] for r in emulator.requests if r.method == "POST"]


async def test_explicit_region_uses_the_regional_host_without_probing(
    make_cca: Make, emulator: AuthorityEmulator
) -> None:
    emulator.region = "eastus"
    app = make_cca(azure_region="westus2")
    first = await app.acquire_token_for_client(SCOPE)
    second = await app.acquire_token_for_client(SCOPE)
    assert first["token_source"] == "identity_provider"
    assert second["token_source"] == "cache"  # cached under the central environment
    assert posts(emulator) == ["westus2.login.microsoft.com"]
    assert emulator.counts["imds-region"] == 0
    [token] = app.token_cache.search("AccessToken")
    assert token["environment"] == "login.microsoftonline.com"


async def test_other_clouds_get_region_dot_instance(emulator: AuthorityEmulator) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator)) as http:
        app = ConfidentialClientApplication(
            "3b4b1a8c-7d5e-4f1a-a8c2-6f0e9d2b1c7a",
            client_credential="emulator-demo-secret~not-a-real-one",
            authority=f"https://login.microsoftonline.us/{emulator.tenant_id}",
            validate_authority=False,
            azure_region="usgovvirginia",
            http_client=http,
        )
        result = await app.acquire_token_for_client(SCOPE)
    assert "access_token" in result, result
    assert posts(emulator) == ["usgovvirginia.login.microsoftonline.us"]


async def test_true_detects_through_imds_once_for_concurrent_callers(
    make_cca: Make, emulator: AuthorityEmulator
) -> None:
    emulator.region = "centralus"
    apps = [make_cca(azure_region=True) for _ in range(5)]
    assert emulator.requests == []  # never in a constructor
    async with anyio.create_task_group() as tg:
        for app in apps:
            for scope in ("api://a/.default", "api://b/.default"):
                tg.start_soon(app.acquire_token_for_client, [scope])
    assert emulator.counts["imds-region"] == 1
    assert set(posts(emulator)) == {"centralus.login.microsoft.com"}
    [probe] = [r for r in emulator.requests if r.path == "/metadata/instance/compute"]
    assert probe.headers["metadata"] == "true"
    assert probe.query == {"api-version": "2021-02-01"}
    assert probe.headers["host"] == "169.254.169.254"


async def test_region_name_env_wins_over_imds(
    make_cca: Make, emulator: AuthorityEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGION_NAME", "northeurope")
    emulator.region = "centralus"
    await make_cca(azure_region=True).acquire_token_for_client(SCOPE)
    assert posts(emulator) == ["northeurope.login.microsoft.com"]
    assert emulator.counts["imds-region"] == 0


async def test_no_imds_answer_means_central(make_cca: Make, emulator: AuthorityEmulator) -> None:
    emulator.region = None  # IMDS answers 404
    result = await make_cca(azure_region=True).acquire_token_for_client(SCOPE)
    assert "access_token" in result
    assert posts(emulator) == ["login.microsoftonline.com"]


async def test_force_region_env_applies_only_when_not_configured(
    make_cca: Make, emulator: AuthorityEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MSAL_FORCE_REGION", "japaneast")
    await make_cca().acquire_token_for_client(["api://a/.default"])
    await make_cca(azure_region=False).acquire_token_for_client(["api://b/.default"])
    await make_cca(azure_region="uksouth").acquire_token_for_client(["api://c/.default"])
    assert posts(emulator) == [
        "japaneast.login.microsoft.com",
        "login.microsoftonline.com",
        "uksouth.login.microsoft.com",
    ]
    assert emulator.counts["imds-region"] == 0


@pytest.mark.parametrize(
    ("env", "kwargs"),
    [({"MSAL_FORCE_REGION": "westus-"}, {}), ({}, {"azure_region": "West US"})],
    ids=["MSAL_FORCE_REGION", "azure_region"],
)
def test_an_invalid_region_is_reported_by_the_constructor_as_msal_does(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], kwargs: dict[str, Any]
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    args = ("3b4b1a8c-7d5e-4f1a-a8c2-6f0e9d2b1c7a",)
    options = {"client_credential": "s", "authority": AUTHORITY, **kwargs}
    with pytest.raises(ValueError, match="Invalid") as theirs:  # msal checks before any I/O
        msal.ConfidentialClientApplication(*args, **options)
    with pytest.raises(ValueError, match="Invalid") as ours:
        ConfidentialClientApplication(*args, **options)
    assert str(ours.value) == str(theirs.value)


def test_force_region_is_ignored_by_public_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSAL_FORCE_REGION", "westus-")
    PublicClientApplication("3b4b1a8c-7d5e-4f1a-a8c2-6f0e9d2b1c7a", authority=AUTHORITY)


async def test_force_region_is_read_once_by_the_constructor(
    make_cca: Make, emulator: AuthorityEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_cca()
    monkeypatch.setenv("MSAL_FORCE_REGION", "japaneast")  # too late for this app, as in msal
    await app.acquire_token_for_client(SCOPE)
    assert posts(emulator) == ["login.microsoftonline.com"]


async def test_class_constants_name_the_region_choices(make_cca: Make) -> None:
    app = ConfidentialClientApplication
    assert (app.ATTEMPT_REGION_DISCOVERY, app.DISABLE_MSAL_FORCE_REGION) == (True, False)
    make_cca(azure_region=app.DISABLE_MSAL_FORCE_REGION)  # the seed page's usage


def test_configured_region_rules() -> None:
    env = {"MSAL_FORCE_REGION": "westus"}
    assert configured_region(None, has_credential=True, environ=env) == "westus"
    assert configured_region(None, has_credential=False, environ=env) is None
    assert configured_region(False, has_credential=True, environ=env) is None
    assert configured_region(True, has_credential=True, environ=env) is True
    assert configured_region("eastus", has_credential=True, environ=env) == "eastus"
    assert configured_region(None, has_credential=True, environ={}) is None


class Silent:
    """An ASGI app that never answers (IMDS off Azure: the link-local address is silent)."""

    def __init__(self) -> None:
        self.started = anyio.Event()

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        self.started.set()
        await anyio.sleep_forever()


@pytest.fixture
async def silent_transport() -> AsyncIterator[tuple[Silent, Transport]]:
    app = Silent()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        yield app, Transport(http_client=http)


async def test_probe_gives_up_after_its_timeout_and_remembers(
    silent_transport: tuple[Silent, Transport],
) -> None:
    app, transport = silent_transport
    detector = RegionDetector(timeout=0.05)
    assert await detector.region(True, transport, flights=SingleFlight(), environ={}) is None
    assert app.started.is_set()
    assert await detector.region(True, transport, flights=SingleFlight(), environ={}) is None
    assert detector.probes == 1


async def test_explicit_region_never_touches_the_transport(
    silent_transport: tuple[Silent, Transport],
) -> None:
    app, transport = silent_transport
    detector = RegionDetector(timeout=60)
    assert (
        await detector.region("westus", transport, flights=SingleFlight(), environ={}) == "westus"
    )
    assert not app.started.is_set()
    assert detector.probes == 0
