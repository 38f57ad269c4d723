"""RedisPersistence under faults with a real redis-server: a poisoned partition is damage, not an
outage; a frozen server (SIGSTOP) is marked down after the first timeout and not waited on."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest

from msal_async import PersistedTokenCache, RedisPersistence
from msal_async._cache.partitions import app_partition
from msal_async._cache.persistence import unsaved
from msal_async.testing import AuthorityEmulator

from .conftest import RedisServer, Workers, until_available
from .test_redis import app_event, secrets_of

pytestmark = pytest.mark.anyio
redis_asyncio = pytest.importorskip("redis.asyncio", reason="pip install redis (the redis extra)")

BAD, GOOD = app_partition("bad", "t"), app_partition("good", "t")


@pytest.fixture
def anyio_backend() -> str:
    """redis-py's client is asyncio-only."""
    return "asyncio"


@pytest.fixture
async def client(redis: RedisServer) -> AsyncIterator[Any]:
    """A raw client to plant values."""
    raw = redis_asyncio.from_url(redis.url)
    yield raw
    await raw.aclose()


@pytest.mark.parametrize(
    "plant",
    [
        pytest.param({"v": "1", "d": b"[" * 200_000}, id="nested-200000-deep"),
        pytest.param({"v": "1", "d": b'{"AccessToken": [1, 2]}'}, id="not-sections"),
        pytest.param("a string, not a hash", id="wrong-redis-type"),
    ],
)
async def test_a_poisoned_partition_is_damage_not_an_outage(
    plant: Any, redis: RedisServer, client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisPersistence(redis.url, retry_after=30)
    bad_key = store.key_of(BAD)
    if isinstance(plant, dict):
        await client.hset(bad_key, mapping=plant)
    else:
        await client.set(bad_key, plant)
    cache = PersistedTokenCache(store)
    with caplog.at_level(logging.WARNING, logger="msal_async"):
        await cache.load(BAD)  # read as empty
        cache.add(app_event("bad", "X"))
        await cache.save(BAD)  # overwrites the damaged value
        cache.add(app_event("good", "Y"))
        await cache.save(GOOD)  # other partitions keep working
    assert "is damaged" in caplog.text
    assert "unavailable" not in caplog.text
    assert "Traceback" not in caplog.text
    assert not unsaved(cache)
    other = PersistedTokenCache(RedisPersistence(redis.url))
    await other.load(BAD)
    await other.load(GOOD)
    assert secrets_of(other) == {"X", "Y"}
    await store.aclose()
    await other.persistence.aclose()


@pytest.mark.slow
async def test_a_frozen_redis_is_marked_down_after_the_first_timeout(
    redis: RedisServer, workers: Workers, caplog: pytest.LogCaptureFixture
) -> None:
    timeout, retry_after = 3.0, 0.5
    emulator = AuthorityEmulator()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator)) as http:
        app = workers.app(redis.url, http, timeout=timeout, retry_after=retry_after)
        assert "access_token" in await app.acquire_token_for_client(["api://warm/.default"])
        redis.freeze()
        try:
            with caplog.at_level(logging.WARNING, logger="msal_async"):
                with anyio.fail_after(timeout + 1.5):  # one timeout, not one per operation
                    first = await app.acquire_token_for_client(["api://new-0/.default"])
                assert first["token_source"] == "identity_provider"
                assert caplog.text.count("Redis is unavailable") == 1
                with anyio.fail_after(timeout / 2):  # marked down: nothing waits on it
                    for i in range(1, 6):
                        scope = f"api://new-{i}/.default"
                        assert "access_token" in await app.acquire_token_for_client([scope])
                    hit = await app.acquire_token_for_client(["api://warm/.default"])
                assert hit["token_source"] == "cache"
                await anyio.sleep(retry_after + 0.1)  # due for a probe, in the background
                durations = await burst(app, [f"api://burst-{i}/.default" for i in range(8)])
            assert max(durations) < timeout / 2, durations
            assert caplog.text.count("Redis is unavailable") == 1  # logged once per outage
        finally:
            redis.thaw()
        with caplog.at_level(logging.WARNING, logger="msal_async"):
            await until_available(app)  # a probe in the background finds it answering
        assert "reachable again" in caplog.text
        again = await app.acquire_token_for_client(["api://after/.default"])
        assert again["token_source"] == "identity_provider"
        assert not unsaved(app.token_cache)  # type: ignore[arg-type]  # every token saved now


async def burst(app: Any, scopes: list[str]) -> list[float]:
    """Acquire ``scopes`` concurrently; the seconds each took."""
    durations: list[float] = []

    async def one(scope: str) -> None:
        start = time.monotonic()
        assert "access_token" in await app.acquire_token_for_client([scope])
        durations.append(time.monotonic() - start)

    async with anyio.create_task_group() as tg:
        for scope in scopes:
            tg.start_soon(one, scope)
    return durations
