"""oidc-provider interop: discovery, client secret, and the fixture's own login and device drivers."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from msal_async import ConfidentialClientApplication

from .harness import (
    CERT_CLIENT_ID,
    PUBLIC_CLIENT_ID,
    RESOURCE,
    SECRET_CLIENT_ID,
    SECRET_CLIENT_SECRET,
    OidcProvider,
    OidcProviderError,
)

REDIRECT_URI = "http://localhost:53117/callback"  # registered without a port (loopback rule)
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def discovery(provider: OidcProvider) -> dict[str, Any]:
    with provider.http_client() as client:
        response = client.get(f"{provider.issuer}/.well-known/openid-configuration")
    response.raise_for_status()
    document: dict[str, Any] = response.json()
    return document


def verified_claims(provider: OidcProvider, token: str) -> dict[str, Any]:
    """Claims of a JWT signed by the provider (signature checked against its JWKS)."""
    with provider.http_client() as client:
        keys = KeySet.import_key_set(client.get(discovery(provider)["jwks_uri"]).json())
    return dict(jwt.decode(token, keys).claims)


def token_request(provider: OidcProvider, form: dict[str, str]) -> httpx.Response:
    with provider.http_client() as client:
        return client.post(f"{provider.issuer}/token", data=form)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(32)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_url(provider: OidcProvider, challenge: str, state: str, **extra: str) -> str:
    query = {
        "client_id": PUBLIC_CLIENT_ID,
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile offline_access api:read",
        "state": state,
        "nonce": secrets.token_urlsafe(16),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    return f"{provider.issuer}/auth?{urlencode(query)}"


def redeem(provider: OidcProvider, code: str, verifier: str) -> dict[str, Any]:
    response = token_request(
        provider,
        {
            "grant_type": "authorization_code",
            "client_id": PUBLIC_CLIENT_ID,
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
    )
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def test_discovery_document_names_every_endpoint_the_flows_need(
    oidc_provider: OidcProvider,
) -> None:
    document = discovery(oidc_provider)

    assert document["issuer"] == oidc_provider.issuer
    assert document["token_endpoint"] == f"{oidc_provider.issuer}/token"
    assert document["device_authorization_endpoint"].startswith(oidc_provider.issuer)
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert {"client_credentials", DEVICE_GRANT, "refresh_token"} <= set(
        document["grant_types_supported"]
    )
    assert {"client_secret_post", "private_key_jwt", "none"} <= set(
        document["token_endpoint_auth_methods_supported"]
    )


@pytest.mark.anyio
async def test_client_secret_tokens_from_two_cold_apps_are_both_issued(
    oidc_provider: OidcProvider,
) -> None:
    results = []
    for _ in range(2):  # two separate apps: nothing cached, two token requests
        async with ConfidentialClientApplication(
            SECRET_CLIENT_ID,
            client_credential=SECRET_CLIENT_SECRET,
            oidc_authority=oidc_provider.issuer,
            verify=oidc_provider.ca_file,
        ) as app:
            results.append(await app.acquire_token_for_client(["api:read"]))

    for result in results:
        assert "access_token" in result, result
        assert result["token_type"] == "Bearer"
        assert result["token_source"] == "identity_provider"
        claims = verified_claims(oidc_provider, result["access_token"])
        assert claims["aud"] == RESOURCE
        assert claims["client_id"] == SECRET_CLIENT_ID
        assert claims["scope"] == "api:read"
    assert results[0]["access_token"] != results[1]["access_token"]


@pytest.mark.anyio
async def test_wrong_secret_is_an_invalid_client_error_dict(oidc_provider: OidcProvider) -> None:
    async with ConfidentialClientApplication(
        SECRET_CLIENT_ID,
        client_credential="not-the-secret",
        oidc_authority=oidc_provider.issuer,
        verify=oidc_provider.ca_file,
    ) as app:
        result = await app.acquire_token_for_client(["api:read"])

    assert result["error"] == "invalid_client"
    assert "access_token" not in result


def test_login_drives_auth_code_with_pkce_and_refresh_rotates(
    oidc_provider: OidcProvider,
) -> None:
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(16)

    final = oidc_provider.login(authorize_url(oidc_provider, challenge, state, prompt="consent"))

    assert isinstance(final, str)
    assert final.startswith(REDIRECT_URI + "?")
    response = dict(parse_qsl(urlsplit(final).query))
    assert response["state"] == state
    assert response["iss"] == oidc_provider.issuer
    tokens = redeem(oidc_provider, response["code"], verifier)
    id_claims = verified_claims(oidc_provider, tokens["id_token"])
    assert id_claims["sub"] == "alice"
    assert id_claims["aud"] == PUBLIC_CLIENT_ID
    assert verified_claims(oidc_provider, tokens["access_token"])["aud"] == RESOURCE
    assert tokens["scope"] == "api:read"  # a resource's token lists only the resource's scopes
    assert tokens["refresh_token"]

    refreshed = token_request(
        oidc_provider,
        {
            "grant_type": "refresh_token",
            "client_id": PUBLIC_CLIENT_ID,
            "refresh_token": tokens["refresh_token"],
        },
    ).json()
    assert refreshed["refresh_token"] != tokens["refresh_token"]  # rotated for public clients


def test_without_prompt_consent_offline_access_is_dropped(oidc_provider: OidcProvider) -> None:
    verifier, challenge = pkce_pair()

    params = oidc_provider.auth_response(
        authorize_url(oidc_provider, challenge, "s1"), username="bob"
    )
    tokens = redeem(oidc_provider, params["code"], verifier)

    assert "refresh_token" not in tokens
    assert "offline_access" not in tokens["scope"].split()
    assert verified_claims(oidc_provider, tokens["id_token"])["sub"] == "bob"


def test_login_returns_form_post_fields(oidc_provider: OidcProvider) -> None:
    _, challenge = pkce_pair()

    fields = oidc_provider.login(
        authorize_url(oidc_provider, challenge, "s2", response_mode="form_post")
    )

    assert isinstance(fields, dict)
    assert fields["state"] == "s2"
    assert fields["code"]


def test_login_refused_consent_returns_access_denied(oidc_provider: OidcProvider) -> None:
    _, challenge = pkce_pair()

    params = oidc_provider.auth_response(
        authorize_url(oidc_provider, challenge, "s3"), approve=False
    )

    assert params["error"] == "access_denied"
    assert params["state"] == "s3"


def test_login_without_pkce_is_refused_for_the_public_client(oidc_provider: OidcProvider) -> None:
    url = authorize_url(oidc_provider, "x", "s4")
    url = url.replace("code_challenge=x&code_challenge_method=S256", "")

    params = oidc_provider.auth_response(url)

    assert params["error"] == "invalid_request"


def device_authorization(provider: OidcProvider) -> dict[str, Any]:
    with provider.http_client() as client:
        response = client.post(
            f"{provider.issuer}/device/auth",
            data={"client_id": PUBLIC_CLIENT_ID, "scope": "openid offline_access api:read"},
        )
    assert response.status_code == 200, response.text
    flow: dict[str, Any] = response.json()
    return flow


def device_token(provider: OidcProvider, device_code: str) -> dict[str, Any]:
    form = {"grant_type": DEVICE_GRANT, "client_id": PUBLIC_CLIENT_ID, "device_code": device_code}
    result: dict[str, Any] = token_request(provider, form).json()
    return result


def test_confirm_device_code_completes_the_device_flow(oidc_provider: OidcProvider) -> None:
    flow = device_authorization(oidc_provider)
    assert "interval" not in flow  # msal's defaults apply
    assert device_token(oidc_provider, flow["device_code"])["error"] == "authorization_pending"

    oidc_provider.confirm_device_code(flow["user_code"], username="carol")

    tokens = device_token(oidc_provider, flow["device_code"])
    assert verified_claims(oidc_provider, tokens["id_token"])["sub"] == "carol"
    assert tokens["refresh_token"]  # kept without prompt=consent in the device flow


def test_aborted_device_code_is_access_denied(oidc_provider: OidcProvider) -> None:
    flow = device_authorization(oidc_provider)

    oidc_provider.confirm_device_code(flow["user_code"], approve=False)

    assert device_token(oidc_provider, flow["device_code"])["error"] == "access_denied"


def test_unknown_user_code_raises(oidc_provider: OidcProvider) -> None:
    with pytest.raises(OidcProviderError, match=r"op\.deviceConfirmForm"):
        oidc_provider.confirm_device_code("BCDF-GHJK")


def client_assertion(provider: OidcProvider, jti: str, alg: str) -> str:
    now = int(time.time())
    claims = {
        "iss": CERT_CLIENT_ID,
        "sub": CERT_CLIENT_ID,
        "aud": f"{provider.issuer}/token",
        "iat": now,
        "exp": now + 600,
        "jti": jti,
    }
    key = RSAKey.import_key(provider.client_certificate.key_pem)
    return jwt.encode({"alg": alg, "typ": "JWT"}, claims, key, algorithms=[alg])


@pytest.mark.parametrize("alg", ["RS256", "PS256"])  # msal: RS256 with thumbprint, PS256 with cert
def test_private_key_jwt_client_accepts_a_fresh_assertion_and_rejects_a_replay(
    oidc_provider: OidcProvider, alg: str
) -> None:
    assertion = client_assertion(oidc_provider, str(uuid.uuid4()), alg)
    form = {
        "grant_type": "client_credentials",
        "client_id": CERT_CLIENT_ID,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
        "scope": "api:write",
    }

    first = token_request(oidc_provider, form)
    replay = token_request(oidc_provider, form)

    assert first.status_code == 200, first.text
    assert verified_claims(oidc_provider, first.json()["access_token"])["scope"] == "api:write"
    assert replay.json()["error"] == "invalid_client"


def test_added_client_without_resource_gets_opaque_tokens_for_static_scopes(
    oidc_provider: OidcProvider,
) -> None:
    client_id = oidc_provider.add_client(
        "added-plain",
        client_secret="added-plain-secret-0123456789",
        token_endpoint_auth_method="client_secret_post",
        grant_types=["client_credentials"],
        response_types=[],
        redirect_uris=[],
    )

    response = token_request(
        oidc_provider,
        {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": "added-plain-secret-0123456789",
            "scope": "api:read openid",
        },
    ).json()

    assert response["scope"] == "openid"  # api:read is no static scope without a resource
    assert response["access_token"].count(".") == 0  # opaque


def test_add_client_reports_invalid_metadata(oidc_provider: OidcProvider) -> None:
    with pytest.raises(OidcProviderError, match="redirect_uris"):
        oidc_provider.add_client("bad", token_endpoint_auth_method="none", redirect_uris=[])
