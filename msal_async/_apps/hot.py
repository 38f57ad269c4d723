"""The hot path of repeated cache hits: a couple of dict lookups instead of a cache search.

A slot remembers, for one call shape (scopes, account), the cache key of the access token the
full path served and the entry itself, parsed once. A hit requires that very entry still be
stored under that key (a refresh, a removal or another writer replaces or drops it) and still be
good by msal's rules (5 minutes before expiry, before ``refresh_on``); anything else takes the
full path, which then remembers the new entry. So the hot path never serves what the full path
would not; it only skips the search.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from .._cache.token_cache import SerializableTokenCache, TokenCache
from .._flows.context import AppContext

__all__ = ["EXPIRY_BUFFER", "HotSlots"]

#: msal's rule: a token with less than 5 minutes left counts as expired.
EXPIRY_BUFFER = 300
_LIMIT = 4096


class _Slot:
    __slots__ = ("entry", "expires_on", "good_until", "key", "refresh_on", "secret", "token_type")

    def __init__(self, key: str, entry: dict[str, Any]) -> None:
        self.key = key
        self.entry = entry
        self.secret: str = entry["secret"]
        self.token_type: str = entry.get("token_type", "Bearer")
        self.expires_on = int(entry["expires_on"])
        good_until = self.expires_on - EXPIRY_BUFFER
        self.refresh_on: int | None = None
        if "refresh_on" in entry:
            self.refresh_on = int(entry["refresh_on"])
            good_until = min(good_until, self.refresh_on)
        self.good_until = good_until


class HotSlots:
    """Remembered cache hits of one app, keyed by call shape."""

    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx
        self._cache = ctx.cache
        self._slots: dict[Hashable, _Slot] = {}
        # A subclass (a persistent cache, or one overriding search) must see every lookup.
        self.enabled = type(ctx.cache) in (TokenCache, SerializableTokenCache)

    def hit(self, shape: Hashable) -> dict[str, Any] | None:
        """msal's cache-hit result for ``shape``, or None when the full path must run."""
        slot = self._slots.get(shape)
        if slot is None or self._cache.peek_access_token(slot.key) is not slot.entry:
            return None
        ctx = self._ctx
        now = ctx.clock()
        if now >= slot.good_until:
            return None
        ctx.telemetry.hit()
        result = {
            "access_token": slot.secret,
            "token_type": slot.token_type,
            "expires_in": int(slot.expires_on - now),
            "token_source": "cache",
        }
        if slot.refresh_on is not None:
            result["refresh_on"] = slot.refresh_on
        return result

    def remember(self, shape: Hashable, entry: dict[str, Any] | None) -> None:
        """Remember the entry the full path served (or found) for ``shape``."""
        if not self.enabled or entry is None:
            return
        key = self._cache.key_makers[TokenCache.CredentialType.ACCESS_TOKEN](**entry)
        if self._cache.peek_access_token(key) is not entry:
            return
        if len(self._slots) >= _LIMIT:
            self._slots.clear()
        self._slots[shape] = _Slot(key, entry)

    def forget(self) -> None:
        """Drop every slot (they would fail their identity check anyway)."""
        self._slots.clear()
