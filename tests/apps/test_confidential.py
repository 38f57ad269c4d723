"""ConfidentialClientApplication.acquire_token_for_client against the authority emulator."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest

from msal_async import ConfidentialClientApplication, MsalTransportError, SerializableTokenCache
from msal_async.testing import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    AuthorityEmulator,
    FakeClock,
    Fault,
)

pytestmark = pytest.mark.anyio

SCOPE = ["api://resource/.default"]
Make = Callable[..., ConfidentialClientApplication]


async def stampede(app: ConfidentialClientApplication, n: int) -> list[dict[str, Any]]:
    """N concurrent acquire_token_for_client calls for SCOPE; returns every result."""
    results: list[dict[str, Any]] = []

    async def call() -> None:
        results.append(dict(await app.acquire_token_for_client(SCOPE)))

    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(call)
    return results


async def test_first_call_fetches_second_is_a_cache_hit_without_http(
    make_cca: Make, emulator: AuthorityEmulator
) -> None:
    app = make_cca()
    first = await app.acquire_token_for_client(SCOPE)
    assert first["token_source"] == "identity_provider"
    assert first["token_type"] == "Bearer"
    assert isinstance(first["expires_in"], int)
    assert emulator.decode(first["access_token"])["aud"] == "api://resource"
    requests_before = len(emulator.requests)
    second = await app.acquire_token_for_client(SCOPE)
    assert second["token_source"] == "cache"
    assert second["access_token"] == first["access_token"]
    assert len(emulator.requests) == requests_before
    assert emulator.counts["client_credentials"] == 1


async def test_constructor_does_no_io(emulator: AuthorityEmulator, http: httpx.AsyncClient) -> None:
    ConfidentialClientApplication(
        DEMO_CLIENT_ID,
        client_credential=DEMO_CLIENT_SECRET,
        authority="https://unknown-host.example/tenant",
        http_client=http,
    )
    assert emulator.requests == []


async def test_discovery_happens_once_lazily(make_cca: Make, emulator: AuthorityEmulator) -> None:
    app = make_cca()
    assert emulator.requests == []
    for scope in ("api://a/.default", "api://b/.default", "api://c/.default"):
        await app.acquire_token_for_client([scope])
    assert emulator.counts["openid-configuration"] == 1


async def test_stampede_same_scope_sends_one_request(
    make_cca: Make, emulator: AuthorityEmulator
) -> None:
    results = await stampede(make_cca(), 500)
    assert emulator.counts["client_credentials"] == 1
    assert len({r["access_token"] for r in results}) == 1
    assert len(results) == 500


async def test_stampede_distinct_scopes_sends_one_request_each(
    make_cca: Make, emulator: AuthorityEmulator
) -> None:
    app = make_cca()
    async with anyio.create_task_group() as tg:
        for i in range(500):
            tg.start_soon(app.acquire_token_for_client, [f"api://r{i}/.default"])
    assert emulator.counts["client_credentials"] == 500
    assert emulator.counts["openid-configuration"] == 1


async def test_stampede_error_reaches_every_caller_once(
    make_cca: Make, emulator: AuthorityEmulator
) -> None:
    emulator.inject(Fault.invalid_grant())
    results = await stampede(make_cca(), 50)
    assert emulator.counts["client_credentials"] == 1
    assert all(r["error"] == "invalid_grant" for r in results)
    assert all(r["correlation_id"] for r in results)


async def test_cancelled_waiter_does_not_cancel_the_request(
    make_cca: Make, emulator: AuthorityEmulator
) -> None:
    emulator.inject(Fault.latency(0.2))
    app = make_cca()
    got: list[dict[str, Any]] = []

    async def survivor() -> None:
        got.append(dict(await app.acquire_token_for_client(SCOPE)))

    async with anyio.create_task_group() as tg:
        with anyio.move_on_after(0.05):
            tg.start_soon(survivor)
            await app.acquire_token_for_client(SCOPE)  # the leader, cancelled
    assert got
    assert got[0]["token_source"] == "identity_provider"
    assert emulator.counts["client_credentials"] == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"claims_challenge": '{"access_token": {"nbf": {"essential": true}}}'},
        {"fmi_path": "a/b"},
        {"forwarded_client_claims": '{"access_token": {"x": {"values": ["1"]}}}'},
        {"data": {"extra_field": "v"}},
    ],
    ids=["claims", "fmi_path", "forwarded_claims", "data"],
)
async def test_single_flight_key_separates_every_request_shaping_parameter(
    make_cca: Make, emulator: AuthorityEmulator, kwargs: dict[str, Any]
) -> None:
    app = make_cca()
    emulator.inject(Fault.latency(0.05), times=2)
    plain: list[dict[str, Any]] = []
    shaped: list[dict[str, Any]] = []

    async def run(into: list[dict[str, Any]], **kw: Any) -> None:
        into.append(dict(await app.acquire_token_for_client(SCOPE, **kw)))

    async with anyio.create_task_group() as tg:
        tg.start_soon(run, plain)
        tg.start_soon(lambda: run(shaped, **kwargs))
    assert emulator.counts["client_credentials"] == 2
    assert plain[0]["access_token"] != shaped[0]["access_token"]


async def test_claims_challenge_bypasses_cache_and_capabilities_are_sent(
    make_cca: Make, emulator: AuthorityEmulator
) -> None:
    app = make_cca(client_capabilities=["CP1"])
    await app.acquire_token_for_client(SCOPE)
    challenge = '{"access_token": {"nbf": {"essential": true, "value": "1"}}}'
    again = await app.acquire_token_for_client(SCOPE, claims_challenge=challenge)
    assert again["token_source"] == "identity_provider"
    first_claims = json.loads(emulator.requests[-2].form["claims"])
    second_claims = json.loads(emulator.requests[-1].form["claims"])
    assert first_claims == {"access_token": {"xms_cc": {"values": ["CP1"]}}}
    assert second_claims["access_token"]["nbf"]["value"] == "1"
    assert second_claims["access_token"]["xms_cc"] == {"values": ["CP1"]}


async def test_fmi_path_is_sent_and_cached_separately(
    make_cca: Make, emulator: AuthorityEmulator
) -> None:
    app = make_cca()
    a = await app.acquire_token_for_client(SCOPE, fmi_path="p/1")
    assert emulator.requests[-1].form["fmi_path"] == "p/1"
    b = await app.acquire_token_for_client(SCOPE)
    assert a["access_token"] != b["access_token"]
    assert (await app.acquire_token_for_client(SCOPE, fmi_path="p/1"))["token_source"] == "cache"


async def test_remove_tokens_for_client(make_cca: Make, emulator: AuthorityEmulator) -> None:
    app = make_cca()
    await app.acquire_token_for_client(SCOPE)
    await app.remove_tokens_for_client()
    result = await app.acquire_token_for_client(SCOPE)
    assert result["token_source"] == "identity_provider"
    assert emulator.counts["client_credentials"] == 2


async def test_wrong_secret_is_an_error_dict(make_cca: Make) -> None:
    result = await make_cca(client_credential="wrong").acquire_token_for_client(SCOPE)
    assert result["error"] == "invalid_client"
    assert result["correlation_id"]
    assert "wrong" not in json.dumps(result)


async def test_429_is_held_then_the_next_call_is_answered_locally(
    make_cca: Make, emulator: AuthorityEmulator
) -> None:
    emulator.inject(Fault.too_many_requests(retry_after=30))
    app = make_cca()
    first = await app.acquire_token_for_client(SCOPE)
    second = await app.acquire_token_for_client(SCOPE)
    assert first["error"] == second["error"]
    assert emulator.counts["client_credentials"] == 1


@pytest.mark.parametrize(
    "fault",
    [
        Fault.malformed_json(),
        Fault.html_error_page(status=502),
        Fault.server_error(status=503),
        Fault.huge_body(5 * 1024 * 1024),
    ],
    ids=["malformed_json", "html", "5xx", "huge"],
)
async def test_malformed_responses_are_error_dicts_and_leave_the_cache_alone(
    make_cca: Make, emulator: AuthorityEmulator, fault: Fault
) -> None:
    cache = SerializableTokenCache()
    app = make_cca(token_cache=cache)
    await app.acquire_token_for_client(["api://other/.default"])
    before = cache.serialize()
    emulator.inject(fault)
    result = await app.acquire_token_for_client(SCOPE)
    assert result["error"] in ("invalid_response", "server_error", "temporarily_unavailable")
    assert result["correlation_id"]
    assert cache.serialize() == before


async def test_aging_token_is_refreshed(
    make_cca: Make, emulator: AuthorityEmulator, clock: FakeClock
) -> None:
    emulator.refresh_in = 1
    app = make_cca()
    first = await app.acquire_token_for_client(SCOPE)
    assert "refresh_on" in first
    clock.set(first["refresh_on"] + 1.0)
    second = await app.acquire_token_for_client(SCOPE)
    assert second["token_source"] == "identity_provider"
    assert emulator.counts["client_credentials"] == 2


async def test_aging_token_served_when_refresh_fails(
    make_cca: Make, emulator: AuthorityEmulator, clock: FakeClock
) -> None:
    emulator.refresh_in = 1
    app = make_cca()
    first = await app.acquire_token_for_client(SCOPE)
    clock.advance(10)
    emulator.inject(Fault.server_error(status=500))
    second = await app.acquire_token_for_client(SCOPE)
    assert second["access_token"] == first["access_token"]
    assert second["token_source"] == "cache"


async def test_unreachable_authority_raises_transport_error() -> None:
    app = ConfidentialClientApplication(
        "cid",
        client_credential="s",
        authority="https://127.0.0.1:9/tenant-guid",
        instance_discovery=False,
        timeout=2,
    )
    async with app:
        with pytest.raises(MsalTransportError):
            await app.acquire_token_for_client(SCOPE)


async def test_secrets_and_tokens_never_logged(
    make_cca: Make, emulator: AuthorityEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app = make_cca()
    token = (await app.acquire_token_for_client(SCOPE))["access_token"]
    emulator.inject(Fault.invalid_grant())
    await app.acquire_token_for_client(["api://x/.default"])
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert DEMO_CLIENT_SECRET not in text
    assert token not in text


async def test_async_with_closes_the_owned_client() -> None:
    app = ConfidentialClientApplication(
        "cid", client_credential="s", authority="https://login.microsoftonline.com/t1"
    )
    async with app as entered:
        assert entered is app
    with pytest.raises(RuntimeError, match="closed"):
        await app.acquire_token_for_client(SCOPE)


async def test_given_http_client_stays_open(make_cca: Make, http: httpx.AsyncClient) -> None:
    async with make_cca() as app:
        await app.acquire_token_for_client(SCOPE)
    assert not http.is_closed


async def test_shared_http_cache_spares_a_second_app_the_discovery(
    make_cca: Make, emulator: AuthorityEmulator
) -> None:
    http_cache: dict[str, object] = {}
    await make_cca(http_cache=http_cache).acquire_token_for_client(SCOPE)
    await make_cca(http_cache=http_cache).acquire_token_for_client(SCOPE)
    assert emulator.counts["openid-configuration"] == 1


async def test_default_authority_discovers_through_msals_double_slash(
    http: httpx.AsyncClient, emulator: AuthorityEmulator
) -> None:
    """msal's default authority ends in "/", so its discovery path has "//v2.0": Entra takes it."""
    from msal_async import PublicClientApplication

    app = PublicClientApplication("cid", http_client=http)
    endpoints = await app._ctx.endpoints()
    assert endpoints.token_endpoint.endswith("/common/oauth2/v2.0/token")
    assert emulator.requests[-1].path == "/common//v2.0/.well-known/openid-configuration"


async def test_aging_token_refreshes_in_the_background_inside_async_with(
    make_cca: Make, emulator: AuthorityEmulator, clock: FakeClock
) -> None:
    emulator.refresh_in = 1
    app = make_cca()
    async with app:
        first = await app.acquire_token_for_client(SCOPE)
        clock.set(first["refresh_on"] + 1.0)
        served = await app.acquire_token_for_client(SCOPE)  # returns at once, from the cache
        assert served["access_token"] == first["access_token"]
        assert served["token_source"] == "cache"
    # leaving the block waited for the background refresh, which is in the cache now
    assert emulator.counts["client_credentials"] == 2
    fresh = await make_cca(token_cache=app.token_cache).acquire_token_for_client(SCOPE)
    assert fresh["access_token"] != first["access_token"]
    assert fresh["token_source"] == "cache"


async def test_failed_background_refresh_keeps_the_token_and_logs(
    make_cca: Make, emulator: AuthorityEmulator, caplog: pytest.LogCaptureFixture, clock: FakeClock
) -> None:
    emulator.refresh_in = 1
    async with make_cca() as app:
        first = await app.acquire_token_for_client(SCOPE)
        clock.set(first["refresh_on"] + 1.0)
        emulator.inject(Fault.server_error(status=503))
        served = await app.acquire_token_for_client(SCOPE)
    assert served["access_token"] == first["access_token"]
    assert "Background token refresh failed" in caplog.text
    [stored] = app.token_cache.search("AccessToken", target=SCOPE)
    assert stored["secret"] == first["access_token"]


async def test_repeated_hits_stay_correct_when_the_token_nears_expiry(
    make_cca: Make, emulator: AuthorityEmulator, clock: FakeClock
) -> None:
    app = make_cca()
    first = await app.acquire_token_for_client(SCOPE)
    for _ in range(3):  # the hot path serves these
        assert (await app.acquire_token_for_client(SCOPE))["token_source"] == "cache"
    clock.advance(first["expires_in"] - 200)  # inside msal's 5-minute buffer
    renewed = await app.acquire_token_for_client(SCOPE)
    assert renewed["token_source"] == "identity_provider"
    assert emulator.counts["client_credentials"] == 2


async def test_hits_see_a_token_written_by_another_app_sharing_the_cache(
    make_cca: Make, emulator: AuthorityEmulator
) -> None:
    cache = SerializableTokenCache()
    one, two = make_cca(token_cache=cache), make_cca(token_cache=cache)
    await one.acquire_token_for_client(SCOPE)
    await one.acquire_token_for_client(SCOPE)
    await two.remove_tokens_for_client()
    again = await one.acquire_token_for_client(SCOPE)
    assert again["token_source"] == "identity_provider"


async def test_inside_async_with_the_first_caller_can_time_out_at_once(
    make_cca: Make, emulator: AuthorityEmulator
) -> None:
    """The shared request runs in the app's task group: no caller is held by a shield."""
    emulator.inject(Fault.latency(1.0))
    got: list[dict[str, Any]] = []
    async with make_cca() as app:

        async def patient() -> None:
            got.append(dict(await app.acquire_token_for_client(SCOPE)))

        async with anyio.create_task_group() as tg:
            with anyio.move_on_after(0.1) as scope:
                tg.start_soon(patient)
                await app.acquire_token_for_client(SCOPE)  # the first caller gives up
            assert scope.cancelled_caught
            # it gave up while the shared request was still running, not after it
            assert app._ctx.flights.in_flight() == 1
    assert got
    assert got[0]["token_source"] == "identity_provider"
    assert emulator.counts["client_credentials"] == 1


async def test_remove_tokens_for_client_reaches_a_persistent_store(
    make_cca: Make, emulator: AuthorityEmulator, tmp_path: Any
) -> None:
    from msal_async import FilePersistence, PersistedTokenCache

    path = str(tmp_path / "cache.json")
    first = make_cca(token_cache=PersistedTokenCache(FilePersistence(path)))
    await first.acquire_token_for_client(SCOPE)
    await first.remove_tokens_for_client()
    later = make_cca(token_cache=PersistedTokenCache(FilePersistence(path)))  # a new process
    assert (await later.acquire_token_for_client(SCOPE))["token_source"] == "identity_provider"
