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


from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from msal_async.testing import TLSFiles, generate_tls_files, serve_in_thread


@dataclass
class HttpsAuthority:
    """The emulator served over real HTTPS on 127.0.0.1 (the session's test CA)."""

    emulator: AuthorityEmulator
    base_url: str
    ca_file: str

    @property
    def authority(self) -> str:
        """The tenant authority URL on the loopback server."""
        return f"{self.base_url}/{DEMO_TENANT_ID}"


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """The one test certificate: a throwaway CA and a server certificate for 127.0.0.1, ::1
    and localhost, shared by every HTTPS server of the session (clients: ``verify=ca_file``)."""
    return generate_tls_files(tmp_path_factory.mktemp("tls"))


ServeHttps = Callable[[Any], AbstractContextManager[str]]
ServeAuthority = Callable[..., AbstractContextManager[HttpsAuthority]]


@pytest.fixture(scope="session")
def serve_https(tls_files: TLSFiles) -> ServeHttps:
    """``with serve_https(asgi_app) as base_url:`` any ASGI app over HTTPS on 127.0.0.1."""

    def serve(app: Any) -> AbstractContextManager[str]:
        return serve_in_thread(app, tls=tls_files)

    return serve


@pytest.fixture(scope="session")
def serve_authority(serve_https: ServeHttps, tls_files: TLSFiles) -> ServeAuthority:
    """The one way tests serve the emulator over TLS.

    ``with serve_authority(emulator) as https:`` serves it (or ``front=``, an ASGI app in
    front of it: a federation server, a response-bending wrapper) and yields an
    :class:`HttpsAuthority`.
    """

    @contextmanager
    def serve(emulator: AuthorityEmulator, front: Any = None) -> Iterator[HttpsAuthority]:
        with serve_https(emulator if front is None else front) as base_url:
            yield HttpsAuthority(emulator, base_url, str(tls_files.ca_file))

    return serve


@pytest.fixture(scope="module")
def https_authority(serve_authority: ServeAuthority) -> Iterator[HttpsAuthority]:
    """Serve one emulator over HTTPS for a test module (reset it per test as needed)."""
    with serve_authority(AuthorityEmulator()) as https:
        yield https


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
