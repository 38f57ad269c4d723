"""The partition-level operations of TokenCache: export, replace, journal, and the entry limit.

A mixin so that token_cache.py keeps msal's surface; it works on TokenCache's state, always
under its lock, and never awaits.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from msal_async import _clock
from msal_async._cache import schema
from msal_async._cache.partitions import SHARED, PartitionBook, Slot, partition_of
from msal_async._cache.schema import Entry

from .. import _log

__all__ = ["PartitionedCacheMixin"]

logger = logging.getLogger(_log.TOKEN_CACHE)


class PartitionedCacheMixin:
    """Partition export/replace, a change journal for persistence, and bounded memory."""

    if TYPE_CHECKING:
        _lock: threading.RLock
        _cache: dict[str, Any]
        _book: PartitionBook
        _max_entries: int | None
        _evicted_partitions: set[str]
        CredentialType: type[schema.CredentialType]

        def _put(
            self, credential_type: str, key: str, entry: Entry, *, record: bool = True
        ) -> None: ...

        def _delete(self, credential_type: str, key: str, *, record: bool = True) -> None: ...

        def _rebuild_indexes(self) -> None: ...

    # --- partitions (for persistent caches) and the entry limit --------------------------------

    def _record_changes(self) -> None:
        """Start journaling changes per partition, for a persistence to save (idempotent)."""
        with self._lock:
            if self._book.journal is None:
                self._book.journal = {}

    def _take_changes(self, partition: str | None) -> dict[Slot, Entry | None]:
        """Remove and return one partition's unsaved changes (None: every partition's).

        Args:
            partition: A partition key, or None for all.

        Returns:
            ``{(section, key): entry, or None for a deletion}``.
        """
        with self._lock:
            return self._book.take(partition)

    def _give_back_changes(
        self, partition: str | None, changes: Mapping[Slot, Entry | None]
    ) -> None:
        """Return changes a persistence failed to save; changes made since then win.

        Args:
            partition: The partition they were taken from (None: all).
            changes: What :meth:`_take_changes` returned.
        """
        with self._lock:
            self._book.give_back(partition, changes)

    def _export_partition(self, partition: str | None) -> dict[str, dict[str, Entry]]:
        """Copy one partition's entries, plus every AppMetadata entry, in msal's sections.

        Args:
            partition: A partition key, or None for the whole cache.

        Returns:
            ``{section: {key: entry}}`` (entries are shared, not copied: do not mutate).
        """
        with self._lock:
            if partition is None:
                return {
                    ct: dict(section)
                    for ct, section in self._cache.items()
                    if isinstance(section, dict)
                }
            out: dict[str, dict[str, Entry]] = {}
            for part in (partition, SHARED):
                for ct, key in self._book.members.get(part, {}):
                    out.setdefault(ct, {})[key] = self._cache[ct][key]
            return out

    def _replace_partition(
        self, partition: str | None, state: Mapping[str, Any], *, now: float | None = None
    ) -> None:
        """Make one partition (None: the whole cache) hold exactly the entries of ``state``.

        Entries of ``state`` in other partitions are ignored; its AppMetadata entries are
        added. Unsaved changes of the partition are applied on top, so nothing not yet saved
        is lost. One step under the lock; O(size of the partition).

        Args:
            partition: A partition key, or None for the whole cache.
            state: ``{section: {key: entry}}`` as read from a persistence (msal's format).
            now: Epoch seconds, for the entry limit.
        """
        with self._lock:
            if partition is None:
                self._cache = {}
                self._rebuild_indexes()
            else:
                for ct, key in list(self._book.members.get(partition, {})):
                    self._delete(ct, key, record=False)
            for ct, section in state.items():
                if not isinstance(section, dict):
                    continue
                for key, entry in section.items():
                    if not isinstance(entry, dict):
                        continue
                    part = partition_of(ct, entry)
                    if partition is None or part in (partition, SHARED):
                        self._put(ct, key, entry, record=False)
            for (ct, key), entry in self._book.pending(partition).items():
                if entry is None:
                    self._delete(ct, key, record=False)
                else:
                    self._put(ct, key, entry, record=False)
            self._enforce_limit(now=int(_clock.now() if now is None else now), keep=partition)

    def _mark_partition_changed(self, partition: str | None) -> int:
        """Journal every entry of a partition (None: all) as changed, so the next save writes it.

        Args:
            partition: A partition key, or None for the whole cache.

        Returns:
            How many entries were marked.
        """
        with self._lock:
            journal = self._book.journal
            if journal is None:
                return 0
            parts = list(self._book.members) if partition is None else [partition, SHARED]
            marked = 0
            for part in parts:
                for ct, key in self._book.members.get(part, {}):
                    journal.setdefault(part, {}).setdefault((ct, key), self._cache[ct][key])
                    marked += 1
            return marked

    def _pending(self, partition: str | None) -> bool:
        """Whether one partition (None: any) has unsaved changes."""
        with self._lock:
            return bool(self._book.pending(partition))

    def _dirty_partitions(self) -> list[str]:
        """The partitions with unsaved changes (AppMetadata's shared one excepted).

        Returns:
            Their keys.
        """
        with self._lock:
            return [p for p, changes in (self._book.journal or {}).items() if changes and p]

    def _partition_entry_count(self, partition: str) -> int:
        """How many entries one partition holds in memory.

        Args:
            partition: A partition key.

        Returns:
            The count (0 when absent or evicted).
        """
        with self._lock:
            return len(self._book.members.get(partition, ()))

    def _entry_count(self) -> int:
        """The number of entries in memory, all sections together."""
        return self._book.count

    def _enforce_limit(self, *, now: int, keep: str | None = None) -> None:
        """Evict past ``max_entries``: expired ATs, then LRU ATs, then LRU partitions."""
        limit = self._max_entries
        if limit is None or self._book.count <= limit:
            return
        book, at = self._book, self.CredentialType.ACCESS_TOKEN
        evicted: list[str] = []
        while book.count > limit:
            expired = book.pop_expired(now)
            if expired is None:
                break
            entry = (self._cache.get(at) or {}).get(expired[1])
            if isinstance(entry, dict) and schema.is_expired(entry, now):
                self._delete(at, expired[1], record=False)
        while book.count > limit and (slot := book.oldest_access_token()) is not None:
            entry = self._cache[slot[0]][slot[1]]
            self._delete(*slot, record=False)
            self._evicted_partitions.add(partition_of(slot[0], entry))  # reload it when used
        protected = frozenset(() if keep is None else (keep,))
        while book.count > limit and (part := book.oldest_partition(protected)) is not None:
            for ct, key in list(book.members.get(part, {})):
                self._delete(ct, key, record=False)
            evicted.append(part)
        book.compact()
        if evicted:
            logger.debug("Evicted %d partition(s) past max_entries=%d", len(evicted), limit)
        self._evicted_partitions.update(evicted)
