"""Hot slots (the app's remembered cache hits) never keep what the cache evicted: evicted access
tokens are unreachable from the cache and the slots, and there are never more slots than
``max_entries``."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from msal_async import ConfidentialClientApplication, TokenCache
from msal_async.testing import AuthorityEmulator

pytestmark = pytest.mark.anyio

AT = TokenCache.CredentialType.ACCESS_TOKEN
Make = Callable[..., ConfidentialClientApplication]


def strings_in(root: object) -> Iterator[str]:
    """Every string reachable from ``root`` through containers and our objects' attributes."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, str):
            yield obj
        elif isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)
        elif type(obj).__module__.startswith("msal_async"):
            stack.extend(getattr(obj, "__dict__", {}).values())
            for cls in type(obj).__mro__:
                names = getattr(cls, "__slots__", ())
                stack.extend(getattr(obj, n) for n in names if hasattr(obj, n))


def stored_secrets(cache: TokenCache) -> set[str]:
    return {entry["secret"] for entry in (cache._cache.get(AT) or {}).values()}


async def test_evicted_tokens_are_not_kept_by_the_hot_slots(
    make_cca: Make, emulator: AuthorityEmulator
) -> None:
    limit = 8
    cache = TokenCache(max_entries=limit)
    app = make_cca(token_cache=cache)
    issued: list[str] = []
    for i in range(60):
        scope = f"api://evict-{i}/.default"
        fetched = await app.acquire_token_for_client([scope])
        again = await app.acquire_token_for_client([scope])  # served by the slot just made
        assert again["token_source"] == "cache"
        assert again["access_token"] == fetched["access_token"]
        issued.append(fetched["access_token"])
        assert len(app._hot._keys) <= limit  # the slots are bounded by the cache's limit
        assert cache._entry_count() <= limit
    assert emulator.counts["client_credentials"] == 60

    stored = stored_secrets(cache)
    evicted = set(issued) - stored
    assert len(evicted) >= 60 - limit
    for key in app._hot._keys.values():  # no slot resolves to an evicted token
        token = cache._hot_token(key)
        assert token is None or token.secret in stored
    assert {t.secret for t in cache._parsed.values()} <= stored
    reachable = set(strings_in(cache)) | set(strings_in(app._hot))
    assert not evicted & reachable  # the secrets are gone from every cache structure
    # The newest tokens are still served from the slots.
    assert (await app.acquire_token_for_client(["api://evict-59/.default"]))[
        "token_source"
    ] == "cache"
