"""The emulator's signing key, JWT issuing and verification, JWKS and ``client_info``."""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Mapping
from typing import Any

from joserfc import jwt
from joserfc.jwk import RSAKey
from joserfc.jwt import JWTClaimsRegistry

__all__ = ["SigningKey", "make_client_info", "new_token_id", "stable_guid"]

# A fixed namespace so that derived object ids are stable across runs.
_NAMESPACE = uuid.UUID("5d3bd3a5-5c2c-4f0e-9f35-6c1b7a2c4e10")


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_client_info(uid: str, utid: str) -> str:
    """Build Entra's ``client_info``: base64url of ``{"uid": ..., "utid": ...}``.

    Args:
        uid: the user's object id in its home tenant.
        utid: the user's home tenant id.

    Returns:
        The encoded string, as the token endpoint returns it when ``client_info=1`` is sent.
    """
    return b64url(json.dumps({"uid": uid, "utid": utid}, separators=(",", ":")).encode())


def new_token_id() -> str:
    """A fresh ``uti``-style id: 16 random bytes, base64url (22 characters).

    Returns:
        The id.
    """
    return b64url(secrets.token_bytes(16))


def stable_guid(*parts: str) -> str:
    """A GUID derived from ``parts``, the same on every run (object ids of emulated principals).

    Args:
        parts: the strings that identify the principal.

    Returns:
        The GUID as a string.
    """
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join(parts)))


class SigningKey:
    """An RSA key that signs the emulator's tokens with RS256.

    Generating a 2048-bit key takes tens of milliseconds; tests that build many emulators can
    make one with :meth:`generate` and pass it to each.

    Args:
        key: a private joserfc ``RSAKey``.
        kid: the key id put in token headers and the JWKS; the key's RFC 7638 thumbprint
            when omitted.
    """

    def __init__(self, key: RSAKey, *, kid: str | None = None) -> None:
        if not key.is_private:
            msg = "SigningKey(key=...) needs a private RSA key; got a public one"
            raise ValueError(msg)
        self._key = key
        self.kid = kid or key.thumbprint()

    @classmethod
    def generate(cls, *, kid: str | None = None) -> SigningKey:
        """Generate a fresh 2048-bit RSA signing key.

        Args:
            kid: the key id; the thumbprint when omitted.

        Returns:
            The new key.
        """
        return cls(RSAKey.generate_key(2048, private=True), kid=kid)

    def public_jwk(self, **extra: str) -> dict[str, Any]:
        """The public half as a JWK, as a JWKS lists it.

        Args:
            extra: more members (Entra adds ``issuer``).

        Returns:
            ``{"kty": "RSA", "use": "sig", "kid": ..., "n": ..., "e": ...}`` plus ``extra``.
        """
        jwk: dict[str, Any] = {"kty": "RSA", "use": "sig", "kid": self.kid}
        public = self._key.as_dict(private=False)
        jwk["n"] = public["n"]
        jwk["e"] = public["e"]
        jwk.update(extra)
        return jwk

    def sign(self, claims: Mapping[str, Any], *, header: Mapping[str, Any] | None = None) -> str:
        """Sign ``claims`` as a compact RS256 JWT with this key's ``kid`` in the header.

        Args:
            claims: the payload.
            header: more header members.

        Returns:
            The JWT.
        """
        full_header = {"typ": "JWT", "alg": "RS256", "kid": self.kid, **(header or {})}
        return jwt.encode(full_header, dict(claims), self._key, algorithms=["RS256"])

    def verify(self, token: str, *, now: int | None = None) -> dict[str, Any]:
        """Verify a JWT signed by this key and check its ``exp`` and ``nbf`` against ``now``.

        Args:
            token: the compact JWT.
            now: seconds since the epoch; the system clock when omitted.

        Returns:
            The claims.

        Raises:
            ValueError: wrong ``kid``.
            joserfc.errors.JoseError: bad signature, malformed token, expired or not yet valid.
        """
        decoded = jwt.decode(token, self._key, algorithms=["RS256"])
        if decoded.header.get("kid") != self.kid:
            msg = f"token kid {decoded.header.get('kid')!r} is not this key's ({self.kid!r})"
            raise ValueError(msg)
        JWTClaimsRegistry(now=now).validate(decoded.claims)
        return dict(decoded.claims)
