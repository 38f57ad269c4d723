"""RedisPersistence against a real redis-server: partitions, TTL, merges, fleet single flight."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import httpx
import pytest

from msal_async import (
    ConfidentialClientApplication,
    PersistedTokenCache,
    RedisPersistence,
)
from msal_async._cache.codec import apply_changes
from msal_async._cache.partitions import app_partition
from msal_async._cache.persistence import unsaved
from msal_async._cache.protocol import UnsupportedBackendError
from msal_async.testing import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, AuthorityEmulator

from .conftest import RedisServer, until_available

pytestmark = pytest.mark.anyio
redis_asyncio = pytest.importorskip("redis.asyncio", reason="pip install redis (the redis extra)")

SCOPE = "api://fleet/.default"
AUTHORITY = f"https://login.microsoftonline.com/{DEMO_TENANT_ID}"


@pytest.fixture
def anyio_backend() -> str:
    """redis-py's client is asyncio-only (the trio case is tested explicitly below)."""
    return "asyncio"


@pytest.fixture
async def client(redis: RedisServer) -> AsyncIterator[Any]:
    """A raw client to inspect the server."""
    raw = redis_asyncio.from_url(redis.url)
    yield raw
    await raw.aclose()


Worker = Callable[..., ConfidentialClientApplication]


@pytest.fixture
async def make_worker(redis: RedisServer) -> AsyncIterator[Worker]:
    """Make fleet workers (each its own app, memory and Redis connection); close them after."""
    stores: list[RedisPersistence] = []

    def make(http: httpx.AsyncClient, client_id: str = DEMO_CLIENT_ID, **options: Any) -> Any:
        store = RedisPersistence(redis.url, **options)
        stores.append(store)
        return ConfidentialClientApplication(
            client_id,
            client_credential=DEMO_CLIENT_SECRET if client_id == DEMO_CLIENT_ID else "other-secret",
            authority=AUTHORITY,
            http_client=http,
            token_cache=PersistedTokenCache(store),
        )

    yield make
    for store in stores:
        await store.aclose()


async def test_a_second_worker_is_served_from_redis(
    make_worker: Worker, http: httpx.AsyncClient, emulator: AuthorityEmulator, client: Any
) -> None:
    first = make_worker(http)
    assert "access_token" in await first.acquire_token_for_client([SCOPE])
    second = make_worker(http)
    assert (await second.acquire_token_for_client([SCOPE]))["token_source"] == "cache"
    assert emulator.counts["client_credentials"] == 1
    key = f"msal_async:cache:{{{app_partition(DEMO_CLIENT_ID, DEMO_TENANT_ID)}}}"
    assert await client.keys("*") == [key.encode()]
    ttl = await client.ttl(key)
    assert 3000 < ttl <= 3600  # the token's lifetime


async def test_one_key_per_partition(
    make_worker: Worker, http: httpx.AsyncClient, emulator: AuthorityEmulator, client: Any
) -> None:
    emulator.register_client("other-client", "other-secret")
    for client_id in (DEMO_CLIENT_ID, "other-client"):
        app = make_worker(http, client_id)
        assert "access_token" in await app.acquire_token_for_client([SCOPE])
    keys = sorted(k.decode() for k in await client.keys("*"))
    assert keys == sorted(
        f"msal_async:cache:{{{app_partition(c, DEMO_TENANT_ID)}}}"
        for c in (DEMO_CLIENT_ID, "other-client")
    )


async def test_concurrent_writers_never_lose_a_token(redis: RedisServer) -> None:
    stores = [RedisPersistence(redis.url) for _ in range(4)]
    keys = [f"k{i}" for i in range(40)]

    async def write(i: int) -> None:
        entry = {"secret": keys[i], "target": keys[i], "expires_on": "9999999999"}
        change = {("AccessToken", keys[i]): entry}
        await stores[i % 4].save("p", lambda doc: apply_changes(doc, change))

    async with anyio.create_task_group() as tg:
        for i in range(len(keys)):
            tg.start_soon(write, i)
    loaded = await stores[0].load("p", None)
    assert loaded is not None
    assert set(loaded.document["AccessToken"]) == set(keys)
    assert await stores[0].load("p", loaded.version) is None  # unchanged: version only
    for store in stores:
        await store.aclose()


async def test_fleet_fetches_a_token_once(make_worker: Worker) -> None:
    emulator = AuthorityEmulator(latency=0.2)  # long enough for every worker to miss at once
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator)) as http:
        workers = [make_worker(http) for _ in range(8)]
        results: list[dict[str, Any]] = []

        async def one(app: ConfidentialClientApplication) -> None:
            results.append(dict(await app.acquire_token_for_client([SCOPE])))

        async with anyio.create_task_group() as tg:
            for app in workers:
                tg.start_soon(one, app)
        assert all("access_token" in r for r in results)
        assert emulator.counts["client_credentials"] == 1
        assert sorted(r["token_source"] for r in results).count("identity_provider") == 1


async def test_redis_killed_mid_run(
    redis: RedisServer,
    make_worker: Worker,
    http: httpx.AsyncClient,
    emulator: AuthorityEmulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = make_worker(http, retry_after=0.05)
    assert "access_token" in await app.acquire_token_for_client(["api://a/.default"])
    redis.stop()
    with caplog.at_level(logging.WARNING, logger="msal_async"):
        hit = await app.acquire_token_for_client(["api://a/.default"])
        fresh = await app.acquire_token_for_client(["api://b/.default"])
    assert hit["token_source"] == "cache"
    assert fresh["token_source"] == "identity_provider"
    assert "Redis is unavailable" in caplog.text
    redis.start()  # an empty server: the data was lost with the process
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="msal_async"):
        await until_available(app)  # a probe in the background finds it again
        again = await app.acquire_token_for_client(["api://b/.default"])
    assert again["token_source"] == "cache"
    assert "vanished" in caplog.text
    assert "reachable again" in caplog.text
    other = make_worker(http)  # another worker finds both tokens, written back
    for scope in ("api://a/.default", "api://b/.default"):
        assert (await other.acquire_token_for_client([scope]))["token_source"] == "cache"
    assert emulator.counts["client_credentials"] == 2


def test_trio_gets_a_clear_error(redis: RedisServer) -> None:
    import trio

    async def main() -> None:
        store = RedisPersistence(redis.url)
        cache = PersistedTokenCache(store)
        with pytest.raises(UnsupportedBackendError, match="asyncio only"):
            await cache.load("p")
        with pytest.raises(UnsupportedBackendError, match="asyncio only"):
            await store.try_lock("x")

    trio.run(main)


def test_constructor_errors(redis: RedisServer) -> None:
    with pytest.raises(TypeError, match="redis"):
        RedisPersistence(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lock_ttl"):
        RedisPersistence(redis.url, lock_ttl=0)


def app_event(client_id: str, secret: str, scope: str = "s") -> dict[str, Any]:
    """A client-credentials token response (tenant ``t``), as ``TokenCache.add`` takes it."""
    return {
        "client_id": client_id,
        "scope": [scope],
        "token_endpoint": "https://login.microsoftonline.com/t/oauth2/v2.0/token",
        "environment": "login.microsoftonline.com",
        "response": {"access_token": secret, "expires_in": 3600},
        "data": {},
    }


def secrets_of(cache: PersistedTokenCache) -> set[str]:
    """The access tokens a cache holds in memory."""
    return {e["secret"] for e in cache.search("AccessToken", query={})}


BAD, GOOD = app_partition("bad", "t"), app_partition("good", "t")


async def test_a_damaged_partition_is_overwritten_and_redis_stays_up(
    redis: RedisServer, client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    await client.hset(f"msal_async:cache:{{{BAD}}}", mapping={"v": 1, "d": b"{trunc"})
    store = RedisPersistence(redis.url, retry_after=30)
    cache = PersistedTokenCache(store)
    with caplog.at_level(logging.WARNING, logger="msal_async"):
        await cache.load(BAD)  # read as empty
        cache.add(app_event("bad", "X"))
        await cache.save(BAD)
        cache.add(app_event("good", "Y"))
        await cache.save(GOOD)
    assert "is damaged" in caplog.text
    assert "unavailable" not in caplog.text
    assert not unsaved(cache)
    assert await client.exists(f"msal_async:cache:{{{GOOD}}}")
    other = PersistedTokenCache(RedisPersistence(redis.url))
    await other.load(BAD)
    assert secrets_of(other) == {"X"}  # the damaged value was replaced
    await store.aclose()
    await other.persistence.aclose()


async def test_a_partition_recreated_after_a_flush_is_seen_as_changed(
    redis: RedisServer, client: Any
) -> None:
    a = PersistedTokenCache(RedisPersistence(redis.url))
    b = PersistedTokenCache(RedisPersistence(redis.url))
    await a.load(GOOD)
    a.add(app_event("good", "A-TOKEN", "s1"))
    await a.save(GOOD)
    await client.flushdb()  # Redis restarted empty, or evicted the key
    await b.load(GOOD)
    b.add(app_event("good", "B-TOKEN", "s2"))
    await b.save(GOOD)  # a new key, written once: a counter would be back at A's version
    await a.load(GOOD)
    assert "B-TOKEN" in secrets_of(a)
    await a.persistence.aclose()
    await b.persistence.aclose()


async def test_a_worker_with_another_key_never_overwrites_a_partition(
    redis: RedisServer, client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    key = bytes(range(32))
    good = PersistedTokenCache(RedisPersistence(redis.url, encryption_key=key))
    good.add(app_event("bad", "GOOD"))
    await good.save(BAD)
    stored = await client.hgetall(f"msal_async:cache:{{{BAD}}}")
    wrong = PersistedTokenCache(RedisPersistence(redis.url, encryption_key=bytes(32)))
    with caplog.at_level(logging.WARNING, logger="msal_async"):
        await wrong.load(BAD)
        wrong.add(app_event("bad", "WRONG", "other"))
        await wrong.save(BAD)
        wrong.add(app_event("good", "Y"))
        await wrong.save(GOOD)  # other partitions are still written
    assert caplog.text.count("cannot be decrypted by this worker") == 1
    assert "unavailable" not in caplog.text
    assert await client.hgetall(f"msal_async:cache:{{{BAD}}}") == stored
    assert await client.exists(f"msal_async:cache:{{{GOOD}}}")
    assert unsaved(wrong)  # kept for a later save
    assert "WRONG" in secrets_of(wrong)
    await good.load(BAD)
    assert secrets_of(good) == {"GOOD"}
    await good.persistence.aclose()
    await wrong.persistence.aclose()
