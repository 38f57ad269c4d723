"""OpenID Connect pieces of the auth code flow (spec 6): PKCE, state, nonce, id_token checks.

Pure functions: randomness comes from :mod:`secrets`, the clock is passed in as ``now``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import string
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from .. import _json
from .._errors import error_result

__all__ = [
    "MAX_AGE_SKEW",
    "Prompt",
    "add_id_token_claims",
    "build_authorize_url",
    "check_id_token",
    "decode_id_token",
    "new_state",
    "nonce_hash",
    "pkce_pair",
]

#: Seconds of clock skew allowed in the ``max_age``/``auth_time`` check (msal: 2 minutes).
MAX_AGE_SKEW = 120

_VERIFIER_ALPHABET = string.ascii_letters + string.digits + "-._~"  # RFC 7636 section 4.1


class Prompt:
    """The values of the ``prompt`` parameter (OIDC Core 3.1.2.1; msal's ``Prompt``)."""

    NONE = "none"
    LOGIN = "login"
    CONSENT = "consent"
    SELECT_ACCOUNT = "select_account"
    #: OpenID Connect Prompt Create 1.0: the user signs up.
    CREATE = "create"


def pkce_pair(length: int = 43) -> tuple[str, str]:
    """Make a PKCE code verifier and its S256 challenge (RFC 7636 sections 4.1-4.2).

    Args:
        length: verifier length, 43 (msal's choice) to 128.

    Returns:
        ``(code_verifier, code_challenge)``.

    Raises:
        ValueError: length out of range.
    """
    if not 43 <= length <= 128:
        msg = f"length must be 43..128 (RFC 7636 section 4.1), got {length}"
        raise ValueError(msg)
    verifier = "".join(secrets.choice(_VERIFIER_ALPHABET) for _ in range(length))
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_state() -> str:
    """A fresh ``state`` (or raw nonce): 16 random bytes, base64url, as msal.

    Returns:
        The value.
    """
    return secrets.token_urlsafe(16)


def nonce_hash(nonce: str) -> str:
    """What goes on the wire for a nonce: the hex SHA-256 of the raw value (as msal).

    Args:
        nonce: the raw nonce kept in the flow.

    Returns:
        The hex digest.
    """
    return hashlib.sha256(nonce.encode("ascii")).hexdigest()


def build_authorize_url(endpoint: str, params: Mapping[str, object]) -> str:
    """Append the authorization request parameters to the endpoint (None values dropped).

    Args:
        endpoint: the ``authorization_endpoint``.
        params: the parameters, in msal's order.

    Returns:
        The URL.
    """
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"


def add_id_token_claims(
    raw: dict[str, Any], *, correlation_id: str | None = None
) -> dict[str, Any] | None:
    """Decode a token response's ``id_token`` into ``raw["id_token_claims"]``, as msal does.

    Args:
        raw: a successful token response; changed in place.
        correlation_id: for the error.

    Returns:
        None, or an ``invalid_response`` error dict when the id_token is not a JWT.
    """
    if not raw.get("id_token") or not isinstance(raw["id_token"], str):
        return None  # none (an empty one is none too, as for the cache)
    try:
        raw["id_token_claims"] = decode_id_token(raw["id_token"])
    except ValueError:
        return error_result(
            "invalid_response",
            "The token response has an id_token that is not a JWT.",
            correlation_id=correlation_id,
        )
    return None


def decode_id_token(id_token: object) -> dict[str, Any]:
    """Decode an ID token's claims WITHOUT validating its signature, exactly as msal does.

    msal reads only the payload (``id_token.split(".")[1]``, base64url, JSON): the header
    and the signature are not looked at, so a token whose header segment does not parse is
    still accepted. msal (since 1.38, issue #911) does not validate ID tokens received straight
    from the token endpoint; OIDC Core 3.1.3.7 lets TLS stand in for the signature check.

    Args:
        id_token: a JWT (``header.payload[.signature]``).

    Returns:
        The claims.

    Raises:
        ValueError: not a string with a second segment holding a base64url JSON object.
    """
    if not isinstance(id_token, str):
        msg = f"The id_token is {type(id_token).__name__}, not a JWT"
        raise ValueError(msg)  # noqa: TRY004 (a bad value inside a response)
    parts = id_token.split(".")
    if len(parts) < 2:
        msg = "The id_token is not a JWT"
        raise ValueError(msg)
    try:
        return _json.b64url_object(parts[1], what="the id_token payload")
    except _json.JSONInputError as exc:
        msg = f"The id_token is not a JWT with a JSON payload ({exc})"
        raise ValueError(msg) from None


def check_id_token(
    claims: Mapping[str, Any], *, nonce: str | None, max_age: int | None, now: float
) -> None:
    """The checks msal runs after redeeming an auth code (spec 6.2).

    Args:
        claims: the decoded ID token claims.
        nonce: the raw nonce of the flow (its hash must be the ``nonce`` claim).
        max_age: the flow's ``max_age``; then ``auth_time`` is required and must be recent.
        now: epoch seconds.

    Raises:
        RuntimeError: a nonce mismatch, a missing or malformed ``auth_time``, or too old an
            ``auth_time`` (msal raises RuntimeError here too).
    """
    if nonce is not None:
        expected = nonce_hash(nonce)
        if claims.get("nonce") != expected:
            msg = "The nonce in the id token does not match the nonce of this auth code flow"
            raise RuntimeError(msg)
    if max_age is not None:
        auth_time = claims.get("auth_time")
        if not auth_time:
            msg = "13. max_age was requested, ID token should contain auth_time"
            raise RuntimeError(msg)
        try:
            authenticated = _json.int_value(auth_time, what="auth_time")
        except ValueError:
            msg = "13. max_age was requested, and the ID token's auth_time is not a time"
            raise RuntimeError(msg) from None
        if now - MAX_AGE_SKEW > authenticated + int(max_age):
            msg = (
                f"13. auth_time ({auth_time}) was requested, by using max_age ({max_age}) "
                f"parameter, and now ({int(now)}) too much time has elapsed since the last "
                "end-user authentication."
            )
            raise RuntimeError(msg)
