"""Malformed fields and hostile JSON from the token endpoint are error dicts for every caller.

Issue 10, findings 2 and 3: numbers msal computes with (``expires_in: 1e400`` or ``null``,
``ext_expires_in``/``refresh_in`` = ``"abc"``), a ``client_info`` that is not base64url JSON,
an ``id_token`` with no ``sub`` and no ``client_info``, and JSON nested 200,000 levels deep
(a success body, a 400 error body, or inside ``client_info``) used to raise OverflowError,
TypeError, ValueError, KeyError or RecursionError out of ``acquire_*`` - to every caller
sharing the request. Now each is an ``invalid_response`` error dict and nothing is cached.
"""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest

from msal_async import ConfidentialClientApplication
from msal_async._oauth2.responses import parse_token_response
from msal_async.testing import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_TENANT_ID,
    AuthorityEmulator,
)

from ..hostile import DEEP, GOOD_TOKEN, NO_SUB, Bend, b64url

AUTHORITY = "https://login.microsoftonline.com/" + DEMO_TENANT_ID

pytestmark = pytest.mark.anyio

SCOPES = ["api://hostile/.default"]

#: Token response bodies with one field bent; each used to raise out of acquire_*.
MALFORMED_TOKEN_BODIES = {
    "expires_in 1e400": '{"access_token": "at", "token_type": "Bearer", "expires_in": 1e400}',
    "expires_in null": '{"access_token": "at", "token_type": "Bearer", "expires_in": null}',
    "ext_expires_in abc": GOOD_TOKEN + ', "ext_expires_in": "abc"}',
    "refresh_in abc": GOOD_TOKEN + ', "refresh_in": "abc"}',
    "client_info !!!": GOOD_TOKEN + ', "client_info": "!!!"}',
    "id_token without sub": GOOD_TOKEN + f', "id_token": "{NO_SUB}"}}',
    "client_info nested 200,000 deep": GOOD_TOKEN + f', "client_info": "{b64url(DEEP.encode())}"}}',
    "body nested 200,000 deep": DEEP,
    "expires_in of 5000 digits": GOOD_TOKEN.replace("3599", "9" * 5000) + "}",
    "expires_in NaN": GOOD_TOKEN.replace("3599", "NaN") + "}",
}


@pytest.fixture(scope="module")
def shared_emulator() -> AuthorityEmulator:
    """One emulator for the module (making one generates a signing key)."""
    return AuthorityEmulator(latency=0.05)  # long enough for all five callers to join


@pytest.fixture
def slow_emulator(shared_emulator: AuthorityEmulator) -> AuthorityEmulator:
    """The module's emulator, its counts reset."""
    shared_emulator.reset()
    return shared_emulator


@pytest.mark.parametrize("body", MALFORMED_TOKEN_BODIES.values(), ids=MALFORMED_TOKEN_BODIES)
def test_malformed_fields_are_invalid_response(body: str) -> None:
    raw = parse_token_response(200, body, correlation_id="c")
    assert raw["error"] == "invalid_response"
    assert raw["correlation_id"] == "c"
    assert "at" not in raw.values()


def test_a_deep_error_body_is_invalid_response() -> None:
    raw = parse_token_response(400, DEEP, correlation_id="c")
    assert raw["error"] == "invalid_response"
    assert "nests" in raw["error_description"]


@pytest.mark.parametrize("body", MALFORMED_TOKEN_BODIES.values(), ids=MALFORMED_TOKEN_BODIES)
async def test_every_waiter_of_a_shared_request_gets_the_error_dict(
    slow_emulator: AuthorityEmulator, body: str
) -> None:
    emulator = slow_emulator
    bend = Bend(emulator, lambda _: body)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=bend)) as http:
        app = ConfidentialClientApplication(
            DEMO_CLIENT_ID,
            client_credential=DEMO_CLIENT_SECRET,
            authority=AUTHORITY,
            http_client=http,
        )
        results: list[dict[str, Any]] = []

        async def one() -> None:
            results.append(dict(await app.acquire_token_for_client(SCOPES)))

        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(one)
        assert [r.get("error") for r in results] == ["invalid_response"] * 5
        assert emulator.counts["client_credentials"] == 1  # one request, shared
        assert list(app.token_cache.search("AccessToken")) == []  # nothing cached
        bend.active = False
        assert (await app.acquire_token_for_client(SCOPES))["token_source"] == "identity_provider"
