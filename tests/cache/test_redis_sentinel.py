"""RedisPersistence on a Sentinel-managed primary: the primary killed mid-run, acknowledged
tokens kept (WAIT), writes resumed on the promoted replica."""

from __future__ import annotations

import logging

import anyio
import httpx
import pytest

from msal_async import ConfidentialClientApplication, PersistedTokenCache, RedisPersistence
from msal_async._cache.partitions import app_partition
from msal_async._cache.persistence import unsaved
from msal_async.testing import DEMO_CLIENT_ID, DEMO_TENANT_ID, AuthorityEmulator

from .conftest import SentinelServers, Workers, command, command_stats, until_available

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
pytest.importorskip("redis.asyncio", reason="pip install redis (the redis extra)")

SCOPES = [f"api://sentinel-{i}/.default" for i in range(5)]


@pytest.fixture
def anyio_backend() -> str:
    """redis-py's client is asyncio-only."""
    return "asyncio"


def cache_of(app: ConfidentialClientApplication) -> PersistedTokenCache:
    """A worker's persisted cache."""
    assert isinstance(app.token_cache, PersistedTokenCache)
    return app.token_cache


async def test_the_primary_killed_mid_run(
    redis_sentinel: SentinelServers, workers: Workers, caplog: pytest.LogCaptureFixture
) -> None:
    emulator = AuthorityEmulator()
    url = redis_sentinel.url
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator)) as http:
        a = workers.app(url, http, wait_for_replicas=1, retry_after=0.1)
        for scope in SCOPES[:3]:
            assert (await a.acquire_token_for_client([scope]))["token_source"] == (
                "identity_provider"
            )
        assert not unsaved(cache_of(a))  # acknowledged: on the primary and a replica
        old = redis_sentinel.primary.port
        redis_sentinel.primary.stop()  # SIGKILL
        with caplog.at_level(logging.WARNING, logger="msal_async"):
            hit = await a.acquire_token_for_client([SCOPES[0]])
            fresh = await a.acquire_token_for_client([SCOPES[3]])
        assert hit["token_source"] == "cache"  # from memory
        assert fresh["token_source"] == "identity_provider"  # from the authority
        assert "Redis is unavailable" in caplog.text
        assert unsaved(cache_of(a))  # kept for the next save
        promoted = await anyio.to_thread.run_sync(redis_sentinel.wait_failover, old)
        await until_available(a)  # a probe in the background finds the new primary
        more = await a.acquire_token_for_client([SCOPES[4]])
        assert more["token_source"] == "identity_provider"
        assert not unsaved(cache_of(a)), list(unsaved(cache_of(a)))  # written with this one
        store = cache_of(a).persistence
        assert isinstance(store, RedisPersistence)
        key = store.key_of(app_partition(DEMO_CLIENT_ID, DEMO_TENANT_ID))
        assert command(promoted, "EXISTS", key) == 1
        other = workers.app(url, http)  # a new worker finds every token on the new primary
        for scope in SCOPES:
            assert (await other.acquire_token_for_client([scope]))["token_source"] == "cache"
        await store.sync_invalidations()  # a's subscriber follows the primary too
        await a.acquire_token_for_client([SCOPES[0]])
        before = command_stats(promoted).get("evalsha", 0)
        for scope in SCOPES * 4:
            assert (await a.acquire_token_for_client([scope]))["token_source"] == "cache"
        assert command_stats(promoted).get("evalsha", 0) == before
    assert emulator.counts["client_credentials"] == len(SCOPES)


async def test_a_write_no_replica_acknowledged_stays_in_memory(
    redis_sentinel: SentinelServers, workers: Workers, caplog: pytest.LogCaptureFixture
) -> None:
    emulator = AuthorityEmulator()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator)) as http:
        a = workers.app(redis_sentinel.url, http, wait_for_replicas=1, timeout=0.3)
        assert "access_token" in await a.acquire_token_for_client([SCOPES[0]])
        for replica in redis_sentinel.replicas:
            replica.freeze()
        try:
            with caplog.at_level(logging.WARNING, logger="msal_async"):
                assert "access_token" in await a.acquire_token_for_client([SCOPES[1]])
            assert "reached 0 of the 1 replicas" in caplog.text
            assert "unavailable" not in caplog.text  # the primary answered: not an outage
            assert unsaved(cache_of(a))  # not acknowledged: kept for the next save
        finally:
            for replica in redis_sentinel.replicas:
                replica.thaw()
        with caplog.at_level(logging.WARNING, logger="msal_async"):
            assert "access_token" in await a.acquire_token_for_client([SCOPES[2]])
        assert not unsaved(cache_of(a))
        assert "reach the required replicas again" in caplog.text
