"""Per-partition bookkeeping of the in-memory cache: membership, unsaved changes, LRU order.

A partition is the unit a persistent cache loads and saves (MSAL.NET's suggested cache keys):
the home account id for user tokens, ``{client_id}_{tenant}_AppTokenCache`` for app tokens.
AppMetadata entries belong to no partition (:data:`SHARED`); every partition document carries
them. Everything here is synchronous and called with the token cache's lock held.
"""

from __future__ import annotations

import heapq
import sys
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

__all__ = ["SHARED", "PartitionBook", "app_partition", "partition_key", "partition_of"]

#: The pseudo-partition of entries shared by every partition (AppMetadata).
SHARED = ""
_APP_METADATA = "AppMetadata"
_ACCESS_TOKEN = "AccessToken"

#: A (section, key) pair naming one cache entry.
Slot = tuple[str, str]


def app_partition(client_id: str, realm: str) -> str:
    """The partition key of one client's app-only tokens in one tenant (MSAL.NET's key).

    Args:
        client_id: The application id.
        realm: The tenant id.

    Returns:
        ``"{client_id}_{realm}_AppTokenCache"``.
    """
    return f"{client_id}_{realm}_AppTokenCache"


def partition_key(client_id: str, realm: str, home_account_id: str | None) -> str:
    """The partition an acquisition reads and writes: the account's, else the tenant's.

    Args:
        client_id: The application id.
        realm: The tenant id.
        home_account_id: The account, or None for app tokens.

    Returns:
        The partition key.
    """
    return home_account_id or app_partition(client_id, realm)


def partition_of(section: str, entry: Mapping[str, Any]) -> str:
    """The partition an entry belongs to (:data:`SHARED` for AppMetadata).

    Args:
        section: The entry's credential type (cache section name).
        entry: The entry.

    Returns:
        The partition key.
    """
    home = entry.get("home_account_id")
    if isinstance(home, str) and home:
        return home
    if section == _APP_METADATA:
        return SHARED
    # Interned: every app token of a tenant holds the one copy (in the book's LRU and heap).
    return sys.intern(
        app_partition(str(entry.get("client_id") or ""), str(entry.get("realm") or ""))
    )


def _expires_on(entry: Mapping[str, Any]) -> int | None:
    try:
        return int(entry["expires_on"])
    except (KeyError, TypeError, ValueError):
        return None


class PartitionBook:
    """Which entries each partition holds, what changed since the last save, and LRU orders.

    Attributes:
        members: ``{partition: {(section, key): None}}``.
        journal: ``{partition: {(section, key): entry or None (deleted)}}`` of unsaved changes;
            None when no persistence records changes.
    """

    __slots__ = ("_evicting", "_expiry", "at_lru", "count", "journal", "lru", "members")

    def __init__(self, *, evicting: bool = True) -> None:
        # Without an entry limit nothing is ever evicted: the per-token LRU and expiry heap
        # would cost memory for every token and serve no one.
        self._evicting = evicting
        self.members: dict[str, dict[Slot, None]] = {}
        self.journal: dict[str, dict[Slot, Any]] | None = None
        self.count = 0
        self.lru: OrderedDict[str, None] = OrderedDict()  # partitions, least recent first
        self.at_lru: OrderedDict[Slot, str] = OrderedDict()  # AT -> partition, least recent first
        self._expiry: list[tuple[int, str, str]] = []  # (expires_on, partition, key), lazy

    # --- membership -----------------------------------------------------------------------------

    def added(self, section: str, key: str, entry: Mapping[str, Any], *, record: bool) -> None:
        """Note that ``entry`` now sits at ``(section, key)``."""
        partition = partition_of(section, entry)
        bucket = self.members.setdefault(partition, {})
        slot = (section, key)
        if slot not in bucket:
            bucket[slot] = None
            self.count += 1
        if partition != SHARED:
            self.lru[partition] = None
            self.lru.move_to_end(partition)
        if section == _ACCESS_TOKEN and self._evicting:
            self.at_lru[slot] = partition
            self.at_lru.move_to_end(slot)
            expires_on = _expires_on(entry)
            if expires_on is not None:
                heapq.heappush(self._expiry, (expires_on, partition, key))
        if record and self.journal is not None:
            self.journal.setdefault(partition, {})[slot] = entry

    def removed(self, section: str, key: str, entry: Mapping[str, Any], *, record: bool) -> None:
        """Note that ``(section, key)`` (which held ``entry``) is gone."""
        partition = partition_of(section, entry)
        slot = (section, key)
        bucket = self.members.get(partition)
        if bucket is not None and slot in bucket:
            del bucket[slot]
            self.count -= 1
            if not bucket:
                del self.members[partition]
                self.lru.pop(partition, None)
        self.at_lru.pop(slot, None)
        if record and self.journal is not None:
            self.journal.setdefault(partition, {})[slot] = None

    def clear(self) -> None:
        """Forget every entry (the journal is kept: it holds unsaved work)."""
        self.members.clear()
        self.lru.clear()
        self.at_lru.clear()
        self._expiry.clear()
        self.count = 0

    def touch_access_tokens(self, keys: list[str], limit: int | None) -> None:
        """Mark access tokens (and their partitions) as just used; only an entry limit cares."""
        if limit is None:
            return
        for key in keys:
            slot = (_ACCESS_TOKEN, key)
            partition = self.at_lru.get(slot)
            if partition is not None:
                self.at_lru.move_to_end(slot)
                if partition in self.lru:
                    self.lru.move_to_end(partition)

    # --- the journal ---------------------------------------------------------------------------

    def take(self, partition: str | None) -> dict[Slot, Any]:
        """Remove and return the unsaved changes of one partition (None: of all partitions).

        The shared entries' changes go with every partition.
        """
        if self.journal is None:
            return {}
        if partition is None:
            changes: dict[Slot, Any] = {}
            for part in self.journal.values():
                changes.update(part)
            self.journal.clear()
            return changes
        changes = dict(self.journal.pop(SHARED, {}))
        changes.update(self.journal.pop(partition, {}))
        return changes

    def give_back(self, partition: str | None, changes: Mapping[Slot, Any]) -> None:
        """Return changes that could not be saved, under changes made since (which win)."""
        if self.journal is None or not changes:
            return
        for slot, entry in changes.items():
            home = partition if partition is not None else SHARED
            if entry is not None:
                home = partition_of(slot[0], entry)
            elif slot[0] == _APP_METADATA:
                home = SHARED
            self.journal.setdefault(home, {}).setdefault(slot, entry)

    def pending(self, partition: str | None) -> dict[Slot, Any]:
        """The unsaved changes of one partition (None: all), without removing them."""
        if self.journal is None:
            return {}
        if partition is None:
            out: dict[Slot, Any] = {}
            for part in self.journal.values():
                out.update(part)
            return out
        return {**self.journal.get(SHARED, {}), **self.journal.get(partition, {})}

    # --- eviction ------------------------------------------------------------------------------

    def pop_expired(self, now: int) -> tuple[str, str, int] | None:
        """Pop the earliest (partition, key, expires_on) that expired before ``now``, if any."""
        while self._expiry and self._expiry[0][0] < now:
            expires_on, partition, key = heapq.heappop(self._expiry)
            if (_ACCESS_TOKEN, key) in self.members.get(partition, {}):
                return partition, key, expires_on
        return None

    def oldest_access_token(self) -> Slot | None:
        """The least recently used access token, or None."""
        return next(iter(self.at_lru), None)

    def oldest_partition(self, keep: frozenset[str]) -> str | None:
        """The least recently used partition not in ``keep`` (nor with unsaved changes)."""
        unsaved = self.journal or {}
        for partition in self.lru:
            if partition not in keep and not unsaved.get(partition):
                return partition
        return None

    def compact(self) -> None:
        """Rebuild the expiry heap when stale items dominate it (amortised O(1) per entry)."""
        if len(self._expiry) > 2 * max(len(self.at_lru), 64):
            self._expiry = [
                item
                for item in self._expiry
                if (_ACCESS_TOKEN, item[2]) in self.members.get(item[1], {})
            ]
            heapq.heapify(self._expiry)
