"""The hot path of repeated cache hits: a couple of dict lookups instead of a cache search.

A slot remembers, for one call shape (scopes, account), the cache key of the access token the
full path served or wrote. The cache keeps that token parsed for as long as the very entry is
stored (a refresh, a removal, an eviction or a reload drops it), so a hit needs that the key
still has its parsed token, that the token is still fresh by the one freshness rule, and that
the cache is certainly current (a persistent cache asks its store: a stat, or Redis's
invalidations). Anything else takes the full path, which remembers anew. The hot path never
serves what the full path would not; it only skips the search. Slots hold keys only, never a
token: what the cache evicts is gone. With an entry limit (``max_entries``) there are never more
slots than the limit: a full table first drops the slots whose token the cache no longer holds.
"""

from __future__ import annotations

from collections.abc import Hashable

from .. import _clock
from .._cache.token_cache import TokenCache
from .._types import TokenResult

__all__ = ["HotSlots"]

_LIMIT = 4096


class HotSlots:
    """Remembered cache hits of one app, keyed by call shape."""

    __slots__ = ("_cache", "_keys", "_limit", "enabled")

    def __init__(self, cache: TokenCache) -> None:
        self._cache = cache
        self._keys: dict[Hashable, str] = {}
        limit = cache._max_entries
        self._limit = _LIMIT if limit is None else min(_LIMIT, limit)
        # A subclass overriding msal's methods must see every lookup: no hot path for it.
        self.enabled = not cache._msal_hooks

    def hit(self, shape: Hashable) -> TokenResult | None:
        """msal's cache-hit result for ``shape``, or None when the full path must run."""
        key = self._keys.get(shape)
        if key is None:
            return None
        cache = self._cache
        token = cache._hot_token(key)
        if token is None:
            return None
        now = _clock.now()
        if now > token.fresh_until or not cache._current(token.partition):
            return None
        # A cache hit has TokenResult's shape; no typing.cast here: it is a call on every hit.
        return token.result(now)  # type: ignore[return-value]

    def remember(self, shape: Hashable, key: str | None) -> None:
        """Remember the key of the token the full path served or wrote for ``shape``."""
        if not self.enabled or key is None:
            return
        keys = self._keys
        if len(keys) >= self._limit and shape not in keys:
            held = self._cache._holds_access_token
            self._keys = keys = {s: k for s, k in keys.items() if held(k)}
            if len(keys) >= self._limit:
                keys.clear()
        keys[shape] = key
