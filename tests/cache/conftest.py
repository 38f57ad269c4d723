"""Fixtures for the persistent caches: a real redis-server on loopback, and an HTTPS emulator."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from msal_async.testing import (
    DEMO_TENANT_ID,
    AuthorityEmulator,
    generate_tls_files,
    serve_in_thread,
)


@dataclass
class RedisServer:
    """A redis-server process this test session started (kill and restart it at will)."""

    binary: str
    port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start (or restart) the server on its port and wait until it answers."""
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.folder),
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if _pong(self.port):
                return
            time.sleep(0.02)
        self.stop()
        pytest.fail(f"redis-server did not start on 127.0.0.1:{self.port}")

    def stop(self) -> None:
        """Kill the server (SIGKILL: a crash, not a shutdown)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def flush(self) -> None:
        """Empty the database between tests."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(b"FLUSHALL\r\n")
            sock.recv(16)


def _pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """Debian's redis-server on a free 127.0.0.1 port with a temporary folder.

    Skips when the binary is missing, unless MSAL_ASYNC_CI=1 (then it fails: CI installs it).
    """
    binary = shutil.which("redis-server")
    if binary is None:
        reason = "redis-server is not installed (apt-get install redis-server) - Redis tests skip"
        if os.environ.get("MSAL_ASYNC_CI") == "1":
            pytest.fail(reason + "; MSAL_ASYNC_CI=1 makes this a failure")
        pytest.skip(reason)
    server = RedisServer(binary, _free_port(), tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis(redis_server: RedisServer) -> Iterator[RedisServer]:
    """The session's Redis server, running and empty."""
    if redis_server.process is None or redis_server.process.poll() is not None:
        redis_server.start()
    redis_server.flush()
    yield redis_server
    if redis_server.process is None:
        redis_server.start()


@dataclass
class ServedEmulator:
    """The emulator served over HTTPS on 127.0.0.1 (one counter for every process)."""

    emulator: AuthorityEmulator
    base_url: str
    ca_file: str

    @property
    def authority(self) -> str:
        """The tenant authority URL."""
        return f"{self.base_url}/{DEMO_TENANT_ID}"


@pytest.fixture(scope="module")
def served_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedEmulator]:
    """One emulator over HTTPS for a module; tests reset it."""
    tls = generate_tls_files(tmp_path_factory.mktemp("tls"))
    emulator = AuthorityEmulator()
    with serve_in_thread(emulator, tls=tls) as base_url:
        yield ServedEmulator(emulator, base_url, str(tls.ca_file))


def at_candidates(
    cache: Any,
    *,
    client_id: str,
    environment: str,
    realm: str,
    scopes: Any,
    home_account_id: str | None = None,
    ext_cache_key: str | None = None,
    key_id: str | None = None,
    now: float = 1_700_000_000,
) -> list[dict[str, Any]]:
    """The access tokens a lookup would consider, best first (the cache's own lookup order)."""
    from msal_async._cache.freshness import TokenQuery

    query = TokenQuery(
        client_id=client_id,
        environment=environment.lower(),
        realm=realm,
        scopes=tuple(scopes),
        home_account_id=home_account_id,
        ext_cache_key=ext_cache_key,
        key_id=key_id,
    )
    return [entry for _, entry in cache._access_token_candidates(query, now)]
