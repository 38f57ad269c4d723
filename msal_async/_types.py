"""Plain data shapes shared across layers (TypedDicts and aliases)."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any, TypedDict

__all__ = [
    "AuthCodeFlow",
    "CacheEvent",
    "DeviceFlow",
    "HttpCache",
    "Result",
    "Scopes",
    "TokenResult",
]

#: A token or error result dict, as msal returns it (the untyped form flows work with).
Result = dict[str, Any]

Scopes = list[str] | tuple[str, ...] | set[str] | frozenset[str]
"""Scopes as the acquire methods accept them: a list, tuple, set or frozenset of strings.

Never a bare ``str``: ``"User.Read"`` is rejected (a ValueError naming the fix), as msal does.
``acquire_token_silent`` and ``acquire_token_by_authorization_code`` take a ``list`` only, as
msal asserts.
"""

#: The ``http_cache`` mapping a caller may pass (any dict-like object).
HttpCache = MutableMapping[str, Any]

#: A clock: seconds since the epoch.
Clock = Callable[[], float]


class TokenResult(TypedDict, total=False):
    """What every ``acquire_*`` method returns: a token result or an error dict, as msal's.

    Every key is optional: a success carries ``access_token``, ``token_type``, ``expires_in``
    and ``token_source`` (and, depending on the flow, ``refresh_token``, ``id_token``,
    ``id_token_claims``, ``client_info``, ``scope``, ``refresh_on``...); a failure carries
    ``error`` and ``error_description`` (and ``error_codes``, ``correlation_id``,
    ``suberror``, ``claims``...). Test ``"error" in result`` first, as with msal. At run time
    this is a plain ``dict``: fields the server adds that are not listed here are kept.
    """

    # a token
    access_token: str
    token_type: str
    expires_in: int
    ext_expires_in: int
    refresh_in: int
    refresh_on: int
    refresh_token: str
    id_token: str
    id_token_claims: dict[str, Any]
    client_info: str
    scope: str
    foci: str
    token_source: str  # "cache", "identity_provider" (msal's "broker" never happens here)
    # an error
    error: str
    error_description: str
    error_codes: list[int]
    error_uri: str
    correlation_id: str
    timestamp: str
    trace_id: str
    suberror: str
    classification: str
    claims: str


class DeviceFlow(TypedDict, total=False):
    """What ``initiate_device_flow`` returns (msal's flow dict), or an error dict.

    Show ``message`` to the user and pass the whole dict to ``acquire_token_by_device_flow``.
    """

    user_code: str
    device_code: str
    verification_uri: str
    verification_uri_complete: str
    expires_in: int
    interval: int
    message: str
    expires_at: float
    # an error
    error: str
    error_description: str
    error_codes: list[int]
    correlation_id: str
    timestamp: str
    trace_id: str


class AuthCodeFlow(TypedDict, total=False):
    """What ``initiate_auth_code_flow`` returns (msal's flow dict).

    Keep it in the user's session; send the browser to ``auth_uri``.
    """

    auth_uri: str
    state: str
    redirect_uri: str | None
    scope: list[str]
    code_verifier: str
    nonce: str
    claims_challenge: str | None


class CacheEvent(TypedDict, total=False):
    """The cache event msal hands to ``TokenCache.add``."""

    client_id: str
    scope: list[str]
    token_endpoint: str
    grant_type: str
    response: dict[str, Any]
    params: dict[str, Any]
    data: dict[str, Any]
    environment: str
    skip_account_creation: bool
    username: str
    authority_type: str
