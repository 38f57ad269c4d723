"""Redis client-side caching (CLIENT TRACKING) and woken lock waiters, against a real redis-server:
hits without round trips, no stale read past an invalidation, a lost subscriber, waiters woken."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest

from msal_async import PersistedTokenCache, RedisPersistence
from msal_async._cache.codec import apply_changes
from msal_async._cache.partitions import app_partition
from msal_async.testing import DEMO_CLIENT_ID, DEMO_TENANT_ID, AuthorityEmulator

from .conftest import RedisServer, Workers, command, command_stats

pytestmark = pytest.mark.anyio
redis_asyncio = pytest.importorskip("redis.asyncio", reason="pip install redis (the redis extra)")

ROOT = Path(__file__).resolve().parents[2]
MODULE = "tests.cache.test_redis_tracking"
PARTITION = "app_tenant_AppTokenCache"
SCOPE = "api://tracking/.default"
READER_PASSWORD = "reader-password"
APP_PARTITION = app_partition(DEMO_CLIENT_ID, DEMO_TENANT_ID)


@pytest.fixture
def anyio_backend() -> str:
    """redis-py's client is asyncio-only."""
    return "asyncio"


def round_trips(port: int) -> int:
    """Cache commands the server ran so far (the load script and what it calls)."""
    stats = command_stats(port)
    return sum(stats.get(name, 0) for name in ("evalsha", "eval", "exists", "set", "hget"))


def event(secret: str, scope: str = "s") -> dict[str, Any]:
    """A client-credentials token response for client ``app`` in tenant ``tenant``."""
    return {
        "client_id": "app",
        "scope": [scope],
        "token_endpoint": "https://login.microsoftonline.com/tenant/oauth2/v2.0/token",
        "environment": "login.microsoftonline.com",
        "response": {"access_token": secret, "expires_in": 3600},
        "data": {},
    }


def app_event(secret: str) -> dict[str, Any]:
    """A client-credentials event of the emulator's demo client for SCOPE."""
    return {
        "client_id": DEMO_CLIENT_ID,
        "scope": [SCOPE],
        "token_endpoint": f"https://login.microsoftonline.com/{DEMO_TENANT_ID}/oauth2/v2.0/token",
        "environment": "login.microsoftonline.com",
        "response": {"access_token": secret, "expires_in": 3600},
        "data": {},
    }


def secrets_of(cache: PersistedTokenCache) -> set[str]:
    """The access tokens a cache holds in memory."""
    return {e["secret"] for e in cache.search("AccessToken", query={})}


def change(secret: str) -> Any:
    """A store-level update that writes one access token entry."""
    entry = {("AccessToken", "k"): {"secret": secret, "target": "s", "expires_on": "9999999999"}}
    return lambda document: apply_changes(document, entry)


async def test_hits_make_no_round_trip_until_another_worker_writes(
    redis: RedisServer, workers: Workers
) -> None:
    emulator = AuthorityEmulator()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator)) as http:
        a, b = workers.app(redis.url, http), workers.app(redis.url, http)
        assert "access_token" in await a.acquire_token_for_client([SCOPE])
        await workers.stores[0].sync_invalidations()  # the subscriber is live
        await a.acquire_token_for_client([SCOPE])  # validates the partition
        before = round_trips(redis.port)
        for _ in range(100):
            assert (await a.acquire_token_for_client([SCOPE]))["token_source"] == "cache"
        assert round_trips(redis.port) == before
        fresh = await b.acquire_token_for_client(["api://other/.default"])  # same partition
        await workers.stores[0].sync_invalidations()
        seen = await a.acquire_token_for_client(["api://other/.default"])
    assert (seen["token_source"], seen["access_token"]) == ("cache", fresh["access_token"])
    assert emulator.counts["client_credentials"] == 2


async def test_another_workers_write_reaches_hot_hits_without_a_sync(
    redis: RedisServer, workers: Workers
) -> None:
    emulator = AuthorityEmulator()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator)) as http:
        app = workers.app(redis.url, http)
        fetched = await app.acquire_token_for_client([SCOPE])
        await workers.stores[0].sync_invalidations()
        await app.acquire_token_for_client([SCOPE])  # validates the partition
        before = round_trips(redis.port)
        for _ in range(50):
            assert (await app.acquire_token_for_client([SCOPE]))["access_token"] == (
                fetched["access_token"]
            )
        assert round_trips(redis.port) == before  # the hot slot, vouched for by tracking
        # Another worker (its own memory and connection) replaces the token in Redis.
        other = PersistedTokenCache(workers.store(redis.url, tracking=False))
        other.add(app_event("rotated-by-another-worker"))
        await other.save(APP_PARTITION)
        with anyio.fail_after(5):  # generous: benchmarks/fleet.py (b) measures the latency
            while True:
                hit = await app.acquire_token_for_client([SCOPE])
                if hit["access_token"] == "rotated-by-another-worker":
                    break
                await anyio.sleep(0.0005)
        assert hit["token_source"] == "cache"
        # Served from the hot slot again: one load after the invalidation, then none.
        settled = round_trips(redis.port)
        for _ in range(20):
            assert (await app.acquire_token_for_client([SCOPE]))["access_token"] == (
                "rotated-by-another-worker"
            )
        assert round_trips(redis.port) == settled
    assert emulator.counts["client_credentials"] == 1


async def test_without_tracking_every_hit_asks_redis(redis: RedisServer, workers: Workers) -> None:
    emulator = AuthorityEmulator()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator)) as http:
        a = workers.app(redis.url, http, tracking=False)
        assert "access_token" in await a.acquire_token_for_client([SCOPE])
        before = command_stats(redis.port).get("evalsha", 0)
        for _ in range(20):
            assert (await a.acquire_token_for_client([SCOPE]))["token_source"] == "cache"
        assert command_stats(redis.port).get("evalsha", 0) - before == 20
    assert not any(c["cmd"] == "subscribe" for c in await client_list(redis))


async def client_list(redis: RedisServer) -> list[dict[str, Any]]:
    """CLIENT LIST of the server."""
    raw = redis_asyncio.from_url(redis.url)
    try:
        return list(await raw.client_list())
    finally:
        await raw.aclose()


def writer(url: str, count: int) -> None:
    """Another process: write tokens v1..v{count} in turn, publishing each number once saved."""
    import redis

    async def main() -> None:
        store = RedisPersistence(url, tracking=False)
        cache = PersistedTokenCache(store)
        for i in range(1, count + 1):
            cache.add(event(f"v{i}"))
            await cache.save(PARTITION)
            done.set("writer-done", i)  # outside the namespace: not a cache key
        await store.aclose()

    done = redis.Redis.from_url(url)
    anyio.run(main)
    done.close()


@pytest.mark.slow
async def test_another_process_write_is_never_missed_once_its_invalidation_arrived(
    redis: RedisServer, workers: Workers
) -> None:
    count = 150
    raw = redis_asyncio.from_url(redis.url)
    reader = PersistedTokenCache(workers.store(redis.url))
    await reader.persistence.sync_invalidations()  # type: ignore[attr-defined]
    process = subprocess.Popen(  # noqa: ASYNC220 (started once, waited for at the end)
        [sys.executable, "-m", MODULE, "writer", redis.url, str(count)], cwd=ROOT
    )
    checks = 0
    try:
        while True:
            done = int(await raw.get("writer-done") or 0)  # acknowledged before the sync
            await reader.persistence.sync_invalidations()  # type: ignore[attr-defined]
            await reader.load(PARTITION)  # a hit when nothing was invalidated
            held = {int(s[1:]) for s in secrets_of(reader)}
            assert not done or max(held) >= done, (done, held)
            checks += 1
            if done == count:
                break
            await anyio.lowlevel.checkpoint()
        assert process.wait(30) == 0
    finally:
        process.kill()
        await raw.aclose()
    assert checks > 10


@pytest.fixture
async def reader_user(redis: RedisServer) -> AsyncIterator[str]:
    """An ACL user ``reader`` allowed everything; the URL for it. Deleted after the test."""
    command(
        redis.port, "ACL", "SETUSER", "reader", "on", f">{READER_PASSWORD}", "~*", "&*", "+@all"
    )
    yield f"redis://reader:{READER_PASSWORD}@127.0.0.1:{redis.port}/0"
    command(redis.port, "ACL", "DELUSER", "reader")


async def test_a_lost_subscriber_falls_back_to_round_trips(
    redis: RedisServer, reader_user: str, workers: Workers, caplog: pytest.LogCaptureFixture
) -> None:
    reader, writer_store = workers.store(reader_user), workers.store(redis.url, tracking=False)
    await writer_store.save(PARTITION, change("v1"))
    await reader.sync_invalidations()
    loaded = await reader.load(PARTITION, None)
    assert loaded is not None
    assert reader.unchanged(PARTITION, loaded.version)  # validated: hits need no round trip
    # Kill the subscriber and keep it from coming back (its user may not subscribe for now).
    command(redis.port, "ACL", "SETUSER", "reader", "-subscribe")
    with caplog.at_level(logging.WARNING, logger="msal_async"):
        command(redis.port, "CLIENT", "KILL", "TYPE", "pubsub")
        with anyio.fail_after(5):
            while reader.unchanged(PARTITION, loaded.version):  # noqa: ASYNC110 (no event to await)
                await anyio.sleep(0.001)
    assert "subscriber" in caplog.text
    await writer_store.save(PARTITION, change("v2"))  # no subscriber hears of it
    assert not reader.unchanged(PARTITION, loaded.version)
    command(redis.port, "ACL", "SETUSER", "reader", "+subscribe")
    await reader.sync_invalidations()  # subscribed again, but it never heard of v2
    assert not reader.unchanged(PARTITION, loaded.version)
    again = await reader.load(PARTITION, loaded.version)  # a round trip sees the write
    assert again is not None
    assert again.document["AccessToken"]["k"]["secret"] == "v2"
    assert reader.unchanged(PARTITION, again.version)  # hits are free again


async def test_a_load_that_raced_a_write_does_not_validate(
    redis: RedisServer, workers: Workers
) -> None:
    store, other = workers.store(redis.url), workers.store(redis.url, tracking=False)
    await other.save(PARTITION, change("v1"))
    await store.sync_invalidations()
    tracking, key = store._tracking, store.key_of(PARTITION)
    assert tracking is not None
    ticket = tracking.begin(key)  # a load begins...
    old = await other.load(PARTITION, None)  # ...and Redis answers v1 (read here as if by it)
    assert old is not None
    await other.save(PARTITION, change("v2"))  # another worker writes before the reply is used
    await store.sync_invalidations()  # its invalidation arrives before the load ends
    tracking.end(key, ticket, old.version)
    assert not store.unchanged(PARTITION, old.version)


async def test_a_flush_invalidates_every_partition(redis: RedisServer, workers: Workers) -> None:
    store = workers.store(redis.url)
    await store.save(PARTITION, change("v1"))
    await store.sync_invalidations()
    loaded = await store.load(PARTITION, None)
    assert loaded is not None
    assert store.unchanged(PARTITION, loaded.version)
    command(redis.port, "FLUSHALL")
    await store.sync_invalidations()
    assert not store.unchanged(PARTITION, loaded.version)
    gone = await store.load(PARTITION, loaded.version)
    assert gone is not None
    assert gone.absent


async def test_tracking_refused_by_an_acl_falls_back_and_says_so(
    redis: RedisServer, workers: Workers, caplog: pytest.LogCaptureFixture
) -> None:
    command(
        redis.port,
        "ACL",
        "SETUSER",
        "untracked",
        "on",
        ">pw",
        "~*",
        "&*",
        "+@all",
        "-client|tracking",
    )
    try:
        store = workers.store(f"redis://untracked:pw@127.0.0.1:{redis.port}/0")
        await store.save(PARTITION, change("v1"))
        with caplog.at_level(logging.WARNING, logger="msal_async"):
            await store.sync_invalidations()  # subscribed, without tracking
            loaded = await store.load(PARTITION, None)
        assert loaded is not None
        assert not store.unchanged(PARTITION, loaded.version)
        assert caplog.text.count("refused CLIENT TRACKING") == 1
        assert await waits_woken(store, redis)  # waiters are still woken
    finally:
        command(redis.port, "ACL", "DELUSER", "untracked")


async def test_a_user_that_may_not_subscribe_falls_back_to_polling(
    redis: RedisServer, workers: Workers, caplog: pytest.LogCaptureFixture
) -> None:
    command(redis.port, "ACL", "SETUSER", "nosub", "on", ">pw", "~*", "&*", "+@all", "-subscribe")
    try:
        with caplog.at_level(logging.WARNING, logger="msal_async"):
            url = f"redis://nosub:pw@127.0.0.1:{redis.port}/0"
            store = workers.store(url, retry_after=0.05, timeout=0.5)
            await store.save(PARTITION, change("v1"))  # works: only the subscriber is refused
            await store.sync_invalidations()  # bounded: it never subscribes
            loaded = await store.load(PARTITION, None)
            assert loaded is not None
            assert not store.unchanged(PARTITION, loaded.version)
            assert not await waits_woken(store, redis)  # it polls
        assert caplog.text.count("refused the token cache's subscriber") == 1
        assert "unavailable" not in caplog.text
    finally:
        command(redis.port, "ACL", "DELUSER", "nosub")


async def waits_woken(store: RedisPersistence, redis: RedisServer) -> bool:
    """Hold a lock for a moment from another store; True when ``store``'s waiter was woken by
    the release (at most three looks at the lock) rather than polling it."""
    holder = RedisPersistence(redis.url, tracking=False)
    name = holder.lock_name("fetch", PARTITION)
    token = await holder.try_lock(name)
    assert token is not None
    before = command_stats(redis.port).get("exists", 0)
    released = False

    async def release() -> None:
        nonlocal released
        await anyio.sleep(0.4)
        released = True
        await holder.unlock(name, token)

    async with anyio.create_task_group() as tg:
        tg.start_soon(release)
        assert await store.wait_unlocked(name, 5)
        assert released
    await holder.aclose()
    return command_stats(redis.port).get("exists", 0) - before <= 3


async def test_waiters_are_woken_by_the_release(redis: RedisServer, workers: Workers) -> None:
    woken = workers.store(redis.url)
    await woken.sync_invalidations()
    assert await waits_woken(woken, redis)
    assert not await waits_woken(workers.store(redis.url, tracking=False), redis)  # it polls


if __name__ == "__main__":
    if sys.argv[1] == "writer":
        writer(sys.argv[2], int(sys.argv[3]))
    else:
        print(json.dumps({"error": f"unknown role {sys.argv[1]}"}))
        sys.exit(2)
