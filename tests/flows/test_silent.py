"""acquire_token_silent: cache hits, expiry buffer, bypasses, RT handling, FOCI, aliases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from msal_async import SerializableTokenCache
from msal_async.testing import AuthorityEmulator, EntraError, FakeClock, Fault
from msal_async.testing._user_grants import refresh_token_grant

from .conftest import SCOPES, USERNAME, sign_in, token_requests

pytestmark = pytest.mark.anyio

RT = "RefreshToken"


def rts(cache: Any) -> list[dict[str, Any]]:
    return list(cache.search(RT))


async def signed_in(make_pca: Callable[..., Any], http: httpx.AsyncClient, **kw: Any) -> Any:
    app = make_pca(**kw)
    await sign_in(app, http)
    return app


async def test_cache_hit_sends_nothing(
    make_pca: Callable[..., Any], http: httpx.AsyncClient, users: AuthorityEmulator
) -> None:
    app = await signed_in(make_pca, http)
    [account] = await app.get_accounts(username=USERNAME.upper())
    before = len(users.requests)
    result = await app.acquire_token_silent(SCOPES, account)
    assert result is not None
    assert result["token_source"] == "cache"
    assert set(result) == {"access_token", "token_type", "expires_in", "token_source"}
    assert len(users.requests) == before
    assert await app.acquire_token_silent(SCOPES, None) is None


async def test_expiry_buffer_refreshes_and_updates_rt_in_place(
    make_pca: Callable[..., Any],
    http: httpx.AsyncClient,
    users: AuthorityEmulator,
    clock: FakeClock,
) -> None:
    app = await signed_in(make_pca, http)
    [account] = await app.get_accounts()
    [old_rt] = rts(app.token_cache)
    clock.advance(3600 - 299)  # inside msal's 5-minute buffer
    result = await app.acquire_token_silent(SCOPES, account)
    assert result is not None
    assert result["token_source"] == "identity_provider"
    [refresh] = token_requests(users, "refresh_token")
    assert refresh.headers["x-client-current-telemetry"] == "4|84,3|"
    assert refresh.headers["x-anchormailbox"] == "Oid:" + account["home_account_id"].replace(
        ".", "@"
    )
    assert refresh.form["scope"] == "User.Read offline_access openid profile"
    assert refresh.form["refresh_token"] == old_rt["secret"]
    [new_rt] = rts(app.token_cache)  # updated in place, not added
    assert new_rt["secret"] != old_rt["secret"]
    assert new_rt["target"] == old_rt["target"]


async def test_force_refresh_and_claims_challenge_bypass_the_cache(
    make_pca: Callable[..., Any], http: httpx.AsyncClient, users: AuthorityEmulator
) -> None:
    app = await signed_in(make_pca, http, client_capabilities=["CP1"])
    [account] = await app.get_accounts()
    forced = await app.acquire_token_silent(SCOPES, account, force_refresh=True)
    assert forced is not None
    assert forced["token_source"] == "identity_provider"
    challenge = '{"access_token":{"nbf":{"essential":true,"value":"1"}}}'
    claimed = await app.acquire_token_silent(SCOPES, account, claims_challenge=challenge)
    assert claimed is not None
    assert claimed["token_source"] == "identity_provider"
    first, second = token_requests(users, "refresh_token")
    assert first.headers["x-client-current-telemetry"] == "4|84,1|"
    assert '"CP1"' in first.form["claims"]
    assert '"nbf"' in second.form["claims"]
    assert '"CP1"' in second.form["claims"]


async def test_invalid_grant_keeps_the_rt_and_returns_the_error(
    make_pca: Callable[..., Any], http: httpx.AsyncClient, users: AuthorityEmulator
) -> None:
    app = await signed_in(make_pca, http)
    [account] = await app.get_accounts()
    users.revoke_refresh_tokens(USERNAME)
    before = rts(app.token_cache)
    error = await app.acquire_token_silent_with_error(SCOPES, account, force_refresh=True)
    assert error is not None
    assert error["error"] == "invalid_grant"
    assert "classification" not in error
    assert rts(app.token_cache) == before
    assert await app.acquire_token_silent(SCOPES, account, force_refresh=True) is None


@pytest.mark.parametrize(
    ("suberror", "classification"), [("basic_action", "basic_action"), ("bad_token", "")]
)
async def test_suberror_is_classified(
    make_pca: Callable[..., Any],
    http: httpx.AsyncClient,
    users: AuthorityEmulator,
    suberror: str,
    classification: str,
) -> None:
    app = await signed_in(make_pca, http)
    [account] = await app.get_accounts()
    users.inject(Fault.invalid_grant(suberror=suberror), grant_type="refresh_token")
    error = await app.acquire_token_silent_with_error(SCOPES, account, force_refresh=True)
    assert error is not None
    assert error["classification"] == classification


async def test_newest_rt_first_and_a_failing_rt_is_kept(
    make_pca: Callable[..., Any], http: httpx.AsyncClient, users: AuthorityEmulator
) -> None:
    app = await signed_in(make_pca, http)
    [account] = await app.get_accounts()
    [good] = rts(app.token_cache)
    newer_bad = dict(
        good, secret="revoked-rt", target="Mail.Read", last_modification_time="9999999999"
    )
    app.token_cache.modify(RT, newer_bad, {"secret": "revoked-rt"})
    result = await app.acquire_token_silent_with_error(SCOPES, account, force_refresh=True)
    assert result is not None
    assert "access_token" in result
    tried = [r.form["refresh_token"] for r in token_requests(users, "refresh_token")]
    assert tried == ["revoked-rt", good["secret"]]
    assert "revoked-rt" in {rt["secret"] for rt in rts(app.token_cache)}


async def test_refresh_token_migration_adds_a_new_rt(
    make_pca: Callable[..., Any], http: httpx.AsyncClient, users: AuthorityEmulator
) -> None:
    source = await signed_in(make_pca, http)
    [rt] = rts(source.token_cache)
    app = make_pca()
    result = await app.acquire_token_by_refresh_token(rt["secret"], SCOPES)
    assert result["token_source"] == "identity_provider"
    [request] = token_requests(users, "refresh_token")
    assert request.headers["x-client-current-telemetry"] == "4|85,1|"
    assert "x-anchormailbox" not in request.headers
    [account] = await app.get_accounts()
    [stored] = rts(app.token_cache)
    assert stored["secret"] == result["refresh_token"]
    assert (await app.acquire_token_silent(SCOPES, account) or {})["token_source"] == "cache"


async def test_remove_account_forgets_everything_of_the_account(
    make_pca: Callable[..., Any], http: httpx.AsyncClient
) -> None:
    app = await signed_in(make_pca, http, token_cache=SerializableTokenCache())
    [account] = await app.get_accounts()
    await app.remove_account(account)
    assert await app.get_accounts() == []
    for section in ("AccessToken", "RefreshToken", "IdToken", "Account"):
        assert list(app.token_cache.search(section)) == []


async def test_foci_family_rt_serves_a_sibling_app(
    make_pca: Callable[..., Any], http: httpx.AsyncClient, users: AuthorityEmulator
) -> None:
    sibling, stranger = "11111111-2222-3333-4444-555555555555", "99999999-2222-3333-4444-5555"
    for client_id in (sibling, stranger):
        users.register_client(client_id)
    users.add_family_client("5c7a1e4e-1b5c-4a8e-9d11-2f3c4b5a6d7e")
    users.add_family_client(sibling)
    first = await signed_in(make_pca, http, token_cache=SerializableTokenCache())
    [family_rt] = rts(first.token_cache)
    assert family_rt["family_id"] == "1"
    second = make_pca(sibling, token_cache=first.token_cache)
    [account] = await second.get_accounts()
    result = await second.acquire_token_silent_with_error(SCOPES, account)
    assert result is not None
    assert result["token_source"] == "identity_provider"
    assert result["foci"] == "1"
    third = make_pca(stranger, token_cache=first.token_cache)
    assert await third.acquire_token_silent_with_error(SCOPES, account) is None
    [mismatch] = token_requests(users, "refresh_token")[-1:]
    assert mismatch.form["client_id"] == stranger


async def test_tokens_under_an_alias_are_found(
    make_pca: Callable[..., Any], http: httpx.AsyncClient, users: AuthorityEmulator
) -> None:
    from msal_async.testing import DEMO_TENANT_ID

    alias_app = await signed_in(
        make_pca, http, authority=f"https://login.windows.net/{DEMO_TENANT_ID}"
    )
    app = make_pca(token_cache=alias_app.token_cache)
    [account] = await app.get_accounts()
    assert account["environment"] == "login.windows.net"
    before = users.counts["refresh_token"]
    result = await app.acquire_token_silent(SCOPES, account)
    assert result is not None
    assert result["token_source"] == "cache"
    forced = await app.acquire_token_silent(SCOPES, account, force_refresh=True)
    assert forced is not None
    assert users.counts["refresh_token"] == before + 1
    assert token_requests(users, "refresh_token")[-1].path.startswith(f"/{DEMO_TENANT_ID}/")


async def test_custom_suberror_through_a_grant_override(
    make_pca: Callable[..., Any], http: httpx.AsyncClient, users: AuthorityEmulator
) -> None:
    app = await signed_in(make_pca, http)
    [account] = await app.get_accounts()

    async def protected(request: Any) -> Any:
        raise EntraError(
            53003, "invalid_grant", "Blocked by CA.", extra={"suberror": "message_only"}
        )

    users.add_grant("refresh_token", protected)
    error = await app.acquire_token_silent_with_error(SCOPES, account, force_refresh=True)
    assert error is not None
    assert error["classification"] == "message_only"
    users.add_grant("refresh_token", refresh_token_grant)


async def test_repeated_hits_never_serve_what_the_full_path_would_not(
    make_pca: Callable[..., Any],
    http: httpx.AsyncClient,
    users: AuthorityEmulator,
    clock: FakeClock,
) -> None:
    """The hot path (a remembered entry) must follow refreshes, expiry and sign-out."""
    app = await signed_in(make_pca, http)
    [account] = await app.get_accounts()
    first = await app.acquire_token_silent(SCOPES, account)
    assert first is not None
    for _ in range(3):
        again = await app.acquire_token_silent(SCOPES, account)
        assert again is not None
        assert again["access_token"] == first["access_token"]
    clock.advance(3600 - 299)  # inside the buffer: the remembered token is no longer good
    refreshed = await app.acquire_token_silent(SCOPES, account)
    assert refreshed is not None
    assert refreshed["token_source"] == "identity_provider"
    hot = await app.acquire_token_silent(SCOPES, account)
    assert hot is not None
    assert hot["access_token"] == refreshed["access_token"]
    assert hot["token_source"] == "cache"
    await app.remove_account(account)
    assert await app.acquire_token_silent(SCOPES, account) is None


async def test_sign_out_sticks_when_a_background_refresh_lands_afterwards(
    make_pca: Callable[..., Any],
    http: httpx.AsyncClient,
    users: AuthorityEmulator,
    clock: FakeClock,
) -> None:
    """remove_account() during a refresh round trip: the late response must not re-add tokens."""
    import anyio

    users.refresh_in = 60
    app = await signed_in(make_pca, http, token_cache=SerializableTokenCache())
    [account] = await app.get_accounts()
    clock.advance(120)  # the token is aging: served at once, refreshed in the background
    entered, release = anyio.Event(), anyio.Event()

    async def slow_refresh(request: Any) -> Any:
        entered.set()
        await release.wait()
        return await refresh_token_grant(request)

    users.add_grant("refresh_token", slow_refresh)
    async with app:
        served = await app.acquire_token_silent(SCOPES, account)
        assert served is not None
        await entered.wait()
        await app.remove_account(account)  # the user signs out mid-refresh
        release.set()
    for section in ("AccessToken", "RefreshToken", "Account"):
        assert list(app.token_cache.search(section)) == []
    later = make_pca(token_cache=app.token_cache)  # the app above is closed now
    assert await later.get_accounts() == []
    assert await later.acquire_token_silent(SCOPES, account) is None
