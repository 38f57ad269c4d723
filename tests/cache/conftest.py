"""Fixtures for the persistent caches: real redis-server processes on loopback (one server, a
3-primary Cluster, a primary with a replica and three Sentinels), and an HTTPS emulator."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from msal_async import ConfidentialClientApplication, PersistedTokenCache, RedisPersistence
from msal_async._cache.protocol import StoreUnavailable
from msal_async.testing import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_TENANT_ID,
)


@dataclass
class RedisServer:
    """A redis-server process this test session started (kill, freeze and restart it at will)."""

    binary: str
    port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None
    #: More command-line options (a Cluster node's, a replica's, TLS...).
    options: list[str] = field(default_factory=list)

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
                *self.options,
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

    def freeze(self) -> None:
        """Stop the process without killing it (SIGSTOP): connections stay open, nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """Let a frozen server run again (SIGCONT)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def flush(self) -> None:
        """Empty the database between tests."""
        command(self.port, "FLUSHALL")


def command(port: int, *args: str) -> Any:
    """Send one command to the Redis server (or Sentinel) on 127.0.0.1:port; its parsed reply."""
    import redis

    with redis.Redis(port=port, socket_timeout=10) as client:
        return client.execute_command(*args)


def info(port: int, section: str) -> dict[str, Any]:
    """``INFO <section>`` of the Redis server on 127.0.0.1:port."""
    import redis

    with redis.Redis(port=port, socket_timeout=10) as client:
        return dict(client.info(section))


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


def _binary(name: str = "redis-server") -> str:
    """The path of a Redis binary; skips when missing, unless MSAL_ASYNC_CI=1 (then it fails)."""
    binary = shutil.which(name)
    if binary is None:
        reason = f"{name} is not installed (apt-get install redis-server) - Redis tests skip"
        if os.environ.get("MSAL_ASYNC_CI") == "1":
            pytest.fail(reason + "; MSAL_ASYNC_CI=1 makes this a failure")
        pytest.skip(reason)
    return binary


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """Debian's redis-server on a free 127.0.0.1 port with a temporary folder.

    Skips when the binary is missing, unless MSAL_ASYNC_CI=1 (then it fails: CI installs it).
    """
    server = RedisServer(_binary(), _free_port(), tmp_path_factory.mktemp("redis"))
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
class ClusterServers:
    """Three Redis Cluster primaries on loopback (no replicas), made with ``redis-cli --cluster``."""

    nodes: list[RedisServer]
    cli: str

    @property
    def url(self) -> str:
        """A ``redis+cluster://`` URL listing every node as a startup node."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def run_cli(self, *args: str) -> str:
        """Run ``redis-cli`` and return its output (fails the test when it fails)."""
        done = subprocess.run(
            [self.cli, *args], capture_output=True, text=True, timeout=60, check=False
        )
        if done.returncode != 0:
            pytest.fail(f"redis-cli {' '.join(args)} failed: {done.stdout} {done.stderr}")
        return done.stdout

    def node_id(self, node: RedisServer) -> str:
        """The cluster id of one node."""
        return self.run_cli("-p", str(node.port), "cluster", "myid").strip()

    def owner(self, slot: int) -> RedisServer:
        """The node that serves ``slot`` now."""
        for line in self.run_cli("-p", str(self.nodes[0].port), "cluster", "nodes").splitlines():
            fields = line.split()
            if "master" not in fields[2]:
                continue
            for part in fields[8:]:
                low, _, high = part.partition("-")
                if not low.isdigit():
                    continue
                if int(low) <= slot <= int(high or low):
                    port = int(fields[1].split("@")[0].rsplit(":", 1)[1])
                    return next(n for n in self.nodes if n.port == port)
        pytest.fail(f"no node serves slot {slot}")

    def first_slot(self, node: RedisServer) -> int:
        """The lowest slot a node serves."""
        for line in self.run_cli("-p", str(node.port), "cluster", "nodes").splitlines():
            if "myself" in line.split()[2]:
                return int(line.split()[8].partition("-")[0])
        pytest.fail("the node does not know itself")

    def reshard(self, source: RedisServer, target: RedisServer, slots: int) -> None:
        """Move the ``slots`` lowest slots of ``source`` (with their keys) to ``target``."""
        self.run_cli(
            "--cluster",
            "reshard",
            f"127.0.0.1:{source.port}",
            "--cluster-from",
            self.node_id(source),
            "--cluster-to",
            self.node_id(target),
            "--cluster-slots",
            str(slots),
            "--cluster-yes",
        )
        self.wait_ok()

    def wait_ok(self) -> None:
        """Wait until every node reports ``cluster_state:ok`` and agrees on the slots."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            states = [command(n.port, "CLUSTER", "INFO") for n in self.nodes]
            if all(b"cluster_state:ok" in state for state in states):
                check = subprocess.run(
                    [self.cli, "--cluster", "check", f"127.0.0.1:{self.nodes[0].port}"],
                    capture_output=True,
                    text=True,
                    timeout=30,
                    check=False,
                )
                if "[OK] All nodes agree about slots configuration." in check.stdout:
                    return
            time.sleep(0.05)
        pytest.fail("the Redis Cluster did not become ready")

    def restart(self, node: RedisServer) -> None:
        """Kill a node and start it again (its data is lost: no persistence)."""
        node.stop()
        node.start()
        self.wait_ok()

    def commands(self) -> dict[str, int]:
        """``INFO commandstats`` summed over the nodes: ``{command: calls}``."""
        total: dict[str, int] = {}
        for node in self.nodes:
            for name, calls in command_stats(node.port).items():
                total[name] = total.get(name, 0) + calls
        return total


def command_stats(port: int) -> dict[str, int]:
    """``INFO commandstats`` of one server: ``{command: calls}``."""
    return {
        name.removeprefix("cmdstat_"): int(stats["calls"])
        for name, stats in info(port, "commandstats").items()
    }


@pytest.fixture(scope="module")
def cluster_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterServers]:
    """A 3-primary Redis Cluster on loopback ports for a module (about 2 s to start)."""
    binary, cli = _binary(), _binary("redis-cli")
    nodes = []
    for i in range(3):
        folder = tmp_path_factory.mktemp(f"cluster-node{i}")
        options = [
            "--cluster-enabled",
            "yes",
            "--cluster-port",
            str(_free_port()),
            "--cluster-config-file",
            str(folder / "nodes.conf"),
            "--cluster-node-timeout",
            "2000",
        ]
        nodes.append(RedisServer(binary, _free_port(), folder, options=options))
    cluster = ClusterServers(nodes, cli)
    try:
        for node in nodes:
            node.start()
        cluster.run_cli(
            "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in nodes), "--cluster-yes"
        )
        cluster.wait_ok()
        yield cluster
    finally:
        for node in nodes:
            node.stop()


@pytest.fixture
def redis_cluster(cluster_servers: ClusterServers) -> ClusterServers:
    """The module's Redis Cluster, healthy and empty (a test may reshard or restart nodes)."""
    for node in cluster_servers.nodes:
        if node.process is None or node.process.poll() is not None:
            node.start()
    cluster_servers.wait_ok()
    for node in cluster_servers.nodes:
        node.flush()
    return cluster_servers


@dataclass
class SentinelServers:
    """A primary, two replicas and three Sentinels watching them, on loopback."""

    primary: RedisServer
    replicas: list[RedisServer]
    sentinels: list[subprocess.Popen[bytes]]
    sentinel_ports: list[int]
    service: str = "cache"

    @property
    def url(self) -> str:
        """The ``redis+sentinel://`` URL of the service."""
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{self.service}"

    def primary_port(self) -> int:
        """The port of the primary the Sentinels name now."""
        _, port = command(self.sentinel_ports[0], "SENTINEL GET-MASTER-ADDR-BY-NAME", self.service)
        return int(port)

    def server(self, port: int) -> RedisServer:
        """The server on ``port``."""
        return next(s for s in (self.primary, *self.replicas) if s.port == port)

    def wait_ready(self) -> None:
        """Wait until both replicas are in sync and every Sentinel knows the others and them."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ready = _online_replicas(self.primary.port) == len(self.replicas)
            for port in self.sentinel_ports:
                master = command(port, "SENTINEL MASTER", self.service)
                ready = ready and master.get("num-other-sentinels") == len(self.sentinel_ports) - 1
                ready = ready and master.get("num-slaves") == len(self.replicas)
            if ready:
                return
            time.sleep(0.05)
        pytest.fail("the Sentinels did not become ready")

    def wait_failover(self, old: int) -> int:
        """Wait until the Sentinels promoted another server than port ``old`` and a replica
        follows it; its port."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            port = self.primary_port()
            if port != old and _online_replicas(port) >= 1:
                return port
            time.sleep(0.05)
        pytest.fail("the Sentinels did not fail over")


def _online_replicas(port: int) -> int:
    try:
        replication = info(port, "replication")
    except OSError:
        return 0
    if replication.get("role") != "master":
        return 0
    return sum(
        1
        for name, value in replication.items()
        if name.startswith("slave") and isinstance(value, dict) and value.get("state") == "online"
    )


@pytest.fixture
def redis_sentinel(tmp_path: Path) -> Iterator[SentinelServers]:
    """A fresh primary + 2 replicas + 3 Sentinels (quorum 2, primary down after 400 ms without
    an answer): about 2.5 s to start (Sentinels discover each other every 2 s)."""
    binary = _binary()
    base = ["--repl-diskless-sync-delay", "0"]
    primary = RedisServer(binary, _free_port(), tmp_path, options=base)
    replicas = []
    for i in range(2):
        folder = tmp_path / f"replica{i}"
        folder.mkdir()
        options = [*base, "--replicaof", "127.0.0.1", str(primary.port)]
        replicas.append(RedisServer(binary, _free_port(), folder, options=options))
    sentinels: list[subprocess.Popen[bytes]] = []
    ports = [_free_port() for _ in range(3)]
    servers = SentinelServers(primary, replicas, sentinels, ports)
    try:
        primary.start()
        for replica in replicas:
            replica.start()
        for i, port in enumerate(ports):
            config = tmp_path / f"sentinel{i}.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {tmp_path}\n"
                f"sentinel monitor {servers.service} 127.0.0.1 {primary.port} 2\n"
                f"sentinel down-after-milliseconds {servers.service} 400\n"
                f"sentinel failover-timeout {servers.service} 3000\n"
            )
            sentinels.append(
                subprocess.Popen(
                    [binary, str(config), "--sentinel"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        servers.wait_ready()
        yield servers
    finally:
        for process in sentinels:
            process.kill()
            process.wait(10)
        for server in (primary, *replicas):
            server.stop()


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


class Workers:
    """Fleet workers: each its own app, memory and Redis connection (closed by the fixture)."""

    def __init__(self) -> None:
        self.stores: list[RedisPersistence] = []

    def store(self, redis: Any, **options: Any) -> RedisPersistence:
        """A RedisPersistence (from a URL or a client) closed at the end of the test."""
        store = RedisPersistence(redis, **options)
        self.stores.append(store)
        return store

    def app(
        self,
        store: RedisPersistence | str,
        http: httpx.AsyncClient,
        client_id: str = DEMO_CLIENT_ID,
        secret: str = DEMO_CLIENT_SECRET,
        **options: Any,
    ) -> ConfidentialClientApplication:
        """A worker's app on ``store`` (a RedisPersistence, or a URL to make one from)."""
        if isinstance(store, str):
            store = self.store(store, **options)
        return ConfidentialClientApplication(
            client_id,
            client_credential=secret,
            authority=f"https://login.microsoftonline.com/{DEMO_TENANT_ID}",
            http_client=http,
            token_cache=PersistedTokenCache(store),
        )


@pytest.fixture
async def workers() -> AsyncIterator[Workers]:
    """Make fleet workers; their stores are closed after the test."""
    made = Workers()
    yield made
    for store in made.stores:
        await store.aclose()


async def until_available(store: Any) -> None:
    """Wait (at most 10 s) until a RedisPersistence (or an app using one) serves a load again:
    once marked down, a probe in the background must find Redis answering first."""
    if isinstance(store, ConfidentialClientApplication):
        assert isinstance(store.token_cache, PersistedTokenCache)
        store = store.token_cache.persistence
    with anyio.fail_after(10):
        while not await _answers(store):  # noqa: ASYNC110 (nothing to wait on: a probe in the background)
            await anyio.sleep(0.02)


async def _answers(store: RedisPersistence) -> bool:
    try:
        await store.load("msal-async-probe", None)
    except StoreUnavailable:
        return False
    return True
