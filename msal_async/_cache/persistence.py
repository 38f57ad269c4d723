"""The async persistence protocol and PersistedTokenCache, the cache that uses one.

Before a lookup the cache asks its persistence for one partition *if it changed* (a version,
mtime or size check); after a change it hands the partition's changes to the persistence, which
applies them to the stored document atomically (under a lock, or optimistically) so that
concurrent writers never lose each other's tokens. A persistence that can lock across machines
(Redis) also gives a fleet-wide single flight. No failure of the persistence escapes: it is
logged and the cache keeps working from memory.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping
from functools import partial
from typing import Any, TypeVar

import anyio
import anyio.lowlevel

from msal_async._cache.codec import UndecryptableDocument, apply_changes
from msal_async._cache.partitions import SHARED, partition_key
from msal_async._cache.protocol import AsyncPersistence, Loaded
from msal_async._cache.token_cache import SerializableTokenCache
from msal_async._errors import StoreBusy, StoreUnavailable, UnsupportedBackendError
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
#: Seconds before changes a busy or unavailable store could not take are offered again.
SAVE_RETRY_DELAY = 1.0


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

    _session_io = True

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
        self._loads = SingleFlight()
        #: Per (event loop, partition) while fresh loads run: the number of the next one (not
        #: begun yet: callers join it) and the end of the one under way (the next begins after
        #: it, so a burst shares one read).
        self._fresh_next: dict[tuple[object, str | None], int] = {}
        self._fresh_done: dict[tuple[object, str | None], anyio.Event] = {}
        #: Changes a busy or unavailable store refused are waiting; offered again after
        #: ``_retry_at`` (the hot path is off meanwhile, so the next acquisition offers them).
        self._unsaved = False
        self._retry_at = 0.0
        self._record_changes()

    def _slot(self, partition: str) -> str | None:
        return partition if self.persistence.partitioned else None

    # --- the session hooks ------------------------------------------------------------------------

    async def _open(
        self,
        partition: str | None,
        fleet_key: Hashable | None,
        satisfied: Callable[[], bool] | None = None,
    ) -> object:
        if partition is None:
            return None
        if fleet_key is None or not self.persistence.supports_locks:
            await self._load_partition(partition)
            return None
        return await self._take_fleet_lock(partition, fleet_key, satisfied)

    async def _close(self, written: set[str], held: object) -> None:
        try:
            if written or (self._unsaved and time.monotonic() >= self._retry_at):
                await self._save_partitions(written)
        finally:
            if isinstance(held, tuple):
                await self._unlock(*held)

    def _current(self, partition: str) -> bool:
        if self._evicted_partitions or self._unsaved:
            return False
        slot = self._slot(partition)
        return self.persistence.unchanged(slot, self._versions.get(slot))

    # --- public: load and save around direct use of the cache (add, modify, remove_*) ----------

    async def load(self, partition: str) -> None:
        """Bring one partition up to date with the store, if it changed (never raises).

        Apps do this before every lookup; call it yourself only around direct use of the
        cache's msal methods (``search``...).

        Args:
            partition: The partition key: the home account id for user tokens,
                ``{client_id}_{tenant}_AppTokenCache`` for app tokens.

        Raises:
            UnsupportedBackendError: The persistence cannot run under this async library.
        """
        await self._load_partition(partition)

    async def save(self, partition: str) -> None:
        """Store one partition's changes (and any other unsaved ones), merged (never raises).

        Apps do this after every change; call it yourself after direct use of the cache's msal
        methods (``add``, ``modify``, ``remove_*``).

        Args:
            partition: The partition key (see :meth:`load`).

        Raises:
            UnsupportedBackendError: The persistence cannot run under this async library.
        """
        await self._save_partitions({partition})

    # --- loading ----------------------------------------------------------------------------------

    async def _load_partition(self, partition: str, *, fresh: bool = False) -> None:
        """Bring one partition up to date with the persistence, if it changed (never raises).

        Args:
            partition: The partition key (see :func:`partition_key`).
            fresh: Do not join a load already under way (it may predate a write we must see).

        Raises:
            UnsupportedBackendError: The persistence cannot run under this async library.
        """
        slot = self._slot(partition)
        if self._evicted_partitions:
            for gone in list(self._evicted_partitions):
                self._evicted_partitions.discard(gone)
                self._versions.pop(self._slot(gone), None)
        if fresh:
            where = (anyio.lowlevel.current_token(), slot)
            number = self._fresh_next.get(where, 0)
            await self._loads.run(("fresh", slot, number), partial(self._fresh, where, number))
        elif self.persistence.unchanged(slot, self._versions.get(slot)):
            return
        else:
            await self._loads.run(("load", slot), partial(self._load, slot))

    async def _fresh(self, where: tuple[object, str | None], number: int) -> None:
        """A load that begins after every caller that joined it asked: callers that arrive
        while the previous fresh load of the partition runs share the next one (one read per
        burst, not one per caller, when many fleet locks are won or released at once)."""
        previous = self._fresh_done.get(where)
        self._fresh_done[where] = done = anyio.Event()
        try:
            if previous is not None:
                await previous.wait()
            self._fresh_next[where] = number + 1  # the read begins: later callers need another
            await self._load(where[1])
        finally:
            done.set()
            if self._fresh_done.get(where) is done:  # none queued behind it: forget the slot
                del self._fresh_done[where]
                self._fresh_next.pop(where, None)

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
            marked = self._mark_partition_changed(slot)
            logger.warning(
                "A token cache partition vanished from %s (restarted or evicted, or its value "
                "was damaged); writing back the %d entries held in memory",
                type(self.persistence).__name__,
                marked,
            )
            self._versions.pop(slot, None)
            if slot is not None:
                await self._save_partitions({slot})
            return
        self._replace_partition(slot, loaded.document)
        self._versions[slot] = loaded.version

    # --- saving -----------------------------------------------------------------------------------

    async def _save_partitions(self, partitions: set[str]) -> None:
        """Store the changes of ``partitions``, merged with what is stored (never raises).

        Other partitions with unsaved changes are saved too (an earlier save may have failed).

        Raises:
            UnsupportedBackendError: The persistence cannot run under this async library.
        """
        if not self.persistence.partitioned:
            await self._save_one(None)
            if self._unsaved and not self._pending(None):
                self._unsaved = False
            return
        for slot in sorted(partitions):
            await self._save_one(slot)
        for other in self._dirty_partitions():
            if other not in partitions:
                await self._save_one(other)
        if self._unsaved and not self._dirty_partitions():
            self._unsaved = False

    async def _save_one(self, slot: str | None) -> None:
        # One save per partition at a time in this event loop: a second one would only merge
        # the same changes again (the store itself serializes writers across processes).
        await self._loads.run(("save", slot), partial(self._save_now, slot))

    async def _save_now(self, slot: str | None) -> None:
        changes = self._take_changes(slot)
        if not changes:
            return
        shared = self._export_partition(SHARED) if slot is not None else None
        update = partial(apply_changes, changes=changes, shared=shared)
        try:
            loaded = await self.persistence.save(slot, update)
        except UnsupportedBackendError:
            self._give_back_changes(slot, changes)
            raise
        except (StoreBusy, StoreUnavailable) as exc:
            # Busy (a stuck lock holder) or down: both were logged by the store when they began.
            # Memory and the authority go on serving; the changes are offered again later.
            self._give_back_changes(slot, changes)
            self._unsaved = True
            self._retry_at = time.monotonic() + SAVE_RETRY_DELAY
            logger.debug("Not saved yet (%s); retried later", type(exc).__name__)
            return
        except UndecryptableDocument:
            self._give_back_changes(slot, changes)
            logger.debug("Not saved: the stored partition cannot be decrypted (logged)")
            return
        except Exception:
            self._give_back_changes(slot, changes)
            logger.exception(
                "Could not save the token cache to %s; the tokens stay in memory and the "
                "next save retries",
                type(self.persistence).__name__,
            )
            return
        self._generation[slot] = self._generation.get(slot, 0) + 1
        self._replace_partition(slot, loaded.document)
        self._versions[slot] = loaded.version
        if self._pending(slot):
            await self._save_now(slot)  # changes made while this save ran

    # --- the fleet lock -----------------------------------------------------------------------

    async def _take_fleet_lock(
        self, partition: str, key: Hashable, satisfied: Callable[[], bool] | None
    ) -> object:
        """Take the fleet lock of one request, or wait for the worker that holds it.

        Another worker holding the lock is sending the same request: wait for it (at most
        ``lock_wait`` seconds) and reload the partition, where its token now is. When
        ``satisfied`` says the cache now answers, the session goes on without the lock (the
        flow finds the token and sends nothing); only a worker that still misses contends for
        the lock again, so one release does not wake a convoy. If the store is down, or the
        holder vanished, the session goes on without the lock.

        Returns:
            ``(lock name, token)`` to release, or None.
        """
        digest = hashlib.sha256(repr(key).encode()).hexdigest()[:40]
        name = self.persistence.lock_name(digest, self._slot(partition))
        deadline = time.monotonic() + self.lock_wait
        while True:
            try:
                token = await self._lock_call(partial(self.persistence.try_lock, name))
            except UnsupportedBackendError:
                raise
            except Exception as exc:  # noqa: BLE001 (any store failure: go on without the lock)
                if not isinstance(exc, StoreUnavailable):
                    logger.warning("Fleet lock unavailable (%s); fetching without it", exc)
                await self._load_partition(partition)
                return None
            if token is not None:
                try:
                    await self._load_partition(partition, fresh=True)  # another worker's token?
                except BaseException:  # cancelled (or failed) holding the lock: release it
                    with anyio.CancelScope(shield=True):
                        await self._unlock(name, token)
                    raise
                return (name, token)
            remaining = deadline - time.monotonic()
            released = remaining > 0 and await self.persistence.wait_unlocked(name, remaining)
            await self._load_partition(partition, fresh=True)
            if satisfied is not None and satisfied():
                return None
            if not released:
                logger.warning(
                    "Another worker's fetch did not finish within %.1f s; fetching here",
                    self.lock_wait,
                )
                return None

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
