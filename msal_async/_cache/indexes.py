"""Secondary indexes of the token cache: keys grouped by the values of some entry fields.

An index narrows the candidates of a lookup; the final match is always the schema's
``entry_matches``, so an index may over-approximate (odd values share a bucket) but never miss.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

__all__ = ["AccessTokenIndex", "FoldedIndex", "Index"]

_UNHASHABLE = object()  # one bucket for odd values (lists, dicts) read from a foreign cache


def _bucket_value(value: Any) -> Any:
    # The index must map equal values to equal buckets; unhashable ones share a bucket and the
    # final entry_matches() check sorts them out.
    try:
        hash(value)
    except TypeError:
        return _UNHASHABLE
    return value


class Index:
    """Keys of one section grouped by the values of some fields (an ordered set per bucket)."""

    __slots__ = ("buckets", "fields")

    def __init__(self, fields: tuple[str, ...]) -> None:
        self.fields = fields
        self.buckets: dict[tuple[Any, ...], dict[str, None]] = {}

    def bucket_of(self, entry: Mapping[str, Any]) -> tuple[Any, ...]:
        """The bucket an entry (or a query with the same fields) falls in."""
        return tuple(_bucket_value(entry.get(f)) for f in self.fields)

    def add(self, key: str, entry: Mapping[str, Any]) -> None:
        """Index ``key`` under ``entry``'s bucket."""
        self.buckets.setdefault(self.bucket_of(entry), {})[key] = None

    def discard(self, key: str, entry: Mapping[str, Any]) -> None:
        """Forget ``key`` from ``entry``'s bucket."""
        bucket_id = self.bucket_of(entry)
        bucket = self.buckets.get(bucket_id)
        if bucket is not None:
            bucket.pop(key, None)
            if not bucket:
                del self.buckets[bucket_id]

    def keys_for(self, query: Mapping[str, Any]) -> list[str]:
        """The keys in the query's bucket, in insertion order."""
        return list(self.buckets.get(self.bucket_of(query), ()))


class FoldedIndex(Index):
    """An index whose string values are compared case-insensitively (usernames)."""

    __slots__ = ()

    def bucket_of(self, entry: Mapping[str, Any]) -> tuple[Any, ...]:
        """The bucket, with string values lowercased."""
        return tuple(v.lower() if isinstance(v, str) else v for v in super().bucket_of(entry))


_GROUP_FIELDS = ("home_account_id", "environment", "client_id", "realm")


class _Group:
    """The AccessTokens of one (home_account_id, environment, client_id, realm).

    ``scopes`` maps a scope to the keys holding it, in write order: the key itself while only
    one token holds the scope (the common case: an app token per resource), a dict of keys
    once several do. A one-key dict per token would cost more than the rest of the index.
    """

    __slots__ = ("keys", "scopes")

    def __init__(self) -> None:
        self.keys: dict[str, None] = {}  # write order: a rewrite moves a key last
        self.scopes: dict[str, str | dict[str, None]] = {}

    def add_scope(self, scope: str, key: str) -> None:
        """Record ``key`` as the newest holder of ``scope``."""
        held = self.scopes.get(scope)
        if held is None or held == key:
            self.scopes[scope] = key
        elif isinstance(held, str):
            self.scopes[scope] = {held: None, key: None}
        else:
            held.pop(key, None)
            held[key] = None

    def discard_scope(self, scope: str, key: str) -> None:
        """Forget ``key`` as a holder of ``scope``."""
        held = self.scopes.get(scope)
        if held is None:
            return
        if isinstance(held, str):
            if held == key:
                del self.scopes[scope]
            return
        held.pop(key, None)
        if len(held) == 1:
            self.scopes[scope] = next(iter(held))
        elif not held:
            del self.scopes[scope]


def _holders(held: str | dict[str, None]) -> Collection[str]:
    return (held,) if isinstance(held, str) else held


def _scopes_of(entry: Mapping[str, Any]) -> set[str]:
    target = entry.get("target")
    return set(target.split()) if isinstance(target, str) else set()


class AccessTokenIndex:
    """AccessToken keys by partition, and within a partition by scope.

    Finding the tokens whose target covers the requested scopes intersects the per-scope key
    sets of one partition, starting from the smallest: the cost follows the number of requested
    scopes and of real matches, not the number of tokens the partition holds. Keys keep their
    write order (a rewritten key moves last), which lets a lookup prefer the newest token.
    Entries whose partition fields cannot be hashed (odd values from a foreign cache) are kept
    aside and offered to every lookup; the schema's match check sorts them out.
    """

    __slots__ = ("by_home", "groups", "odd")

    def __init__(self) -> None:
        self.groups: dict[tuple[Any, ...], _Group] = {}
        self.by_home: dict[tuple[Any, Any], dict[tuple[Any, ...], None]] = {}
        self.odd: dict[str, None] = {}

    @staticmethod
    def _group_key(entry: Mapping[str, Any]) -> tuple[Any, ...] | None:
        values = tuple(entry.get(f) for f in _GROUP_FIELDS)
        try:
            hash(values)
        except TypeError:
            return None
        return values

    def add(self, key: str, entry: Mapping[str, Any]) -> None:
        """Index ``key`` (stored with ``entry``) as the newest write of its partition."""
        group_key = self._group_key(entry)
        if group_key is None:
            self.odd[key] = None
            return
        group = self.groups.get(group_key)
        if group is None:
            group = self.groups[group_key] = _Group()
            self.by_home.setdefault(group_key[:2], {})[group_key] = None
        group.keys.pop(key, None)
        group.keys[key] = None
        for scope in _scopes_of(entry):
            group.add_scope(scope, key)

    def discard(self, key: str, entry: Mapping[str, Any]) -> None:
        """Forget ``key``, which was stored with ``entry``."""
        group_key = self._group_key(entry)
        if group_key is None:
            self.odd.pop(key, None)
            return
        group = self.groups.get(group_key)
        if group is None or key not in group.keys:
            return
        del group.keys[key]
        for scope in _scopes_of(entry):
            group.discard_scope(scope, key)
        if not group.keys:
            del self.groups[group_key]
            homes = self.by_home[group_key[:2]]
            del homes[group_key]
            if not homes:
                del self.by_home[group_key[:2]]

    def covering(self, partition: tuple[Any, ...], scopes: Iterable[str]) -> list[str]:
        """The keys of one partition whose target holds every scope, oldest write first.

        Args:
            partition: ``(home_account_id, environment, client_id, realm)``.
            scopes: the requested scopes (case-sensitive, as msal compares them).

        Returns:
            The keys, plus every odd key (to be checked by the caller).
        """
        group = self.groups.get(partition)
        found: list[str] = []
        if group is not None:
            buckets: list[Collection[str]] = []
            for scope in set(scopes):
                held = group.scopes.get(scope)
                if held is None:
                    buckets = []
                    break
                buckets.append(_holders(held))
            if buckets:
                buckets.sort(key=len)
                first, rest = buckets[0], buckets[1:]
                found = [k for k in first if all(k in b for b in rest)]
            elif not scopes:
                found = list(group.keys)
        return [*found, *self.odd] if self.odd else found

    def keys_for(self, query: Mapping[str, Any]) -> list[str] | None:
        """Candidate keys for a query naming at least the home account and environment.

        Returns:
            The keys, or None when the query does not narrow the search (scan everything).
        """
        if not all(f in query for f in _GROUP_FIELDS[:2]):
            return None
        try:
            homes = self.by_home.get((query["home_account_id"], query["environment"]), {})
        except TypeError:
            return None
        keys: list[str] = []
        for group_key in homes:
            if all(
                f not in query or query[f] == v
                for f, v in zip(_GROUP_FIELDS, group_key, strict=True)
            ):
                keys.extend(self.groups[group_key].keys)
        return [*keys, *self.odd] if self.odd else keys
