"""Fixtures of the managed-identity tests: the MI emulator, in process and on loopback."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from msal_async import ManagedIdentityClient
from msal_async.testing import ManagedIdentityEmulator, TLSFiles, serve_in_thread

from ..conftest import ServeHttps

MI_VARIABLES = (
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    "AZUREPS_HOST_ENVIRONMENT",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No managed-identity variable leaks in from the machine running the tests."""
    for name in MI_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def mi_emulator() -> ManagedIdentityEmulator:
    """A fresh managed-identity emulator."""
    return ManagedIdentityEmulator()


@pytest.fixture
async def mi_http(mi_emulator: ManagedIdentityEmulator) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client wired in-process to the MI emulator (any host reaches it)."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mi_emulator)) as client:
        yield client


@pytest.fixture
def arc_key_path(tmp_path: Path, mi_emulator: ManagedIdentityEmulator) -> Path:
    """The Azure Arc key file the emulator's challenge points at, holding its key."""
    path = tmp_path / f"{mi_emulator.arc_key_name}.key"
    path.write_text(mi_emulator.arc_secret)
    return path


@pytest.fixture
def arc_client_class(tmp_path: Path, arc_key_path: Path) -> type:
    """A ManagedIdentityClient whose Arc key directory is a temp dir holding the key."""

    class ArcClient(ManagedIdentityClient):
        ARC_KEY_DIRECTORIES: ClassVar[Mapping[str, str]] = {
            "linux": str(tmp_path),
            "win32": str(tmp_path),
            "darwin": str(tmp_path),
        }

    return ArcClient


@dataclass
class Served:
    """The MI emulator on 127.0.0.1: plain HTTP, and HTTPS for Service Fabric."""

    emulator: ManagedIdentityEmulator
    http_url: str
    https_url: str
    thumbprint: str
    tmp: Path

    @property
    def arc_dir(self) -> str:
        """Where our client reads Arc key files in these tests."""
        return str(self.tmp)


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, serve_https: ServeHttps, tls_files: TLSFiles
) -> Iterator[Served]:
    """Serve one MI emulator over HTTP and HTTPS for a module."""
    folder = tmp_path_factory.mktemp("mi")
    leaf = x509.load_pem_x509_certificate(tls_files.certfile.read_bytes())
    thumbprint = hashlib.sha1(leaf.public_bytes(serialization.Encoding.DER)).hexdigest()  # noqa: S324
    emulator = ManagedIdentityEmulator()
    with serve_in_thread(emulator) as http_url, serve_https(emulator) as https_url:
        yield Served(emulator, http_url, https_url, thumbprint, folder)
