"""The async persistence protocol and PersistedTokenCache, the cache that uses one.

Before a lookup the cache asks its persistence for one partition *if it changed* (a version,
mtime or size check); after a change it hands the partition's changes to the persistence, which
applies them to the stored document atomically (under a lock, or optimistically) so that
concurrent writers never lose each other's tokens. A persistence that can lock across machines
(Redis) also gives a fleet-wide single flight. No failure of the persistence escapes: it is
logged and the cache keeps working from memory.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping
from functools import partial
from typing import Any, TypeVar

import anyio

from msal_async._cache.codec import UndecryptableDocument, apply_changes
from msal_async._cache.partitions import SHARED, partition_key
from msal_async._cache.protocol import (
    AsyncPersistence,
    Loaded,
    StoreUnavailable,
    UnsupportedBackendError,
)
from msal_async._cache.token_cache import SerializableTokenCache
from msal_async._singleflight import SingleFlight

from .. import _log

__all__ = [
    "AsyncPersistence",
    "Loaded",
    "PersistedTokenCache",
    "UnsupportedBackendError",
    "partition_key",
]

logger = logging.getLogger(_log.PERSISTENCE)
T = TypeVar("T")

#: Seconds a fleet lock's take or release round trip may run shielded from cancellation: a
#: lock taken whose reply a cancellation dropped would otherwise stay until it expires.
LOCK_CALL_TIMEOUT = 2.0

#: The partition the current task last looked up (set by PersistedTokenCache.load), so that a
#: fleet single flight knows what to reload after waiting for another worker.
_current_partition: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "msal_async_current_partition", default=None
)


class PersistedTokenCache(SerializableTokenCache):
    """A token cache kept in an :class:`AsyncPersistence` (msal-extensions' shape, async).

    Pass it as ``token_cache=`` to an app. Before every lookup the app loads the partition it
    needs if it changed elsewhere; after every change it saves that partition's changes. Saving
    merges with what other processes stored meanwhile, so no token is lost. Failures of the
    store are logged and never raised: acquisitions go on from memory and the authority.

    Args:
        persistence: A :class:`~msal_async.FilePersistence`, :class:`~msal_async.RedisPersistence`
            or your own :class:`AsyncPersistence`.
        max_entries: The in-memory entry limit (see :class:`~msal_async.TokenCache`); None keeps
            everything.
        lock_wait: Seconds a worker waits for another worker's in-flight fetch of the same token
            (fleet single flight, when the persistence supports locks) before fetching itself.

    Raises:
        TypeError: ``persistence`` is not an :class:`AsyncPersistence`.
    """

    def __init__(
        self,
        persistence: AsyncPersistence,
        *,
        max_entries: int | None = None,
        lock_wait: float = 10.0,
    ) -> None:
        if not isinstance(persistence, AsyncPersistence):
            msg = (
                "persistence must be an msal_async.AsyncPersistence (FilePersistence, "
                f"RedisPersistence), got {type(persistence).__name__}"
            )
            raise TypeError(msg)
        super().__init__(max_entries=max_entries)
        self.persistence = persistence
        self.lock_wait = float(lock_wait)
        self._versions: dict[str | None, Hashable] = {}
        self._generation: dict[str | None, int] = {}
        self._loads: SingleFlight[None] = SingleFlight()
        self._save_locks: dict[str | None, anyio.Lock] = {}
        self.record_changes()

    def _slot(self, partition: str) -> str | None:
        return partition if self.persistence.partitioned else None

    async def load(self, partition: str, *, fresh: bool = False) -> None:
        """Bring one partition up to date with the persistence, if it changed (never raises).

        Args:
            partition: The partition key (see :func:`partition_key`).
            fresh: Do not join a load already under way (it may predate a write we must see).

        Raises:
            UnsupportedBackendError: The persistence cannot run under this async library.
        """
        _current_partition.set(partition)
        slot = self._slot(partition)
        if self.evicted_partitions:
            for gone in list(self.evicted_partitions):
                self.evicted_partitions.discard(gone)
                self._versions.pop(self._slot(gone), None)
        if fresh:
            await self._load(slot)
        elif self.persistence.unchanged(slot, self._versions.get(slot)):
            return
        else:
            await self._loads.run(slot, partial(self._load, slot))

    async def _load(self, slot: str | None) -> None:
        generation = self._generation.get(slot, 0)
        try:
            loaded = await self.persistence.load(slot, self._versions.get(slot))
        except UnsupportedBackendError:
            raise
        except StoreUnavailable:
            return  # its outage was logged when it began
        except UndecryptableDocument:
            return  # logged by the store when first seen; never replace memory with nothing
        except Exception:
            logger.warning(
                "Could not load the token cache partition from %s; serving from memory",
                type(self.persistence).__name__,
                exc_info=True,
            )
            return
        if loaded is None or self._generation.get(slot, 0) != generation:
            return  # unchanged, or a save of ours landed meanwhile (it holds newer data)
        known = self._versions.get(slot)
        if loaded.absent and known is not None and self.persistence.restores_lost_partitions:
            marked = self.mark_partition_changed(slot)
            logger.warning(
                "A token cache partition vanished from %s (restarted or evicted, or its value "
                "was damaged); writing back the %d entries held in memory",
                type(self.persistence).__name__,
                marked,
            )
            self._versions.pop(slot, None)
            if slot is not None:
                await self.save(slot)
            return
        self.replace_partition(slot, loaded.document)
        self._versions[slot] = loaded.version

    async def save(self, partition: str) -> None:
        """Store one partition's changes, merged with what is stored (never raises).

        Other partitions with unsaved changes are saved too: a flow may only learn the account
        (the partition of its user tokens) from the response it just cached.

        Args:
            partition: The partition key.

        Raises:
            UnsupportedBackendError: The persistence cannot run under this async library.
        """
        await self._save_one(self._slot(partition))
        if self.persistence.partitioned:
            for other in self.dirty_partitions():
                if other != partition:
                    await self._save_one(other)

    async def _save_one(self, slot: str | None) -> None:
        lock = self._save_locks.get(slot)
        if lock is None:
            lock = self._save_locks[slot] = anyio.Lock()
        async with lock:
            changes = self.take_changes(slot)
            if not changes:
                return
            shared = self.export_partition(SHARED) if slot is not None else None
            update = partial(apply_changes, changes=changes, shared=shared)
            try:
                with anyio.CancelScope(shield=True):  # a cancelled save must not drop changes
                    loaded = await self.persistence.save(slot, update)
            except UnsupportedBackendError:
                self.give_back_changes(slot, changes)
                raise
            except StoreUnavailable:
                self.give_back_changes(slot, changes)
                return
            except UndecryptableDocument:
                self.give_back_changes(slot, changes)
                logger.debug("Not saved: the stored partition cannot be decrypted (logged)")
                return
            except Exception:
                self.give_back_changes(slot, changes)
                logger.exception(
                    "Could not save the token cache to %s; the tokens stay in memory and the "
                    "next save retries",
                    type(self.persistence).__name__,
                )
                return
            self._generation[slot] = self._generation.get(slot, 0) + 1
            self.replace_partition(slot, loaded.document)
            self._versions[slot] = loaded.version
        if not lock.locked() and not lock.statistics().tasks_waiting:
            self._save_locks.pop(slot, None)  # one lock per busy partition, not per partition

    async def fleet_flight(self, key: Hashable, call: Callable[[], Awaitable[T]]) -> T:
        """Run ``call`` while holding a fleet-wide lock for ``key`` (best effort).

        Another worker holding the lock is fetching the same token: wait for it (at most
        ``lock_wait`` seconds), reload the partition, then run ``call``, which finds the token
        in the cache. If the store is down, or the holder vanished, ``call`` runs anyway.

        Args:
            key: What identifies the request (hashed into the lock's name).
            call: The fetch; it must look in the cache first.

        Returns:
            What ``call`` returned.
        """
        if not self.persistence.supports_locks:
            return await call()
        name = hashlib.sha256(repr(key).encode()).hexdigest()[:40]
        partition = _current_partition.get()
        deadline = time.monotonic() + self.lock_wait
        while True:
            try:
                token = await self._lock_call(partial(self.persistence.try_lock, name))
            except UnsupportedBackendError:
                raise
            except Exception as exc:  # noqa: BLE001 (any store failure: fetch without the lock)
                if not isinstance(exc, StoreUnavailable):
                    logger.warning("Fleet lock unavailable (%s); fetching without it", exc)
                return await call()
            if token is not None:
                try:
                    if partition is not None:  # another worker may have stored it just now
                        await self.load(partition, fresh=True)
                    return await call()
                finally:
                    await self._unlock(name, token)
            remaining = deadline - time.monotonic()
            released = remaining > 0 and await self.persistence.wait_unlocked(name, remaining)
            if not released:
                logger.warning(
                    "Another worker's fetch did not finish within %.1f s; fetching here",
                    self.lock_wait,
                )
                return await call()

    async def _unlock(self, name: str, token: str) -> None:
        try:
            await self._lock_call(partial(self.persistence.unlock, name, token))
        except Exception:
            logger.warning("Could not release a fleet lock (it expires on its own)", exc_info=True)

    @staticmethod
    async def _lock_call(call: Callable[[], Awaitable[T]]) -> T:
        """Run one lock round trip shielded from cancellation, for at most LOCK_CALL_TIMEOUT.

        A cancellation that arrives meanwhile is delivered at the caller's next checkpoint,
        after the lock's token is known (and so can be released).
        """
        with anyio.CancelScope(shield=True) as scope:
            scope.deadline = anyio.current_time() + LOCK_CALL_TIMEOUT
            return await call()
        msg = f"the fleet lock did not answer within {LOCK_CALL_TIMEOUT} s"
        raise TimeoutError(msg)


def unsaved(cache: PersistedTokenCache) -> Mapping[tuple[str, str], Any]:
    """The changes a cache has not saved yet (for diagnostics and tests).

    Args:
        cache: The cache.

    Returns:
        ``{(section, key): entry or None}`` over all partitions.
    """
    with cache._lock:
        return cache._book.pending(None)
