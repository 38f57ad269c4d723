"""A caller's ``data=`` cannot change the request's own fields, on the wire or in the cache.

Both libraries get ``acquire_token_for_client(["api://a/.default"], data={field: value})``
against the same emulator over HTTPS on 127.0.0.1, and the emulator records what each sent.
Our rule: the request's own fields always win (``scope``, ``claims``, ``client_id``,
``grant_type``, ``client_info``, and the credential's ``client_secret`` / ``client_assertion``
/ ``client_assertion_type``). msal 1.39 agrees for ``scope`` (its argument wins) and ``claims``
(dropped) but lets ``data`` override or add the others: see ``MSAL_SENDS`` below, and the
README's list of deliberate differences.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import anyio
import msal
import pytest

from msal_async import ConfidentialClientApplication
from msal_async.testing import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

from ..conftest import HttpsAuthority, requests_session_trusting

pytestmark = pytest.mark.anyio

ASKED = "api://a/.default"
OTHER = "api://b/.default"
FOREIGN = '{"access_token": {"xms_cc": {"values": ["CP1"]}}}'

#: What each field of ``data`` tries to put on the wire.
ATTEMPTS: dict[str, str] = {
    "scope": OTHER,
    "claims": FOREIGN,
    "client_id": "00000000-0000-0000-0000-00000000e5e1",
    "grant_type": "password",
    "client_info": "0",
    "client_secret": "not-the-secret",
    "client_assertion": "not.an.assertion",
    "client_assertion_type": "urn:example:not-a-type",
}

#: What our request carries whatever ``data`` says (None: the field is not sent).
OWN: dict[str, str | None] = {
    "scope": ASKED,
    "claims": None,
    "client_id": DEMO_CLIENT_ID,
    "grant_type": "client_credentials",
    "client_info": "1",
    "client_secret": DEMO_CLIENT_SECRET,
    "client_assertion": None,
    "client_assertion_type": None,
}

#: What msal 1.39 sends for each field, observed on the wire by this test: "own" (its own
#: value wins, as ours always does), "dropped" (not sent), or "data" (the caller's value is
#: sent: msal differs from us there).
MSAL_SENDS: dict[str, str] = {
    "scope": "own",
    "claims": "dropped",
    "client_id": "data",
    "grant_type": "data",
    "client_info": "data",
    "client_secret": "data",
    "client_assertion": "data",  # sent beside the client_secret
    "client_assertion_type": "data",
}


@pytest.fixture
def https(https_authority: HttpsAuthority) -> HttpsAuthority:
    """The shared HTTPS emulator with nothing recorded yet."""
    https_authority.emulator.reset()
    return https_authority


def _last_token_post(https: HttpsAuthority) -> dict[str, str]:
    posts = [r for r in https.emulator.requests if r.path.endswith("/oauth2/v2.0/token")]
    assert posts, "no token request was sent"
    return dict(posts[-1].form)


def _audience(access_token: str) -> Any:
    payload = access_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["aud"]


def _msal_sends(https: HttpsAuthority, field: str) -> dict[str, str]:
    """Real msal's token POST for ``data={field: ATTEMPTS[field]}``, as the emulator got it."""
    https.emulator.reset()
    app = msal.ConfidentialClientApplication(
        DEMO_CLIENT_ID,
        client_credential=DEMO_CLIENT_SECRET,
        authority=https.authority,
        instance_discovery=False,
        http_client=requests_session_trusting(https.ca_file),
    )
    app.acquire_token_for_client([ASKED], data={field: ATTEMPTS[field]})
    return _last_token_post(https)


@pytest.mark.parametrize("field", list(ATTEMPTS))
async def test_data_cannot_override_a_request_field(https: HttpsAuthority, field: str) -> None:
    theirs = await anyio.to_thread.run_sync(_msal_sends, https, field)
    https.emulator.reset()
    async with ConfidentialClientApplication(
        DEMO_CLIENT_ID,
        client_credential=DEMO_CLIENT_SECRET,
        authority=https.authority,
        verify=https.ca_file,
        instance_discovery=False,
    ) as app:
        result = await app.acquire_token_for_client([ASKED], data={field: ATTEMPTS[field]})
        ours = _last_token_post(https)
        assert "access_token" in result, result
        assert ours.get(field) == OWN[field]
        assert _audience(result["access_token"]) == "api://a"

        # What is cached under the key is what was asked: a plain call is served from it...
        again = await app.acquire_token_for_client([ASKED])
        assert again["token_source"] == "cache"
        assert again["access_token"] == result["access_token"]
        [entry] = app.token_cache.search("AccessToken")
        assert entry["target"] == ASKED
        # ... and a call for the scope data= named gets its own token, for its own audience.
        other = await app.acquire_token_for_client([OTHER])
        assert other["token_source"] == "identity_provider"
        assert _audience(other["access_token"]) == "api://b"

    expected = {"own": OWN[field], "dropped": None, "data": ATTEMPTS[field]}[MSAL_SENDS[field]]
    assert theirs.get(field) == expected, f"msal 1.39 no longer sends {field} as recorded"


async def test_the_same_scope_with_and_without_data_scope_share_one_key(
    https: HttpsAuthority,
) -> None:
    """Concurrent callers, one with data={"scope": other}: both get the asked scope's token."""
    async with ConfidentialClientApplication(
        DEMO_CLIENT_ID,
        client_credential=DEMO_CLIENT_SECRET,
        authority=https.authority,
        verify=https.ca_file,
        instance_discovery=False,
    ) as app:
        results: list[dict[str, Any]] = []

        async def call(data: dict[str, str] | None) -> None:
            results.append(dict(await app.acquire_token_for_client([ASKED], data=data)))

        async with anyio.create_task_group() as group:
            group.start_soon(call, {"scope": OTHER})
            group.start_soon(call, None)
            group.start_soon(call, {"claims": FOREIGN})
        assert {_audience(r["access_token"]) for r in results} == {"api://a"}
        sent = [r.form["scope"] for r in https.emulator.requests if "scope" in r.form]
        assert sent
        assert set(sent) == {ASKED}
