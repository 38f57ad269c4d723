"""Cancelling refresh callers at random points never loses a rotated refresh token.

The emulator rotates refresh tokens, revokes the old one at once and detects reuse (a revoked
token presented again revokes all of the user's tokens, as OAuth 2.1 providers do): a client
that dropped a rotated token, or sent an old one again, is locked out with ``invalid_grant``.
Each round starts one to three ``force_refresh=True`` callers and cancels them at a random
point: after a random number of scheduler steps, or after a random short timeout, while the
emulator's handler itself yields at random points before and after it rotates. Seeded, so a
failure names a round that replays.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest

from msal_async import PublicClientApplication, SerializableTokenCache
from msal_async.testing import AuthorityEmulator, TokenRequest
from msal_async.testing._user_grants import refresh_token_grant

from .conftest import SCOPES, sign_in

pytestmark = pytest.mark.anyio

ROUNDS = 25


class Wobbly:
    """The refresh grant, yielding to the scheduler a random number of times around rotation."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    async def __call__(self, request: TokenRequest) -> Mapping[str, Any]:
        for _ in range(self.rng.randint(0, 3)):
            await anyio.lowlevel.checkpoint()
        answer = await refresh_token_grant(request)  # rotated: the old token is revoked now
        for _ in range(self.rng.randint(0, 3)):
            await anyio.lowlevel.checkpoint()
        return answer


async def _cancelled_after_steps(app: Any, account: Any, steps: int) -> None:
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: app.acquire_token_silent(SCOPES, account, force_refresh=True))
            for _ in range(steps):
                await anyio.lowlevel.checkpoint()
            scope.cancel()


async def _cancelled_after_delay(app: Any, account: Any, delay: float) -> None:
    with anyio.move_on_after(delay):
        await anyio.lowlevel.checkpoint()
        await app.acquire_token_silent(SCOPES, account, force_refresh=True)


async def _round(app: Any, account: Any, rng: random.Random) -> None:
    async with anyio.create_task_group() as group:
        for _ in range(rng.randint(1, 3)):
            if rng.random() < 0.5:
                group.start_soon(_cancelled_after_steps, app, account, rng.randint(0, 12))
            else:
                group.start_soon(_cancelled_after_delay, app, account, rng.uniform(0, 0.004))


def _stored_refresh_token(app: Any, emulator: AuthorityEmulator) -> str:
    """The one refresh token in the cache; the emulator must hold it as live."""
    [entry] = app.token_cache.search("RefreshToken")
    record = emulator.user_tokens.refresh_tokens[entry["secret"]]
    assert not record.revoked, "the cache holds a refresh token the server already rotated"
    return str(entry["secret"])


@pytest.mark.parametrize("in_task_group", [False, True], ids=["inline", "async-with"])
async def test_random_cancellations_keep_the_rotated_refresh_token(
    make_pca: Callable[..., Any],
    http: httpx.AsyncClient,
    users: AuthorityEmulator,
    in_task_group: bool,
) -> None:
    settings = users.user_tokens
    settings.revoke_on_rotation = True
    settings.detect_reuse = True
    app: PublicClientApplication = make_pca(token_cache=SerializableTokenCache())
    await sign_in(app, http)
    [account] = await app.get_accounts()
    for seed in range(ROUNDS):
        rng = random.Random(seed)
        users.add_grant("refresh_token", Wobbly(rng))
        if in_task_group:
            # The shared refresh runs in the app's group; closing the app waits for it. An app
            # is not reopened: a new one per round, on the same cache, as a worker would.
            app = make_pca(token_cache=app.token_cache)
            async with app:
                await _round(app, account, rng)
        else:
            await _round(app, account, rng)
        _stored_refresh_token(app, users)
        assert settings.reuses_detected == 0, f"round {seed} sent a rotated refresh token again"
    redeemed = sum(r.redeemed for r in settings.refresh_tokens.values())
    assert redeemed > ROUNDS // 4  # many rounds really reached the server before the cancel

    users.add_grant("refresh_token", refresh_token_grant)
    app = make_pca(token_cache=app.token_cache)
    before = _stored_refresh_token(app, users)
    after = await app.acquire_token_silent_with_error(SCOPES, account, force_refresh=True)
    assert after is not None
    assert "access_token" in after, after  # not invalid_grant
    assert after["token_source"] == "identity_provider"
    assert _stored_refresh_token(app, users) != before
    assert settings.reuses_detected == 0


async def test_reuse_detection_locks_out_a_client_that_lost_a_rotated_token(
    make_pca: Callable[..., Any], http: httpx.AsyncClient, users: AuthorityEmulator
) -> None:
    """What the test above guards against: presenting a rotated token revokes them all."""
    settings = users.user_tokens
    settings.revoke_on_rotation = True
    settings.detect_reuse = True
    app = make_pca(token_cache=SerializableTokenCache())
    await sign_in(app, http)
    [account] = await app.get_accounts()
    stale = SerializableTokenCache()  # a copy of the cache taken before the refresh
    stale.deserialize(app.token_cache.serialize())
    assert await app.acquire_token_silent(SCOPES, account, force_refresh=True) is not None
    app = make_pca(token_cache=stale)
    lost = await app.acquire_token_silent_with_error(SCOPES, account, force_refresh=True)
    assert lost is not None
    assert lost.get("error") == "invalid_grant"
    assert settings.reuses_detected == 1
    assert all(r.revoked for r in settings.refresh_tokens.values())
