"""Every client_credential format msal takes: the credential it builds and its assertion."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import anyio
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from joserfc import jws, jwt
from joserfc.jwk import RSAKey

from msal_async import AutoRefresher
from msal_async._certificates import extract_certs
from msal_async._credentials import (
    CLIENT_ASSERTION_TYPE,
    AssertionCredential,
    CertificateCredential,
    ClientSecret,
    PfxCredential,
    parse_client_credential,
)

from .certs import PASSPHRASE, CertSet

pytestmark = pytest.mark.anyio

ENDPOINT = "https://login.microsoftonline.com/tenant/oauth2/v2.0/token"
CLIENT = "client-id"
EXPECTED_HEADERS = {
    "pem+thumbprint": {"alg": "RS256", "typ": "JWT", "x5t": ...},
    "pem+certificate": {"alg": "PS256", "typ": "JWT", "x5t#S256": ..., "x5c": 1},
    "pem+thumbprint+chain": {"alg": "RS256", "typ": "JWT", "x5t": ..., "x5c": 2},
    "encrypted-pem": {"alg": "PS256", "typ": "JWT", "x5t#S256": ..., "x5c": 1},
    "pfx": {"alg": "PS256", "typ": "JWT", "x5t#S256": ...},
    "pfx+passphrase": {"alg": "PS256", "typ": "JWT", "x5t#S256": ...},
    "pfx+x5c": {"alg": "PS256", "typ": "JWT", "x5t#S256": ..., "x5c": 1},
}


class Registry(jws.JWSRegistry):
    max_header_length = 16384  # x5c carries certificates


def decode(token: str, key: RSAKey) -> jwt.Token:
    return jwt.decode(token, key, registry=Registry(algorithms=["RS256", "PS256"]))


def public_key(certs: CertSet) -> RSAKey:
    cert = x509.load_pem_x509_certificate(certs.cert_pem.encode())
    key: RSAKey = RSAKey.import_key(
        cert.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return key


async def read_file(path: str) -> bytes:
    """The app's reader: a worker thread, as ClientApplication passes it."""
    return await anyio.Path(path).read_bytes()


def parse(value: object, **kwargs: Any) -> Any:
    """parse_client_credential as the app calls it (PFX files are read on first use)."""
    return parse_client_credential(value, read_file=read_file, **kwargs)


async def loaded(credential: Any) -> Any:
    """The signing credential behind a (possibly lazily loaded PFX) credential."""
    return await credential.loaded() if isinstance(credential, PfxCredential) else credential


async def assertion_of(credential: Any) -> str:
    fields = await credential.form_fields(client_id=CLIENT, token_endpoint=ENDPOINT)
    assert fields["client_assertion_type"] == CLIENT_ASSERTION_TYPE
    assert set(fields) == {"client_assertion_type", "client_assertion"}
    return str(fields["client_assertion"])


@pytest.mark.parametrize("name", list(EXPECTED_HEADERS))
async def test_certificate_formats_sign_verifiable_assertions(certs: CertSet, name: str) -> None:
    credential = parse(certs.credentials()[name])
    assert isinstance(await loaded(credential), CertificateCredential)
    token = await assertion_of(credential)
    decoded = decode(token, public_key(certs))
    expected = EXPECTED_HEADERS[name]
    assert set(decoded.header) == set(expected)
    assert decoded.header["alg"] == expected["alg"]
    if "x5c" in expected:
        assert len(decoded.header["x5c"]) == expected["x5c"]
        leaf = base64.b64decode(decoded.header["x5c"][0])
        assert hashlib.sha1(leaf).hexdigest() == certs.sha1_hex  # noqa: S324
    claims = decoded.claims
    assert set(claims) == {"aud", "iss", "sub", "exp", "iat", "jti"}
    assert claims["aud"] == ENDPOINT
    assert claims["iss"] == claims["sub"] == CLIENT
    assert claims["exp"] - claims["iat"] == 600


async def test_thumbprint_is_sha1_base64url_with_padding(certs: CertSet) -> None:
    credential = parse(certs.credentials()["pem+thumbprint"])
    token = await assertion_of(credential)
    header = decode(token, public_key(certs)).header
    expected = base64.urlsafe_b64encode(bytes.fromhex(certs.sha1_hex)).decode()
    assert header["x5t"] == expected  # msal keeps the "=" padding


async def test_every_request_gets_a_fresh_jti(certs: CertSet) -> None:
    credential = parse(certs.credentials()["pfx"])
    tokens = [await assertion_of(credential) for _ in range(5)]
    jtis = {decode(t, public_key(certs)).claims["jti"] for t in tokens}
    assert len(jtis) == 5


@pytest.mark.parametrize(
    ("name", "scheme"), [("pem+certificate", "PSS"), ("pem+thumbprint", "PKCS1")]
)
async def test_signature_is_what_the_algorithm_names_over_the_bytes_sent(
    certs: CertSet, name: str, scheme: str
) -> None:
    """Checked with cryptography alone: PS256 is RSASSA-PSS with a 32-byte salt (RFC 7518 3.5)."""
    credential = parse(certs.credentials()[name])
    header_b64, claims_b64, signature_b64 = (await assertion_of(credential)).split(".")
    assert "=" not in header_b64 + claims_b64 + signature_b64  # RFC 7515 section 2
    cert = x509.load_pem_x509_certificate(certs.cert_pem.encode())
    chosen = (
        padding.PSS(padding.MGF1(hashes.SHA256()), salt_length=32)
        if scheme == "PSS"
        else padding.PKCS1v15()
    )
    public = cert.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(
        base64.urlsafe_b64decode(signature_b64 + "=" * (-len(signature_b64) % 4)),
        f"{header_b64}.{claims_b64}".encode(),
        chosen,
        hashes.SHA256(),
    )


async def test_the_header_is_serialized_once_per_credential(certs: CertSet) -> None:
    credential = parse(certs.credentials()["pem+thumbprint+chain"])
    first, second = [await assertion_of(credential) for _ in range(2)]
    assert first.split(".")[0] == second.split(".")[0]
    assert first.split(".")[1] != second.split(".")[1]  # a new jti
    header = decode(first, public_key(certs)).header
    assert header == dict(credential.header)


async def test_client_claims_are_merged_and_may_override(certs: CertSet) -> None:
    credential = parse_client_credential(
        certs.credentials()["pem+certificate"],
        client_claims={"client_ip": "10.0.0.1", "aud": "https://override/"},
    )
    claims = decode(await assertion_of(credential), public_key(certs)).claims
    assert claims["client_ip"] == "10.0.0.1"
    assert claims["aud"] == "https://override/"


@pytest.mark.parametrize("name", ["pem+certificate", "pfx", "encrypted-pem", "pem+thumbprint"])
async def test_adfs_forces_rs256_with_sha1(certs: CertSet, name: str) -> None:
    credential = parse(certs.credentials()[name], is_adfs=True)
    header = decode(await assertion_of(credential), public_key(certs)).header
    assert header["alg"] == "RS256"
    assert "x5t" in header
    assert "x5t#S256" not in header


async def test_clock_drives_iat_and_exp(certs: CertSet) -> None:
    credential = parse(certs.credentials()["pfx"], clock=lambda: 1_700_000_000.5)
    claims = decode(await assertion_of(credential), public_key(certs)).claims
    assert claims["iat"] == 1_700_000_000
    assert claims["exp"] == 1_700_000_600


async def test_secret_string() -> None:
    credential = parse_client_credential("s3cret")
    assert isinstance(credential, ClientSecret)
    fields = await credential.form_fields(client_id=CLIENT, token_endpoint=ENDPOINT)
    assert fields == {"client_secret": "s3cret"}
    assert "s3cret" not in repr(credential)


async def test_static_assertion_warns_and_is_sent_as_is() -> None:
    with pytest.warns(DeprecationWarning, match="static string/bytes 'client_assertion'"):
        credential = parse_client_credential({"client_assertion": b"a.b.c"})
    assert isinstance(credential, AssertionCredential)
    assert await assertion_of(credential) == "a.b.c"
    assert "a.b.c" not in repr(credential)


async def test_callable_assertion_without_parameters_is_called_per_request() -> None:
    calls: list[int] = []

    def make() -> str:
        calls.append(1)
        return f"jwt-{len(calls)}"

    credential = parse_client_credential({"client_assertion": make})
    assert await assertion_of(credential) == "jwt-1"
    assert await assertion_of(credential) == "jwt-2"


async def test_callable_assertion_with_a_parameter_gets_msal_context() -> None:
    seen: list[dict[str, str]] = []

    def make(context: dict[str, str]) -> bytes:
        seen.append(context)
        return b"jwt"

    credential = parse_client_credential({"client_assertion": make})
    assert credential is not None
    fields = await credential.form_fields(client_id=CLIENT, token_endpoint=ENDPOINT, fmi_path="a/b")
    assert fields["client_assertion"] == "jwt"
    assert seen == [{"client_id": CLIENT, "token_endpoint": ENDPOINT, "fmi_path": "a/b"}]


async def test_coroutine_function_assertion_is_awaited() -> None:
    async def make(context: dict[str, str]) -> str:
        return "async-" + context["client_id"]

    credential = parse_client_credential({"client_assertion": make})
    assert await assertion_of(credential) == f"async-{CLIENT}"


async def test_lambda_with_default_is_called_without_context() -> None:
    credential = parse_client_credential({"client_assertion": lambda token="t": token})
    assert await assertion_of(credential) == "t"


async def test_callable_returning_nothing_is_a_type_error() -> None:
    credential = parse_client_credential({"client_assertion": lambda: None})
    with pytest.raises(TypeError, match="client_assertion"):
        await assertion_of(credential)


def test_auto_refresher_memoizes() -> None:
    calls: list[int] = []

    def factory() -> int:
        calls.append(1)
        return len(calls)

    refresher = AutoRefresher(factory, expires_in=3600)
    assert refresher() == 1
    assert refresher() == 1
    assert AutoRefresher(lambda: "x", expires_in=0)() == "x"


def test_extract_certs_keeps_every_cert_and_rejects_keys(certs: CertSet) -> None:
    assert len(extract_certs(certs.chain_pem)) == 2
    with pytest.raises(ValueError, match="private key"):
        extract_certs(certs.key_pem)


async def test_repr_hides_the_key(certs: CertSet) -> None:
    for name in ("pfx", "pem+certificate"):
        credential = await loaded(parse(certs.credentials()[name]))
        assert "***" in repr(credential)
        assert "BEGIN" not in repr(credential)
    assert PASSPHRASE not in repr(parse(certs.credentials()["pfx+passphrase"]))


def test_a_pfx_is_not_read_when_the_app_is_built(certs: CertSet) -> None:
    """Constructors do no I/O: a missing PFX is reported at first use, not at parse."""
    credential = parse({"private_key_pfx_path": "/nonexistent/x.pfx"})
    assert isinstance(credential, PfxCredential)


def malformed(certs: CertSet) -> list[tuple[str, dict[str, object], str]]:
    c = certs
    return [
        ("not-pem", {"private_key": "nope", "thumbprint": c.sha1_hex}, "not a PEM private key"),
        ("no-thumbprint", {"private_key": c.key_pem}, "'thumbprint' or a 'public_certificate'"),
        ("bad-thumbprint", {"private_key": c.key_pem, "thumbprint": "xyz"}, "thumbprint"),
        (
            "encrypted-no-passphrase",
            {"private_key": c.encrypted_key_pem, "thumbprint": c.sha1_hex},
            "encrypted; pass its 'passphrase'",
        ),
        (
            "wrong-passphrase",
            {"private_key": c.encrypted_key_pem, "passphrase": "wrong", "thumbprint": c.sha1_hex},
            "wrong 'passphrase'",
        ),
        (
            "bad-certificate",
            {"private_key": c.key_pem, "public_certificate": "not a cert"},
            "public_certificate",
        ),
        (
            "mismatched-certificate",
            {"private_key": c.other_key_pem, "public_certificate": c.cert_pem},
            "does not belong to the private key",
        ),
        ("missing-pfx", {"private_key_pfx_path": "/nonexistent/x.pfx"}, "cannot be read"),
        (
            "pfx-wrong-passphrase",
            {"private_key_pfx_path": c.encrypted_pfx_path, "passphrase": "wrong"},
            "wrong 'passphrase'",
        ),
        (
            "pfx-needs-passphrase",
            {"private_key_pfx_path": c.encrypted_pfx_path},
            "private_key_pfx_path",
        ),
        ("pem-as-pfx", {"private_key_pfx_path": __file__}, "not a PFX"),
        ("unknown-keys", {"certificate": "x"}, "expected one of"),
        ("assertion-int", {"client_assertion": 42}, "client_assertion"),
    ]


MALFORMED_IDS = [
    "not-pem",
    "no-thumbprint",
    "bad-thumbprint",
    "encrypted-no-passphrase",
    "wrong-passphrase",
    "bad-certificate",
    "mismatched-certificate",
    "missing-pfx",
    "pfx-wrong-passphrase",
    "pfx-needs-passphrase",
    "pem-as-pfx",
    "unknown-keys",
    "assertion-int",
]


@pytest.mark.parametrize("case", MALFORMED_IDS)
def test_malformed_credentials_raise_value_error_naming_the_problem(
    certs: CertSet, case: str
) -> None:
    [(_, value, message)] = [entry for entry in malformed(certs) if entry[0] == case]
    with pytest.raises(ValueError, match=message) as raised:
        anyio.run(assertion_of, parse(value))  # a PFX file is read (and fails) at first use
    assert PASSPHRASE not in str(raised.value)
    assert "BEGIN" not in str(raised.value)


def test_passphrase_on_a_plain_key_is_reported(certs: CertSet) -> None:
    with pytest.raises(ValueError, match="not encrypted"):
        parse_client_credential(
            {"private_key": certs.key_pem, "passphrase": "x", "thumbprint": certs.sha1_hex}
        )


def test_empty_client_assertion_falls_through_like_msal(certs: CertSet) -> None:
    value = {"client_assertion": "", **certs.credentials()["pfx"]}
    assert isinstance(parse(value), PfxCredential)
