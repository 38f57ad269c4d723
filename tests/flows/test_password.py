"""Username/password (ROPC): managed users, federated users through MEX and WS-Trust."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from msal_async import PublicClientApplication, SerializableTokenCache
from msal_async.testing import AuthorityEmulator, FederationServer

from .conftest import AUTHORITY, PUBLIC_CLIENT_ID, USERNAME

pytestmark = pytest.mark.anyio

SCOPES = ["User.Read"]
PASSWORD = "correct horse <battery> & 'staple'"
FEDERATED = "bob@fabrikam.example"
SAML11 = "urn:ietf:params:oauth:grant-type:saml1_1-bearer"


@pytest.fixture
def federation(users: AuthorityEmulator) -> FederationServer:
    """The emulator behind a fake AD FS, with a managed and a federated user."""
    users.add_user(USERNAME, name="Alice", password=PASSWORD)
    users.add_password_user(FEDERATED, PASSWORD, name="Bob", federated=True)
    return FederationServer(users)


@pytest.fixture
async def fed_http(federation: FederationServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=federation)) as client:
        yield client


@pytest.fixture
def make_app(fed_http: httpx.AsyncClient) -> Callable[..., PublicClientApplication]:
    def make(**kwargs: Any) -> PublicClientApplication:
        kwargs.setdefault("authority", AUTHORITY)
        return PublicClientApplication(PUBLIC_CLIENT_ID, http_client=fed_http, **kwargs)

    return make


async def ropc(app: PublicClientApplication, username: str, password: str) -> dict[str, Any]:
    with pytest.warns(DeprecationWarning, match="ropc-migration"):
        return dict(await app.acquire_token_by_username_password(username, password, SCOPES))


async def test_managed_user_gets_tokens_via_the_password_grant(
    federation: FederationServer, make_app: Callable[..., PublicClientApplication]
) -> None:
    emulator = federation.emulator
    app = make_app()
    result = await ropc(app, USERNAME, PASSWORD)
    assert result["id_token_claims"]["preferred_username"] == USERNAME
    realm, token = [r for r in emulator.requests if "openid" not in r.path]
    assert realm.path == f"/common/userrealm/{USERNAME}"
    assert realm.query == {"api-version": "1.0"}
    assert token.form["grant_type"] == "password"
    assert token.form["username"] == USERNAME
    assert token.form["password"] == PASSWORD
    assert token.form["scope"] == "User.Read offline_access openid profile"
    assert token.headers["x-anchormailbox"] == f"upn:{USERNAME}"
    assert token.headers["x-client-current-telemetry"] == "4|301,0|"
    assert realm.headers["client-request-id"] == token.headers["client-request-id"]
    assert federation.requests == []
    [account] = await app.get_accounts(username=USERNAME)
    silent = await app.acquire_token_silent(SCOPES, account)
    assert silent is not None
    assert silent["token_source"] == "cache"


async def test_wrong_password_is_an_error_dict_and_caches_nothing(
    federation: FederationServer, make_app: Callable[..., PublicClientApplication]
) -> None:
    cache = SerializableTokenCache()
    app = make_app(token_cache=cache)
    before = cache.serialize()
    result = await ropc(app, USERNAME, "nope")
    assert result["error"] == "invalid_grant"
    assert "50126" in result["error_description"]
    assert cache.serialize() == before


async def test_federated_user_signs_in_through_ws_trust_13(
    federation: FederationServer, make_app: Callable[..., PublicClientApplication]
) -> None:
    app = make_app()
    result = await ropc(app, FEDERATED, PASSWORD)
    assert result["id_token_claims"]["preferred_username"] == FEDERATED
    mex, rst = federation.requests
    assert (mex.method, mex.path) == ("GET", "/adfs/services/trust/mex")
    assert rst.path == "/adfs/services/trust/13/usernamemixed"  # 1.3 preferred over 2005
    assert rst.headers["soapaction"].endswith("/200512/RST/Issue")
    assert rst.headers["content-type"] == "application/soap+xml; charset=utf-8"
    assert "&lt;battery&gt; &amp; &apos;staple&apos;" in rst.body  # escaped, never raw
    assert "<battery>" not in rst.body
    [grant] = [r for r in federation.emulator.requests if r.form.get("grant_type") == SAML11]
    assert "password" not in grant.form
    assert "username" not in grant.form
    assert set(grant.form) == {"client_id", "grant_type", "client_info", "scope", "assertion"}
    [account] = await app.get_accounts()
    assert account["username"] == FEDERATED


async def test_federated_wrong_password_is_an_error_dict(
    federation: FederationServer, make_app: Callable[..., PublicClientApplication]
) -> None:
    app = make_app()
    result = await ropc(app, FEDERATED, "nope")
    assert result["error"] == "invalid_grant"
    assert "FailedAuthentication" in result["error_description"]
    assert "nope" not in str(result)
    assert await app.get_accounts() == []


async def test_the_password_is_never_logged(
    federation: FederationServer,
    make_app: Callable[..., PublicClientApplication],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    app = make_app()
    await ropc(app, FEDERATED, PASSWORD)
    await ropc(app, USERNAME, PASSWORD)
    await ropc(app, FEDERATED, "wrong-" + PASSWORD)
    assert "horse" not in caplog.text


async def test_confidential_client_gets_no_deprecation_warning(
    make_cca: Callable[..., Any], emulator: AuthorityEmulator
) -> None:
    emulator.add_user(USERNAME, password=PASSWORD)
    app = make_cca()
    result = await app.acquire_token_by_username_password(USERNAME, PASSWORD, SCOPES)
    assert "access_token" in result


async def test_bad_arguments(make_app: Callable[..., PublicClientApplication]) -> None:
    app = make_app()
    with (
        pytest.warns(DeprecationWarning, match="ropc"),
        pytest.raises(ValueError, match="auth_scheme"),
    ):
        await app.acquire_token_by_username_password(USERNAME, "x", SCOPES, auth_scheme=object())
    with pytest.warns(DeprecationWarning, match="ropc"), pytest.raises(TypeError, match="keyword"):
        await app.acquire_token_by_username_password(USERNAME, "x", SCOPES, proxies="http://p")
