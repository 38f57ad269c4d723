"""RedisPersistence: one Redis hash per cache partition, optimistic writes, a fleet lock.

Each partition is the hash ``{namespace}:cache:{partition}`` with fields ``v`` (a random version
that every write replaces, compared for equality only: a counter would restart at 1 when a key is
lost, and a worker that knew the old 1 would take new data for unchanged) and ``d`` (the
partition's msal-format document, optionally AES-GCM encrypted). A read sends the version it knows and gets the document back only if it changed
(one round trip, one small reply when nothing changed). A write WATCHes the key, applies the
changes to what is stored and commits with MULTI/EXEC, retrying when another worker wrote in
between, so no worker's token is lost. The key expires with its longest-lived token.

A damaged value (not a cache document) is one partition's problem, not an outage: it is logged,
read as lost (the cache writes back what it holds) and overwritten by the next save. A value this
worker cannot decrypt (no key, or another key) is never overwritten: other workers can read it.

redis-py's asyncio client is used, so this back end runs under asyncio only (not trio).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

import anyio

from msal_async._cache.codec import (
    CorruptDocument,
    Document,
    UndecryptableDocument,
    check_key,
    decode,
    encode,
    longest_lifetime,
)
from msal_async._cache.protocol import (
    AsyncPersistence,
    Loaded,
    StoreUnavailable,
    UnsupportedBackendError,
)

from .. import _log

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisPersistence"]

logger = logging.getLogger(_log.PERSISTENCE)

# KEYS[1] = partition hash; ARGV[1] = known version. Returns {} when absent, {v} when unchanged,
# {v, d} when changed.
_LOAD = """
local v = redis.call('HGET', KEYS[1], 'v')
if not v then return {} end
if v == ARGV[1] then return {v} end
return {v, redis.call('HGET', KEYS[1], 'd')}
"""
# KEYS[1] = lock; ARGV[1] = our token. Delete only if still ours.
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_MAX_WRITE_ATTEMPTS = 50
_DAY = 86400
#: The version of a partition that is not stored.
_ABSENT = "absent"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _import_redis() -> Any:
    try:
        import redis.asyncio as redis_asyncio
    except ImportError as exc:
        msg = "RedisPersistence needs redis-py: pip install 'msal-async[redis]'"
        raise ImportError(msg) from exc
    return redis_asyncio


class RedisPersistence(AsyncPersistence):
    """Keep the token cache in Redis, one key per partition, shared by a fleet of workers.

    Works under asyncio only (redis-py's asyncio client); using it under trio raises
    :class:`UnsupportedBackendError`. When Redis is unreachable, acquisitions go on from memory
    and the authority; the outage is logged once, and Redis is retried after ``retry_after``
    seconds.

    Args:
        redis: A ``redis.asyncio.Redis`` client (not closed by us), or a URL such as
            ``"redis://localhost:6379/0"`` (we make and close the client).
        namespace: The prefix of every key.
        encryption_key: Encrypt each partition with AES-GCM under this 16/24/32-byte key.
        refresh_token_ttl: Seconds a partition holding a refresh token (or an account) lives
            after its last write; default 90 days, the refresh token's lifetime.
        lock_ttl: Seconds the fleet lock of one fetch lives if its holder dies.
        retry_after: Seconds to leave Redis alone after a failure.

    Raises:
        TypeError: ``redis`` is neither a client nor a URL.
        ValueError: A non-positive duration or a bad key.
        ImportError: A URL was given and redis-py is not installed.
    """

    partitioned = True
    supports_locks = True
    restores_lost_partitions = True

    def __init__(
        self,
        redis: Redis | str,
        *,
        namespace: str = "msal_async",
        encryption_key: bytes | None = None,
        refresh_token_ttl: int = 90 * _DAY,
        lock_ttl: float = 10.0,
        retry_after: float = 1.0,
    ) -> None:
        for name, value in (
            ("refresh_token_ttl", refresh_token_ttl),
            ("lock_ttl", lock_ttl),
            ("retry_after", retry_after),
        ):
            if not value > 0:
                msg = f"{name} must be a positive number of seconds, got {value!r}"
                raise ValueError(msg)
        self._key = check_key(encryption_key)
        if isinstance(redis, str):
            self._client: Any = _import_redis().from_url(
                redis, socket_connect_timeout=2, socket_timeout=5
            )
            self._owns_client = True
        elif hasattr(redis, "evalsha") and hasattr(redis, "pipeline"):
            self._client, self._owns_client = redis, False
        else:
            msg = f"redis must be a redis.asyncio.Redis client or a URL, got {type(redis).__name__}"
            raise TypeError(msg)
        self.namespace = namespace
        self.refresh_token_ttl = int(refresh_token_ttl)
        self.lock_ttl = float(lock_ttl)
        self.retry_after = float(retry_after)
        self._down_until = 0.0
        self._probing = False
        self._scripts: dict[str, Any] = {}
        self._reported: set[tuple[str, str]] = set()  # (key, version) of bad values logged

    # --- plumbing --------------------------------------------------------------------------

    def _check(self) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            msg = (
                "RedisPersistence runs under asyncio only (redis-py's asyncio client), and no "
                "asyncio event loop is running (trio?); use FilePersistence under trio"
            )
            raise UnsupportedBackendError(msg) from None
        if self._down_until:
            if time.monotonic() < self._down_until:
                msg = "Redis failed a moment ago; serving from memory until it is retried"
                raise StoreUnavailable(msg)
            self._down_until = 0.0
            self._probing = True

    def _ok(self) -> None:
        if self._probing:
            self._probing = False
            logger.warning("Redis is reachable again; the token cache uses it again")

    def _failed(self, exc: BaseException) -> None:
        self._probing = False
        if not self._down_until:
            logger.warning(
                "Redis is unavailable (%s: %s); serving tokens from memory and the authority",
                type(exc).__name__,
                exc,
            )
        self._down_until = time.monotonic() + self.retry_after

    def _decode(self, key: str, version: str, blob: bytes | None) -> Document | None:
        """The stored document; None (logged once) for a damaged value.

        Raises:
            UndecryptableDocument: This worker's key does not authenticate the value (logged
                once per version).
        """
        try:
            return decode(blob or b"", self._key)
        except UndecryptableDocument as exc:
            self._report(key, version, "cannot be decrypted by this worker", exc)
            raise
        except CorruptDocument as exc:
            self._report(key, version, "is damaged", exc)
            return None

    def _report(self, key: str, version: str, what: str, exc: Exception) -> None:
        if (key, version) in self._reported:
            return
        if len(self._reported) > 1000:
            self._reported.clear()
        self._reported.add((key, version))
        if isinstance(exc, UndecryptableDocument):
            logger.error(
                "The token cache partition %s %s (%s): its encryption_key is missing or differs "
                "from the writer's. It is left untouched; tokens are served from memory and not "
                "saved to it until the keys match",
                key,
                what,
                exc,
            )
        else:
            logger.error(
                "The token cache partition %s %s (%s); reading it as empty, the next save "
                "overwrites it",
                key,
                what,
                exc,
            )

    def _script(self, source: str) -> Any:
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = self._client.register_script(source)
        return script

    def key_of(self, partition: str | None) -> str:
        """The Redis key of one partition.

        Args:
            partition: The partition key.

        Returns:
            ``"{namespace}:cache:{partition}"``.
        """
        return f"{self.namespace}:cache:{partition or ''}"

    # --- AsyncPersistence ----------------------------------------------------------------------

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
            Exception: Redis failed.
        """
        self._check()
        key = self.key_of(partition)
        try:
            reply = await self._script(_LOAD)(keys=[key], args=[known or ""])
        except Exception as exc:
            self._failed(exc)
            raise
        self._ok()
        if not reply:
            return None if known == _ABSENT else Loaded(_ABSENT, {}, absent=True)
        version = _text(reply[0])
        if len(reply) == 1:
            return None
        document = self._decode(key, version, reply[1])
        if document is None:  # damaged: lost data, which the cache writes back
            return Loaded(version, {}, absent=True)
        return Loaded(version, document)

    async def save(self, partition: str | None, update: Callable[[Document], Document]) -> Loaded:
        """Apply ``update`` to the stored partition with WATCH/MULTI, retrying on conflicts.

        Args:
            partition: The partition key.
            update: Computes the new document from the stored one.

        Returns:
            What is stored now.

        Raises:
            UnsupportedBackendError: Not running under asyncio.
            UndecryptableDocument: This worker's key does not authenticate the stored value
                (it is left untouched).
            Exception: Redis failed, or too many concurrent writers.
        """
        self._check()
        try:
            loaded = await self._save(self.key_of(partition), update)
        except UndecryptableDocument:
            self._ok()  # Redis answered: one partition's problem, not an outage
            raise
        except Exception as exc:
            self._failed(exc)
            raise
        self._ok()
        return loaded

    async def _save(self, key: str, update: Callable[[Document], Document]) -> Loaded:
        watch_error = _import_redis().WatchError
        async with self._client.pipeline(transaction=True) as pipe:
            for attempt in range(_MAX_WRITE_ATTEMPTS):
                try:
                    await pipe.watch(key)
                    version, blob = await pipe.hmget(key, ["v", "d"])
                    stored = self._decode(key, _text(version or b""), blob)
                    document = update(stored or {})  # a damaged value is overwritten
                    new_version = secrets.token_hex(8)
                    pipe.multi()
                    # An emptied partition stays (with a short TTL): a missing key means lost
                    # data, which workers restore, while an empty one means deleted tokens.
                    ttl = longest_lifetime(
                        document, now=int(time.time()), refresh_token_ttl=self.refresh_token_ttl
                    )
                    pipe.hset(key, mapping={"v": new_version, "d": encode(document, self._key)})
                    pipe.expire(key, ttl)
                    await pipe.execute()
                except watch_error:
                    await anyio.sleep(min(0.001 * 2**attempt, 0.05) * secrets.randbelow(100) / 100)
                    continue
                return Loaded(new_version, document)
        msg = f"gave up writing a cache partition after {_MAX_WRITE_ATTEMPTS} conflicting writes"
        raise RuntimeError(msg)

    async def try_lock(self, name: str) -> str | None:
        """Take ``{namespace}:lock:{name}`` for ``lock_ttl`` seconds if free (SET NX PX).

        Args:
            name: The lock's name.

        Returns:
            Our token, or None when another worker holds it.

        Raises:
            Exception: Redis failed.
        """
        self._check()
        token = secrets.token_hex(16)
        try:
            taken = await self._client.set(
                f"{self.namespace}:lock:{name}", token, nx=True, px=int(self.lock_ttl * 1000)
            )
        except Exception as exc:
            self._failed(exc)
            raise
        return token if taken else None

    async def unlock(self, name: str, token: str) -> None:
        """Release our lock (compare-and-delete, so an expired lock retaken by another stays).

        Args:
            name: The lock's name.
            token: What :meth:`try_lock` returned.
        """
        self._check()
        await self._script(_UNLOCK)(keys=[f"{self.namespace}:lock:{name}"], args=[token])

    async def wait_unlocked(self, name: str, wait: float) -> bool:
        """Poll (backing off from 2 ms to 50 ms) until the lock is gone, for ``wait`` seconds.

        Args:
            name: The lock's name.
            wait: Seconds to wait at most.

        Returns:
            True when released (or Redis failed: then waiting is pointless), False on timeout.
        """
        deadline = time.monotonic() + wait
        delay = 0.002
        while time.monotonic() < deadline:
            try:
                if not await self._client.exists(f"{self.namespace}:lock:{name}"):
                    return True
            except Exception as exc:  # noqa: BLE001 (logged; the caller fetches itself)
                self._failed(exc)
                return True
            await anyio.sleep(delay)
            delay = min(delay * 2, 0.05)
        return False

    async def aclose(self) -> None:
        """Close the client if we made it from a URL."""
        if self._owns_client:
            await self._client.aclose()
