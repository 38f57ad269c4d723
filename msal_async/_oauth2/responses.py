"""Parse token-endpoint responses into msal result dicts, with no I/O."""

from __future__ import annotations

from typing import Any

from .. import _json
from .._cache.schema import parse_account
from .._errors import error_result
from .oidc import decode_id_token

__all__ = [
    "INVALID_RESPONSE",
    "SERVER_ERROR",
    "cache_hit_result",
    "check_token_fields",
    "clean_result",
    "parse_token_response",
]

INVALID_RESPONSE = "invalid_response"
SERVER_ERROR = "server_error"
TOKEN_SOURCE_IDP = "identity_provider"
TOKEN_SOURCE_CACHE = "cache"


def _error_from_body(payload: Any, correlation_id: str) -> dict[str, Any] | None:
    if isinstance(payload, dict) and isinstance(payload.get("error"), str):
        result = dict(payload)
        result.setdefault("correlation_id", correlation_id)
        result.setdefault("error_description", "")
        return result
    return None


def parse_token_response(
    status_code: int,
    text: str,
    *,
    content_type: str = "",
    too_large: bool = False,
    correlation_id: str,
    require_access_token: bool = True,
) -> dict[str, Any]:
    """Turn a token response into msal's raw response dict or an msal error dict.

    Where msal raises (5xx, non-JSON bodies) this returns error dicts instead, so a caller's
    ``if "error" in result`` handles every server failure the same way.

    Returns:
        The parsed JSON object, or ``{"error", "error_description", "correlation_id"}``.
    """
    if too_large:
        return error_result(
            INVALID_RESPONSE,
            f"The token endpoint answered HTTP {status_code} with a body too large to be a "
            "token response; it was discarded.",
            correlation_id=correlation_id,
        )
    unreadable = None
    try:
        payload = _json.loads(text)
    except _json.JSONInputError as exc:
        payload, unreadable = None, exc
    error = _error_from_body(payload, correlation_id)
    if error is not None:
        return error
    if status_code >= 500:
        return error_result(
            SERVER_ERROR,
            f"The token endpoint answered HTTP {status_code} "
            f"({content_type or 'no content type'}). This is usually transient: retry later.",
            correlation_id=correlation_id,
        )
    if not isinstance(payload, dict):
        kind = _kind_of(payload, unreadable)
        return error_result(
            INVALID_RESPONSE,
            f"The token endpoint answered HTTP {status_code} with {kind} "
            f"({content_type or 'no content type'}), not a token response.",
            correlation_id=correlation_id,
        )
    if status_code >= 400:
        return error_result(
            INVALID_RESPONSE,
            f"The token endpoint answered HTTP {status_code} without an OAuth error.",
            correlation_id=correlation_id,
        )
    if require_access_token and not isinstance(payload.get("access_token"), str):
        return error_result(
            INVALID_RESPONSE,
            "The token response has no access_token.",
            correlation_id=correlation_id,
        )
    problem = check_token_fields(payload)
    if problem is not None:
        return error_result(
            INVALID_RESPONSE,
            f"The token response is malformed: {problem}.",
            correlation_id=correlation_id,
        )
    return payload


def _kind_of(payload: Any, unreadable: _json.JSONInputError | None) -> str:
    if unreadable is None:
        return f"JSON {type(payload).__name__}"
    if unreadable.reason == "syntax":
        return "a non-JSON body"
    return f"a body that is not acceptable JSON ({unreadable})"


def check_token_fields(payload: dict[str, Any]) -> str | None:
    """Check (and normalize in place) the fields of a token response that msal computes with.

    What msal would crash on, or cache wrongly, is refused here, before anything is cached:
    ``expires_in``, ``ext_expires_in`` and ``refresh_in`` must be integers of seconds (msal's
    ``int(...)``; they become ints), as ``expires_on`` where it stands in for ``expires_in``;
    ``refresh_token`` a string; ``client_info`` base64url JSON; ``id_token`` a JWT with a JSON
    payload; and a response with an ID token but no ``client_info`` naming the user must carry
    the ``sub`` claim (the account's id then).

    Args:
        payload: A successful token response (changed in place: numbers become ints).

    Returns:
        None when it is fine, else what is wrong (no value of the response is quoted).
    """
    numbers = ["expires_in", "ext_expires_in", "refresh_in"]
    if "expires_in" not in payload and payload.get("expires_on"):
        numbers.append("expires_on")
    try:
        for name in numbers:
            if name in payload:
                payload[name] = _json.int_value(payload[name], what=name)
        refresh_token = payload.get("refresh_token")
        if refresh_token and not isinstance(refresh_token, str):
            return "refresh_token is not a string"
        id_token = payload.get("id_token")
        decoded = decode_id_token(id_token) if id_token else {}
        claims = payload.get("id_token_claims") or decoded  # what the cache will use (msal's)
        if not isinstance(claims, dict):
            return "id_token_claims is not an object"
        parse_account(payload, claims)
    except ValueError as exc:
        return str(exc)
    return None


def clean_result(raw: dict[str, Any], *, now: float) -> dict[str, Any]:
    """msal's ``_clean_up``: drop ``_*`` keys, turn ``refresh_in`` into ``refresh_on``.

    Returns:
        A new dict; successes get ``token_source: "identity_provider"``.
    """
    result = {k: v for k, v in raw.items() if k != "refresh_in" and not k.startswith("_")}
    if "refresh_in" in raw:
        result["refresh_on"] = int(now + int(raw["refresh_in"]))
    if "error" not in raw:
        result.setdefault("token_source", TOKEN_SOURCE_IDP)
    return result


def cache_hit_result(entry: dict[str, Any], *, now: float) -> dict[str, Any]:
    """The result msal returns for an access token found in the cache.

    Returns:
        ``access_token``, ``token_type``, ``expires_in``, ``token_source`` and ``refresh_on``.
    """
    result: dict[str, Any] = {
        "access_token": entry["secret"],
        "token_type": entry.get("token_type", "Bearer"),
        "expires_in": int(int(entry["expires_on"]) - now),
        "token_source": TOKEN_SOURCE_CACHE,
    }
    if "refresh_on" in entry:
        result["refresh_on"] = int(entry["refresh_on"])
    return result
