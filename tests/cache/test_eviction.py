"""TokenCache(max_entries=...): expired ATs first, then LRU ATs, then LRU partitions."""

from __future__ import annotations

from typing import Any

import pytest

from msal_async import FilePersistence, PersistedTokenCache, TokenCache
from msal_async._cache.partitions import app_partition

from .conftest import at_candidates

NOW = 1_700_000_000
ENV = "login.microsoftonline.com"
AT = TokenCache.CredentialType.ACCESS_TOKEN


def event(tenant: str, scope: str, *, expires_in: int = 3600) -> dict[str, Any]:
    """A client-credentials event: one AT (plus the shared AppMetadata entry)."""
    return {
        "client_id": "c1",
        "scope": [scope],
        "token_endpoint": f"https://{ENV}/{tenant}/oauth2/v2.0/token",
        "environment": ENV,
        "grant_type": "client_credentials",
        "data": {},
        "params": {},
        "response": {"access_token": f"at-{tenant}-{scope}", "expires_in": expires_in},
    }


def lookup(cache: TokenCache, tenant: str, scope: str) -> bool:
    return bool(at_candidates(cache, client_id="c1", environment=ENV, realm=tenant, scopes=[scope]))


def test_no_limit_by_default() -> None:
    cache = TokenCache()
    for i in range(300):
        cache.add(event(f"t{i}", "s"), now=NOW)
    assert cache._entry_count() == 301  # 300 ATs + one AppMetadata


def test_expired_tokens_go_first() -> None:
    cache = TokenCache(max_entries=4)
    cache.add(event("t1", "old", expires_in=10), now=NOW - 100)  # expired by NOW
    cache.add(event("t1", "a"), now=NOW)
    cache.add(event("t1", "b"), now=NOW)
    cache.add(event("t1", "c"), now=NOW)  # 5 entries: one must go
    assert cache._entry_count() == 4
    assert not lookup(cache, "t1", "old")
    assert all(lookup(cache, "t1", s) for s in "abc")


def test_least_recently_used_tokens_go_next() -> None:
    cache = TokenCache(max_entries=4)
    for scope in "abc":
        cache.add(event("t1", scope), now=NOW)
    assert lookup(cache, "t1", "a")  # a is now more recent than b
    cache.add(event("t1", "d"), now=NOW)
    assert not lookup(cache, "t1", "b")
    assert all(lookup(cache, "t1", s) for s in "acd")


def test_least_recently_used_partitions_go_last() -> None:
    cache = TokenCache(max_entries=3)
    cache.add(  # a refresh token only: nothing but whole partitions can go
        {
            **event("t1", "s"),
            "grant_type": "refresh_token",
            "response": {"refresh_token": "rt", "client_info": _client_info("u1", "t1")},
        },
        now=NOW,
    )
    cache.add(
        {
            **event("t1", "s"),
            "grant_type": "refresh_token",
            "response": {"refresh_token": "rt2", "client_info": _client_info("u2", "t1")},
        },
        now=NOW,
    )
    cache.add(
        {
            **event("t1", "s"),
            "grant_type": "refresh_token",
            "response": {"refresh_token": "rt3", "client_info": _client_info("u3", "t1")},
        },
        now=NOW,
    )
    assert cache._partition_entry_count("u1.t1") == 0  # the oldest account went
    assert cache._partition_entry_count("u3.t1") > 0  # the newest stays
    assert cache._entry_count() <= 3


def _client_info(uid: str, utid: str) -> str:
    import base64
    import json

    raw = json.dumps({"uid": uid, "utid": utid}).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_many_partitions_stay_bounded() -> None:
    cache = TokenCache(max_entries=100)
    for i in range(2000):
        cache.add(event(f"t{i}", "s"), now=NOW)
        assert cache._entry_count() <= 100
    assert lookup(cache, "t1999", "s")
    assert not lookup(cache, "t0", "s")


@pytest.mark.anyio
async def test_an_evicted_partition_is_reloaded(tmp_path: Any) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    cache = PersistedTokenCache(FilePersistence(folder), max_entries=3)
    for tenant in ("t1", "t2", "t3"):
        cache.add(event(tenant, "s"))
        await cache.save(app_partition("c1", tenant))
    assert cache._partition_entry_count(app_partition("c1", "t1")) == 0  # evicted from memory
    await cache.load(app_partition("c1", "t1"))
    assert lookup(cache, "t1", "s")
