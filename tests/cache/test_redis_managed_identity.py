"""Managed identity in the fleet single flight: managed identity clients with their own memory,
in one process or in several, sharing one real redis-server, send one request per resource to
the managed identity endpoint (the emulator's)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from msal_async import (
    ManagedIdentityClient,
    PersistedTokenCache,
    RedisPersistence,
    SystemAssignedManagedIdentity,
)
from msal_async.testing import ManagedIdentityEmulator, serve_in_thread

from .conftest import RedisServer, Workers, command_stats

pytestmark = pytest.mark.anyio
pytest.importorskip("redis.asyncio", reason="pip install redis (the redis extra)")

ROOT = Path(__file__).resolve().parents[2]
MODULE = "tests.cache.test_redis_managed_identity"
VAULT = "https://vault.azure.net"
MI_VARIABLES = (
    *("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT"),
    *("MSI_ENDPOINT", "MSI_SECRET", "AZUREPS_HOST_ENVIRONMENT"),
)


@pytest.fixture
def anyio_backend() -> str:
    """redis-py's client is asyncio-only."""
    return "asyncio"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No managed-identity variable of the machine running the tests: IMDS is the source."""
    for name in MI_VARIABLES:
        monkeypatch.delenv(name, raising=False)


class Gate:
    """An ASGI app that holds each request until ``ready()`` says so, then passes it on."""

    def __init__(self, app: Any, ready: Callable[[], Awaitable[bool]]) -> None:
        self.app, self.ready = app, ready

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            with anyio.fail_after(10):
                while not await self.ready():  # noqa: ASYNC110 (Redis has no event to wait on)
                    await anyio.sleep(0.005)
        await self.app(scope, receive, send)


async def test_concurrent_clients_of_a_fleet_send_one_request(
    redis: RedisServer, workers: Workers
) -> None:
    clients = 8
    emulator = ManagedIdentityEmulator()
    baseline = command_stats(redis.port).get("exists", 0)

    async def others_wait() -> bool:
        # Every other worker is waiting for the fleet lock (a waiter's first look is EXISTS).
        return command_stats(redis.port).get("exists", 0) - baseline >= clients - 1

    results: list[dict[str, Any]] = []
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=Gate(emulator, others_wait))
    ) as http:
        mi = [
            ManagedIdentityClient(
                SystemAssignedManagedIdentity(),
                http_client=http,
                token_cache=PersistedTokenCache(workers.store(redis.url)),
            )
            for _ in range(clients)
        ]

        async def acquire(client: ManagedIdentityClient) -> None:
            results.append(dict(await client.acquire_token_for_client(resource=VAULT)))

        async with anyio.create_task_group() as tg:
            for client in mi:
                tg.start_soon(acquire, client)
    assert sum(emulator.counts.values()) == emulator.counts["imds"] == 1
    assert {r["access_token"] for r in results} == {results[0]["access_token"]}
    sources = sorted(r["token_source"] for r in results)
    assert sources == ["cache"] * (clients - 1) + ["identity_provider"]


class Slow:
    """The managed identity endpoint with a latency, as a real one has."""

    def __init__(self, app: Any, latency: float) -> None:
        self.app, self.latency = app, latency

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await anyio.sleep(self.latency)
        await self.app(scope, receive, send)


@contextmanager
def worker_processes(
    count: int, url: str, endpoint: str, secret: str, resources: int, clients: int
) -> Iterator[list[subprocess.Popen[str]]]:
    """``count`` worker processes (App Service source on ``endpoint``), stopped on exit."""
    env = {k: v for k, v in os.environ.items() if k not in MI_VARIABLES}
    env.update(IDENTITY_ENDPOINT=endpoint, IDENTITY_HEADER=secret, NO_PROXY="127.0.0.1")
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", MODULE, "worker", url, str(resources), str(clients)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    try:
        yield processes
    finally:
        for process in processes:
            process.kill()
            process.wait(10)
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()


@pytest.mark.slow
def test_clients_in_several_processes_send_one_request_per_resource(redis: RedisServer) -> None:
    procs, resources, clients = 3, 2, 6
    emulator = ManagedIdentityEmulator()
    with serve_in_thread(Slow(emulator, 0.3)) as base_url:
        endpoint = base_url + ManagedIdentityEmulator.APP_SERVICE_PATH
        with worker_processes(
            procs, redis.url, endpoint, emulator.secret, resources, clients
        ) as workers:
            for worker in workers:
                assert worker.stdout is not None
                assert worker.stdout.readline().strip() == "ready"
            for worker in workers:
                assert worker.stdin is not None
                worker.stdin.write("go\n")
                worker.stdin.flush()
            results = [json.loads(w.stdout.readline()) for w in workers if w.stdout is not None]
    tokens: dict[str, set[str]] = {}
    sources: dict[str, int] = {}
    for result in results:
        for resource, token, source in result:
            tokens.setdefault(resource, set()).add(token)
            sources[source] = sources.get(source, 0) + 1
    assert emulator.counts["app_service"] == resources  # one request per resource, fleet-wide
    assert sum(emulator.counts.values()) == resources
    assert all(len(seen) == 1 for seen in tokens.values())
    assert len(tokens) == resources
    assert sources == {"identity_provider": resources, "cache": procs * clients - resources}


async def worker(url: str, resources: int, clients: int) -> None:
    """One worker process: ``clients`` managed identity clients, each with its own memory and
    Redis connection, acquire on "go" (client i asks for resource i % resources)."""
    stores = [RedisPersistence(url) for _ in range(clients)]
    async with httpx.AsyncClient() as http:
        mi = [
            ManagedIdentityClient(
                SystemAssignedManagedIdentity(),
                http_client=http,
                token_cache=PersistedTokenCache(store),
            )
            for store in stores
        ]
        for store in stores:
            await store.sync_invalidations()
        print("ready", flush=True)
        assert (await anyio.to_thread.run_sync(sys.stdin.readline)).strip() == "go"
        results: list[tuple[str, str, str]] = []

        async def acquire(i: int) -> None:
            resource = f"https://resource-{i % resources}.example"
            result = await mi[i].acquire_token_for_client(resource=resource)
            results.append((resource, result["access_token"], result["token_source"]))

        async with anyio.create_task_group() as tg:
            for i in range(clients):
                tg.start_soon(acquire, i)
    for store in stores:
        await store.aclose()
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "worker":
        anyio.run(worker, sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        print(json.dumps({"error": f"unknown role {sys.argv[1]}"}))
        sys.exit(2)
