"""A SerializableTokenCache subclass sees the lookups and writes msal makes, side by side.

msal-extensions and auditing hooks subclass the cache and override ``search``, ``find``,
``add`` and ``modify``; they rely on msal calling them. The same scenario runs through real msal
and msal_async, each with a counting subclass, and the counts must be equal.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import anyio
import msal
import pytest
import requests

import msal_async

from ..conftest import HttpsAuthority
from .harness import (
    APP_SCOPES,
    DOWNSTREAM,
    REDIRECT_URI,
    SCOPES,
    USER,
    Dicts,
    browse,
    msal_cca,
    msal_pca,
    our_cca,
    our_pca,
    run,
)
from .scenarios import user_assertion

pytestmark = pytest.mark.anyio

HOOKS = ("search", "find", "add", "modify")


def counting(base: type) -> Callable[[], Any]:
    """A subclass of ``base`` counting calls to msal's overridable methods; returns a maker."""

    def hook(name: str) -> Any:
        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return getattr(base, name)(self, *args, **kwargs)

        return method

    cls = type(f"Counting{base.__name__}", (base,), {n: hook(n) for n in HOOKS})

    def make() -> Any:
        cache = cls()
        cache.calls = Counter()
        return cache

    return make


MsalCache = counting(msal.SerializableTokenCache)
OurCache = counting(msal_async.SerializableTokenCache)


def counts(cache: Any) -> dict[str, int]:
    return dict(sorted(cache.calls.items()))


# --- acquire_token_for_client twice ---------------------------------------------------------


def msal_app_token(https: HttpsAuthority, session: requests.Session) -> Dicts:
    cache = MsalCache()
    app = msal_cca(https, session, token_cache=cache)
    app.acquire_token_for_client(["api://hooks/.default"])
    app.acquire_token_for_client(["api://hooks/.default"])
    return {"counts": counts(cache)}


async def our_app_token(https: HttpsAuthority) -> Dicts:
    cache = OurCache()
    async with our_cca(https, token_cache=cache) as app:
        await app.acquire_token_for_client(["api://hooks/.default"])
        await app.acquire_token_for_client(["api://hooks/.default"])
    return {"counts": counts(cache)}


async def test_acquire_token_for_client_twice(https: HttpsAuthority) -> None:
    theirs, ours = await run(https, msal_app_token, our_app_token)
    assert ours.dicts["counts"] == theirs.dicts["counts"]
    assert theirs.dicts["counts"] == {"add": 1, "modify": 2, "search": 2}  # msal 1.39's


# --- the auth code flow, then acquire_token_silent with a refresh token ---------------------


def msal_user_tokens(https: HttpsAuthority, session: requests.Session) -> Dicts:
    cache = MsalCache()
    app = msal_pca(https, session, token_cache=cache)
    flow = app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI, login_hint=USER)
    app.acquire_token_by_auth_code_flow(flow, browse(https, flow["auth_uri"]))
    signed_in = counts(cache)
    [account] = app.get_accounts()
    cache.calls.clear()
    app.acquire_token_silent(SCOPES, account)  # a cache hit
    hit = counts(cache)
    cache.calls.clear()
    app.acquire_token_silent(["Mail.Read"], account)  # redeems the refresh token
    refreshed = counts(cache)
    cache.calls.clear()
    app.acquire_token_silent(SCOPES, account, force_refresh=True)
    forced = counts(cache)
    return {
        "auth code flow": signed_in,
        "silent hit": hit,
        "silent refresh": refreshed,
        "force_refresh": forced,
    }


async def our_user_tokens(https: HttpsAuthority) -> Dicts:
    cache = OurCache()
    async with our_pca(https, token_cache=cache) as app:
        flow = await app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI, login_hint=USER)
        response = await anyio.to_thread.run_sync(browse, https, flow["auth_uri"])
        await app.acquire_token_by_auth_code_flow(flow, response)
        signed_in = counts(cache)
        [account] = await app.get_accounts()
        cache.calls.clear()
        await app.acquire_token_silent(SCOPES, account)
        hit = counts(cache)
        cache.calls.clear()
        await app.acquire_token_silent(["Mail.Read"], account)
        refreshed = counts(cache)
        cache.calls.clear()
        await app.acquire_token_silent(SCOPES, account, force_refresh=True)
        forced = counts(cache)
    return {
        "auth code flow": signed_in,
        "silent hit": hit,
        "silent refresh": refreshed,
        "force_refresh": forced,
    }


async def test_auth_code_flow_and_silent_calls(https: HttpsAuthority) -> None:
    theirs, ours = await run(https, msal_user_tokens, our_user_tokens)
    assert ours.dicts == theirs.dicts
    assert theirs.dicts["silent refresh"]["add"] == 1  # the refresh token was redeemed


async def test_our_own_classes_keep_the_fast_paths(https: HttpsAuthority) -> None:
    """Only subclasses that override msal's methods take msal's call pattern."""
    cache = msal_async.SerializableTokenCache()
    calls: Counter[str] = Counter()
    for name in HOOKS:
        original = getattr(cache, name)

        def spy(*args: Any, _name: str = name, _original: Any = original, **kwargs: Any) -> Any:
            calls[_name] += 1
            return _original(*args, **kwargs)

        setattr(cache, name, spy)  # on the instance: the class stays ours
    async with our_cca(https, token_cache=cache) as app:
        await app.acquire_token_for_client(APP_SCOPES)
        await app.acquire_token_for_client(APP_SCOPES)
    assert calls == Counter()


# --- on behalf of, accounts, removal -------------------------------------------------------


def msal_other_calls(https: HttpsAuthority, session: requests.Session) -> Dicts:
    cache = MsalCache()
    app = msal_cca(https, session, token_cache=cache)
    app.acquire_token_on_behalf_of(user_assertion(https), DOWNSTREAM)
    obo = counts(cache)
    cache.calls.clear()
    [account] = app.get_accounts()
    accounts = counts(cache)
    cache.calls.clear()
    app.acquire_token_for_client(APP_SCOPES)
    app.remove_tokens_for_client()
    removed_app_tokens = counts(cache)
    cache.calls.clear()
    app.remove_account(account)
    return {
        "on behalf of": obo,
        "get_accounts": accounts,
        "remove_tokens_for_client": removed_app_tokens,
        "remove_account": counts(cache),
    }


async def our_other_calls(https: HttpsAuthority) -> Dicts:
    cache = OurCache()
    async with our_cca(https, token_cache=cache) as app:
        await app.acquire_token_on_behalf_of(user_assertion(https), DOWNSTREAM)
        obo = counts(cache)
        cache.calls.clear()
        [account] = await app.get_accounts()
        accounts = counts(cache)
        cache.calls.clear()
        await app.acquire_token_for_client(APP_SCOPES)
        await app.remove_tokens_for_client()
        removed_app_tokens = counts(cache)
        cache.calls.clear()
        await app.remove_account(account)
    return {
        "on behalf of": obo,
        "get_accounts": accounts,
        "remove_tokens_for_client": removed_app_tokens,
        "remove_account": counts(cache),
    }


async def test_on_behalf_of_accounts_and_removal(https: HttpsAuthority) -> None:
    theirs, ours = await run(https, msal_other_calls, our_other_calls)
    assert ours.dicts == theirs.dicts


async def test_a_subclass_still_loses_tokens_with_an_ext_cache_key_on_removal(
    https: HttpsAuthority,
) -> None:
    """msal's search leaves them behind (docs/migrating.md: we remove them too)."""
    cache = OurCache()
    async with our_cca(https, token_cache=cache) as app:
        await app.acquire_token_for_client(APP_SCOPES, fmi_path="agents/one")
        await app.acquire_token_for_client(APP_SCOPES)
        await app.remove_tokens_for_client()
    assert json.loads(cache.serialize())["AccessToken"] == {}
    assert cache.calls["search"] >= 3  # the two lookups and msal's search on removal
