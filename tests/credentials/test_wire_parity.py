"""Wire parity with msal 1.39 for every client_credential format: form fields and JWT shape."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import msal
import pytest
import requests
import requests.adapters
from joserfc import jws, jwt
from joserfc.jwk import RSAKey

from msal_async import ConfidentialClientApplication
from msal_async.testing import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, RecordedRequest

from ..conftest import HttpsAuthority
from .certs import CERT_CLIENT_ID, CertSet

pytestmark = pytest.mark.anyio

SCOPES = ["api://parity/.default"]
GENERIC_HEADERS = {"host", "user-agent", "accept-encoding", "connection", "content-length"}
VARYING_VALUES = {"client-request-id", "x-client-sku", "x-client-ver"}
CERT_FORMATS = [
    "pem+thumbprint",
    "pem+certificate",
    "pem+thumbprint+chain",
    "encrypted-pem",
    "pfx",
    "pfx+passphrase",
    "pfx+x5c",
]


class Registry(jws.JWSRegistry):
    max_header_length = 16384


def unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    compact = jws.extract_compact(token.encode(), registry=Registry())
    import json

    return dict(compact.headers()), dict(json.loads(compact.payload))


@pytest.fixture
def cert_authority(https_authority: HttpsAuthority, certs: CertSet) -> HttpsAuthority:
    https_authority.emulator.register_client(CERT_CLIENT_ID, certificate=certs.cert_pem)
    return https_authority


def msal_session(https: HttpsAuthority) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = https.ca_file
    session.mount("https://", requests.adapters.HTTPAdapter(max_retries=1))
    return session


def run_msal(https: HttpsAuthority, client_id: str, credential: Any) -> dict[str, Any]:
    with msal_session(https) as session:
        app = msal.ConfidentialClientApplication(
            client_id,
            client_credential=credential,
            authority=https.authority,
            instance_discovery=False,
            http_client=session,
        )
        result: dict[str, Any] = app.acquire_token_for_client(SCOPES)
    return result


async def run_ours(https: HttpsAuthority, client_id: str, credential: Any) -> dict[str, Any]:
    async with ConfidentialClientApplication(
        client_id,
        client_credential=credential,
        authority=https.authority,
        instance_discovery=False,
        verify=https.ca_file,
    ) as app:
        return dict(await app.acquire_token_for_client(SCOPES))


def token_posts(https: HttpsAuthority, start: int) -> list[RecordedRequest]:
    return [
        r
        for r in https.emulator.requests[start:]
        if r.method == "POST" and r.form.get("grant_type") == "client_credentials"
    ]


async def compare(
    https: HttpsAuthority, client_id: str, theirs_credential: Any, ours_credential: Any
) -> tuple[RecordedRequest, RecordedRequest]:
    start = len(https.emulator.requests)
    theirs_result = run_msal(https, client_id, theirs_credential)  # blocking is fine here
    middle = len(https.emulator.requests)
    ours_result = await run_ours(https, client_id, ours_credential)
    assert "access_token" in theirs_result, theirs_result
    assert "access_token" in ours_result, ours_result
    [theirs] = token_posts(https, start)[:1]
    [ours] = token_posts(https, middle)
    assert ours.path == theirs.path
    assert set(ours.form) == set(theirs.form)
    for name in set(theirs.form) - {"client_assertion"}:
        assert ours.form[name] == theirs.form[name], name
    their_headers = {k for k in theirs.headers if k not in GENERIC_HEADERS}
    assert {k for k in ours.headers if k not in GENERIC_HEADERS} == their_headers
    for name in their_headers - VARYING_VALUES:
        assert ours.headers[name] == theirs.headers[name], name
    return theirs, ours


@pytest.mark.parametrize("name", CERT_FORMATS)
async def test_certificate_assertion_matches_msal(
    cert_authority: HttpsAuthority, certs: CertSet, name: str
) -> None:
    credential = certs.credentials()[name]
    theirs, ours = await compare(cert_authority, CERT_CLIENT_ID, credential, credential)
    their_header, their_claims = unverified(theirs.form["client_assertion"])
    our_header, our_claims = unverified(ours.form["client_assertion"])
    assert set(our_header) == set(their_header)
    assert our_header["alg"] == their_header["alg"]
    for field in ("x5t", "x5t#S256"):
        assert our_header.get(field) == their_header.get(field)
    assert len(our_header.get("x5c", [])) == len(their_header.get("x5c", []))
    assert set(our_claims) == set(their_claims)
    for claim in ("aud", "iss", "sub"):
        assert our_claims[claim] == their_claims[claim]


async def test_secret_matches_msal(https_authority: HttpsAuthority) -> None:
    await compare(https_authority, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_CLIENT_SECRET)


def signer(certs: CertSet, audience: str) -> Callable[[], str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = serialization.load_pem_private_key(certs.key_pem.encode(), None)
    assert isinstance(private, rsa.RSAPrivateKey)
    key = RSAKey.import_key(private)

    def sign() -> str:
        now = int(time.time())
        claims = {
            "aud": audience,
            "iss": CERT_CLIENT_ID,
            "sub": CERT_CLIENT_ID,
            "iat": now,
            "exp": now + 600,
            "jti": str(uuid.uuid4()),
        }
        return jwt.encode({"alg": "RS256"}, claims, key)

    return sign


async def test_static_assertion_matches_msal(
    cert_authority: HttpsAuthority, certs: CertSet
) -> None:
    sign = signer(certs, f"{cert_authority.authority}/oauth2/v2.0/token")
    theirs_value, ours_value = {"client_assertion": sign()}, {"client_assertion": sign()}
    start = len(cert_authority.emulator.requests)
    with pytest.warns(DeprecationWarning, match="static"):
        run_msal(cert_authority, CERT_CLIENT_ID, theirs_value)
    middle = len(cert_authority.emulator.requests)
    with pytest.warns(DeprecationWarning, match="static"):
        await run_ours(cert_authority, CERT_CLIENT_ID, ours_value)
    [theirs] = token_posts(cert_authority, start)[:1]
    [ours] = token_posts(cert_authority, middle)
    assert set(ours.form) == set(theirs.form)
    assert ours.form["client_assertion"] == ours_value["client_assertion"]


async def test_callable_assertion_matches_msal_and_gets_the_same_context(
    cert_authority: HttpsAuthority, certs: CertSet
) -> None:
    sign = signer(certs, f"{cert_authority.authority}/oauth2/v2.0/token")
    contexts: list[dict[str, str]] = []

    def theirs(context: dict[str, str]) -> str:
        contexts.append(context)
        return sign()

    async def ours(context: dict[str, str]) -> str:
        contexts.append(context)
        return sign()

    await compare(
        cert_authority, CERT_CLIENT_ID, {"client_assertion": theirs}, {"client_assertion": ours}
    )
    assert contexts[0] == contexts[1]
