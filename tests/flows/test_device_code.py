"""Device code flow: initiate, poll through pending/slow_down/expiry, cancel, exit_condition."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest

from msal_async import SerializableTokenCache
from msal_async.testing import AuthorityEmulator

from .conftest import USERNAME

pytestmark = pytest.mark.anyio

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SCOPES = ["User.Read"]


def polls(emulator: AuthorityEmulator) -> list[Any]:
    return [r for r in emulator.requests if r.form.get("grant_type") == DEVICE_GRANT]


def approve_after(emulator: AuthorityEmulator, count: int) -> None:
    def on_poll(auth: Any) -> None:
        if auth.polls >= count:
            emulator.approve_device_code(auth.user_code, USERNAME)

    emulator.device_flow.on_poll = on_poll


async def test_initiate_then_poll_until_approved(
    users: AuthorityEmulator, make_pca: Callable[..., Any]
) -> None:
    users.device_flow.interval = 0
    approve_after(users, 3)
    app = make_pca()
    flow = await app.initiate_device_flow(SCOPES)
    assert flow["user_code"] in flow["message"]
    assert flow["interval"] == 0
    assert flow["expires_at"] > flow["expires_in"]
    result = await app.acquire_token_by_device_flow(flow)
    assert result["token_source"] == "identity_provider"
    assert result["id_token_claims"]["preferred_username"] == USERNAME
    sent = polls(users)
    assert len(sent) == 3
    [initiate] = [r for r in users.requests if r.path.endswith("/devicecode")]
    assert initiate.form["scope"] == "User.Read offline_access openid profile"
    assert "x-client-current-telemetry" not in initiate.headers
    for poll in sent:
        assert poll.form["device_code"] == poll.form["code"] == flow["device_code"]
        assert "scope" not in poll.form
        assert poll.headers["client-request-id"] == initiate.headers["client-request-id"]
        assert poll.headers["x-client-current-telemetry"] == "4|622,0|"
    [account] = await app.get_accounts()
    assert account["username"] == USERNAME
    silent = await app.acquire_token_silent(SCOPES, account)
    assert silent["access_token"] == result["access_token"]


async def test_slow_down_adds_five_seconds(
    users: AuthorityEmulator, make_pca: Callable[..., Any]
) -> None:
    users.device_flow.interval = 0
    users.device_flow.slow_down_polls = 1
    app = make_pca()
    flow = await app.initiate_device_flow(SCOPES)
    result = await app.acquire_token_by_device_flow(
        flow, exit_condition=lambda f: f["interval"] >= 5
    )
    assert result["error"] == "slow_down"
    assert flow["interval"] == 5
    assert len(polls(users)) == 1


@pytest.mark.parametrize(
    ("decide", "error"),
    [
        (lambda emu, auth: emu.deny_device_code(auth.user_code), "authorization_declined"),
        (lambda emu, auth: setattr(auth, "expires_at", 0), "expired_token"),
    ],
    ids=["declined", "expired"],
)
async def test_terminal_errors_return_at_once(
    users: AuthorityEmulator,
    make_pca: Callable[..., Any],
    decide: Callable[[AuthorityEmulator, Any], None],
    error: str,
) -> None:
    users.device_flow.interval = 0
    users.device_flow.on_poll = lambda auth: decide(users, auth)
    app = make_pca(token_cache=SerializableTokenCache())
    flow = await app.initiate_device_flow(SCOPES)
    result = await app.acquire_token_by_device_flow(flow)
    assert result["error"] == error
    assert result["correlation_id"] == flow["_correlation_id"]
    assert len(polls(users)) == 1
    assert await app.get_accounts() == []


async def test_stops_when_the_flow_expires(
    users: AuthorityEmulator, make_pca: Callable[..., Any]
) -> None:
    users.device_flow.interval = 1
    app = make_pca()
    flow = await app.initiate_device_flow(SCOPES)
    flow["expires_at"] = 0  # msal's documented way to stop the loop
    result = await app.acquire_token_by_device_flow(flow)
    assert result["error"] == "authorization_pending"
    assert len(polls(users)) == 1


async def test_async_exit_condition(users: AuthorityEmulator, make_pca: Callable[..., Any]) -> None:
    users.device_flow.interval = 1
    seen: list[int] = []

    async def stop(flow: dict[str, Any]) -> bool:
        seen.append(flow["interval"])
        return True

    app = make_pca()
    flow = await app.initiate_device_flow(SCOPES)
    result = await app.acquire_token_by_device_flow(flow, exit_condition=stop)
    assert result["error"] == "authorization_pending"
    assert seen == [1]
    assert "latest_attempt_at" in flow


async def test_cancelling_the_poll_leaves_nothing_behind(
    users: AuthorityEmulator, make_pca: Callable[..., Any]
) -> None:
    users.device_flow.interval = 1
    polled = anyio.Event()
    users.device_flow.on_poll = lambda auth: polled.set()
    cache = SerializableTokenCache()
    app = make_pca(token_cache=cache)
    flow = await app.initiate_device_flow(SCOPES)
    before = cache.serialize()
    outcome: list[Any] = []
    async with anyio.create_task_group() as tg:

        async def poll() -> None:
            outcome.append(await app.acquire_token_by_device_flow(flow))

        tg.start_soon(poll)
        await polled.wait()
        users.approve_device_code(flow["user_code"], USERNAME)  # too late: cancelled first
        tg.cancel_scope.cancel()
    assert outcome == []
    assert cache.serialize() == before
    count = len(polls(users))
    await anyio.lowlevel.checkpoint()
    assert len(polls(users)) == count == 1


async def test_provider_without_message_or_interval_gets_defaults(
    users: AuthorityEmulator, make_pca: Callable[..., Any]
) -> None:
    users.device_flow.include_message = False
    users.device_flow.include_interval = False
    app = make_pca()
    flow = await app.initiate_device_flow(SCOPES)
    assert flow["interval"] == 5
    assert flow["message"] == (
        f"To sign in, use a web browser to open the page {flow['verification_uri']} "
        f"and enter the code {flow['user_code']} to authenticate."
    )


async def test_initiate_error_is_an_error_dict(
    users: AuthorityEmulator, make_pca: Callable[..., Any]
) -> None:
    app = make_pca(client_id="00000000-0000-0000-0000-00000000dead")
    flow = await app.initiate_device_flow(SCOPES)
    assert flow["error"] == "unauthorized_client"
    assert "correlation_id" in flow
    with pytest.raises(ValueError, match="device_code"):
        await app.acquire_token_by_device_flow(flow)


async def test_bad_arguments(make_pca: Callable[..., Any]) -> None:
    app = make_pca()
    with pytest.raises(ValueError, match="reserved"):
        await app.initiate_device_flow(["openid"])
    with pytest.raises(TypeError, match="flow"):
        await app.acquire_token_by_device_flow("not a flow")
    with pytest.raises(TypeError, match="exit_condition"):
        await app.acquire_token_by_device_flow({"device_code": "x"}, exit_condition=1)
    with pytest.raises(TypeError, match=r"unexpected.*verify= on the app"):
        await app.acquire_token_by_device_flow({"device_code": "x"}, verify=False)
