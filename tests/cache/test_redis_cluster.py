"""RedisPersistence on a real 3-primary Redis Cluster: one slot per partition, tracking per node,
a resharding and a node restart mid-run."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest

from msal_async import ConfidentialClientApplication, PersistedTokenCache, RedisPersistence
from msal_async._cache import codec
from msal_async._cache.partitions import app_partition
from msal_async.testing import DEMO_TENANT_ID, AuthorityEmulator

from .conftest import ClusterServers, Workers, command, until_available

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
pytest.importorskip("redis.asyncio", reason="pip install redis (the redis extra)")

SCOPES = [f"api://cluster-{i}/.default" for i in range(4)]
#: Commands a subscriber or a test sends that are no cache round trip.
NOT_ROUND_TRIPS = {"ping", "info", "publish", "cluster", "client", "subscribe", "command", "hello"}


@pytest.fixture
def anyio_backend() -> str:
    """redis-py's client is asyncio-only."""
    return "asyncio"


def slot_of(key: str) -> int:
    """The Redis Cluster slot of a key."""
    from redis.crc import key_slot

    return int(key_slot(key.encode()))


def round_trips(cluster: ClusterServers) -> int:
    """Cache commands the cluster has run so far (scripts count their inner commands too)."""
    return sum(
        calls
        for name, calls in cluster.commands().items()
        if name.split("|")[0] not in NOT_ROUND_TRIPS
    )


def store_of(app: ConfidentialClientApplication) -> RedisPersistence:
    """The RedisPersistence behind a worker's cache."""
    cache = app.token_cache
    assert isinstance(cache, PersistedTokenCache)
    assert isinstance(cache.persistence, RedisPersistence)
    return cache.persistence


def movable_client(cluster: ClusterServers, near: int = 16) -> str:
    """A client id whose partition key sits in one of the ``near`` lowest slots of its node
    (``redis-cli --cluster reshard`` moves a node's lowest slots first)."""
    firsts = [cluster.first_slot(node) for node in cluster.nodes]
    probe = RedisPersistence("redis://127.0.0.1:1/0")  # only its key layout is used
    for i in range(100_000):
        client_id = f"cluster-app-{i}"
        slot = slot_of(probe.key_of(app_partition(client_id, DEMO_TENANT_ID)))
        if any(first <= slot < first + near for first in firsts):
            return client_id
    pytest.fail("no client id found")


async def test_a_partition_lives_in_one_slot_and_the_fleet_fetches_once(
    redis_cluster: ClusterServers, workers: Workers
) -> None:
    emulator = AuthorityEmulator(latency=0.2)  # long enough for every worker to miss at once
    from redis.asyncio import RedisCluster

    client = RedisCluster(host="127.0.0.1", port=redis_cluster.nodes[0].port)  # a caller's own
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator)) as http:
        apps = [workers.app(redis_cluster.url, http) for _ in range(2)]
        apps += [workers.app(workers.store(client), http) for _ in range(2)]
        results: list[dict[str, Any]] = []

        async def one(app: ConfidentialClientApplication) -> None:
            results.append(dict(await app.acquire_token_for_client([SCOPES[0]])))

        async with anyio.create_task_group() as tg:
            for app in apps:
                tg.start_soon(one, app)
    assert all("access_token" in r for r in results)
    assert emulator.counts["client_credentials"] == 1
    assert store_of(apps[3]).kind == "cluster"
    for app in apps[2:]:
        await store_of(app).aclose()
    assert await client.ping()  # the store did not close the caller's client
    await client.aclose()
    store = store_of(apps[0])
    partition = app_partition(apps[0].client_id, DEMO_TENANT_ID)
    key = store.key_of(partition)
    slot = slot_of(key)
    assert slot_of(store.lock_key(store.lock_name("a-fetch", partition))) == slot
    owner = redis_cluster.owner(slot)
    assert command(owner.port, "EXISTS", key) == 1
    assert command(owner.port, "HGET", key, "v")  # data and version in the one hash


async def test_hits_make_no_round_trip_and_another_workers_write_is_seen(
    redis_cluster: ClusterServers, workers: Workers
) -> None:
    emulator = AuthorityEmulator()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator)) as http:
        a, b = workers.app(redis_cluster.url, http), workers.app(redis_cluster.url, http)
        assert "access_token" in await a.acquire_token_for_client([SCOPES[0]])
        await store_of(a).sync_invalidations()  # every primary's subscriber is live
        assert (await a.acquire_token_for_client([SCOPES[0]]))["token_source"] == "cache"
        before = round_trips(redis_cluster)
        for _ in range(50):
            assert (await a.acquire_token_for_client([SCOPES[0]]))["token_source"] == "cache"
        assert round_trips(redis_cluster) == before
        fresh = await b.acquire_token_for_client([SCOPES[1]])  # writes the same partition
        assert fresh["token_source"] == "identity_provider"
        await store_of(a).sync_invalidations()
        seen = await a.acquire_token_for_client([SCOPES[1]])
    assert seen["token_source"] == "cache"
    assert seen["access_token"] == fresh["access_token"]
    assert emulator.counts["client_credentials"] == 2


async def traffic(
    app: ConfidentialClientApplication,
    stop: anyio.Event,
    results: list[dict[str, Any]],
    started: anyio.Event,
) -> None:
    """Acquire the SCOPES round robin until ``stop`` (yielding between calls); set ``started``
    after the first ten results."""
    i = 0
    while not stop.is_set():
        results.append(dict(await app.acquire_token_for_client([SCOPES[i % len(SCOPES)]])))
        if len(results) >= 10:
            started.set()
        i += 1
        await anyio.sleep(0.001)


async def check_fresh_after(
    a: ConfidentialClientApplication, b: ConfidentialClientApplication, scope: str
) -> None:
    """``b`` writes a new token; once ``a`` synced its invalidations, it serves that token."""
    fresh = await b.acquire_token_for_client([scope])
    assert fresh["token_source"] == "identity_provider"
    await store_of(a).sync_invalidations()
    seen = await a.acquire_token_for_client([scope])
    assert (seen["token_source"], seen["access_token"]) == ("cache", fresh["access_token"])


async def test_resharding_mid_run(redis_cluster: ClusterServers, workers: Workers) -> None:
    client_id = movable_client(redis_cluster)
    emulator = AuthorityEmulator()
    emulator.register_client(client_id, "cluster-secret")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator)) as http:
        a = workers.app(redis_cluster.url, http, client_id, "cluster-secret")
        b = workers.app(redis_cluster.url, http, client_id, "cluster-secret")
        key = store_of(a).key_of(app_partition(client_id, DEMO_TENANT_ID))
        source = redis_cluster.owner(slot_of(key))
        target = next(n for n in redis_cluster.nodes if n is not source)
        results: list[dict[str, Any]] = []
        stop, started = anyio.Event(), anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(traffic, a, stop, results, started)
            tg.start_soon(traffic, b, stop, results, started)
            await started.wait()
            before = len(results)
            await anyio.to_thread.run_sync(redis_cluster.reshard, source, target, 16)
            during = len(results) - before
            stop.set()
        assert during > 0  # the workers were served while the slot moved
        assert redis_cluster.owner(slot_of(key)) is target
        assert command(target.port, "EXISTS", key) == 1  # the data moved with the slot
        assert all("access_token" in r for r in results), [r for r in results if "error" in r]
        assert emulator.counts["client_credentials"] == len(SCOPES)
        await check_fresh_after(a, b, "api://after-reshard/.default")
        await a.acquire_token_for_client([SCOPES[0]])  # may validate the partition again
        before = round_trips(redis_cluster)
        for _ in range(20):  # tracking follows the slot to its new node
            assert (await a.acquire_token_for_client([SCOPES[0]]))["token_source"] == "cache"
        assert round_trips(redis_cluster) == before


async def test_a_node_restart_mid_run(
    redis_cluster: ClusterServers, workers: Workers, caplog: pytest.LogCaptureFixture
) -> None:
    emulator = AuthorityEmulator()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator)) as http:
        a = workers.app(redis_cluster.url, http, retry_after=0.1)
        b = workers.app(redis_cluster.url, http, retry_after=0.1)
        for scope in SCOPES:
            assert "access_token" in await a.acquire_token_for_client([scope])
        key = store_of(a).key_of(app_partition(a.client_id, DEMO_TENANT_ID))
        owner = redis_cluster.owner(slot_of(key))
        results: list[dict[str, Any]] = []
        stop, started = anyio.Event(), anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(traffic, a, stop, results, started)
            await started.wait()
            await anyio.to_thread.run_sync(redis_cluster.restart, owner)  # back empty
            stop.set()
        assert all(r["token_source"] == "cache" for r in results)  # from memory meanwhile
        with caplog.at_level("WARNING", logger="msal_async"):
            await until_available(a)  # a probe in the background finds the cluster again
            for scope in SCOPES:
                assert (await a.acquire_token_for_client([scope]))["token_source"] == "cache"
        assert "vanished" in caplog.text  # a wrote its tokens back to the restarted node
        assert command(owner.port, "EXISTS", key) == 1
        for scope in SCOPES:
            assert (await b.acquire_token_for_client([scope]))["token_source"] == "cache"
        await check_fresh_after(a, b, "api://after-restart/.default")
    assert emulator.counts["client_credentials"] == len(SCOPES) + 1


async def test_plain_partitions_on_every_primary_are_encrypted_once(
    redis_cluster: ClusterServers, workers: Workers
) -> None:
    key = b"k" * 32
    plain = workers.store(redis_cluster.url, tracking=False)
    written = []
    for i in range(12):  # spread over the slots of all three primaries
        cache = PersistedTokenCache(plain)
        partition = app_partition(f"plain-app-{i}", DEMO_TENANT_ID)
        cache.add(
            {
                "client_id": f"plain-app-{i}",
                "scope": ["s"],
                "token_endpoint": f"https://login.microsoftonline.com/{DEMO_TENANT_ID}/token",
                "environment": "login.microsoftonline.com",
                "response": {"access_token": f"plain-token-{i}", "expires_in": 3600},
                "data": {},
            }
        )
        await cache.save(partition)
        written.append(plain.key_of(partition))
    owners = {redis_cluster.owner(slot_of(k)).port for k in written}
    assert len(owners) == 3
    store = workers.store(redis_cluster.url, encryption_key=key)
    assert await store.encrypt_plaintext_cache() == sorted(written)
    for name in written:
        node = redis_cluster.owner(slot_of(name))
        assert not codec.is_plaintext(command(node.port, "HGET", name, "d"))
    assert await store.encrypt_plaintext_cache() == []
    reader = PersistedTokenCache(store)
    await reader.load(app_partition("plain-app-3", DEMO_TENANT_ID))
    assert [e["secret"] for e in reader.search("AccessToken", query={})] == ["plain-token-3"]
