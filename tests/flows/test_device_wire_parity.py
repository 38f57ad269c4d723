"""Wire parity with msal 1.39 for the device code flow: initiate and poll, over HTTPS."""

from __future__ import annotations

from typing import Any

import anyio
import msal
import pytest

from msal_async import PublicClientApplication
from msal_async.testing import RecordedRequest

from ..conftest import HttpsAuthority, requests_session_trusting
from .conftest import PUBLIC_CLIENT_ID, USERNAME

pytestmark = pytest.mark.anyio

SCOPES = ["User.Read"]
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
GENERIC_HEADERS = {"host", "user-agent", "accept-encoding", "connection", "content-length"}
VARYING_VALUES = {"client-request-id", "x-client-sku", "x-client-ver"}


def run_msal(https: HttpsAuthority) -> dict[str, Any]:
    with requests_session_trusting(https.ca_file) as session:
        app = msal.PublicClientApplication(
            PUBLIC_CLIENT_ID,
            authority=https.authority,
            instance_discovery=False,
            http_client=session,
        )
        flow = app.initiate_device_flow(SCOPES)
        result: dict[str, Any] = app.acquire_token_by_device_flow(flow)
    return result


async def run_ours(https: HttpsAuthority) -> dict[str, Any]:
    async with PublicClientApplication(
        PUBLIC_CLIENT_ID,
        authority=https.authority,
        instance_discovery=False,
        verify=https.ca_file,
    ) as app:
        flow = await app.initiate_device_flow(SCOPES)
        return dict(await app.acquire_token_by_device_flow(flow))


def split(requests_: list[RecordedRequest]) -> tuple[RecordedRequest, list[RecordedRequest]]:
    [initiate] = [r for r in requests_ if r.path.endswith("/devicecode")]
    return initiate, [r for r in requests_ if r.form.get("grant_type") == DEVICE_GRANT]


def assert_same_headers(ours: RecordedRequest, theirs: RecordedRequest) -> None:
    their_names = {k for k in theirs.headers if k not in GENERIC_HEADERS}
    assert {k for k in ours.headers if k not in GENERIC_HEADERS} == their_names
    for name in their_names - VARYING_VALUES:
        assert ours.headers[name] == theirs.headers[name], name


async def test_device_flow_requests_match_msal(https_authority: HttpsAuthority) -> None:
    emulator = https_authority.emulator
    emulator.register_client(PUBLIC_CLIENT_ID)
    emulator.device_flow.interval = 0  # msal honours it too: no sleeping in this test

    def on_poll(auth: Any) -> None:
        if auth.polls >= 2:
            emulator.approve_device_code(auth.user_code, USERNAME)

    emulator.device_flow.on_poll = on_poll
    start = len(emulator.requests)
    theirs_result = await anyio.to_thread.run_sync(run_msal, https_authority)
    middle = len(emulator.requests)
    ours_result = await run_ours(https_authority)
    assert "access_token" in theirs_result
    assert "access_token" in ours_result
    their_init, their_polls = split(emulator.requests[start:middle])
    our_init, our_polls = split(emulator.requests[middle:])
    assert our_init.form == their_init.form
    assert_same_headers(our_init, their_init)
    assert len(our_polls) == len(their_polls) == 2
    for ours, theirs in zip(our_polls, their_polls, strict=True):
        assert set(ours.form) == set(theirs.form)
        for name in set(theirs.form) - {"device_code", "code"}:
            assert ours.form[name] == theirs.form[name], name
        assert_same_headers(ours, theirs)
    for init, polls in ((their_init, their_polls), (our_init, our_polls)):
        assert {p.headers["client-request-id"] for p in polls} == {
            init.headers["client-request-id"]
        }
