"""The ``authorization_code`` and ``refresh_token`` grants, with PKCE, rotation and FOCI."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._entra import EntraError
from ._signin import PasswordUser, user_token_response
from ._users import IssuedRefreshToken, UserTokenSettings

if TYPE_CHECKING:
    from ._grants import GrantHandler, TokenRequest

__all__ = ["USER_GRANTS", "authorization_code_grant", "refresh_token_grant"]


def _invalid_grant(code: int, description: str, **extra: Any) -> EntraError:
    return EntraError(code, "invalid_grant", description, extra=extra)


def _pkce_ok(verifier: str, challenge: str, method: str | None) -> bool:
    if method == "S256":
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
        return secrets.compare_digest(computed, challenge)
    return secrets.compare_digest(verifier, challenge)


def _require_credential_if_confidential(request: TokenRequest) -> None:
    if request.client.client.is_confidential:
        request.require_client_credential()


def _user(request: TokenRequest, username: str, oid: str | None = None) -> PasswordUser:
    directory = request.emulator.password_users
    user = directory.get(username) or PasswordUser(username)
    # A user met through another app's token (on-behalf-of) keeps that token's object id,
    # so a refresh answers for the same account (client_info, home_account_id).
    return user if oid is None or user.oid == oid else dataclasses.replace(user, oid=oid)


def _answer(
    request: TokenRequest,
    *,
    username: str,
    scopes: list[str],
    nonce: str | None = None,
    auth_time: int | None = None,
    oid: str | None = None,
) -> dict[str, Any]:
    """Tokens for a user, with a tracked refresh token, ``foci`` and a nonce'd ID token."""
    emulator: Any = request.emulator
    settings: UserTokenSettings = emulator.user_tokens
    user = _user(request, username, oid)
    extra: dict[str, Any] = {}
    family = settings.families.get(request.client.client_id)
    if "offline_access" in scopes:
        record = settings.issue_refresh_token(
            client_id=request.client.client_id,
            username=user.username,
            tenant_id=request.tenant_id,
            scopes=tuple(scopes),
            oid=oid,
        )
        extra["refresh_token"] = record.token
    if family is not None:
        extra["foci"] = family
    body = user_token_response(emulator, request, user, scopes, extra=extra)
    if "id_token" in body and (nonce is not None or auth_time is not None):
        claims = emulator.decode(body["id_token"])
        if nonce is not None:
            claims["nonce"] = nonce
        if auth_time is not None:
            claims["auth_time"] = auth_time
        body["id_token"] = emulator.signing_key.sign(claims)
    return body


async def authorization_code_grant(request: TokenRequest) -> Mapping[str, Any]:
    """``grant_type=authorization_code`` (RFC 6749 section 4.1.3, PKCE RFC 7636 section 4.6).

    Args:
        request: the token request.

    Returns:
        The user's tokens (``id_token`` with the authorization request's nonce).

    Raises:
        EntraError: an unknown, used or foreign code, a redirect_uri or PKCE mismatch, or a
            confidential client without its credential.
    """
    _require_credential_if_confidential(request)
    emulator: Any = request.emulator
    settings: UserTokenSettings = emulator.user_tokens
    code = settings.take_code(request.require("code"))
    if code is None or code.client_id != request.client.client_id:
        raise _invalid_grant(
            70008,
            "The provided authorization code or refresh token has expired due to inactivity, "
            "or was already redeemed.",
        )
    if code.redirect_uri is not None and request.form.get("redirect_uri") != code.redirect_uri:
        raise _invalid_grant(
            50148, "The redirect_uri does not match the one of the authorization request."
        )
    if code.code_challenge:
        verifier = request.form.get("code_verifier")
        if not verifier or not _pkce_ok(verifier, code.code_challenge, code.code_challenge_method):
            raise _invalid_grant(
                501481, "The Code_Verifier does not match the code_challenge supplied."
            )
    scopes = request.scopes or list(code.scopes)
    return _answer(
        request,
        username=code.username,
        scopes=scopes,
        nonce=code.nonce,
        auth_time=code.auth_time,
    )


def _find_refresh_token(request: TokenRequest) -> IssuedRefreshToken:
    emulator: Any = request.emulator
    settings: UserTokenSettings = emulator.user_tokens
    token = request.require("refresh_token")
    with settings.lock:
        record = settings.refresh_tokens.get(token)
        if record is not None and record.revoked and settings.detect_reuse:
            settings.reuses_detected += 1
            for other in settings.refresh_tokens.values():
                if other.username == record.username and other.client_id == record.client_id:
                    other.revoked = True
    if record is None or record.revoked:
        raise _invalid_grant(
            9002313,
            "Invalid request. Request is malformed or invalid: the refresh token is unknown "
            "or revoked.",
        )
    caller = request.client.client_id
    caller_family = settings.families.get(caller)
    if record.client_id != caller and (
        record.family_id is None or record.family_id != caller_family
    ):
        raise _invalid_grant(
            70000,
            "The refresh token was issued to a different client.",
            suberror="client_mismatch",
            error_additional_info=["client_mismatch"],
        )
    return record


async def refresh_token_grant(request: TokenRequest) -> Mapping[str, Any]:
    """``grant_type=refresh_token`` (RFC 6749 section 6): rotation, revocation, FOCI.

    Args:
        request: the token request.

    Returns:
        New tokens, a new refresh token when ``rotate_refresh_tokens`` (the default).

    Raises:
        EntraError: an unknown or revoked refresh token, or one of another non-family app.
    """
    _require_credential_if_confidential(request)
    record = _find_refresh_token(request)
    emulator: Any = request.emulator
    settings: UserTokenSettings = emulator.user_tokens
    scopes = request.scopes or list(record.scopes)
    with settings.lock:
        record.redeemed += 1
    body = _answer(request, username=record.username, scopes=scopes, oid=record.oid)
    if not settings.rotate_refresh_tokens:
        dropped = body.pop("refresh_token", None)
        with settings.lock:
            settings.refresh_tokens.pop(dropped, None)
    elif settings.revoke_on_rotation:
        record.revoked = True
    return body


#: The grants this module adds to every emulator.
USER_GRANTS: Mapping[str, GrantHandler] = {
    "authorization_code": authorization_code_grant,
    "refresh_token": refresh_token_grant,
}
