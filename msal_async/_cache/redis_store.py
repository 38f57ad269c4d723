"""RedisPersistence: the token cache in Redis (one server, a Cluster or Sentinel), shared by a fleet.

One hash per partition (see ``redis_layout``) holds ``v``, a random version that every write
replaces (compared for equality only: a counter would restart at 1 when a key is lost, and a
worker that knew the old 1 would take new data for unchanged), and ``d``, the partition's
msal-format document, optionally AES-GCM encrypted; it expires with its longest-lived token.

A read sends the version it knows and gets the document back only if it changed (one round
trip, one small reply when nothing changed). A write reads the partition, applies the changes
and stores the result with a compare-and-set script that refuses if another worker wrote in
between (then it reads again), so no worker's token is lost. With ``tracking`` a hit makes no
round trip at all while Redis has not invalidated its partition (``redis_tracking``), and fleet
lock waiters are woken by the release. A Redis that fails or does not answer is marked down and
probed in the background (``redis_breaker``); the cache serves from memory meanwhile.

A damaged value (not a cache document, not even a hash) is one partition's problem, not an
outage: it is logged, read as lost (the cache writes back what it holds) and overwritten by the
next save. A value this worker cannot decrypt (no key, or another key) is never overwritten:
other workers can read it.

redis-py's asyncio client is used, so this back end runs under asyncio only (not trio).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import TYPE_CHECKING, Any

import anyio

from msal_async._cache.codec import (
    Document,
    check_key,
    encode,
    is_plaintext,
    longest_lifetime,
)
from msal_async._cache.protocol import (
    AsyncPersistence,
    Loaded,
    UnsupportedBackendError,
)
from msal_async._cache.redis_breaker import Breaker
from msal_async._cache.redis_clients import check_client, check_options, client_kind, connect
from msal_async._cache.redis_layout import (
    ABSENT,
    DAMAGED,
    LOAD,
    READ_ALL,
    SAVE,
    UNLOCK,
    cache_key,
    cache_pattern,
    lock_key,
    lock_name,
    text,
    unlock_channel,
)
from msal_async._cache.redis_tracking import Tracking
from msal_async._cache.redis_values import Values
from msal_async._errors import StoreNotReplicated

from .. import _log

if TYPE_CHECKING:
    from redis.asyncio import Redis, RedisCluster

__all__ = ["RedisPersistence"]

logger = logging.getLogger(_log.PERSISTENCE)

_MAX_WRITE_ATTEMPTS = 50
_DAY = 86400
#: Seconds between looks at a held lock while a subscriber would wake us on its release.
_FALLBACK_POLL = 0.5


class RedisPersistence(AsyncPersistence):
    """Keep the token cache in Redis, one key per partition, shared by a fleet of workers.

    Works with one Redis server, a Redis Cluster and a Sentinel-managed primary. With
    ``tracking`` (the default) a cache hit makes no round trip while Redis has not invalidated
    its partition (server-assisted client-side caching), and workers waiting for another
    worker's fetch are woken when it finishes. When Redis is unreachable or does not answer
    within ``timeout``, acquisitions go on from memory and the authority: the outage is logged
    once, nothing waits on Redis any more, and a PING probes it every ``retry_after`` seconds.
    Works under asyncio only (redis-py's asyncio client); using it under trio raises
    :class:`UnsupportedBackendError`. See docs/deployment.md.

    Args:
        redis: A ``redis.asyncio.Redis`` client (one server, or ``Sentinel.master_for(...)``)
            or ``redis.asyncio.RedisCluster`` (not closed by us), or a URL (we make and close
            the client): ``redis://host:6379/0``, ``rediss://`` (TLS), ``unix:///path``,
            ``redis+cluster://host:port,host:port`` (a Cluster's startup nodes),
            ``redis+sentinel://host:26379,host:26379/<service name>[/db]``, and
            ``rediss+cluster://`` / ``rediss+sentinel://``; query parameters are redis-py's.
        namespace: The prefix of every key (no braces: they would be the hash tag).
        encryption_key: Encrypt each partition with AES-GCM under this 16/24/32-byte key.
        refresh_token_ttl: Seconds a partition holding a refresh token (or an account) lives
            after its last write; default 90 days, the refresh token's lifetime.
        lock_ttl: Seconds the fleet lock of one fetch lives if its holder dies.
        retry_after: Seconds between probes of a Redis marked down.
        timeout: Seconds one Redis operation may take before Redis is marked down.
        tracking: Keep one subscriber connection per Redis primary for client-side caching
            (``CLIENT TRACKING``) and woken lock waiters. False: every hit asks Redis and
            waiters poll.
        wait_for_replicas: Acknowledge a save only once this many replicas hold it (``WAIT``,
            up to ``timeout``); a save they do not acknowledge stays in the worker's memory and
            is saved again with the next change. Not available with a Redis Cluster client.

    Attributes:
        kind: What ``redis`` talks to: ``"single"``, ``"cluster"`` or ``"sentinel"``.

    Raises:
        TypeError: ``redis`` is neither an asyncio client nor a URL, or an option's type.
        ValueError: A bad URL, a non-positive duration, a bad namespace, key or replica count,
            a client that decodes responses, or ``wait_for_replicas`` with a Cluster.
        ImportError: redis-py is not installed.
    """

    partitioned = True
    supports_locks = True
    restores_lost_partitions = True

    def __init__(
        self,
        redis: Redis | RedisCluster | str,
        *,
        namespace: str = "msal_async",
        encryption_key: bytes | None = None,
        refresh_token_ttl: int = 90 * _DAY,
        lock_ttl: float = 10.0,
        retry_after: float = 1.0,
        timeout: float = 2.0,
        tracking: bool = True,
        wait_for_replicas: int = 0,
    ) -> None:
        check_options(
            namespace=namespace,
            durations={
                "refresh_token_ttl": refresh_token_ttl,
                "lock_ttl": lock_ttl,
                "retry_after": retry_after,
                "timeout": timeout,
            },
            tracking=tracking,
            wait_for_replicas=wait_for_replicas,
        )
        self._key = check_key(encryption_key)
        self._closers: list[Callable[[], Awaitable[Any]]] = []
        if isinstance(redis, str):
            made = connect(redis, connect_timeout=timeout, socket_timeout=timeout + 1)
            self._client: Any = made.client
            self._closers, self.kind = made.closers, made.kind
        else:
            self._client, self.kind = check_client(redis), client_kind(redis)
        if wait_for_replicas and self.kind == "cluster":
            msg = (
                "wait_for_replicas is not available with a Redis Cluster client; use the "
                "cluster's min-replicas-to-write setting instead"
            )
            raise ValueError(msg)
        self.namespace = namespace
        self.refresh_token_ttl = int(refresh_token_ttl)
        self.lock_ttl = float(lock_ttl)
        self.retry_after = float(retry_after)
        self.timeout = float(timeout)
        self.wait_for_replicas = int(wait_for_replicas)
        self._channel = unlock_channel(namespace)
        self._tracking: Tracking | None = None
        if tracking:
            self._tracking = Tracking(
                self._client,
                cluster=self.kind == "cluster",
                prefix=f"{namespace}:",
                channel=self._channel,
                timeout=self.timeout,
                retry_after=self.retry_after,
            )
        self._breaker = Breaker(
            timeout=self.timeout, retry_after=self.retry_after, ping=self._client.ping
        )
        self._lagging = False
        self._scripts: dict[str, Any] = {}
        self._names: dict[str | None, str] = {}
        self._values = Values(self._key)

    # --- keys -------------------------------------------------------------------------------

    def key_of(self, partition: str | None) -> str:
        """The Redis key of one partition.

        Args:
            partition: The partition key.

        Returns:
            ``"{namespace}:cache:{<partition>}"`` (braces included: the Cluster hash tag; a
            partition that holds a brace is replaced by a digest of it).
        """
        name = self._names.get(partition)
        if name is None:
            if len(self._names) > 10000:
                self._names.clear()
            name = self._names[partition] = cache_key(self.namespace, partition)
        return name

    def lock_name(self, name: str, partition: str | None) -> str:
        """The name of the lock for work ``name`` writing ``partition``: in the partition's slot.

        Args:
            name: What identifies the work.
            partition: The partition it writes, or None.

        Returns:
            ``"{<partition>}:<name>"`` (the partition as the Cluster hash tag), or ``name``.
        """
        return lock_name(name, partition)

    def lock_key(self, name: str) -> str:
        """The Redis key of one fleet lock.

        Args:
            name: The lock's name (see :meth:`lock_name`).

        Returns:
            ``"{namespace}:lock:<name>"``, with the name as its own hash tag unless it starts
            with one.
        """
        return lock_key(self.namespace, name)

    # --- failures ---------------------------------------------------------------------------

    def _check_loop(self) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            msg = (
                "RedisPersistence runs under asyncio only (redis-py's asyncio client), and no "
                "asyncio event loop is running (trio?); use FilePersistence under trio"
            )
            raise UnsupportedBackendError(msg) from None

    def _script(self, source: str) -> Any:
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = self._client.register_script(source)
        return script

    # --- AsyncPersistence -------------------------------------------------------------------

    def unchanged(self, partition: str | None, known: Hashable | None) -> bool:
        """Tell, without a round trip, that a partition is still at version ``known``.

        True only with ``tracking``, while the subscriber of the partition's primary vouches
        that Redis sent no invalidation of it since this worker read or wrote ``known``.

        Args:
            partition: The partition key.
            known: The version last seen.

        Returns:
            True when certainly unchanged.
        """
        tracking = self._tracking
        if tracking is None or known is None or self._breaker.down:
            return False
        return tracking.unchanged(self.key_of(partition), known)

    async def load(self, partition: str | None, known: Hashable | None) -> Loaded | None:
        """Fetch one partition if its version is not ``known`` (one round trip).

        Args:
            partition: The partition key.
            known: The version last seen.

        Returns:
            None when unchanged, else the stored document.

        Raises:
            UnsupportedBackendError: Not running under asyncio.
            UndecryptableDocument: This worker's key does not authenticate the stored value.
            StoreUnavailable: Redis failed a moment ago.
            Exception: Redis failed.
        """
        self._check_loop()
        key = self.key_of(partition)
        ticket = self._tracking.begin(key) if self._tracking is not None else None
        seen: str | None = None
        try:
            script = self._script(LOAD)
            reply = await self._breaker.call(lambda: script(keys=[key], args=[str(known or "")]))
            if reply == -1:
                seen = DAMAGED
                self._values.not_a_hash(key)
                return None if known == DAMAGED else Loaded(DAMAGED, {}, absent=True)
            if not reply:
                seen = ABSENT
                return None if known == ABSENT else Loaded(ABSENT, {}, absent=True)
            version = text(reply[0])
            if len(reply) == 1:
                seen = version
                return None
            document = self._values.decode(key, version, reply[1])
            seen = version
            if document is None:  # damaged: lost data, which the cache writes back
                return Loaded(version, {}, absent=True)
            return Loaded(version, document)
        finally:
            if ticket is not None and self._tracking is not None:
                self._tracking.end(key, ticket, seen)

    async def save(self, partition: str | None, update: Callable[[Document], Document]) -> Loaded:
        """Apply ``update`` to the stored partition (compare-and-set), retrying on conflicts.

        Args:
            partition: The partition key.
            update: Computes the new document from the stored one.

        Returns:
            What is stored now.

        Raises:
            UnsupportedBackendError: Not running under asyncio.
            UndecryptableDocument: This worker's key does not authenticate the stored value
                (it is left untouched).
            StoreUnavailable: Redis failed a moment ago, or fewer replicas than
                ``wait_for_replicas`` acknowledged the write.
            Exception: Redis failed, or too many concurrent writers.
        """
        self._check_loop()
        key = self.key_of(partition)
        ticket = self._tracking.begin(key) if self._tracking is not None else None
        seen: str | None = None
        try:
            loaded = await self._save(key, update)
            seen = str(loaded.version)
            return loaded
        finally:
            if ticket is not None and self._tracking is not None:
                self._tracking.end(key, ticket, seen)

    async def _save(self, key: str, update: Callable[[Document], Document]) -> Loaded:
        for attempt in range(_MAX_WRITE_ATTEMPTS):
            state, blob = await self._read_raw(key)
            stored = {} if blob is None else self._values.decode(key, state, blob)
            document = update(stored or {})  # a damaged value is overwritten
            written = await self._store(key, state, document)
            if written is not None:
                return written
            await _backoff(attempt)
        msg = f"gave up writing a cache partition after {_MAX_WRITE_ATTEMPTS} conflicting writes"
        raise RuntimeError(msg)

    async def _read_raw(self, key: str) -> tuple[str, bytes | None]:
        """``(state, stored bytes)``: the state the compare-and-set expects (the version, ``""``
        when absent, ``"*"`` when not a hash) and the value (None when absent)."""
        read = self._script(LOAD)
        reply = await self._breaker.call(lambda: read(keys=[key], args=[READ_ALL]))
        if reply == -1:
            self._values.not_a_hash(key)
            return "*", b""
        if not reply:
            return "", None
        return text(reply[0]), reply[1] if len(reply) > 1 else b""

    async def _store(self, key: str, state: str, document: Document) -> Loaded | None:
        """Write ``document`` if the partition is still in ``state``; None when it is not."""
        version = secrets.token_hex(8)
        # An emptied partition stays (with a short TTL): a missing key means lost data,
        # which workers restore, while an empty one means deleted tokens.
        ttl = longest_lifetime(
            document, now=int(time.time()), refresh_token_ttl=self.refresh_token_ttl
        )
        if await self._write(key, [state, version, encode(document, self._key), ttl]):
            return Loaded(version, document)
        return None

    async def _write(self, key: str, args: list[Any]) -> bool:
        """Compare-and-set one partition; with ``wait_for_replicas``, then WAIT on the same
        connection (WAIT counts the replicas holding that connection's writes)."""
        script = self._script(SAVE)
        if not self.wait_for_replicas:
            return bool(await self._breaker.call(lambda: script(keys=[key], args=args)))

        async def write_and_wait() -> tuple[bool, int]:
            async with self._client.client() as single:
                if not await script(keys=[key], args=args, client=single):
                    return False, 0
                wait_ms = int(self.timeout * 1000)
                return True, int(
                    await single.execute_command("WAIT", self.wait_for_replicas, wait_ms)
                )

        written, replicas = await self._breaker.call(write_and_wait, limit=2 * self.timeout)
        if written and replicas < self.wait_for_replicas:
            if not self._lagging:
                self._lagging = True
                logger.warning(
                    "A token cache write reached %d of the %d replicas required within %.1f s; "
                    "its changes stay in memory and are saved again with the next change",
                    replicas,
                    self.wait_for_replicas,
                    self.timeout,
                )
            msg = f"the write reached {replicas} of {self.wait_for_replicas} replicas"
            raise StoreNotReplicated(msg)
        if written and self._lagging:
            self._lagging = False
            logger.warning("Token cache writes reach the required replicas again")
        return written

    async def encrypt_plaintext_cache(self) -> list[str]:
        """Encrypt, once, the plain-JSON partitions stored before ``encryption_key`` was set.

        A persistence with a key refuses plain values (anyone who can write the Redis key could
        have planted them) and never overwrites them; this explicit one-shot migration reads
        every plain partition under ``namespace`` (``SCAN``; every primary of a Cluster) and
        rewrites it encrypted under the key, with the same compare-and-set as a save, so a
        concurrent write is never lost. Run it once, from one worker, when turning encryption
        on for an existing Redis cache. Values already encrypted (under any key) are left alone.

        Returns:
            The Redis keys that were encrypted.

        Raises:
            ValueError: This persistence has no ``encryption_key``.
            UnsupportedBackendError: Not running under asyncio.
            StoreUnavailable: Redis failed a moment ago.
            Exception: Redis failed.
        """
        if self._key is None:
            msg = "encrypt_plaintext_cache() needs a RedisPersistence with an encryption_key"
            raise ValueError(msg)
        self._check_loop()
        pattern = cache_pattern(self.namespace)
        keys = [text(k) async for k in self._client.scan_iter(match=pattern, count=1000)]
        encrypted = []
        for key in sorted(set(keys)):
            if await self._encrypt_one(key):
                logger.warning("Encrypted the plain token cache partition %s", key)
                encrypted.append(key)
        return encrypted

    async def _encrypt_one(self, key: str) -> bool:
        ticket = self._tracking.begin(key) if self._tracking is not None else None
        seen: str | None = None
        try:
            for attempt in range(_MAX_WRITE_ATTEMPTS):
                state, blob = await self._read_raw(key)
                if blob is None or not is_plaintext(blob):
                    return False  # absent, or encrypted already
                stored = self._values.decode(key, state, blob, allow_plaintext=True)
                written = await self._store(key, state, stored or {})  # damaged: emptied
                if written is not None:
                    seen = str(written.version)
                    return True
                await _backoff(attempt)
            msg = f"gave up encrypting {key} after {_MAX_WRITE_ATTEMPTS} conflicting writes"
            raise RuntimeError(msg)
        finally:
            if ticket is not None and self._tracking is not None:
                self._tracking.end(key, ticket, seen)

    async def try_lock(self, name: str) -> str | None:
        """Take a fleet lock for ``lock_ttl`` seconds if free (SET NX PX).

        Args:
            name: The lock's name.

        Returns:
            Our token, or None when another worker holds it.

        Raises:
            StoreUnavailable: Redis failed a moment ago.
            Exception: Redis failed.
        """
        self._check_loop()
        key, token = self.lock_key(name), secrets.token_hex(16)
        ttl = int(self.lock_ttl * 1000)
        taken = await self._breaker.call(lambda: self._client.set(key, token, nx=True, px=ttl))
        return token if taken else None

    async def unlock(self, name: str, token: str) -> None:
        """Release our lock (compare-and-delete: an expired lock retaken by another stays), and
        wake the workers waiting for it.

        Args:
            name: The lock's name.
            token: What :meth:`try_lock` returned.

        Raises:
            StoreUnavailable: Redis failed a moment ago.
            Exception: Redis failed.
        """
        self._check_loop()
        key, script = self.lock_key(name), self._script(UNLOCK)
        await self._breaker.call(lambda: script(keys=[key], args=[token, self._channel]))

    async def wait_unlocked(self, name: str, wait: float) -> bool:
        """Wait until the lock is released, for ``wait`` seconds at most.

        With ``tracking``, the release wakes this worker (the unlock's publish, or the lock
        key's invalidation when it expires); it looks again every half second meanwhile, in
        case the holder died. Without, or while the subscriber is down, it polls (backing off
        from 2 ms to 50 ms).

        Args:
            name: The lock's name.
            wait: Seconds to wait at most.

        Returns:
            True when released (or Redis failed: then waiting is pointless), False on timeout.
        """
        self._check_loop()
        key = self.lock_key(name)
        deadline = time.monotonic() + wait
        delay = 0.002
        tracking = self._tracking
        waiting = tracking.waiter(key) if tracking is not None else contextlib.nullcontext()
        with waiting as waiter:
            while True:
                woken = waiter is not None and tracking is not None and tracking.live()
                try:
                    if not await self._breaker.call(lambda: self._client.exists(key)):
                        return True
                except Exception:  # noqa: BLE001 (logged; the caller fetches itself)
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                if woken and waiter is not None:
                    await waiter.wait(min(remaining, _FALLBACK_POLL))
                else:
                    await anyio.sleep(min(remaining, delay))
                    delay = min(delay * 2, 0.05)

    async def sync_invalidations(self) -> None:
        """Return once every invalidation Redis sent before this call has been applied here.

        A write another worker finished before this call is then seen by this worker's next
        lookup. Waits (up to ``timeout``) for the subscribers to connect first, so the next
        lookup can validate its partition. Returns at once without ``tracking`` (every lookup
        asks Redis then).

        Raises:
            UnsupportedBackendError: Not running under asyncio.
        """
        self._check_loop()
        if self._tracking is not None:
            await self._tracking.sync()

    async def aclose(self) -> None:
        """Stop the subscribers, and close the client if we made it from a URL."""
        await self._breaker.aclose()
        if self._tracking is not None:
            await self._tracking.aclose()
        for close in self._closers:
            await close()


async def _backoff(attempt: int) -> None:
    """A short random pause before writing again after a conflicting write."""
    await anyio.sleep(min(0.001 * 2**attempt, 0.05) * secrets.randbelow(100) / 100)
