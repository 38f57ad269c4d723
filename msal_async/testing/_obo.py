"""The on-behalf-of grant (``urn:ietf:params:oauth:grant-type:jwt-bearer``).

A middle-tier API exchanges the access token it received (``assertion``), issued to it by
this emulator, for a token to a downstream API, for the same user. Entra also returns a
refresh token and, when ``openid`` is asked for, an ID token and ``client_info``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from joserfc.errors import JoseError

from ._entra import EntraError
from ._grants import TokenRequest
from ._tokens import make_client_info

__all__ = ["JWT_BEARER", "on_behalf_of"]

#: RFC 7523 section 2.1.
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})


def _resource_scopes(scopes: list[str]) -> tuple[str, list[str]]:
    """The downstream resource and its scopes: ``api://x/read`` -> (``api://x``, [...])."""
    wanted = [scope for scope in scopes if scope not in _OIDC_SCOPES]
    if not wanted:
        raise EntraError(
            70011, "invalid_scope", "The provided value for the input parameter 'scope' is empty."
        )
    resource, _, _ = wanted[0].rpartition("/")
    if not resource:
        resource = "00000003-0000-0000-c000-000000000000"  # Microsoft Graph's bare scopes
    return resource, [scope.rpartition("/")[2] for scope in wanted]


async def on_behalf_of(request: TokenRequest) -> Mapping[str, Any]:
    """``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`` with ``on_behalf_of``.

    Args:
        request: the token request; the client must have authenticated.

    Returns:
        ``access_token``, ``refresh_token``, and ``id_token`` plus ``client_info`` when
        ``openid`` was asked for.

    Raises:
        EntraError: no credential (401), a wrong ``requested_token_use``, or an
            ``assertion`` this emulator did not issue to the caller (400 ``invalid_grant``).
    """
    request.require_client_credential()
    assertion = request.require("assertion")
    if request.form.get("requested_token_use") != "on_behalf_of":
        raise EntraError(
            50034,
            "invalid_request",
            "The request body must contain the following parameter: 'requested_token_use' "
            "with the value 'on_behalf_of'.",
        )
    emulator = request.emulator
    try:
        incoming = emulator.decode(assertion)
    except (JoseError, ValueError):
        raise EntraError(50013, "invalid_grant", "Assertion failed signature validation.") from None
    client_id = request.client.client_id
    if incoming.get("aud") not in (client_id, f"api://{client_id}"):
        raise EntraError(
            50013,
            "invalid_grant",
            "Assertion audience does not match the Client app presenting the assertion.",
        )
    user_oid = str(incoming.get("oid") or uuid.uuid4())
    tenant_id = str(incoming.get("tid") or request.tenant_id)
    username = incoming.get("preferred_username") or incoming.get("upn")
    resource, scopes = _resource_scopes(request.scopes)
    access_token = emulator.issue_access_token(
        audience=resource,
        client_id=client_id,
        tenant_id=tenant_id,
        user_oid=user_oid,
        scp=" ".join(scopes),
        app_auth_method=request.client.method,
        client_capabilities=request.client_capabilities(),
        extra_claims={"upn": username} if username else None,
    )
    # Redeemable by the refresh grant, for this client, as Entra's: a long-running middle
    # tier caches the OBO result and refreshes it later without the user's token.
    refresh = emulator.user_tokens.issue_refresh_token(
        client_id=client_id,
        username=str(username or ""),
        tenant_id=tenant_id,
        scopes=tuple(request.scopes),
        oid=user_oid,
    )
    extra: dict[str, Any] = {"scope": " ".join(request.scopes), "refresh_token": refresh.token}
    if "openid" in request.scopes:
        extra["id_token"] = emulator.issue_id_token(
            client_id=client_id,
            base_url=request.base_url,
            tenant_id=tenant_id,
            oid=user_oid,
            preferred_username=str(username) if username else None,
        )
        extra["client_info"] = make_client_info(user_oid, tenant_id)
    return emulator.token_response(access_token, **extra)
