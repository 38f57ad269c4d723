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


from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx

from msal_async.testing import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_TENANT_ID,
    AuthorityEmulator,
    FakeClock,
)

AUTHORITY = f"https://login.microsoftonline.com/{DEMO_TENANT_ID}"


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    """A fake clock installed for the test: msal_async and the emulator read it."""
    with FakeClock() as fake:
        yield fake


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


from dataclasses import dataclass
from pathlib import Path


@dataclass
class HttpsAuthority:
    """The emulator served over real HTTPS on 127.0.0.1 with a trustme CA."""

    emulator: AuthorityEmulator
    base_url: str
    ca_file: str

    @property
    def authority(self) -> str:
        """The tenant authority URL on the loopback server."""
        return f"{self.base_url}/{DEMO_TENANT_ID}"


@pytest.fixture(scope="module")
def https_authority(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpsAuthority]:
    """Serve one emulator over HTTPS for a test module (reset it per test as needed)."""
    import trustme

    from msal_async.testing import TLSFiles, serve_in_thread

    folder: Path = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_file, certfile, keyfile = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(certfile), append=True)
    cert.private_key_pem.write_to_path(str(keyfile))
    emulator = AuthorityEmulator()
    tls = TLSFiles(certfile=certfile, keyfile=keyfile, ca_file=ca_file)
    with serve_in_thread(emulator, tls=tls) as base_url:
        yield HttpsAuthority(emulator, base_url, str(ca_file))


def requests_session_trusting(ca_file: str) -> Any:
    """A ``requests.Session`` for real msal that trusts ``ca_file``.

    ``trust_env`` is off because ``REQUESTS_CA_BUNDLE`` would otherwise win over ``verify``
    (requests#3829), and this machine sets it.
    """
    import requests

    session = requests.Session()
    session.trust_env = False
    session.verify = ca_file
    return session
