"""The auth code flow: flow dict, PKCE, state and nonce checks, error passthrough, legacy API."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from msal_async import Prompt
from msal_async.testing import AuthorityEmulator, FakeClock, parse_auth_response

from .conftest import REDIRECT_URI, SCOPES, USERNAME, browse, sign_in, token_requests

pytestmark = pytest.mark.anyio


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def test_flow_dict_has_pkce_state_and_hashed_nonce(make_pca: Callable[..., Any]) -> None:
    app = make_pca()
    flow = await app.initiate_auth_code_flow(
        SCOPES,
        redirect_uri=REDIRECT_URI,
        login_hint=USERNAME,
        prompt=Prompt.SELECT_ACCOUNT,
        domain_hint="organizations",
        max_age=600,
        response_mode="form_post",
    )
    assert len(flow["code_verifier"]) == 43
    assert set(flow["code_verifier"]) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
    )
    assert flow["scope"] == ["User.Read", "offline_access", "openid", "profile"]
    assert flow["max_age"] == 600
    assert flow["claims_challenge"] is None
    query = query_of(flow["auth_uri"])
    digest = hashlib.sha256(flow["code_verifier"].encode()).digest()
    assert query["code_challenge"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert query["code_challenge_method"] == "S256"
    assert query["nonce"] == hashlib.sha256(flow["nonce"].encode()).hexdigest()
    assert query["state"] == flow["state"]
    assert query["X-AnchorMailbox"] == f"UPN:{USERNAME}"
    assert query["client_info"] == "1"
    assert query["scope"] == "User.Read offline_access openid profile"
    assert query["prompt"] == "select_account"
    assert query["max_age"] == "600"


async def test_query_mode_warns_like_msal(make_pca: Callable[..., Any]) -> None:
    app = make_pca()
    with pytest.warns(UserWarning, match="form_post"):
        await app.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT_URI)


@pytest.mark.parametrize("mode", ["form_post", "query"])
async def test_sign_in_caches_account_and_tokens(
    make_pca: Callable[..., Any], http: httpx.AsyncClient, users: AuthorityEmulator, mode: str
) -> None:
    app = make_pca()
    if mode == "query":
        with pytest.warns(UserWarning, match="form_post"):
            result = await sign_in(app, http, response_mode=None)
    else:
        result = await sign_in(app, http)
    assert result["token_source"] == "identity_provider"
    assert result["id_token_claims"]["preferred_username"] == USERNAME
    [account] = await app.get_accounts()
    assert account["username"] == USERNAME
    assert account["account_source"] == "authorization_code"
    [redeem] = token_requests(users, "authorization_code")
    uid, utid = account["home_account_id"].split(".")
    assert redeem.headers["x-anchormailbox"] == f"Oid:{uid}@{utid}"
    assert len(redeem.form["code_verifier"]) == 43
    assert redeem.headers["x-client-current-telemetry"] == "4|832,0|"


async def test_state_mismatch_and_missing_code_raise(make_pca: Callable[..., Any]) -> None:
    app = make_pca()
    flow = await app.initiate_auth_code_flow(SCOPES, response_mode="form_post")
    with pytest.raises(ValueError, match="state mismatch"):
        await app.acquire_token_by_auth_code_flow(flow, {"state": "other", "code": "x"})
    with pytest.raises(ValueError, match="code"):
        await app.acquire_token_by_auth_code_flow(flow, {"state": flow["state"]})
    with pytest.raises(ValueError, match="subset"):
        await app.acquire_token_by_auth_code_flow(
            flow, {"state": flow["state"], "code": "x"}, scopes=["Mail.Read"]
        )


async def test_error_response_is_passed_through_trimmed(make_pca: Callable[..., Any]) -> None:
    app = make_pca()
    flow = await app.initiate_auth_code_flow(SCOPES, response_mode="form_post")
    result = await app.acquire_token_by_auth_code_flow(
        flow,
        {"state": flow["state"], "error": "access_denied", "error_description": "no", "x": "y"},
    )
    assert result == {"error": "access_denied", "error_description": "no"}


async def test_nonce_mismatch_raises_and_caches_nothing(
    make_pca: Callable[..., Any], http: httpx.AsyncClient
) -> None:
    app = make_pca()
    flow = await app.initiate_auth_code_flow(
        SCOPES, response_mode="form_post", redirect_uri=REDIRECT_URI
    )
    auth_response = await browse(http, flow["auth_uri"])
    flow["nonce"] = "not-the-one-sent"
    with pytest.raises(RuntimeError, match="nonce"):
        await app.acquire_token_by_auth_code_flow(flow, auth_response)
    assert await app.get_accounts() == []


async def test_max_age_checks_auth_time(
    make_pca: Callable[..., Any], http: httpx.AsyncClient, clock: FakeClock
) -> None:
    app = make_pca()
    result = await sign_in(app, http, max_age=60)
    assert "auth_time" in result["id_token_claims"]
    flow = await app.initiate_auth_code_flow(
        SCOPES, response_mode="form_post", max_age=1, redirect_uri=REDIRECT_URI
    )
    auth_response = await browse(http, flow["auth_uri"])
    clock.set(10**10)  # long after the sign-in
    with pytest.raises(RuntimeError, match="auth_time"):
        await app.acquire_token_by_auth_code_flow(flow, auth_response)


async def test_legacy_url_and_code_redemption_warn(
    make_pca: Callable[..., Any], http: httpx.AsyncClient, users: AuthorityEmulator
) -> None:
    app = make_pca()
    with pytest.warns(DeprecationWarning, match="initiate_auth_code_flow"):
        url = await app.get_authorization_request_url(
            SCOPES, redirect_uri=REDIRECT_URI, state="s1", nonce="raw-nonce"
        )
    query = query_of(url)
    assert query["nonce"] == "raw-nonce"
    assert "code_challenge" not in query
    assert "client_info" not in query
    auth_response = parse_auth_response((await http.get(url)).headers["location"])
    assert auth_response["state"] == "s1"
    with pytest.warns(DeprecationWarning, match="acquire_token_by_auth_code_flow"):
        result = await app.acquire_token_by_authorization_code(
            auth_response["code"], SCOPES, redirect_uri=REDIRECT_URI, nonce="raw-nonce"
        )
    assert result["token_source"] == "identity_provider"
    with pytest.raises(AssertionError):
        await app.acquire_token_by_authorization_code("c", "User.Read")


async def test_reserved_scopes_are_rejected_and_capabilities_sent(
    make_pca: Callable[..., Any], http: httpx.AsyncClient, users: AuthorityEmulator
) -> None:
    app = make_pca(client_capabilities=["CP1"], exclude_scopes=["offline_access"])
    with pytest.raises(ValueError, match="reserved"):
        await app.initiate_auth_code_flow(["openid"], response_mode="form_post")
    flow = await app.initiate_auth_code_flow(SCOPES, response_mode="form_post")
    query = query_of(flow["auth_uri"])
    assert query["scope"] == "User.Read openid profile"
    assert '"xms_cc"' in query["claims"]
    result = await sign_in(app, http)
    assert "refresh_token" not in result  # offline_access was excluded
    [redeem] = token_requests(users, "authorization_code")
    assert '"CP1"' in redeem.form["claims"]


async def test_confidential_client_sends_its_secret(
    make_cca: Callable[..., Any], http: httpx.AsyncClient, users: AuthorityEmulator
) -> None:
    app = make_cca()
    result = await sign_in(app, http)
    assert result["token_source"] == "identity_provider"
    [redeem] = token_requests(users, "authorization_code")
    assert "client_secret" in redeem.form
