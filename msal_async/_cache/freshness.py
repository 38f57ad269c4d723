"""THE freshness rule of cached access tokens (msal's), and the parsed form of a cached token.

msal serves a cached access token while more than 5 minutes of it remain; a token past its
``refresh_on`` (but still good) is served only when a refresh fails, and a refresh is tried
first. Every lookup (app tokens, user tokens, managed identity, the hot path) applies this one
rule through :class:`CachedToken`. Pure: ``now`` is always passed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["AGING", "EXPIRING", "EXPIRY_BUFFER", "FRESH", "CachedToken", "TokenQuery"]

#: A token with less than this many seconds left counts as expired (msal: 5 minutes).
EXPIRY_BUFFER = 300

#: Good as new: serve it.
FRESH = 0
#: Past ``refresh_on`` but still good: refresh, and serve it if the refresh fails.
AGING = 1
#: Less than :data:`EXPIRY_BUFFER` left (or expired): never served.
EXPIRING = 2


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if not isinstance(value, int | float | str):
        return None
    try:
        return int(value)
    except (ValueError, OverflowError):
        return None


class CachedToken:
    """An AccessToken entry, parsed once: what lookups, results and the hot path need.

    Attributes:
        key: the entry's cache key.
        entry: the stored entry itself (identity tells whether it is still the stored one).
        secret: the access token.
        token_type: ``Bearer`` unless the entry says otherwise.
        expires_on: epoch seconds.
        refresh_on: epoch seconds, or None.
        fresh_until: the last moment the token is :data:`FRESH`.
    """

    __slots__ = (
        "entry",
        "expires_on",
        "fresh_until",
        "key",
        "partition",
        "refresh_on",
        "secret",
        "token_type",
    )

    def __init__(
        self,
        key: str,
        entry: Mapping[str, Any],
        secret: str,
        expires_on: int,
        refresh_on: int | None,
        partition: str,
    ) -> None:
        self.key = key
        self.entry = entry
        self.secret = secret
        self.token_type: str = entry.get("token_type") or "Bearer"
        self.expires_on = expires_on
        self.refresh_on = refresh_on
        self.partition = partition
        until = expires_on - EXPIRY_BUFFER
        self.fresh_until = until if refresh_on is None else min(until, refresh_on)

    @classmethod
    def parse(cls, key: str, entry: Mapping[str, Any], partition: str = "") -> CachedToken | None:
        """Parse an AccessToken entry; None when it is malformed (it is then never served).

        Args:
            key: its cache key.
            entry: the entry.
            partition: the persistence partition it belongs to.

        Returns:
            The parsed token, or None.
        """
        secret = entry.get("secret")
        expires_on = _as_int(entry.get("expires_on"))
        if not isinstance(secret, str) or not secret or expires_on is None:
            return None
        refresh_on = None
        if "refresh_on" in entry:
            refresh_on = _as_int(entry["refresh_on"])
            if refresh_on is None:
                return None
        return cls(key, entry, secret, expires_on, refresh_on, partition)

    def state(self, now: float) -> int:
        """Apply the rule: :data:`FRESH`, :data:`AGING` or :data:`EXPIRING` at ``now``.

        Returns:
            The state.
        """
        if self.expires_on - now < EXPIRY_BUFFER:
            return EXPIRING
        if self.refresh_on is not None and self.refresh_on < now:
            return AGING
        return FRESH

    def result(self, now: float) -> dict[str, Any]:
        """msal's result for a token served from the cache.

        Returns:
            ``access_token``, ``token_type``, ``expires_in``, ``token_source`` and, when the
            entry has one, ``refresh_on``.
        """
        result: dict[str, Any] = {
            "access_token": self.secret,
            "token_type": self.token_type,
            "expires_in": int(self.expires_on - now),
            "token_source": "cache",
        }
        if self.refresh_on is not None:
            result["refresh_on"] = self.refresh_on
        return result


@dataclass(frozen=True)
class TokenQuery:
    """What an access token lookup asks for: the partition, the scopes, the extended key.

    Attributes:
        client_id: the application id.
        environment: the authority host (lowercased, as entries store it).
        realm: the tenant.
        scopes: the requested scopes (undecorated, any order).
        home_account_id: the account, or None for app tokens.
        ext_cache_key: the extended cache key of the request's extra fields, if any.
        key_id: the SSH-certificate / PoP key id the token must be bound to, if any.
    """

    client_id: str
    environment: str
    realm: str
    scopes: tuple[str, ...]
    home_account_id: str | None = None
    ext_cache_key: str | None = None
    key_id: str | None = None

    def group(self) -> tuple[Any, ...]:
        """The partition fields, in the cache index's order."""
        return (self.home_account_id, self.environment, self.client_id, self.realm)

    def search_query(self) -> dict[str, Any]:
        """msal's ``query`` dict for ``TokenCache.search`` (what msal's own lookup passes)."""
        query: dict[str, Any] = {
            "client_id": self.client_id,
            "environment": self.environment,
            "realm": self.realm,
            "home_account_id": self.home_account_id,
        }
        if self.key_id:
            query["key_id"] = self.key_id
        if self.ext_cache_key:
            query["ext_cache_key"] = self.ext_cache_key
        return query
