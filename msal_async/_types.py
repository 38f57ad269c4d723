"""Plain data shapes shared across layers (TypedDicts and aliases)."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any, TypedDict

__all__ = ["CacheEvent", "HttpCache", "Result", "ScopeList"]

#: A token or error result dict, as msal returns it.
Result = dict[str, Any]

#: Scopes as msal accepts them.
ScopeList = list[str] | tuple[str, ...] | set[str] | frozenset[str]

#: The ``http_cache`` mapping a caller may pass (any dict-like object).
HttpCache = MutableMapping[str, Any]

#: A clock: seconds since the epoch.
Clock = Callable[[], float]


class CacheEvent(TypedDict, total=False):
    """The cache event msal hands to ``TokenCache.add``."""

    client_id: str
    scope: list[str]
    token_endpoint: str
    grant_type: str
    response: dict[str, Any]
    params: dict[str, Any]
    data: dict[str, Any]
    environment: str
    skip_account_creation: bool
    username: str
    authority_type: str
