"""RedisPersistence's configuration: URLs (one server, Cluster, Sentinel), clients and options it
refuses, TLS (rediss://) and an ACL user holding exactly the commands the deployment guide lists."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from msal_async import RedisPersistence
from msal_async.testing import AuthorityEmulator, TLSFiles

from .conftest import RedisServer, Workers, _binary, _free_port, command, command_stats

pytestmark = pytest.mark.anyio
redis_asyncio = pytest.importorskip("redis.asyncio", reason="pip install redis (the redis extra)")

SCOPE = "api://config/.default"
#: The ACL of the deployment guide (docs/deployment.md), for the default namespace.
GUIDE_ACL = [
    "on",
    ">guide-password",
    "resetkeys",
    "~msal_async:*",
    "resetchannels",
    "&msal_async:unlocked",
    "&__redis__:invalidate",
    "-@all",
    *(
        f"+{command}"
        for command in [
            # the data connections (inside scripts: hget hset expire del get publish)
            "evalsha",
            "script|load",
            "hget",
            "hset",
            "expire",
            "del",
            "get",
            "set",
            "exists",
            "publish",
            "ping",
            "wait",
            # the subscriber
            "subscribe",
            "client|id",
            "client|tracking",
            # Redis Cluster
            "asking",
            "cluster|slots",
            "cluster|shards",
            "readonly",
        ]
    ),
]


@pytest.fixture
def anyio_backend() -> str:
    """redis-py's client is asyncio-only."""
    return "asyncio"


@pytest.mark.parametrize(
    ("url", "kind", "check"),
    [
        (
            "redis://127.0.0.1:6379/2",
            "single",
            lambda c: c.connection_pool.connection_kwargs["db"] == 2,
        ),
        (
            "unix:///run/redis.sock",
            "single",
            lambda c: "path" in c.connection_pool.connection_kwargs,
        ),
        (
            "redis+cluster://user:pw@10.0.0.1:7000,10.0.0.2:7001,[::1]:7002",
            "cluster",
            lambda c: (
                {(n.host, int(n.port)) for n in c.startup_nodes}
                == {("10.0.0.1", 7000), ("10.0.0.2", 7001), ("::1", 7002)}
            ),
        ),
        (
            "rediss+sentinel://:pw@10.0.0.1,10.0.0.2:26380/cache/3?sentinel_password=s3",
            "sentinel",
            lambda c: (
                (c.connection_pool.service_name, c.connection_pool.connection_kwargs["db"])
                == ("cache", 3)
                and [
                    (
                        s.connection_pool.connection_kwargs["port"],
                        s.connection_pool.connection_kwargs["password"],
                    )
                    for s in c.connection_pool.sentinel_manager.sentinels
                ]
                == [(26379, "s3"), (26380, "s3")]
            ),
        ),
    ],
)
async def test_urls_make_the_client_they_name(url: str, kind: str, check: Any) -> None:
    store = RedisPersistence(url)  # no I/O yet
    assert store.kind == kind
    assert check(store._client)
    await store.aclose()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://user:secret@host:6379", "schemes"),
        ("redis+sentinel://h:26379", "Sentinel service"),
        ("redis+cluster://user:secret@h:port", "bad port"),
        ("redis+cluster://user:secret@,h:1", "empty host"),
    ],
)
def test_bad_urls_are_refused_without_their_password(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        RedisPersistence(url)
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"timeout": 0}, ValueError, "timeout"),
        ({"retry_after": -1}, ValueError, "retry_after"),
        ({"namespace": "a{b}"}, ValueError, "namespace"),
        ({"namespace": ""}, ValueError, "namespace"),
        ({"tracking": "yes"}, TypeError, "tracking"),
        ({"wait_for_replicas": -1}, ValueError, "wait_for_replicas"),
        ({"wait_for_replicas": True}, ValueError, "wait_for_replicas"),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        RedisPersistence("redis://127.0.0.1:6379/0", **options)


async def test_clients_it_cannot_use_are_refused() -> None:
    import redis

    with pytest.raises(TypeError, match="asyncio"):
        RedisPersistence(redis.Redis())  # type: ignore[arg-type]
    decoding = redis_asyncio.Redis(decode_responses=True)
    with pytest.raises(ValueError, match="decode_responses"):
        RedisPersistence(decoding)
    await decoding.aclose()
    cluster = redis_asyncio.RedisCluster(host="127.0.0.1", port=7000)
    with pytest.raises(ValueError, match="wait_for_replicas"):
        RedisPersistence(cluster, wait_for_replicas=1)
    with pytest.raises(ValueError, match="wait_for_replicas"):
        RedisPersistence("redis+cluster://127.0.0.1:7000", wait_for_replicas=1)


@pytest.fixture
def tls_redis(tmp_path: Path, tls_files: TLSFiles) -> Iterator[tuple[RedisServer, str]]:
    """A redis-server speaking TLS (and plain TCP for the fixture's health check); its
    rediss:// URL trusting the test CA."""
    tls = tls_files
    tls_port = _free_port()
    server = RedisServer(
        _binary(),
        _free_port(),
        tmp_path,
        options=[
            "--tls-port",
            str(tls_port),
            "--tls-cert-file",
            str(tls.certfile),
            "--tls-key-file",
            str(tls.keyfile),
            "--tls-ca-cert-file",
            str(tls.ca_file),
            "--tls-auth-clients",
            "no",
        ],
    )
    server.start()
    try:
        yield server, f"rediss://127.0.0.1:{tls_port}/0?ssl_ca_certs={tls.ca_file}"
    finally:
        server.stop()


async def test_tls_with_tracking(tls_redis: tuple[RedisServer, str], workers: Workers) -> None:
    server, url = tls_redis
    emulator = AuthorityEmulator()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator)) as http:
        a, b = workers.app(url, http), workers.app(url, http)
        assert "access_token" in await a.acquire_token_for_client([SCOPE])
        assert (await b.acquire_token_for_client([SCOPE]))["token_source"] == "cache"
        await workers.stores[1].sync_invalidations()
        await b.acquire_token_for_client([SCOPE])
        before = command_stats(server.port).get("evalsha", 0)
        for _ in range(20):
            assert (await b.acquire_token_for_client([SCOPE]))["token_source"] == "cache"
        assert command_stats(server.port).get("evalsha", 0) == before  # tracking over TLS
    for store in workers.stores:
        await store.aclose()  # closing twice (again after the test) is harmless
    clients = command(server.port, "CLIENT", "LIST").decode()
    assert "cmd=subscribe" not in clients  # the subscribers were closed with the stores


async def test_an_acl_user_with_the_guides_commands_is_enough(
    redis: RedisServer, workers: Workers, caplog: pytest.LogCaptureFixture
) -> None:
    command(redis.port, "ACL", "SETUSER", "guide", *GUIDE_ACL)
    url = f"redis://guide:guide-password@127.0.0.1:{redis.port}/0"
    try:
        emulator = AuthorityEmulator(latency=0.2)  # every worker misses at once
        with caplog.at_level(logging.WARNING, logger="msal_async"):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator)) as http:
                apps = [workers.app(url, http, wait_for_replicas=0) for _ in range(4)]
                results: list[dict[str, Any]] = []

                async def one(app: Any) -> None:
                    results.append(await app.acquire_token_for_client([SCOPE]))

                async with anyio.create_task_group() as tg:
                    for app in apps:
                        tg.start_soon(one, app)
                store = workers.stores[0]
                await store.sync_invalidations()
                await apps[0].acquire_token_for_client([SCOPE])
                before = command_stats(redis.port).get("evalsha", 0)
                assert (await apps[0].acquire_token_for_client([SCOPE]))["token_source"] == "cache"
                assert command_stats(redis.port).get("evalsha", 0) == before  # tracked
        assert all("access_token" in r for r in results)
        assert emulator.counts["client_credentials"] == 1  # fleet lock, woken waiters
        assert "unavailable" not in caplog.text
        assert "refused" not in caplog.text
        denied = command(redis.port, "ACL", "LOG")
        assert not [e for e in denied if b"guide" in str(e).encode()], denied
    finally:
        command(redis.port, "ACL", "DELUSER", "guide")
        command(redis.port, "ACL", "LOG", "RESET")
