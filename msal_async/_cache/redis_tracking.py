"""Server-assisted client-side caching for RedisPersistence, and fleet lock waiters woken by Redis.

One subscriber connection per Redis primary (``redis_subscriber``) runs ``CLIENT TRACKING ON REDIRECT <its own id> BCAST
PREFIX <namespace>:`` and subscribes to ``__redis__:invalidate`` and the store's unlock channel.
Redis then tells it about every change of a key under the prefix, by any client: a write, a
deletion, an expiry, an eviction, a migration to another node, a flush (all keys). The
subscriber speaks RESP2: redis-py's asyncio client drops RESP3 invalidation pushes.

**When a partition counts as unchanged** (and a hit makes no round trip): a load or save of its
key began while the subscriber of the primary that owns the key was subscribed and tracking,
no invalidation of the key and no loss of any subscriber happened before that load or save
ended, and the subscriber has heard from Redis within ``LEASE`` seconds (it pings every
``PING_EVERY`` seconds when idle: see ``redis_subscriber``). Redis sends an invalidation before it answers the next
command, and one connection delivers in order; so once an invalidation has been read here, no
hit serves what it invalidated. A lost subscriber (a killed connection, a failover, a silent
network) drops every validation at once, and hits ask Redis until it is subscribed again.

Waiters for a fleet lock are woken by the unlock script's ``PUBLISH`` and by the lock key's
invalidation (a release, or an expiry after its holder died); a lost subscriber wakes them all
so they look again. Layer 2: redis-py is passed in, never imported here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anyio

from msal_async import _log
from msal_async._cache.redis_subscriber import (
    INVALIDATE,
    PING_EVERY,
    Subscriber,
    subscriber_factory,
)

__all__ = ["Ticket", "Tracking", "Waiter"]

logger = logging.getLogger(_log.PERSISTENCE)

_BARRIER = b"barrier:"
_MAX_KEYS = 65536


class _KeyState:
    __slots__ = ("gen", "inflight", "node", "version")

    def __init__(self) -> None:
        self.gen = 0  # invalidations seen
        self.inflight = 0  # loads and saves under way
        self.version: Any = None  # the version validated, if any
        self.node: Subscriber | None = None  # the subscriber that vouches for it


@dataclass(frozen=True)
class Ticket:
    """What a load or save saw when it began: validates its result only if nothing changed."""

    epoch: int
    gen: int
    node: Subscriber | None


class Waiter:
    """One task waiting for a fleet lock's release."""

    def __init__(self, live: bool) -> None:
        #: True when a subscriber was listening when the waiter was registered.
        self.live = live
        self._event = anyio.Event()

    def wake(self) -> None:
        """The lock was (maybe) released: end the current :meth:`wait`."""
        self._event.set()

    async def wait(self, seconds: float) -> bool:
        """Wait until woken, at most ``seconds``; True when woken."""
        with anyio.move_on_after(seconds):
            await self._event.wait()
        woken = self._event.is_set()
        if woken:
            self._event = anyio.Event()
        return woken


class Tracking:
    """The subscribers of one RedisPersistence and what they vouch for.

    Args:
        client: The redis-py asyncio client (``Redis`` or ``RedisCluster``).
        cluster: True for a ``RedisCluster`` (one subscriber per primary).
        prefix: The key prefix tracked.
        channel: The channel the unlock script publishes to.
        timeout: Seconds a handshake or a PING may take.
        retry_after: The longest pause between reconnection attempts.
    """

    def __init__(
        self,
        client: Any,
        *,
        cluster: bool,
        prefix: str,
        channel: str,
        timeout: float,
        retry_after: float,
    ) -> None:
        self.client = client
        self.cluster = cluster
        self.prefix = prefix
        self.channel = channel
        self.timeout = timeout
        self.retry_after = retry_after
        self._epoch = 0
        self._keys: dict[str, _KeyState] = {}
        self._waiters: dict[str, set[Waiter]] = {}
        self._nodes: dict[str, Subscriber] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._topology: asyncio.Event | None = None
        self._subscribed = asyncio.Event()  # set (and replaced) whenever a subscriber is ready
        self._refused = False

    # --- the hit path -----------------------------------------------------------------------

    def unchanged(self, key: str, version: Any) -> bool:
        """True when ``key`` is certainly still at ``version`` (no round trip needed)."""
        state = self._keys.get(key)
        if state is None or state.node is None or state.version != version:
            return False
        return state.node.live(time.monotonic())

    # --- loads and saves --------------------------------------------------------------------

    def begin(self, key: str) -> Ticket:
        """Note a load or save of ``key`` about to read Redis (starts the subscribers)."""
        self._ensure()
        state = self._keys.get(key)
        if state is None:
            state = self._keys[key] = _KeyState()
            if len(self._keys) > _MAX_KEYS:
                self._trim()
        state.inflight += 1
        node = self._owner(key)
        if node is not None and not (node.tracking and node.live(time.monotonic())):
            node = None
        return Ticket(self._epoch, state.gen, node)

    def end(self, key: str, ticket: Ticket, version: Any) -> None:
        """Note the load or save ended at ``version`` (None: it failed)."""
        state = self._keys.get(key)
        if state is None:
            return
        state.inflight -= 1
        node = ticket.node
        if (
            version is not None
            and node is not None
            and ticket.epoch == self._epoch
            and ticket.gen == state.gen
            and node.live(time.monotonic())
            and self._owner(key) is node
        ):
            state.version, state.node = version, node
        elif version != state.version:
            state.version = state.node = None
        if state.inflight == 0 and state.node is None:
            del self._keys[key]

    def _trim(self) -> None:
        idle = [k for k, s in self._keys.items() if not s.inflight]
        for key in idle[: len(idle) // 4 + 1]:
            del self._keys[key]

    # --- fleet lock waiters -----------------------------------------------------------------

    @contextlib.contextmanager
    def waiter(self, key: str) -> Iterator[Waiter]:
        """Register a waiter for the release of the lock ``key`` (before looking at it)."""
        self._ensure()
        now = time.monotonic()
        waiter = Waiter(any(node.live(now) for node in self._nodes.values()))
        self._waiters.setdefault(key, set()).add(waiter)
        try:
            yield waiter
        finally:
            waiters = self._waiters.get(key)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[key]

    # --- messages from the subscribers ------------------------------------------------------

    def message(self, node: Subscriber, channel: bytes, data: Any) -> None:
        """Apply an invalidation, wake waiters, or note a barrier's return."""
        if channel == INVALIDATE:
            if data is None:  # FLUSHDB / FLUSHALL: every key
                self._forget_all()
                return
            for raw in data:
                self._invalidate(raw.decode("utf-8", "replace"))
        elif isinstance(data, bytes):
            if data.startswith(_BARRIER):
                event = node.barriers.pop(data, None)
                if event is not None:
                    event.set()
            else:
                self._wake(data.decode("utf-8", "replace"))

    def _invalidate(self, key: str) -> None:
        state = self._keys.get(key)
        if state is not None:
            state.gen += 1
            state.version = state.node = None
            if not state.inflight:
                del self._keys[key]
        self._wake(key)

    def _wake(self, key: str) -> None:
        for waiter in self._waiters.get(key, ()):
            waiter.wake()

    def lost(self, node: Subscriber) -> None:
        """A subscriber lost its connection: nothing it vouched for counts any more."""
        self._forget_all()
        for event in node.barriers.values():
            event.set()
        node.barriers.clear()

    def _forget_all(self) -> None:
        self._epoch += 1
        for key, state in list(self._keys.items()):
            state.gen += 1
            state.version = state.node = None
            if not state.inflight:
                del self._keys[key]
        for waiters in self._waiters.values():
            for waiter in waiters:
                waiter.wake()

    def subscribed(self) -> None:
        """A subscriber is ready: wake :meth:`sync` calls waiting for one."""
        self._subscribed.set()
        self._subscribed = asyncio.Event()

    def refused(self, exc: BaseException) -> None:
        """Redis refused CLIENT TRACKING (logged once): hits keep asking Redis."""
        if not self._refused:
            self._refused = True
            logger.warning(
                "Redis refused CLIENT TRACKING (%s); every cache hit asks Redis (grant "
                "+client|tracking to this user, see the deployment guide)",
                exc,
            )

    # --- subscribers ------------------------------------------------------------------------

    def _ensure(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        for node in self._nodes.values():  # a previous event loop's subscribers died with it
            node.closed = True
        self._nodes.clear()
        self._forget_all()
        self._loop = loop
        self._subscribed = asyncio.Event()
        if self.cluster:
            self._topology = asyncio.Event()
            self._watcher = loop.create_task(self._watch_topology(self._topology))
        else:
            pool = self.client.connection_pool
            make = subscriber_factory(pool.connection_class, pool.connection_kwargs)
            node = Subscriber(self, "redis", make, None)
            self._nodes["redis"] = node
            node.start()

    def _owner(self, key: str) -> Subscriber | None:
        if not self.cluster:
            return self._nodes.get("redis")
        try:
            name = self.client.get_node_from_key(key).name
        except Exception:  # noqa: BLE001 (no slot map yet, or the slot is not covered)
            return None
        node = self._nodes.get(name)
        if node is None and self._topology is not None:
            self._topology.set()  # a primary without a subscriber: start one
        return node

    async def _watch_topology(self, changed: asyncio.Event) -> None:
        """Keep one subscriber per primary of the cluster, as the slot map changes."""
        while True:
            try:
                with anyio.fail_after(self.timeout):
                    await self.client.initialize()  # once; redis-py refreshes it on MOVED
                self._follow(self.client.get_primaries())
            except Exception as exc:  # noqa: BLE001 (the cluster is unreachable: try again)
                logger.debug("Redis Cluster topology unavailable (%s)", exc)
            with anyio.move_on_after(PING_EVERY):
                await changed.wait()
            changed.clear()

    def _follow(self, cluster_nodes: list[Any]) -> None:
        primaries = {node.name: node for node in cluster_nodes}
        if not primaries:
            return
        for name in list(self._nodes):
            if name not in primaries:
                gone = self._nodes.pop(name)
                gone.stop()
                self.lost(gone)
        for name, cluster_node in primaries.items():
            if name not in self._nodes:
                make = subscriber_factory(
                    cluster_node.connection_class, cluster_node.connection_kwargs
                )
                self._nodes[name] = node = Subscriber(self, name, make, cluster_node)
                node.start()

    async def sync(self) -> None:
        """Return once every invalidation Redis sent before this call was applied here.

        Waits for the subscribers to be live, publishes a marker through each one's primary
        and waits for it to come back (one connection delivers in order). Bounded by the
        timeout.
        """
        self._ensure()
        with anyio.move_on_after(self.timeout):
            while not self.live():  # just started, or reconnecting
                await self._subscribed.wait()
            now = time.monotonic()
            pending = []
            for node in list(self._nodes.values()):
                if not node.live(now):
                    continue
                marker = _BARRIER + node.name.encode() + b":" + secrets.token_hex(8).encode()
                event = node.barriers[marker] = anyio.Event()
                pending.append(event)
                if node.target is None:
                    await self.client.publish(self.channel, marker)
                else:
                    await self.client.execute_command(
                        "PUBLISH", self.channel, marker, target_nodes=node.target
                    )
            for event in pending:
                await event.wait()

    def live(self) -> bool:
        """True when every subscriber is subscribed and was heard from recently."""
        now = time.monotonic()
        return bool(self._nodes) and all(node.live(now) for node in self._nodes.values())

    async def aclose(self) -> None:
        """Stop the subscribers (on the loop they run on)."""
        tasks = [node.task for node in self._nodes.values() if node.task is not None]
        for node in self._nodes.values():
            node.stop()
        if self._watcher is not None:
            self._watcher.cancel()
            tasks.append(self._watcher)
        self._nodes.clear()
        self._forget_all()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio (trio): nothing was started here
            running = None
        if self._loop is running:
            for task in tasks:
                # A cancellation can be swallowed once by a timeout that fires at the same
                # moment (redis-py's reads run under one): cancel again until the task ends.
                while not task.done():
                    task.cancel()
                    await asyncio.wait({task}, timeout=0.1)
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    task.result()
        self._loop = self._watcher = None
