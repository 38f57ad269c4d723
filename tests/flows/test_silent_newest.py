"""After ``acquire_token_silent(force_refresh=True)``, silent calls return the newest token.

A caller forces a refresh because its resource rejected the token it had: the next plain
silent call for the same scopes must answer the token that refresh returned, never one an
older grant wrote (also when every write falls in the same second, and when the older token
was granted for more scopes than are asked now).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from msal_async import SerializableTokenCache
from msal_async.testing import AuthorityEmulator, FakeClock

from .conftest import sign_in

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("step", [0, 7], ids=["same-second", "seconds-apart"])
async def test_silent_after_force_refresh_is_the_refreshed_token(
    make_pca: Callable[..., Any],
    http: httpx.AsyncClient,
    users: AuthorityEmulator,
    clock: FakeClock,
    step: int,
) -> None:
    app = make_pca(token_cache=SerializableTokenCache())
    signed = await sign_in(app, http, ["User.Read"])
    [account] = await app.get_accounts()
    latest = signed["access_token"]
    for _ in range(3):
        clock.advance(step)
        forced = await app.acquire_token_silent(["User.Read"], account, force_refresh=True)
        assert forced is not None
        assert forced["token_source"] == "identity_provider"
        assert forced["access_token"] != latest
        latest = forced["access_token"]
        after = await app.acquire_token_silent(["User.Read"], account)
        assert after is not None
        assert after["token_source"] == "cache"
        assert after["access_token"] == latest
    # A fresh load of the same cache (as another worker would see it) answers the same.
    copy = SerializableTokenCache()
    copy.deserialize(app.token_cache.serialize())
    other = make_pca(token_cache=copy)
    [same] = await other.get_accounts()
    again = await other.acquire_token_silent(["User.Read"], same)
    assert again is not None
    assert again["access_token"] == latest


@pytest.mark.parametrize("step", [0, 7], ids=["same-second", "seconds-apart"])
async def test_an_older_broader_token_is_not_preferred_after_a_forced_refresh(
    make_pca: Callable[..., Any],
    http: httpx.AsyncClient,
    users: AuthorityEmulator,
    clock: FakeClock,
    step: int,
) -> None:
    app = make_pca(token_cache=SerializableTokenCache())
    signed = await sign_in(app, http, ["User.Read", "Mail.Read"])
    [account] = await app.get_accounts()
    clock.advance(step)
    forced = await app.acquire_token_silent(["User.Read"], account, force_refresh=True)
    assert forced is not None
    assert forced["access_token"] != signed["access_token"]
    after = await app.acquire_token_silent(["User.Read"], account)
    assert after is not None
    assert after["token_source"] == "cache"
    assert after["access_token"] == forced["access_token"]
