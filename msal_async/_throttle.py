"""Throttling policy as data (spec 8): the keys of a request and how long to hold a response.

Pure functions; the transport applies them against the ``http_cache`` mapping.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

__all__ = [
    "DEVICE_CODE_GRANT",
    "GET_CACHE_SECONDS",
    "MAX_HOLD_SECONDS",
    "get_key",
    "hold_seconds",
    "post_keys",
    "replay_seconds",
]

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
#: msal caches 2xx discovery-style GETs for a day.
GET_CACHE_SECONDS = 24 * 3600
#: Retry-After values are capped at an hour, as msal does.
MAX_HOLD_SECONDS = 3600
#: An identical request that failed with HTTP 400 is answered from memory for this long.
REPLAY_400_SECONDS = 60


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def _sorted_items(mapping: Mapping[str, str] | None) -> str:
    return repr(sorted((mapping or {}).items()))


def post_keys(
    url: str, data: Mapping[str, str], params: Mapping[str, str] | None = None
) -> tuple[str, str]:
    """Return the (400-replay key, 429/5xx hold key) of a POST.

    The replay key covers every field, so a request with a fresh assertion or code is new;
    the hold key covers client, scope and the "account" of the request, as msal's does.
    """
    replay = f"POST {url} hash={_digest(_sorted_items(params) + _sorted_items(data))} 400"
    account = (
        data.get("refresh_token") or data.get("code") or data.get("username") or data.get("user_id")
    )
    hold = (
        f"POST {url} client_id={data.get('client_id')} scope={data.get('scope')} "
        f"hash={_digest(repr(account))} 429/5xx/Retry-After"
    )
    return replay, hold


def get_key(url: str, params: Mapping[str, str] | None = None) -> str:
    """Return the cache key of a GET."""
    return f"GET {url} hash={_digest(_sorted_items(params))} 2xx"


def hold_seconds(status_code: int, headers: Mapping[str, str], default: float) -> float:
    """How long to hold back identical requests after this response (0: not at all).

    429, any 5xx, or any response with ``Retry-After`` holds for Retry-After seconds
    (integer form, as Entra sends), else ``default``; capped at an hour.
    """
    retry_after = headers.get("retry-after")
    if not (status_code == 429 or status_code >= 500 or retry_after is not None):
        return 0
    try:
        seconds = float(int(retry_after)) if retry_after is not None else default
    except ValueError:
        seconds = default
    return max(0.0, min(float(MAX_HOLD_SECONDS), seconds))


def replay_seconds(status_code: int, headers: Mapping[str, str], data: Mapping[str, str]) -> float:
    """How long an identical request is answered with this 400 response (0: not at all).

    Only exact 400s (the OAuth2 error status), never device-code polls (their retry is the
    protocol), and never when Retry-After is present (the hold rule covers those).
    """
    if status_code != 400 or "retry-after" in headers:
        return 0
    if data.get("grant_type") == DEVICE_CODE_GRANT:
        return 0
    return REPLAY_400_SECONDS
