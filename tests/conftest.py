"""Shared fixtures: anyio backends (asyncio and trio) for every async test."""

from __future__ import annotations

import pytest


@pytest.fixture(
    params=[
        pytest.param("asyncio", id="asyncio"),
        pytest.param("trio", id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run every ``@pytest.mark.anyio`` test under asyncio and under trio."""
    return str(request.param)


from collections.abc import AsyncIterator, Callable  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402

from msal_async.testing import (  # noqa: E402
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_TENANT_ID,
    AuthorityEmulator,
)

AUTHORITY = f"https://login.microsoftonline.com/{DEMO_TENANT_ID}"


@pytest.fixture
def emulator() -> AuthorityEmulator:
    """A fresh authority emulator per test."""
    return AuthorityEmulator()


@pytest.fixture
async def http(emulator: AuthorityEmulator) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client wired in-process to the emulator (any host reaches it)."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator)) as client:
        yield client


@pytest.fixture
def make_cca(http: httpx.AsyncClient) -> Callable[..., Any]:
    """Build a ConfidentialClientApplication for the emulator's demo client."""
    from msal_async import ConfidentialClientApplication

    def make(**kwargs: Any) -> ConfidentialClientApplication:
        kwargs.setdefault("client_credential", DEMO_CLIENT_SECRET)
        kwargs.setdefault("authority", AUTHORITY)
        kwargs.setdefault("http_client", http)
        return ConfidentialClientApplication(DEMO_CLIENT_ID, **kwargs)

    return make
