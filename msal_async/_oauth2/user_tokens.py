"""Pure helpers of the user-token grants: CCS routing, cache events, scopes, classification."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .. import _json
from .scopes import RESERVED_SCOPES

__all__ = [
    "REFRESH_TOKEN",
    "anchor_from_client_info",
    "anchor_from_home_account_id",
    "classify",
    "event_scopes",
    "refresh_scopes",
    "token_event",
    "validate_ssh_cert_data",
]

REFRESH_TOKEN = "refresh_token"

# Suberrors msal hides from callers of acquire_token_silent_with_error (spec 5.12, msal #57).
_SUPPRESSED_SUBERRORS = frozenset(
    (
        "bad_token",
        "token_expired",
        "protection_policy_required",
        "client_mismatch",
        "device_authentication_failed",
    )
)


def anchor_from_home_account_id(home_account_id: str) -> str:
    """The ``X-AnchorMailbox`` header of a silent refresh (spec 5.10).

    Args:
        home_account_id: ``"{uid}.{utid}"``.

    Returns:
        ``"Oid:{uid}@{utid}"``.
    """
    return "Oid:" + home_account_id.replace(".", "@")


def anchor_from_client_info(client_info: object) -> str | None:
    """The ``X-AnchorMailbox`` header of an auth code redemption, from the auth response.

    Args:
        client_info: the ``client_info`` of the authorization response, if any.

    Returns:
        ``"Oid:{uid}@{utid}"``, or None when it is absent or malformed.
    """
    if not isinstance(client_info, str) or not client_info:
        return None
    try:
        decoded = _json.b64url_object(client_info, what="client_info")
    except _json.JSONInputError:
        return None
    if "uid" in decoded and "utid" in decoded:
        return f"Oid:{decoded['uid']}@{decoded['utid']}"
    return None


def event_scopes(raw: Mapping[str, Any], requested: Iterable[str]) -> list[str]:
    """The scopes a cache event records: the response's ``scope``, else the request's (msal).

    Args:
        raw: the token response.
        requested: the scopes sent.

    Returns:
        The scope list.
    """
    scope = raw.get("scope")
    if isinstance(scope, str):
        return scope.split()
    return list(requested)


def refresh_scopes(decorated: Iterable[str], rt_target: str | None, *, oidc: bool) -> list[str]:
    """The scopes of a refresh request.

    msal always re-requests ``openid profile offline_access``. A generic OIDC provider answers
    ``invalid_scope`` for a reserved scope it never granted (RFC 6749 section 6: a refresh may
    not widen the grant), so for ``oidc_authority`` apps a reserved scope is sent only when the
    refresh token's recorded ``target`` holds it.

    Args:
        decorated: the decorated requested scopes.
        rt_target: the refresh token entry's ``target`` (the scopes granted with it).
        oidc: whether the authority is a generic OIDC provider.

    Returns:
        The scopes to send.
    """
    scopes = list(decorated)
    if not oidc or not rt_target:
        return scopes
    granted = set(rt_target.split())
    return [s for s in scopes if s not in RESERVED_SCOPES or s in granted]


def classify(result: dict[str, Any] | None) -> dict[str, Any] | None:
    """Add msal's ``classification`` to a silent error that has a ``suberror`` (spec 5.12).

    Args:
        result: the final silent result.

    Returns:
        The same dict (changed in place), or None.
    """
    if result and result.get("suberror"):
        suberror = result["suberror"]
        result["classification"] = "" if suberror in _SUPPRESSED_SUBERRORS else suberror
    return result


def token_event(
    *,
    client_id: str,
    scopes: Iterable[str],
    token_endpoint: str,
    grant_type: str,
    response: Mapping[str, Any],
    data: Mapping[str, Any],
    environment: str,
    keep_refresh_token: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    """Build msal's cache add-event for a user-token response (spec 7.3).

    Args:
        client_id: the application id.
        scopes: the scopes the event records (see :func:`event_scopes`).
        token_endpoint: the endpoint the request went to (its tenant is the realm).
        grant_type: the grant.
        response: the raw token response.
        data: the caller's ``data`` fields (they shape the extended cache key).
        environment: the authority host the app uses (it wins over the endpoint host).
        keep_refresh_token: False strips the RT (msal's refresh grant updates it in place).
        extra: more event fields (``skip_account_creation``, ``username``).

    Returns:
        The event.
    """
    body = dict(response)
    if not keep_refresh_token:
        body.pop(REFRESH_TOKEN, None)
    event: dict[str, Any] = {
        "client_id": client_id,
        "scope": list(scopes),
        "token_endpoint": token_endpoint,
        "grant_type": grant_type,
        "response": body,
        "params": {},
        "data": dict(data),
        "environment": environment,
    }
    event.update(extra)
    return event


def validate_ssh_cert_data(data: Mapping[str, Any]) -> None:
    """msal's SSH-certificate input check.

    Args:
        data: the caller's ``data`` fields.

    Raises:
        ValueError: ``token_type=ssh-cert`` without ``req_cnf`` or ``key_id``.
    """
    if data.get("token_type") != "ssh-cert":
        return
    for name, what in (("req_cnf", "the public key in JWK format"), ("key_id", "the key id")):
        if not data.get(name):
            msg = (
                "When requesting an SSH certificate, you must include a string parameter "
                f"named '{name}' in data= containing {what}."
            )
            raise ValueError(msg)
