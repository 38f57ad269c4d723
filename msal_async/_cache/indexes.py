"""Secondary indexes of the token cache: keys grouped by the values of some entry fields.

An index narrows the candidates of a lookup; the final match is always the schema's
``entry_matches``, so an index may over-approximate (odd values share a bucket) but never miss.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["FoldedIndex", "Index"]

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
