"""Client assertions (``private_key_jwt``), read as Entra reads them.

Entra is more lenient than RFC 7515 in ways that clients rely on, so the emulator must be too:

* base64url segments with or without their ``=`` padding: azure-identity builds its assertion
  with ``base64.urlsafe_b64encode`` and keeps the padding in the header, the payload and the
  signature, and the signature covers the padded text exactly as sent;
* ``x5t`` and ``x5t#S256`` thumbprints with or without padding (msal keeps it, spec 15.7);
* ``x5c`` certificates in standard base64, with the line breaks of a PEM body left in (msal
  sends them so) or without;
* JSON with or without whitespace, and numeric dates as integers or fractions.

The key is chosen among the certificates registered for the app: the ones the ``x5t``,
``x5t#S256`` and ``x5c`` headers name (all of them when none is sent). The signature is then
checked with joserfc's RS256 / PS256 over the segments as received.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from joserfc import jws
from joserfc.jwk import RSAKey

from ._entra import EntraError

__all__ = ["bad_assertion", "verify_client_assertion"]

_ALGORITHMS = jws.JWSRegistry(algorithms=["RS256", "PS256"])
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")
#: A header carrying a certificate chain is a few KiB; anything this large is not one.
_MAX_SEGMENT = 64 * 1024


def bad_assertion(code: int, message: str) -> EntraError:
    """Entra's answer to a client assertion it rejects.

    Args:
        code: the ``AADSTS`` number.
        message: the description.

    Returns:
        A 401 ``invalid_client`` error.
    """
    return EntraError(code, "invalid_client", message, status=401)


def _malformed() -> EntraError:
    return bad_assertion(50027, "Invalid JWT token. Token format not valid.")


def _b64url_decode(segment: str) -> bytes:
    """base64url with or without its ``=`` padding."""
    if len(segment) > _MAX_SEGMENT or not _BASE64URL.fullmatch(segment):
        raise ValueError(segment[:20])
    stripped = segment.rstrip("=")
    return base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))


@dataclass(frozen=True)
class _Compact:
    signing_input: bytes
    header: dict[str, Any]
    claims: dict[str, Any]
    signature: bytes


def _parse(assertion: str) -> _Compact:
    parts = assertion.split(".")
    if len(parts) != 3:
        raise _malformed()
    try:
        header, claims = (json.loads(_b64url_decode(part)) for part in parts[:2])
        signature = _b64url_decode(parts[2])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _malformed() from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise _malformed()
    return _Compact(f"{parts[0]}.{parts[1]}".encode("ascii"), header, claims, signature)


@dataclass(frozen=True)
class _Registered:
    der: bytes
    sha1: bytes
    sha256: bytes
    key: RSAKey

    @classmethod
    def load(cls, pem: bytes) -> _Registered:
        cert = x509.load_pem_x509_certificate(pem)
        der = cert.public_bytes(serialization.Encoding.DER)
        public_pem = cert.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        sha1 = hashlib.sha1(der).digest()  # noqa: S324 - x5t is SHA-1 by definition (RFC 7515)
        return cls(der, sha1, hashlib.sha256(der).digest(), RSAKey.import_key(public_pem))


def _named_certificates(header: dict[str, Any], registered: list[_Registered]) -> list[_Registered]:
    """The registered certificates the header names by ``x5t``, ``x5t#S256`` or ``x5c``."""
    wanted: list[tuple[str, bytes]] = []
    try:
        for name, field in (("x5t", "sha1"), ("x5t#S256", "sha256")):
            value = header.get(name)
            if value is not None:
                if not isinstance(value, str):
                    raise _malformed()
                wanted.append((field, _b64url_decode(value)))
        chain = header.get("x5c")
        if chain is not None:
            if not isinstance(chain, list) or not chain or not isinstance(chain[0], str):
                raise _malformed()
            # RFC 7515 section 4.1.6: standard base64 DER; msal keeps a PEM body's line breaks.
            leaf = base64.b64decode("".join(chain[0].split()), validate=True)
            wanted.append(("der", leaf))
    except (ValueError, binascii.Error):
        raise _malformed() from None
    return [cert for cert in registered if all(getattr(cert, f) == v for f, v in wanted)]


def _check_claims(
    claims: dict[str, Any], *, client_id: str, audiences: Sequence[str], now: float
) -> None:
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise bad_assertion(700023, "Client assertion iss and sub must both be the client id.")
    if claims.get("aud") not in audiences:
        raise bad_assertion(
            700021, "Client assertion audience claim does not match the token endpoint."
        )
    exp, nbf = claims.get("exp"), claims.get("nbf", 0)
    # RFC 7519 NumericDate may be fractional; msal sends floats (spec 15.7).
    numeric = (int, float)
    if (
        not isinstance(exp, numeric)
        or isinstance(exp, bool)
        or exp <= now
        or (isinstance(nbf, numeric) and nbf > now + 300)
    ):
        raise bad_assertion(700024, "Client assertion is not within its valid time range.")


def verify_client_assertion(
    client_id: str,
    certificates: Sequence[bytes],
    assertion: str,
    *,
    audiences: Sequence[str],
    now: float,
) -> dict[str, Any]:
    """Check a client assertion as Entra does and return its claims.

    Args:
        client_id: the app presenting it.
        certificates: the PEM certificates registered for the app.
        assertion: the ``client_assertion`` form field.
        audiences: the token endpoint URLs ``aud`` may name.
        now: seconds since the epoch.

    Returns:
        The assertion's claims.

    Raises:
        EntraError: 401 ``invalid_client``: not a JWT (AADSTS50027), no registered
            certificate matches or the signature is wrong (700027), wrong ``iss``/``sub``
            (700023), wrong ``aud`` (700021), expired (700024).
    """
    if not certificates:
        raise bad_assertion(700027, f"The client '{client_id}' has no certificate registered.")
    token = _parse(assertion)
    alg_name = token.header.get("alg")
    if alg_name not in ("RS256", "PS256"):
        raise _malformed()
    candidates = _named_certificates(token.header, [_Registered.load(c) for c in certificates])
    if not candidates:
        raise bad_assertion(
            700027,
            "The certificate with identifier used to sign the client assertion is not "
            "registered on application.",
        )
    alg = _ALGORITHMS.get_alg(str(alg_name))
    if not any(alg.verify(token.signing_input, token.signature, c.key) for c in candidates):
        raise bad_assertion(700027, "Client assertion contains an invalid signature.")
    _check_claims(token.claims, client_id=client_id, audiences=audiences, now=now)
    return token.claims
