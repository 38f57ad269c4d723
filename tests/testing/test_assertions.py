"""The emulator accepts every client assertion form Entra accepts, and rejects forged ones."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from msal_async.testing import DEMO_TENANT_ID, AuthorityEmulator, SigningKey

from ..credentials.certs import self_signed

pytestmark = pytest.mark.anyio

CLIENT_ID = "7d2f5c3e-4b1a-4c8d-9e6f-0a1b2c3d4e5f"
TOKEN_URL = f"https://login.microsoftonline.com/{DEMO_TENANT_ID}/oauth2/v2.0/token"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
KEY = SigningKey.generate()


PRIVATE, CERT = self_signed("assertion-client")
OTHER_PRIVATE, OTHER_CERT = self_signed("assertion-client")


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def b64url(data: bytes, *, pad: bool) -> str:
    encoded = base64.urlsafe_b64encode(data).decode()
    return encoded if pad else encoded.rstrip("=")


def x5t(cert: x509.Certificate, *, pad: bool = False) -> str:
    return b64url(cert.fingerprint(hashes.SHA1()), pad=pad)  # noqa: S303 - x5t is SHA-1


def x5t_s256(cert: x509.Certificate, *, pad: bool = False) -> str:
    return b64url(cert.fingerprint(hashes.SHA256()), pad=pad)


def pem_body(cert: x509.Certificate) -> str:
    """What msal puts in ``x5c``: the PEM body, tags stripped, line breaks kept."""
    lines = pem(cert).decode().strip().splitlines()
    return "\n".join(lines[1:-1])


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    found: dict[str, Any] = {
        "aud": TOKEN_URL,
        "iss": CLIENT_ID,
        "sub": CLIENT_ID,
        "jti": str(uuid.uuid4()),
        "nbf": now,
        "exp": now + 1800,
    }
    found.update(overrides)
    return found


def sign(
    header: dict[str, Any],
    payload: dict[str, Any],
    *,
    key: rsa.RSAPrivateKey = PRIVATE,
    pad: bool = False,
    compact_json: bool = True,
) -> str:
    """A JWS compact serialization, built by hand as each client library builds it."""
    separators = (",", ":") if compact_json else (", ", ": ")
    segments = [
        b64url(json.dumps(part, separators=separators).encode(), pad=pad)
        for part in (header, payload)
    ]
    signing_input = ".".join(segments).encode()  # the text as sent, padding included
    if header["alg"] == "PS256":
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        signature = key.sign(signing_input, pss, hashes.SHA256())
    else:
        signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return ".".join([*segments, b64url(signature, pad=pad)])


def azure_identity_assertion() -> str:
    """azure-identity's certificate assertion: every segment keeps its ``=`` padding, the
    JSON has spaces, ``x5t`` is padded, ``nbf`` is an integer and the lifetime 30 minutes."""
    return sign(
        {"typ": "JWT", "alg": "RS256", "x5t": x5t(CERT, pad=True)},
        claims(),
        pad=True,
        compact_json=False,
    )


FORMS: dict[str, Callable[[], str]] = {
    "azure-identity (padded segments and x5t)": azure_identity_assertion,
    "msal SHA-1 (padded x5t, float dates)": lambda: sign(
        {"alg": "RS256", "typ": "JWT", "x5t": x5t(CERT, pad=True)},
        claims(iat=time.time(), exp=time.time() + 600),
    ),
    "unpadded x5t": lambda: sign({"alg": "RS256", "x5t": x5t(CERT)}, claims()),
    "x5t#S256": lambda: sign({"alg": "PS256", "x5t#S256": x5t_s256(CERT)}, claims()),
    "padded x5t#S256": lambda: sign(
        {"alg": "PS256", "typ": "JWT", "x5t#S256": x5t_s256(CERT, pad=True)}, claims(), pad=True
    ),
    "x5t#S256 and x5c with PEM line breaks (msal)": lambda: sign(
        {"alg": "PS256", "typ": "JWT", "x5t#S256": x5t_s256(CERT), "x5c": [pem_body(CERT)]},
        claims(),
    ),
    "x5c alone, one line": lambda: sign(
        {"alg": "RS256", "x5c": ["".join(pem_body(CERT).split())]}, claims()
    ),
    "x5t and x5t#S256": lambda: sign(
        {"alg": "RS256", "x5t": x5t(CERT), "x5t#S256": x5t_s256(CERT, pad=True)}, claims()
    ),
    "no certificate hint": lambda: sign({"alg": "RS256", "typ": "JWT"}, claims()),
}


async def redeem(assertion: str) -> httpx.Response:
    emulator = AuthorityEmulator(signing_key=KEY)
    emulator.register_client(CLIENT_ID, certificate=pem(CERT))
    form = {
        "client_id": CLIENT_ID,
        "grant_type": "client_credentials",
        "scope": "api://x/.default",
        "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion,
    }
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator)) as http:
        return await http.post(TOKEN_URL, data=form)


@pytest.mark.parametrize("build", FORMS.values(), ids=list(FORMS))
async def test_every_form_entra_accepts_is_accepted(build: Callable[[], str]) -> None:
    response = await redeem(build())
    assert response.status_code == 200, response.text
    assert "access_token" in response.json()


def tampered(assertion: str) -> str:
    """Strip the padding after signing: the signature no longer covers the text sent."""
    header, payload, signature = assertion.split(".")
    return ".".join([header.rstrip("="), payload.rstrip("="), signature])


REJECTED: dict[str, tuple[Callable[[], str], int]] = {
    "signed by another key": (
        lambda: sign({"alg": "RS256", "x5t": x5t(CERT)}, claims(), key=OTHER_PRIVATE),
        700027,
    ),
    "x5t of an unregistered certificate": (
        lambda: sign({"alg": "RS256", "x5t": x5t(OTHER_CERT)}, claims(), key=OTHER_PRIVATE),
        700027,
    ),
    "x5c of an unregistered certificate": (
        lambda: sign({"alg": "RS256", "x5c": [pem_body(OTHER_CERT)]}, claims()),
        700027,
    ),
    "x5t of one certificate, x5c of another": (
        lambda: sign({"alg": "RS256", "x5t": x5t(CERT), "x5c": [pem_body(OTHER_CERT)]}, claims()),
        700027,
    ),
    "padding removed after signing": (lambda: tampered(azure_identity_assertion()), 700027),
    "two segments": (lambda: "eyJhbGciOiJSUzI1NiJ9.e30", 50027),
    "standard base64 segments": (
        lambda: azure_identity_assertion().replace("-", "+").replace("_", "/") + "+/",
        50027,
    ),
    "alg none": (
        lambda: ".".join(
            [
                b64url(b'{"alg":"none"}', pad=False),
                b64url(json.dumps(claims()).encode(), pad=False),
                "",
            ]
        ),
        50027,
    ),
    "expired": (lambda: sign({"alg": "RS256"}, claims(exp=int(time.time()) - 60)), 700024),
    "wrong audience": (lambda: sign({"alg": "RS256"}, claims(aud="https://x/token")), 700021),
}


@pytest.mark.parametrize(("build", "code"), REJECTED.values(), ids=list(REJECTED))
async def test_forged_or_malformed_assertions_are_rejected(
    build: Callable[[], str], code: int
) -> None:
    response = await redeem(build())
    assert response.status_code == 401, response.text
    assert response.json()["error_codes"] == [code]
