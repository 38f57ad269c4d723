"""acquire_token_on_behalf_of: jwt-bearer grant, decorated scopes, no cache read, user cache."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from msal_async import ConfidentialClientApplication
from msal_async.testing import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, AuthorityEmulator

pytestmark = pytest.mark.anyio

Make = Callable[..., ConfidentialClientApplication]
USER_OID = "11111111-2222-3333-4444-555555555555"
DOWNSTREAM = ["api://downstream/read"]
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def user_token(emulator: AuthorityEmulator, audience: str = DEMO_CLIENT_ID) -> str:
    """The token a SPA sent to our middle-tier API."""
    return emulator.issue_access_token(
        audience=audience,
        client_id="spa-client",
        user_oid=USER_OID,
        scp="access_as_user",
        extra_claims={"preferred_username": "alice@contoso.onmicrosoft.com"},
    )


def token_posts(emulator: AuthorityEmulator) -> list[Any]:
    return [r for r in emulator.requests if r.method == "POST"]


async def test_obo_sends_msal_fields_and_returns_a_user_token(
    make_cca: Make, emulator: AuthorityEmulator
) -> None:
    assertion = user_token(emulator)
    result = await make_cca().acquire_token_on_behalf_of(assertion, DOWNSTREAM)
    assert "access_token" in result, result
    assert result["token_source"] == "identity_provider"
    assert result["id_token_claims"]["oid"] == USER_OID
    claims = emulator.decode(result["access_token"])
    assert (claims["aud"], claims["oid"], claims["scp"]) == ("api://downstream", USER_OID, "read")
    [post] = token_posts(emulator)
    assert post.form == {
        "client_id": DEMO_CLIENT_ID,
        "grant_type": JWT_BEARER,
        "client_secret": DEMO_CLIENT_SECRET,
        "client_info": "1",
        "scope": "api://downstream/read offline_access openid profile",
        "assertion": assertion,
        "requested_token_use": "on_behalf_of",
    }
    assert post.headers["x-client-current-telemetry"] == "4|523,0|"


async def test_obo_never_reads_the_cache_but_caches_under_the_user(
    make_cca: Make, emulator: AuthorityEmulator
) -> None:
    app = make_cca()
    assertion = user_token(emulator)
    first = await app.acquire_token_on_behalf_of(assertion, DOWNSTREAM)
    second = await app.acquire_token_on_behalf_of(assertion, DOWNSTREAM)
    assert first["access_token"] != second["access_token"]
    assert emulator.counts[JWT_BEARER] == 2
    home = f"{USER_OID}.{emulator.tenant_id}"
    [account] = app.token_cache.search("Account")
    assert account["home_account_id"] == home
    tokens = app.token_cache.search("AccessToken")
    assert {t["home_account_id"] for t in tokens} == {home}
    assert app.token_cache.search("RefreshToken", query={"home_account_id": home})
    assert app.token_cache.search("IdToken", query={"home_account_id": home})


async def test_capabilities_claims_and_forwarded_claims_are_merged(
    make_cca: Make, emulator: AuthorityEmulator
) -> None:
    app = make_cca(client_capabilities=["CP1"])
    challenge = json.dumps({"access_token": {"nbf": {"essential": True, "value": "1"}}})
    forwarded = json.dumps({"access_token": {"xms_az_nwperimid": {"values": ["p"]}}})
    result = await app.acquire_token_on_behalf_of(
        user_token(emulator),
        DOWNSTREAM,
        claims_challenge=challenge,
        forwarded_client_claims=forwarded,
    )
    assert "access_token" in result, result
    [post] = token_posts(emulator)
    sent = json.loads(post.form["claims"])["access_token"]
    assert sent["xms_cc"] == {"values": ["CP1"]}
    assert sent["nbf"]["value"] == "1"
    assert sent["xms_az_nwperimid"] == {"values": ["p"]}
    assert "client_claims" not in post.form


async def test_a_token_for_another_api_is_an_error_dict(
    make_cca: Make, emulator: AuthorityEmulator
) -> None:
    result = await make_cca().acquire_token_on_behalf_of(
        user_token(emulator, audience="api://someone-else"), DOWNSTREAM
    )
    assert result["error"] == "invalid_grant"
    assert "correlation_id" in result
    assert "access_token" not in result


async def test_obo_with_a_certificate_credential_uses_the_central_endpoint(
    make_cca: Make, emulator: AuthorityEmulator
) -> None:
    app = make_cca(azure_region="westus")
    result = await app.acquire_token_on_behalf_of(user_token(emulator), DOWNSTREAM)
    assert "access_token" in result
    [post] = token_posts(emulator)
    assert post.headers["host"] == "login.microsoftonline.com"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((None, DOWNSTREAM), TypeError),
        (("", DOWNSTREAM), TypeError),
        (("jwt", ["openid"]), ValueError),
        (("jwt", "api://x/read"), ValueError),
    ],
)
async def test_bad_arguments_raise_at_the_call(
    make_cca: Make, emulator: AuthorityEmulator, args: tuple[Any, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        await make_cca().acquire_token_on_behalf_of(*args)
    assert emulator.requests == []


async def test_unknown_keyword_arguments_are_rejected(make_cca: Make) -> None:
    with pytest.raises(TypeError, match="unexpected keyword"):
        await make_cca().acquire_token_on_behalf_of("jwt", DOWNSTREAM, bogus=1)
