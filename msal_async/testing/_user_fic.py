"""The ``user_fic`` grant: an agent presents a federated identity credential this emulator
issued and names a user (by UPN or object id); it gets that user's tokens."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from joserfc.errors import JoseError

from ._entra import EntraError
from ._grants import TokenRequest
from ._tokens import stable_guid
from ._user_grants import _answer

__all__ = ["USER_FIC", "user_fic_grant"]

USER_FIC = "user_fic"


def _username_of(request: TokenRequest, user_id: str) -> str | None:
    emulator: Any = request.emulator
    for user in emulator.password_users.all():
        oid = user.oid or stable_guid("user", request.tenant_id, user.username.lower())
        if oid == user_id:
            return str(user.username)
    return None


async def user_fic_grant(request: TokenRequest) -> Mapping[str, Any]:
    """``grant_type=user_fic``.

    Args:
        request: the token request; the client must have authenticated.

    Returns:
        The user's tokens (``id_token``, ``client_info``, ``refresh_token``).

    Raises:
        EntraError: no credential (401), a credential this emulator did not issue, neither or
            both of ``username`` and ``user_id``, or an unknown user.
    """
    request.require_client_credential()
    credential = request.require("user_federated_identity_credential")
    try:
        request.emulator.decode(credential)
    except (JoseError, ValueError):
        raise EntraError(
            50013, "invalid_grant", "The federated identity credential failed validation."
        ) from None
    username, user_id = request.form.get("username"), request.form.get("user_id")
    if bool(username) == bool(user_id):
        raise EntraError(
            900144,
            "invalid_request",
            "The request body must contain exactly one of 'username' and 'user_id'.",
        )
    name = username if username else _username_of(request, str(user_id))
    emulator: Any = request.emulator
    if name is None or emulator.password_users.get(name) is None:
        raise EntraError(50034, "invalid_grant", "The user account does not exist.")
    return _answer(request, username=name, scopes=request.scopes)
