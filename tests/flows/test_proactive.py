"""Proactive refresh (refresh_on), single flight for user refreshes, and cancellation."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import httpx
import pytest

from msal_async import SerializableTokenCache
from msal_async.testing import AuthorityEmulator, Fault, TokenRequest
from msal_async.testing._user_grants import refresh_token_grant

from .conftest import SCOPES, FakeClock, sign_in, use_clock

pytestmark = pytest.mark.anyio


class Gate:
    """A refresh_token grant that holds every answer until the test releases it."""

    def __init__(self) -> None:
        self.entered = anyio.Event()
        self.release = anyio.Event()
        self.calls = 0

    async def __call__(self, request: TokenRequest) -> Mapping[str, Any]:
        self.calls += 1
        self.entered.set()
        await self.release.wait()
        return await refresh_token_grant(request)


async def aging_app(
    make_pca: Callable[..., Any], http: httpx.AsyncClient, users: AuthorityEmulator
) -> tuple[Any, FakeClock, dict[str, Any]]:
    """An app whose cached token is past refresh_on but still valid."""
    users.refresh_in = 60
    app = make_pca(token_cache=SerializableTokenCache())
    clock = FakeClock()
    use_clock(app, clock)
    await sign_in(app, http)
    [account] = await app.get_accounts()
    clock.advance(120)
    return app, clock, account


async def test_inline_refresh_outside_async_with(
    make_pca: Callable[..., Any], http: httpx.AsyncClient, users: AuthorityEmulator
) -> None:
    app, _, account = await aging_app(make_pca, http, users)
    result = await app.acquire_token_silent(SCOPES, account)
    assert result is not None
    assert result["token_source"] == "identity_provider"
    assert "refresh_on" in result
    request = next(r for r in users.requests if r.form.get("grant_type") == "refresh_token")
    assert request.headers["x-client-current-telemetry"] == "4|84,4|"


async def test_background_refresh_returns_the_cached_token_at_once(
    make_pca: Callable[..., Any], http: httpx.AsyncClient, users: AuthorityEmulator
) -> None:
    app, _, account = await aging_app(make_pca, http, users)
    gate = Gate()
    users.add_grant("refresh_token", gate)
    old = next(iter(app.token_cache.search("AccessToken")))["secret"]
    async with app:
        result = await app.acquire_token_silent(SCOPES, account)  # the gate is still shut
        assert result is not None
        assert result["token_source"] == "cache"
        assert result["access_token"] == old
        await gate.entered.wait()
        again = await app.acquire_token_silent(SCOPES, account)  # joins, does not re-send
        assert again is not None
        assert again["access_token"] == old
        gate.release.set()
    assert gate.calls == 1
    [new] = list(app.token_cache.search("AccessToken"))
    assert new["secret"] != old


async def test_failed_background_refresh_keeps_the_token_and_logs(
    make_pca: Callable[..., Any],
    http: httpx.AsyncClient,
    users: AuthorityEmulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, _, account = await aging_app(make_pca, http, users)
    users.inject(Fault.server_error(status=503), grant_type="refresh_token")
    before = app.token_cache.serialize()
    with caplog.at_level(logging.WARNING, logger="msal_async.application"):
        async with app:
            result = await app.acquire_token_silent(SCOPES, account)
            assert result is not None
            assert result["token_source"] == "cache"
    assert app.token_cache.serialize() == before
    assert "Background token refresh failed" in caplog.text
    assert users.counts["refresh_token"] == 1
    inline = await app.acquire_token_silent(SCOPES, account)  # 5xx inline: still the old one
    assert inline is not None


async def test_failed_inline_refresh_on_5xx_serves_the_aging_token(
    make_pca: Callable[..., Any], http: httpx.AsyncClient, users: AuthorityEmulator
) -> None:
    app, _, account = await aging_app(make_pca, http, users)
    users.inject(Fault.server_error(status=500), grant_type="refresh_token")
    result = await app.acquire_token_silent_with_error(SCOPES, account)
    assert result is not None
    assert result["token_source"] == "cache"  # msal raises MsalServiceError here (spec 15.1)


async def test_concurrent_silent_calls_send_one_refresh(
    make_pca: Callable[..., Any], http: httpx.AsyncClient, users: AuthorityEmulator
) -> None:
    users.user_tokens.revoke_on_rotation = True  # a second redemption would fail
    app = make_pca()
    clock = FakeClock()
    use_clock(app, clock)
    await sign_in(app, http)
    [account] = await app.get_accounts()
    clock.advance(3600)
    gate = Gate()
    users.add_grant("refresh_token", gate)
    results: list[dict[str, Any] | None] = []

    async def call() -> None:
        results.append(await app.acquire_token_silent_with_error(SCOPES, account))

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(call)
        await gate.entered.wait()
        await anyio.wait_all_tasks_blocked()
        gate.release.set()
    assert gate.calls == 1
    tokens = {r["access_token"] for r in results if r}
    assert len(results) == 10
    assert len(tokens) == 1


async def test_different_scopes_are_different_flights(
    make_pca: Callable[..., Any], http: httpx.AsyncClient, users: AuthorityEmulator
) -> None:
    app = await _signed_in(make_pca, http)
    [account] = await app.get_accounts()
    gate = Gate()
    users.add_grant("refresh_token", gate)
    async with anyio.create_task_group() as tg:
        for scopes in (["User.Read"], ["Mail.Read"], ["User.Read"]):
            tg.start_soon(forced, app, scopes, account)
        await gate.entered.wait()
        await anyio.wait_all_tasks_blocked()
        gate.release.set()
    assert gate.calls == 2


async def forced(app: Any, scopes: list[str], account: dict[str, Any]) -> None:
    await app.acquire_token_silent(scopes, account, force_refresh=True)


async def _signed_in(make_pca: Callable[..., Any], http: httpx.AsyncClient) -> Any:
    app = make_pca(token_cache=SerializableTokenCache())
    await sign_in(app, http)
    return app


async def test_cancelled_refresh_leaves_the_cache_as_it_was(
    make_pca: Callable[..., Any], http: httpx.AsyncClient, users: AuthorityEmulator
) -> None:
    app = await _signed_in(make_pca, http)
    [account] = await app.get_accounts()
    before = app.token_cache.serialize()
    tasks_before = len(anyio.get_running_tasks())
    gate = Gate()
    users.add_grant("refresh_token", gate)
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: app.acquire_token_silent(SCOPES, account, force_refresh=True))
        await gate.entered.wait()
        tg.cancel_scope.cancel()
    gate.release.set()
    assert app.token_cache.serialize() == before
    assert len(anyio.get_running_tasks()) == tasks_before
    assert app._flights()._flights == {}
    users.add_grant("refresh_token", refresh_token_grant)
    after = await app.acquire_token_silent(SCOPES, account, force_refresh=True)
    assert after is not None


async def test_a_waiter_survives_the_leaders_cancellation(
    make_pca: Callable[..., Any], http: httpx.AsyncClient, users: AuthorityEmulator
) -> None:
    app = await _signed_in(make_pca, http)
    [account] = await app.get_accounts()
    gate = Gate()
    users.add_grant("refresh_token", gate)
    follower: list[dict[str, Any] | None] = []

    async def follow() -> None:
        follower.append(await app.acquire_token_silent(SCOPES, account, force_refresh=True))

    async with anyio.create_task_group() as outer:
        with anyio.CancelScope() as leader_scope:
            async with anyio.create_task_group() as leader:
                leader.start_soon(
                    lambda: app.acquire_token_silent(SCOPES, account, force_refresh=True)
                )
                await gate.entered.wait()
                outer.start_soon(follow)
                await anyio.wait_all_tasks_blocked()
                gate.entered = anyio.Event()
                leader_scope.cancel()
        await gate.entered.wait()  # the follower leads a new flight
        gate.release.set()
    assert follower[0] is not None
    assert follower[0]["token_source"] == "identity_provider"
    assert gate.calls == 2
