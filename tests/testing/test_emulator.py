"""The authority emulator answers msal's Entra endpoints, counts, records and misbehaves on demand."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

import anyio
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey

from msal_async.testing import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_TENANT_ID,
    AuthorityEmulator,
    EntraError,
    Fault,
    RecordedRequest,
    SigningKey,
    TokenRequest,
    make_client_info,
)

from ..credentials.certs import self_signed

AUTHORITY_HOST = "https://login.microsoftonline.com"
TOKEN_PATH = f"/{DEMO_TENANT_ID}/oauth2/v2.0/token"
SCOPE = "api://x/.default"

# One key for the whole module: RSA generation costs tens of milliseconds per emulator.
KEY = SigningKey.generate()


def make_emulator(**options: Any) -> AuthorityEmulator:
    return AuthorityEmulator(signing_key=KEY, **options)


def client(emulator: AuthorityEmulator, base_url: str = AUTHORITY_HOST) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator), base_url=base_url)


def cc_form(**overrides: str) -> dict[str, str]:
    form = {
        "client_id": DEMO_CLIENT_ID,
        "grant_type": "client_credentials",
        "client_info": "1",
        "client_secret": DEMO_CLIENT_SECRET,
        "scope": SCOPE,
    }
    form.update(overrides)
    return {name: value for name, value in form.items() if value}


async def post_token(
    emulator: AuthorityEmulator,
    form: Mapping[str, str] | None = None,
    *,
    path: str = TOKEN_PATH,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    async with client(emulator) as http:
        return await http.post(path, data=dict(form or cc_form()), headers=dict(headers or {}))


def assert_entra_error(response: httpx.Response, status: int, error: str, code: int) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert re.fullmatch(
        rf"AADSTS{code}: .+\r\nTrace ID: {body['trace_id']}\r\n"
        rf"Correlation ID: {body['correlation_id']}\r\nTimestamp: {re.escape(body['timestamp'])}",
        body["error_description"],
        flags=re.DOTALL,
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", body["timestamp"])
    assert body["error_uri"].endswith(f"/error?code={code}")


# -- instance discovery ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_instance_discovery_v1_0_returns_tenant_discovery_endpoint() -> None:
    emulator = make_emulator()
    async with client(emulator) as http:
        response = await http.get(
            "/common/discovery/instance",
            params={
                "api-version": "1.0",
                "authorization_endpoint": f"{AUTHORITY_HOST}/contoso/oauth2/v2.0/authorize",
            },
        )
    assert response.status_code == 200
    assert response.json() == {
        "tenant_discovery_endpoint": (
            f"{AUTHORITY_HOST}/contoso/v2.0/.well-known/openid-configuration"
        )
    }
    assert emulator.counts["discovery"] == 1


@pytest.mark.anyio
async def test_instance_discovery_v1_1_lists_alias_groups() -> None:
    emulator = make_emulator()
    async with client(emulator) as http:
        known = await http.get(
            "/common/discovery/instance",
            params={
                "api-version": "1.1",
                "authorization_endpoint": f"{AUTHORITY_HOST}/common/oauth2/authorize",
            },
        )
        custom = await http.get(
            "/common/discovery/instance",
            params={
                "api-version": "1.1",
                "authorization_endpoint": "https://login.example.test/common/oauth2/authorize",
            },
        )
    body = known.json()
    assert body["api-version"] == "1.1"
    assert body["tenant_discovery_endpoint"] == (
        f"{AUTHORITY_HOST}/common/.well-known/openid-configuration"
    )
    public = body["metadata"][0]
    assert "login.windows.net" in public["aliases"]
    assert "login.microsoftonline.com" in public["aliases"]
    assert custom.json()["metadata"][-1]["aliases"] == ["login.example.test"]


@pytest.mark.anyio
async def test_instance_discovery_rejects_invalid_instances_and_bad_queries() -> None:
    emulator = make_emulator()
    emulator.invalid_instances.add("login.evil.test")
    async with client(emulator) as http:
        invalid = await http.get(
            "/common/discovery/instance",
            params={
                "api-version": "1.0",
                "authorization_endpoint": "https://LOGIN.evil.test/t/oauth2/v2.0/authorize",
            },
        )
        missing = await http.get("/common/discovery/instance", params={"api-version": "1.0"})
        no_version = await http.get(
            "/common/discovery/instance",
            params={"authorization_endpoint": f"{AUTHORITY_HOST}/t/oauth2/v2.0/authorize"},
        )
    assert_entra_error(invalid, 400, "invalid_instance", 50049)
    assert_entra_error(missing, 400, "invalid_request", 90014)
    assert_entra_error(no_version, 400, "invalid_request", 90014)


# -- OpenID configuration and JWKS -------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    "tenant", [DEMO_TENANT_ID, "contoso.onmicrosoft.com", "CONTOSO.onmicrosoft.com"]
)
async def test_openid_configuration_resolves_a_domain_to_the_tenant_guid(tenant: str) -> None:
    emulator = make_emulator()
    async with client(emulator) as http:
        response = await http.get(f"/{tenant}/v2.0/.well-known/openid-configuration")
    assert response.status_code == 200
    config = response.json()
    root = f"{AUTHORITY_HOST}/{DEMO_TENANT_ID}"
    assert config["token_endpoint"] == f"{root}/oauth2/v2.0/token"
    assert config["authorization_endpoint"] == f"{root}/oauth2/v2.0/authorize"
    assert config["device_authorization_endpoint"] == f"{root}/oauth2/v2.0/devicecode"
    assert config["jwks_uri"] == f"{root}/discovery/v2.0/keys"
    assert config["issuer"] == f"{root}/v2.0"
    assert emulator.counts["openid-configuration"] == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("tenant", "issuer_tenant"),
    [
        ("common", "{tenantid}"),
        ("organizations", "{tenantid}"),
        ("consumers", "9188040d-6c67-4c5b-b112-36a304b66dad"),
    ],
)
async def test_openid_configuration_keeps_generic_tenants(tenant: str, issuer_tenant: str) -> None:
    async with client(make_emulator()) as http:
        config = (await http.get(f"/{tenant}/v2.0/.well-known/openid-configuration")).json()
    assert config["token_endpoint"] == f"{AUTHORITY_HOST}/{tenant}/oauth2/v2.0/token"
    assert config["issuer"] == f"{AUTHORITY_HOST}/{issuer_tenant}/v2.0"


@pytest.mark.anyio
async def test_openid_configuration_builds_urls_from_the_host_reached() -> None:
    emulator = make_emulator()
    async with client(emulator, "https://127.0.0.1:8443") as http:
        v2 = (await http.get("/common/v2.0/.well-known/openid-configuration")).json()
        v1 = (await http.get(f"/{DEMO_TENANT_ID}/.well-known/openid-configuration")).json()
    assert v2["token_endpoint"] == "https://127.0.0.1:8443/common/oauth2/v2.0/token"
    assert v1["token_endpoint"] == f"https://127.0.0.1:8443/{DEMO_TENANT_ID}/oauth2/v2.0/token"


@pytest.mark.anyio
async def test_unknown_tenant_is_a_400_like_entra() -> None:
    emulator = make_emulator()
    async with client(emulator) as http:
        config = await http.get("/nope.onmicrosoft.com/v2.0/.well-known/openid-configuration")
        keys = await http.get("/nope/discovery/v2.0/keys")
    assert_entra_error(config, 400, "invalid_tenant", 90002)
    assert "nope.onmicrosoft.com" in config.json()["error_description"]
    assert_entra_error(keys, 400, "invalid_tenant", 90002)
    token = await post_token(emulator, path="/nope/oauth2/v2.0/token")
    assert_entra_error(token, 400, "invalid_request", 90002)


@pytest.mark.anyio
async def test_access_token_verifies_against_the_served_jwks() -> None:
    emulator = make_emulator()
    token = (await post_token(emulator)).json()["access_token"]
    async with client(emulator) as http:
        jwks = (await http.get(f"/{DEMO_TENANT_ID}/discovery/v2.0/keys")).json()
    assert emulator.counts["jwks"] == 1
    assert jwks["keys"][0]["issuer"] == f"{AUTHORITY_HOST}/{DEMO_TENANT_ID}/v2.0"
    assert "d" not in jwks["keys"][0]
    decoded = jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["RS256"])
    assert decoded.header["kid"] == KEY.kid == jwks["keys"][0]["kid"]
    assert decoded.claims["aud"] == "api://x"


# -- client credentials -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_client_credentials_issues_an_app_token() -> None:
    emulator = make_emulator(token_lifetime=1234)
    response = await post_token(emulator)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store, no-cache"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == body["ext_expires_in"] == 1234
    assert "refresh_in" not in body
    claims = emulator.decode(body["access_token"])
    assert claims["aud"] == "api://x"
    assert claims["iss"] == f"https://sts.windows.net/{DEMO_TENANT_ID}/"
    assert claims["tid"] == DEMO_TENANT_ID
    assert claims["appid"] == DEMO_CLIENT_ID
    assert claims["appidacr"] == "1"
    assert claims["idtyp"] == "app"
    assert claims["oid"] == claims["sub"]
    assert claims["ver"] == "1.0"
    assert claims["exp"] - claims["iat"] == 1234
    assert claims["nbf"] == claims["iat"]
    assert "roles" not in claims
    assert "xms_cc" not in claims
    assert emulator.counts["client_credentials"] == 1


@pytest.mark.anyio
async def test_client_credentials_refresh_in_roles_and_unique_uti() -> None:
    emulator = make_emulator(refresh_in=1800)
    emulator.register_client("app-2", "s3cret", roles=["Data.Read"])
    first = (await post_token(emulator, cc_form(client_id="app-2", client_secret="s3cret"))).json()
    second = (await post_token(emulator, cc_form(client_id="app-2", client_secret="s3cret"))).json()
    assert first["refresh_in"] == 1800
    one, two = emulator.decode(first["access_token"]), emulator.decode(second["access_token"])
    assert one["roles"] == ["Data.Read"]
    assert one["uti"] != two["uti"]
    assert one["oid"] == two["oid"]


@pytest.mark.anyio
async def test_client_credentials_on_a_domain_or_common_uses_the_tenant_guid() -> None:
    emulator = make_emulator()
    for tenant in ("contoso.onmicrosoft.com", "organizations"):
        response = await post_token(emulator, path=f"/{tenant}/oauth2/v2.0/token")
        assert emulator.decode(response.json()["access_token"])["tid"] == DEMO_TENANT_ID


@pytest.mark.anyio
async def test_client_credentials_echoes_client_capabilities() -> None:
    emulator = make_emulator()
    claims = json.dumps({"access_token": {"xms_cc": {"values": ["cp1"]}}})
    body = (await post_token(emulator, cc_form(claims=claims))).json()
    assert emulator.decode(body["access_token"])["xms_cc"] == ["cp1"]
    bad = await post_token(emulator, cc_form(claims="not json"))
    assert_entra_error(bad, 400, "invalid_request", 90100)


@pytest.mark.anyio
async def test_client_secret_basic_authenticates_too() -> None:
    emulator = make_emulator()
    form = cc_form(client_secret="")
    form.pop("client_id")
    token = base64.b64encode(f"{DEMO_CLIENT_ID}:{DEMO_CLIENT_SECRET}".encode()).decode()
    response = await post_token(emulator, form, headers={"authorization": f"Basic {token}"})
    assert response.status_code == 200, response.text


@pytest.mark.anyio
async def test_unknown_client_is_400_and_wrong_secret_is_401() -> None:
    emulator = make_emulator()
    unknown = await post_token(emulator, cc_form(client_id="who"))
    assert_entra_error(unknown, 400, "invalid_client", 700016)
    assert "'who'" in unknown.json()["error_description"]
    wrong = await post_token(
        emulator, cc_form(client_secret="wrong"), headers={"client-request-id": "corr-1"}
    )
    assert_entra_error(wrong, 401, "invalid_client", 7000215)
    assert wrong.json()["correlation_id"] == "corr-1"
    assert "wrong" not in wrong.text


@pytest.mark.anyio
async def test_missing_credential_client_id_and_grant_type() -> None:
    emulator = make_emulator()
    no_secret = await post_token(emulator, cc_form(client_secret=""))
    assert_entra_error(no_secret, 401, "invalid_client", 7000218)
    no_client = await post_token(emulator, cc_form(client_id=""))
    assert_entra_error(no_client, 400, "invalid_request", 900144)
    no_grant = await post_token(emulator, cc_form(grant_type=""))
    assert_entra_error(no_grant, 400, "invalid_request", 900144)
    unsupported = await post_token(emulator, cc_form(grant_type="magic"))
    assert_entra_error(unsupported, 400, "unsupported_grant_type", 70003)
    assert emulator.counts["magic"] == 1
    assert emulator.counts["token"] == 1  # the request without a grant_type


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("scope", "error", "code"),
    [
        ("User.Read", "invalid_scope", 1002012),
        ("/.default", "invalid_scope", 1002012),
        ("api://a/.default api://b/.default", "invalid_scope", 70011),
        ("", "invalid_request", 900144),
    ],
)
async def test_client_credentials_scope_must_be_one_default(
    scope: str, error: str, code: int
) -> None:
    response = await post_token(make_emulator(), cc_form(scope=scope))
    assert_entra_error(response, 400, error, code)


def _certificate() -> tuple[RSAKey, bytes]:
    key, cert = self_signed()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return RSAKey.import_key(private_pem), cert.public_bytes(serialization.Encoding.PEM)


CLIENT_KEY, CLIENT_CERT = _certificate()


def _assertion(key: RSAKey, *, aud: str, lifetime: int = 600) -> str:
    der = x509.load_pem_x509_certificate(CLIENT_CERT).public_bytes(serialization.Encoding.DER)
    x5t = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
    now = int(datetime.datetime.now(datetime.timezone.utc).timestamp())
    claims: dict[str, Any] = {"aud": aud, "iss": "cert-app", "sub": "cert-app", "jti": "1"}
    claims.update(exp=now + lifetime, nbf=now - 600)
    return jwt.encode({"alg": "PS256", "x5t#S256": x5t}, claims, key, algorithms=["PS256"])


@pytest.mark.anyio
async def test_client_assertion_signed_by_a_registered_certificate() -> None:
    emulator = make_emulator()
    emulator.register_client("cert-app", certificate=CLIENT_CERT)
    endpoint = f"{AUTHORITY_HOST}{TOKEN_PATH}"
    form = cc_form(
        client_id="cert-app",
        client_secret="",
        client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        client_assertion=_assertion(CLIENT_KEY, aud=endpoint),
    )
    response = await post_token(emulator, form)
    assert response.status_code == 200, response.text
    assert emulator.decode(response.json()["access_token"])["appidacr"] == "2"

    other_key, _ = _certificate()
    forged = await post_token(
        emulator, {**form, "client_assertion": _assertion(other_key, aud=endpoint)}
    )
    assert_entra_error(forged, 401, "invalid_client", 700027)
    wrong_aud = await post_token(
        emulator, {**form, "client_assertion": _assertion(CLIENT_KEY, aud="https://x/token")}
    )
    assert_entra_error(wrong_aud, 401, "invalid_client", 700021)
    wrong_type = await post_token(emulator, {**form, "client_assertion_type": "password"})
    assert_entra_error(wrong_type, 400, "invalid_request", 90058)
    garbage = await post_token(emulator, {**form, "client_assertion": "not.a.jwt"})
    assert_entra_error(garbage, 401, "invalid_client", 50027)


@pytest.mark.anyio
async def test_client_assertion_needs_a_certificate_and_a_live_token() -> None:
    emulator = make_emulator()
    endpoint = f"{AUTHORITY_HOST}{TOKEN_PATH}"
    form = cc_form(
        client_id="cert-app",
        client_secret="",
        client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        client_assertion=_assertion(CLIENT_KEY, aud=endpoint, lifetime=-60),
    )
    emulator.register_client("cert-app", "secret-only")
    assert_entra_error(await post_token(emulator, form), 401, "invalid_client", 700027)
    emulator.register_client("cert-app", certificate=CLIENT_CERT)
    assert_entra_error(await post_token(emulator, form), 401, "invalid_client", 700024)


# -- grant registry -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_add_grant_plugs_a_handler_in() -> None:
    emulator = make_emulator()
    emulator.register_client("public-app")
    seen: list[TokenRequest] = []

    async def password(request: TokenRequest) -> Mapping[str, Any]:
        seen.append(request)
        if request.require("password") != "pa55":
            raise EntraError(50126, "invalid_grant", "Error validating credentials.")
        oid = "00000000-0000-0000-0000-00000000000a"
        return request.emulator.token_response(
            request.emulator.issue_access_token(
                audience="https://graph.microsoft.com",
                client_id=request.client.client_id,
                user_oid=oid,
                scp="User.Read",
            ),
            id_token=request.emulator.issue_id_token(
                client_id=request.client.client_id,
                base_url=request.base_url,
                oid=oid,
                preferred_username=request.form["username"],
            ),
            client_info=make_client_info(oid, request.tenant_id),
        )

    emulator.add_grant("password", password)
    form = {
        "client_id": "public-app",
        "grant_type": "password",
        "username": "alice@contoso.onmicrosoft.com",
        "password": "pa55",
        "scope": "User.Read openid",
    }
    response = await post_token(
        emulator,
        form,
        path="/contoso.onmicrosoft.com/oauth2/v2.0/token",
        headers={"client-request-id": "c-1"},
    )
    assert response.status_code == 200, response.text
    request = seen[0]
    assert (request.tenant, request.tenant_id) == ("contoso.onmicrosoft.com", DEMO_TENANT_ID)
    assert request.scopes == ["User.Read", "openid"]
    assert request.correlation_id == "c-1"
    assert not request.client.authenticated
    body = response.json()
    id_claims = emulator.decode(body["id_token"])
    assert id_claims["iss"] == f"{AUTHORITY_HOST}/{DEMO_TENANT_ID}/v2.0"
    assert id_claims["aud"] == "public-app"
    assert id_claims["preferred_username"] == "alice@contoso.onmicrosoft.com"
    padded = body["client_info"] + "=" * (-len(body["client_info"]) % 4)
    assert json.loads(base64.urlsafe_b64decode(padded)) == {
        "uid": "00000000-0000-0000-0000-00000000000a",
        "utid": DEMO_TENANT_ID,
    }
    access = emulator.decode(body["access_token"])
    assert (access["idtyp"], access["scp"], access["appidacr"]) == ("user", "User.Read", "0")
    refused = await post_token(emulator, {**form, "password": "nope"})
    assert_entra_error(refused, 400, "invalid_grant", 50126)


def test_make_client_info_is_unpadded_base64url_json() -> None:
    info = make_client_info("u-1", "t-1")
    assert "=" not in info
    padded = info + "=" * (-len(info) % 4)
    assert json.loads(base64.urlsafe_b64decode(padded)) == {"uid": "u-1", "utid": "t-1"}


# -- faults -------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_fault_too_many_requests_then_recovers() -> None:
    emulator = make_emulator()
    emulator.inject(Fault.too_many_requests(retry_after=7), times=2)
    assert emulator.pending_faults == 2
    first = await post_token(emulator, headers={"client-request-id": "c-429"})
    second = await post_token(emulator)
    third = await post_token(emulator)
    assert_entra_error(first, 429, "temporarily_unavailable", 90055)
    assert first.headers["retry-after"] == "7"
    assert first.json()["correlation_id"] == "c-429"
    assert second.status_code == 429
    assert third.status_code == 200
    assert emulator.pending_faults == 0
    assert emulator.counts["client_credentials"] == 3


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "error", "code"),
    [(500, "server_error", 50000), (503, "temporarily_unavailable", 90033)],
)
async def test_fault_server_error_has_a_json_body(status: int, error: str, code: int) -> None:
    emulator = make_emulator()
    emulator.inject(Fault.server_error(status=status, retry_after=3))
    response = await post_token(emulator)
    assert_entra_error(response, status, error, code)
    assert response.headers["retry-after"] == "3"
    emulator.inject(Fault.server_error())
    assert "retry-after" not in (await post_token(emulator)).headers


@pytest.mark.anyio
async def test_fault_invalid_grant_with_suberror_and_claims() -> None:
    emulator = make_emulator()
    emulator.inject(Fault.invalid_grant())
    emulator.inject(Fault.invalid_grant(code=50076, suberror="basic_action", claims="{}"))
    plain = await post_token(emulator)
    assert_entra_error(plain, 400, "invalid_grant", 70008)
    assert "suberror" not in plain.json()
    detailed = await post_token(emulator)
    assert_entra_error(detailed, 400, "invalid_grant", 50076)
    assert (detailed.json()["suberror"], detailed.json()["claims"]) == ("basic_action", "{}")


@pytest.mark.anyio
async def test_fault_malformed_json_is_a_truncated_200() -> None:
    emulator = make_emulator()
    emulator.inject(Fault.malformed_json())
    response = await post_token(emulator)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        response.json()


@pytest.mark.anyio
async def test_fault_html_error_page() -> None:
    emulator = make_emulator()
    emulator.inject(Fault.html_error_page(status=504))
    response = await post_token(emulator)
    assert response.status_code == 504
    assert response.headers["content-type"].startswith("text/html")
    assert response.text.startswith("<!DOCTYPE html>")


@pytest.mark.anyio
async def test_fault_latency_delays_then_answers() -> None:
    emulator = make_emulator()
    emulator.inject(Fault.latency(0.05))
    start = anyio.current_time()
    response = await post_token(emulator)
    assert anyio.current_time() - start >= 0.05
    assert response.status_code == 200


@pytest.mark.anyio
async def test_constructor_latency_applies_to_every_request() -> None:
    emulator = make_emulator(latency=0.02)
    start = anyio.current_time()
    async with client(emulator) as http:
        await http.get(f"/{DEMO_TENANT_ID}/v2.0/.well-known/openid-configuration")
        await http.get(f"/{DEMO_TENANT_ID}/discovery/v2.0/keys")
    assert anyio.current_time() - start >= 0.04


@pytest.mark.anyio
async def test_fault_huge_body_pads_a_valid_answer() -> None:
    emulator = make_emulator()
    emulator.inject(Fault.huge_body(200_000))
    response = await post_token(emulator)
    assert len(response.content) >= 200_000
    assert emulator.decode(response.json()["access_token"])["aud"] == "api://x"


@pytest.mark.anyio
async def test_faults_filter_by_grant_type_and_endpoint() -> None:
    emulator = make_emulator()
    emulator.inject(Fault.server_error(), grant_type="refresh_token")
    emulator.inject(Fault.server_error(status=503), endpoint="openid-configuration")
    assert (await post_token(emulator)).status_code == 200
    async with client(emulator) as http:
        config = await http.get(f"/{DEMO_TENANT_ID}/v2.0/.well-known/openid-configuration")
        again = await http.get(f"/{DEMO_TENANT_ID}/v2.0/.well-known/openid-configuration")
    assert (config.status_code, again.status_code) == (503, 200)
    assert emulator.pending_faults == 1  # the refresh_token one is still armed
    emulator.reset()
    assert emulator.pending_faults == 0


def test_inject_and_fault_arguments_are_validated() -> None:
    emulator = make_emulator()
    with pytest.raises(ValueError, match="endpoint"):
        emulator.inject(Fault.malformed_json(), endpoint="authorize")
    with pytest.raises(ValueError, match="times"):
        emulator.inject(Fault.malformed_json(), times=0)
    with pytest.raises(ValueError, match="grant_type"):
        emulator.inject(Fault.malformed_json(), grant_type="x", endpoint="jwks")
    with pytest.raises(ValueError, match="500-599"):
        Fault.server_error(status=404)
    with pytest.raises(ValueError, match="negative"):
        Fault.latency(-1)


# -- counting, recording, decoding, plumbing ----------------------------------------------------


@pytest.mark.anyio
async def test_requests_are_recorded_with_lowercase_headers_and_reset() -> None:
    emulator = make_emulator()
    await post_token(emulator, headers={"X-Client-SKU": "MSAL.Python"})
    async with client(emulator) as http:
        await http.get("/common/discovery/instance", params={"api-version": "1.0", "x": ""})
    token_request, discovery = emulator.requests
    assert isinstance(token_request, RecordedRequest)
    assert token_request.method == "POST"
    assert token_request.path == TOKEN_PATH
    assert token_request.headers["x-client-sku"] == "MSAL.Python"
    assert token_request.form["grant_type"] == "client_credentials"
    assert token_request.form["client_info"] == "1"
    assert discovery.query == {"api-version": "1.0", "x": ""}
    assert discovery.form == {}
    assert emulator.counts == {"client_credentials": 1, "discovery": 1}
    emulator.reset()
    assert (emulator.requests, emulator.counts) == ([], {})
    assert DEMO_CLIENT_ID in emulator.clients  # configuration survives a reset


@pytest.mark.anyio
async def test_unknown_paths_and_methods() -> None:
    emulator = make_emulator()
    async with client(emulator) as http:
        missing = await http.get("/nowhere")
        wrong_method = await http.get(TOKEN_PATH)
    assert missing.status_code == 404
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "POST"
    assert len(emulator.requests) == 2
    assert not emulator.counts


@pytest.mark.anyio
async def test_lifespan_protocol_completes() -> None:
    emulator = make_emulator()
    incoming = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[Mapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return dict(next(incoming))

    async def send(message: Any) -> None:
        sent.append(message)

    await emulator({"type": "lifespan"}, receive, send)
    assert [message["type"] for message in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]


@pytest.mark.anyio
async def test_decode_rejects_foreign_and_expired_tokens() -> None:
    now = [1_700_000_000.0]
    emulator = make_emulator(clock=lambda: now[0], token_lifetime=60)
    token = (await post_token(emulator)).json()["access_token"]
    assert emulator.decode(token)["iat"] == 1_700_000_000
    now[0] += 61
    with pytest.raises(JoseError):
        emulator.decode(token)
    now[0] -= 61
    stranger = AuthorityEmulator(signing_key=SigningKey.generate(), clock=lambda: now[0])
    with pytest.raises(JoseError):
        stranger.decode(token)


def test_clients_mapping_replaces_the_demo_client() -> None:
    emulator = make_emulator(clients={"a": "1", "b": "2"})
    assert sorted(emulator.clients) == ["a", "b"]
    assert emulator.clients["a"].is_confidential
    assert not emulator.register_client("c").is_confidential


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"tenant_id": "contoso"}, "tenant_id"),
        ({"token_lifetime": 0}, "token_lifetime"),
        ({"refresh_in": -1}, "refresh_in"),
        ({"latency": -0.5}, "latency"),
    ],
)
def test_constructor_validates_options(options: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        AuthorityEmulator(**options)


def test_register_client_validates_arguments() -> None:
    emulator = make_emulator()
    with pytest.raises(ValueError, match="client_id"):
        emulator.register_client("")
    with pytest.raises(ValueError, match="certificate"):
        emulator.register_client("x", certificate=b"not a certificate")


def test_signing_key_must_be_private() -> None:
    public = RSAKey.import_key(KEY.public_jwk())
    with pytest.raises(ValueError, match="private"):
        SigningKey(public)
