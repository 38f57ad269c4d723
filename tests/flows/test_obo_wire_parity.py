"""Wire parity with msal 1.39 for acquire_token_on_behalf_of: same fields, same headers."""

from __future__ import annotations

import msal
import pytest

from msal_async import ConfidentialClientApplication
from msal_async.testing import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, RecordedRequest

from ..conftest import HttpsAuthority, requests_session_trusting

pytestmark = pytest.mark.anyio

SCOPES = ["api://downstream/read", "api://downstream/write"]
GENERIC_HEADERS = {"host", "user-agent", "accept-encoding", "connection", "content-length"}
VARYING_VALUES = {"client-request-id", "x-client-sku", "x-client-ver"}
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def obo_posts(https: HttpsAuthority, start: int) -> list[RecordedRequest]:
    return [r for r in https.emulator.requests[start:] if r.form.get("grant_type") == JWT_BEARER]


@pytest.mark.parametrize(
    "options",
    [{}, {"client_capabilities": ["CP1"], "app_name": "parity", "app_version": "1.0"}],
    ids=["plain", "capabilities"],
)
async def test_obo_request_matches_msal(
    https_authority: HttpsAuthority, options: dict[str, object]
) -> None:
    emulator = https_authority.emulator
    assertion = emulator.issue_access_token(
        audience=DEMO_CLIENT_ID, client_id="spa", user_oid="0a0b0c0d-0000-4000-8000-000000000001"
    )
    start = len(emulator.requests)
    with requests_session_trusting(https_authority.ca_file) as session:
        theirs_app = msal.ConfidentialClientApplication(
            DEMO_CLIENT_ID,
            client_credential=DEMO_CLIENT_SECRET,
            authority=https_authority.authority,
            instance_discovery=False,
            http_client=session,
            **options,
        )
        theirs_result = theirs_app.acquire_token_on_behalf_of(assertion, SCOPES)
    middle = len(emulator.requests)
    async with ConfidentialClientApplication(
        DEMO_CLIENT_ID,
        client_credential=DEMO_CLIENT_SECRET,
        authority=https_authority.authority,
        instance_discovery=False,
        verify=https_authority.ca_file,
        **options,  # type: ignore[arg-type]
    ) as app:
        ours_result = await app.acquire_token_on_behalf_of(assertion, SCOPES)
    assert "access_token" in theirs_result, theirs_result
    assert "access_token" in ours_result, ours_result
    assert set(ours_result) == set(theirs_result)
    [theirs] = obo_posts(https_authority, start)[:1]
    [ours] = obo_posts(https_authority, middle)
    assert ours.path == theirs.path
    assert ours.form == theirs.form
    their_headers = {k for k in theirs.headers if k not in GENERIC_HEADERS}
    assert {k for k in ours.headers if k not in GENERIC_HEADERS} == their_headers
    for name in their_headers - VARYING_VALUES:
        assert ours.headers[name] == theirs.headers[name], name
    [their_account] = list(theirs_app.token_cache.search("Account"))
    [our_account] = list(app.token_cache.search("Account"))
    assert our_account == their_account  # cached under the same user account
