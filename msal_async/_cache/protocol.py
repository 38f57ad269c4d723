"""The async persistence protocol: what a store of cache partitions must do.

Layer 2 (no app or flow knowledge), so that the back ends (file_store, redis_store) and the
cache that uses them (persistence) can all import it.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from msal_async._cache.codec import Document
from msal_async._errors import StoreBusy, StoreUnavailable, UnsupportedBackendError

__all__ = [
    "AsyncPersistence",
    "Loaded",
    "StoreBusy",
    "StoreUnavailable",
    "UnsupportedBackendError",
]


@dataclass(frozen=True)
class Loaded:
    """A document read from (or just written to) a persistence, with its version.

    Attributes:
        version: An opaque value that changes whenever the stored document does.
        document: The sections.
        absent: True when no document is stored at all.
    """

    version: Hashable
    document: Document
    absent: bool = False


class AsyncPersistence(abc.ABC):
    """Where a :class:`PersistedTokenCache` keeps its tokens: one document per partition.

    Attributes:
        partitioned: True when each partition is its own document (Redis, a folder); False when
            one document holds everything (a single file), in which case ``partition`` is None.
        supports_locks: True when :meth:`try_lock` coordinates other machines (a fleet).
        restores_lost_partitions: True when a document that vanished was lost (a restarted or
            evicting server) rather than deleted on purpose: the cache then writes back what
            it holds in memory instead of forgetting it.
    """

    partitioned: bool = False
    supports_locks: bool = False
    restores_lost_partitions: bool = False

    @abc.abstractmethod
    async def load(self, partition: str | None, known: Hashable | None) -> Loaded | None:
        """Read a partition if its version is not ``known``.

        Args:
            partition: The partition key (None when not partitioned).
            known: The version this process last saw, or None.

        Returns:
            None when unchanged; else the stored document (empty when there is none).

        Raises:
            Exception: The store failed (the cache logs it and carries on from memory).
        """

    @abc.abstractmethod
    async def save(self, partition: str | None, update: Callable[[Document], Document]) -> Loaded:
        """Replace a partition's document with ``update(stored document)``, atomically.

        ``update`` is pure and may be called more than once (optimistic retries).

        Args:
            partition: The partition key (None when not partitioned).
            update: Computes the new document from the stored one.

        Returns:
            The document now stored and its version.

        Raises:
            Exception: The store failed (the cache keeps the changes for the next save).
        """

    def unchanged(self, partition: str | None, known: Hashable | None) -> bool:
        """A cheap synchronous check that a partition is still at version ``known``.

        Only for checks that cannot block: a stat (FilePersistence), or invalidations already
        received (RedisPersistence with tracking). The cache calls it before every lookup and
        skips :meth:`load` when it returns True, so it must never say True for a version that
        a change the store was told about replaced. The default says "don't know".

        Args:
            partition: The partition key.
            known: The version last seen.

        Returns:
            True only when certainly unchanged.
        """
        return False

    def lock_name(self, name: str, partition: str | None) -> str:
        """The name to lock (:meth:`try_lock`...) for work named ``name`` that writes ``partition``.

        A store may keep the lock beside the partition (RedisPersistence: in the partition's
        Redis Cluster hash slot). The default is ``name`` itself.

        Args:
            name: What identifies the work (a digest of the request).
            partition: The partition the work writes, or None when unknown.

        Returns:
            The lock's name.
        """
        return name

    async def try_lock(self, name: str) -> str | None:
        """Try to take a short fleet-wide lock without waiting.

        Args:
            name: The lock's name.

        Returns:
            A token for :meth:`unlock`, or None when another worker holds it.

        Raises:
            Exception: The store failed (the caller then proceeds without a lock).
        """
        return "local"

    async def unlock(self, name: str, token: str) -> None:  # noqa: B027 (optional hook)
        """Release a lock taken with :meth:`try_lock` (only if still ours).

        Args:
            name: The lock's name.
            token: What :meth:`try_lock` returned.
        """

    async def wait_unlocked(self, name: str, wait: float) -> bool:
        """Wait until nobody holds ``name`` (bounded).

        Args:
            name: The lock's name.
            wait: Seconds to wait at most.

        Returns:
            True when it was released, False on timeout.
        """
        return True

    async def aclose(self) -> None:  # noqa: B027 (optional hook)
        """Release connections or handles the persistence owns."""
