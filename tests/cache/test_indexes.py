"""AccessTokenIndex: scope lookups in write order, kept compact (a bare key per lone scope)."""

from __future__ import annotations

import json
from typing import Any

from msal_async._cache.indexes import AccessTokenIndex
from msal_async._cache.token_cache import SerializableTokenCache, TokenCache

PARTITION = (None, "login.microsoftonline.com", "c1", "t1")


def entry(target: str, realm: str = "t1") -> dict[str, Any]:
    return {
        "home_account_id": None,
        "environment": "login.microsoftonline.com",
        "client_id": "c1",
        "realm": realm,
        "target": target,
    }


def test_covering_intersects_scopes_in_write_order() -> None:
    index = AccessTokenIndex()
    index.add("A", entry("a b"))
    index.add("B", entry("a"))
    index.add("C", entry("a c"))
    assert index.covering(PARTITION, ["a"]) == ["A", "B", "C"]
    assert index.covering(PARTITION, ["a", "c"]) == ["C"]
    assert index.covering(PARTITION, ["b"]) == ["A"]
    assert index.covering(PARTITION, ["d"]) == []
    assert index.covering(PARTITION, []) == ["A", "B", "C"]
    index.add("A", entry("a b"))  # a rewrite moves the key last
    assert index.covering(PARTITION, ["a"]) == ["B", "C", "A"]
    assert index.covering(PARTITION, ["b"]) == ["A"]


def test_a_lone_scope_holds_its_key_and_a_shared_one_a_set() -> None:
    index = AccessTokenIndex()
    index.add("A", entry("a b"))
    group = index.groups[PARTITION]
    assert group.scopes == {"a": "A", "b": "A"}  # no one-key dict per token
    index.add("B", entry("a"))
    assert group.scopes["a"] == {"A": None, "B": None}
    index.discard("A", entry("a b"))
    assert group.scopes == {"a": "B"}
    assert index.covering(PARTITION, ["a"]) == ["B"]
    assert index.covering(PARTITION, ["b"]) == []
    index.discard("B", entry("a"))
    assert PARTITION not in index.groups
    assert index.by_home == {}


def test_discarding_an_unknown_key_changes_nothing() -> None:
    index = AccessTokenIndex()
    index.add("A", entry("a"))
    index.discard("Z", entry("a"))
    index.discard("A", entry("a", realm="other"))
    assert index.covering(PARTITION, ["a"]) == ["A"]


def _event(tenant: str, scope: str, token_type: str) -> dict[str, Any]:
    response = json.loads(
        json.dumps({"access_token": f"at-{scope}", "expires_in": 3600, "token_type": token_type})
    )
    return {
        "client_id": "c1",
        "scope": [scope],
        "token_endpoint": f"https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
        "environment": "login.microsoftonline.com",
        "grant_type": "client_credentials",
        "response": response,
        "data": {},
    }


def test_entries_share_one_copy_of_repeated_strings() -> None:
    cache = TokenCache()
    cache.add(_event("tenant-1", "s1", "Bearer"), now=1_700_000_000)
    cache.add(_event("tenant-1", "s2", "Bearer"), now=1_700_000_000)
    first, second = cache._cache[TokenCache.CredentialType.ACCESS_TOKEN].values()
    assert first["realm"] == second["realm"] == "tenant-1"
    assert first["realm"] is second["realm"]
    assert first["token_type"] is second["token_type"]
    assert first["extended_expires_on"] is first["expires_on"]  # equal: one string


def test_a_deserialized_cache_shares_repeated_strings_too() -> None:
    source = SerializableTokenCache()
    for scope in ("s1", "s2"):
        source.add(_event("tenant-2", scope, "Bearer"), now=1_700_000_000)
    loaded = SerializableTokenCache()
    loaded.deserialize(source.serialize())
    first, second = loaded._cache[TokenCache.CredentialType.ACCESS_TOKEN].values()
    assert first["realm"] is second["realm"]
    assert first["client_id"] is second["client_id"]
    assert loaded.serialize() == source.serialize()


def test_only_a_cache_with_an_entry_limit_keeps_per_token_lru() -> None:
    unlimited = TokenCache()
    limited = TokenCache(max_entries=10)
    for cache in (unlimited, limited):
        cache.add(_event("tenant-3", "s1", "Bearer"), now=1_700_000_000)
    assert len(unlimited._book.at_lru) == 0
    assert len(limited._book.at_lru) == 1
