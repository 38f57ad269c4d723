"""Wire parity: real msal 1.39 and msal_async send the same client-credential requests."""

from __future__ import annotations

from typing import Any

import anyio
import msal
import pytest
import requests
import requests.adapters

from msal_async import ConfidentialClientApplication
from msal_async.testing import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, RecordedRequest

from .conftest import HttpsAuthority

pytestmark = pytest.mark.anyio

SCOPES = ["api://parity/.default"]
# Headers every HTTP library adds on its own; the rest are msal's and must match by name.
GENERIC_HEADERS = {"host", "user-agent", "accept-encoding", "connection", "content-length"}
# Values that are per-request or per-library by design.
VARYING_VALUES = {"client-request-id", "x-client-sku", "x-client-ver"}


def token_posts(https: HttpsAuthority, start: int) -> list[RecordedRequest]:
    return [
        r
        for r in https.emulator.requests[start:]
        if r.method == "POST" and r.form.get("grant_type") == "client_credentials"
    ]


def msal_session(https: HttpsAuthority) -> requests.Session:
    """msal's own default session, except that the CA bundle env vars can't override verify."""
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise win over verify (requests#3829)
    session.verify = https.ca_file
    adapter = requests.adapters.HTTPAdapter(max_retries=1)
    session.mount("https://", adapter)
    return session


def run_msal(
    https: HttpsAuthority, *, scopes: list[str] = SCOPES, **kwargs: object
) -> dict[str, object]:
    """Real msal's acquire_token_for_client against the HTTPS emulator."""
    with msal_session(https) as session:
        app = msal.ConfidentialClientApplication(
            DEMO_CLIENT_ID,
            client_credential=DEMO_CLIENT_SECRET,
            authority=https.authority,
            instance_discovery=False,
            http_client=session,
            **kwargs,
        )
        result: dict[str, object] = app.acquire_token_for_client(scopes)
    return result


async def run_ours(https: HttpsAuthority, **kwargs: object) -> dict[str, object]:
    async with ConfidentialClientApplication(
        DEMO_CLIENT_ID,
        client_credential=DEMO_CLIENT_SECRET,
        authority=https.authority,
        instance_discovery=False,
        verify=https.ca_file,
        **kwargs,  # type: ignore[arg-type]
    ) as app:
        return dict(await app.acquire_token_for_client(SCOPES))


@pytest.mark.parametrize(
    "options",
    [{}, {"client_capabilities": ["CP1"], "app_name": "parity", "app_version": "9.9"}],
    ids=["plain", "capabilities-and-app-headers"],
)
async def test_client_credentials_request_matches_msal_field_by_field(
    https_authority: HttpsAuthority, options: dict[str, Any]
) -> None:
    start = len(https_authority.emulator.requests)
    theirs_result = await anyio.to_thread.run_sync(lambda: run_msal(https_authority, **options))
    middle = len(https_authority.emulator.requests)
    ours_result = await run_ours(https_authority, **options)
    assert "access_token" in theirs_result
    assert "access_token" in ours_result
    [theirs] = token_posts(https_authority, start)[:1]
    [ours] = token_posts(https_authority, middle)
    assert ours.path == theirs.path
    assert ours.form == theirs.form  # same fields, same values
    their_headers = {k for k in theirs.headers if k not in GENERIC_HEADERS}
    our_headers = {k for k in ours.headers if k not in GENERIC_HEADERS}
    assert our_headers == their_headers
    for name in their_headers - VARYING_VALUES:
        assert ours.headers[name] == theirs.headers[name], name


async def test_discovery_requests_match_msal(https_authority: HttpsAuthority) -> None:
    start = len(https_authority.emulator.requests)
    await anyio.to_thread.run_sync(lambda: run_msal(https_authority))
    middle = len(https_authority.emulator.requests)
    await run_ours(https_authority)
    theirs = [(r.method, r.path) for r in https_authority.emulator.requests[start:middle]]
    ours = [(r.method, r.path) for r in https_authority.emulator.requests[middle:]]
    assert ours == theirs
