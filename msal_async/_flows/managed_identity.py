"""Managed identity tokens (spec 9), as an ordinary flow: cache session, single flight, commit.

The source-specific request (App Service, IMDS, Azure Arc's challenge...) is the client's
job; this flow only looks up the cache, shares one request per resource among concurrent
callers (and, with a store that locks across machines, across the fleet), and commits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .. import _clock, _observe
from .._cache.freshness import TokenQuery
from .._cache.partitions import app_partition
from .._cache.session import CacheSession, look_up
from .._cache.token_cache import TokenCache
from .._singleflight import SingleFlight
from .context import Outcome, refresh_or_fall_back

__all__ = ["INSTANCE", "TENANT", "ManagedIdentityFlow"]

#: Where msal files managed identity tokens: environment ``localhost``, realm ``managed_identity``.
INSTANCE = "localhost"
TENANT = "managed_identity"
#: msal synthesizes ``refresh_in = expires_in / 2`` for tokens of 2 hours or more.
_HALF_LIFE_FROM = 7200

#: Sends the source's request for ``resource`` (naming the token a claims challenge replaces,
#: by its SHA-256) and returns msal's raw result or an error dict.
Fetch = Callable[[str, str | None], Awaitable[dict[str, Any]]]


@dataclass
class ManagedIdentityFlow:
    """The cache and single flight of one managed identity.

    Attributes:
        client_id: the identity's id (``SYSTEM_ASSIGNED_MANAGED_IDENTITY`` when system-assigned).
        cache: the token cache.
        flights: the single-flight registry.
        fetch: the source request.
    """

    client_id: str
    cache: TokenCache
    flights: SingleFlight
    fetch: Fetch

    async def acquire(self, resource: str, claims_challenge: str | None) -> dict[str, Any]:
        """msal's ``acquire_token_for_client`` of a managed identity.

        A token of 2 hours or more is refreshed after half its life; if that refresh fails,
        the cached token is served. A claims challenge bypasses the cache and names the token
        to replace.

        Returns:
            msal's result dict, or an error dict.

        Raises:
            Exception: the request failed and nothing usable is cached.
        """
        partition = app_partition(self.client_id, TENANT)
        query = TokenQuery(self.client_id, INSTANCE, TENANT, (resource,))
        fallback: Outcome | None = None
        to_replace: str | None = None
        cached = await look_up(self.cache, partition, query)
        reason, seen = cached.reason, cached.version
        if cached.token is not None:
            if claims_challenge:
                to_replace = hashlib.sha256(cached.token.secret.encode()).hexdigest()
            elif cached.fresh is not None:
                return cached.fresh[0] or {}
            else:
                fallback = cached.fallback
        key = ("managed_identity", self.client_id, resource, to_replace)

        async def fetch() -> Outcome:
            answers = None if claims_challenge else query
            async with self.cache.session(partition, fleet_key=key, answers=answers) as session:
                if not claims_challenge:  # a flight that just ended may have filled the cache
                    fresh = session.cached(query, seen).fresh
                    if fresh is not None:
                        return fresh
                result = await _observe.token_request(
                    "managed_identity", "", reason, lambda: self.fetch(resource, to_replace)
                )
                if "access_token" not in result:
                    return result, None
                return self._commit(session, resource, result), None

        _observe.joining(self.flights.running, key)
        result, _ = await refresh_or_fall_back(self.flights, key, fetch, fallback)
        return result or {}

    def _commit(
        self, session: CacheSession, resource: str, result: dict[str, Any]
    ) -> dict[str, Any]:
        now = _clock.now()
        expires_in = int(result.get("expires_in", 3600))
        if "refresh_in" not in result and expires_in >= _HALF_LIFE_FROM:
            result["refresh_in"] = expires_in // 2
        session.commit(
            {
                "client_id": self.client_id,
                "scope": [resource],
                "token_endpoint": f"https://{INSTANCE}/{TENANT}",
                "response": result,
                "params": {},
                "data": {},
            },
            now,
        )
        if "refresh_in" in result:
            result["refresh_on"] = int(now + result["refresh_in"])
        result["token_source"] = "identity_provider"
        return result
