"""Client assertion signing, CPU per assertion: ``python benchmarks/signing.py [--rounds 7]``.

For an RSA-2048 key and a certificate with its ``x5c`` (PS256 with ``x5t#S256``, as msal signs
with a public certificate; RS256 with ``x5t``, as for AD FS), each round times:

- ``cryptography`` alone: the key's ``sign()`` over a compact JWS (header and claims
  serialized per assertion), the floor;
- joserfc's ``jwt.encode`` with the same header and claims;
- msal_async's ``CertificateCredential.sign``: the header serialized once per credential,
  claims and signature per assertion (joserfc's algorithm).

Rounds alternate the three; the median and the range over rounds are printed, with each
path's cost over the floor.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from joserfc import jwt
from joserfc.jwk import RSAKey

from msal_async._credentials import CertificateCredential, parse_client_credential

AUDIENCE = "https://login.microsoftonline.com/tenant/oauth2/v2.0/token"
CLIENT = "client-id"
CALLS = 300


def _pem_pair() -> tuple[rsa.RSAPrivateKey, str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return key, key_pem, cert.public_bytes(serialization.Encoding.PEM).decode()


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _claims() -> dict[str, Any]:
    now = int(time.time())
    return {
        "aud": AUDIENCE,
        "iss": CLIENT,
        "sub": CLIENT,
        "exp": now + 600,
        "iat": now,
        "jti": str(uuid.uuid4()),
    }


def paths(
    credential: CertificateCredential, key: rsa.RSAPrivateKey
) -> dict[str, Callable[[], str]]:
    """The three ways to sign one assertion with this credential's header."""
    header = dict(credential.header)
    alg = header["alg"]
    chosen = (
        padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH)
        if alg == "PS256"
        else padding.PKCS1v15()
    )
    joserfc_key = RSAKey.import_key(key)

    def direct() -> str:
        head = _b64(json.dumps(header, separators=(",", ":")).encode())
        signing = head + b"." + _b64(json.dumps(_claims(), separators=(",", ":")).encode())
        return (signing + b"." + _b64(key.sign(signing, chosen, hashes.SHA256()))).decode()

    def joserfc_encode() -> str:
        return jwt.encode(header, _claims(), joserfc_key, algorithms=[alg])

    def ours() -> str:
        return credential.sign(client_id=CLIENT, audience=AUDIENCE)

    return {"cryptography alone": direct, "joserfc jwt.encode": joserfc_encode, "msal_async": ours}


def main(argv: Sequence[str] | None = None) -> int:
    """Print CPU per assertion for each path and algorithm."""
    parser = argparse.ArgumentParser(prog="python benchmarks/signing.py")
    parser.add_argument("--rounds", type=int, default=7)
    options = parser.parse_args(argv)
    key, key_pem, cert_pem = _pem_pair()
    credentials = {
        "PS256 + x5t#S256 + x5c": {"private_key": key_pem, "public_certificate": cert_pem},
        "RS256 + x5t": {"private_key": key_pem, "thumbprint": "ab" * 20},
    }
    for label, value in credentials.items():
        credential = parse_client_credential(value)
        assert isinstance(credential, CertificateCredential)
        samples: dict[str, list[float]] = {}
        for _ in range(options.rounds):
            for name, sign in paths(credential, key).items():
                started = time.process_time()
                for _ in range(CALLS):
                    sign()
                samples.setdefault(name, []).append((time.process_time() - started) / CALLS)
        floor = statistics.median(samples["cryptography alone"])
        print(f"{label}: CPU per assertion (median of {options.rounds} rounds, range)")
        for name, values in samples.items():
            median = statistics.median(values)
            print(
                f"    {name:20s} {median * 1e6:7.1f} us  [{min(values) * 1e6:.1f}-"
                f"{max(values) * 1e6:.1f}]  {median / floor:.2f}x the floor"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
