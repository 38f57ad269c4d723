"""Microsoft Entra's error shape: ``AADSTSnnnn`` descriptions with trace, correlation and time."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from ._http import HttpResponse

__all__ = ["EntraError", "entra_timestamp", "error_response"]

#: Headers Entra sends on every token-endpoint answer (RFC 6749 section 5.1 asks for no-store).
NO_STORE = {"cache-control": "no-store, no-cache", "pragma": "no-cache"}


class EntraError(Exception):
    """Raised by an endpoint or grant handler to answer with an Entra-shaped error.

    Args:
        code: the ``AADSTS`` number (``70008``).
        error: the OAuth ``error`` code (``"invalid_grant"``).
        message: the human text after ``AADSTSnnnn:``.
        status: the HTTP status (400 unless told).
        extra: more fields for the body (``suberror``, ``claims``).
        headers: more response headers (``Retry-After``).
    """

    def __init__(
        self,
        code: int,
        error: str,
        message: str,
        *,
        status: int = 400,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{error}: AADSTS{code}: {message}")
        self.error = error
        self.code = code
        self.message = message
        self.status = status
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})


def entra_timestamp(now: float) -> str:
    """Format ``now`` as Entra does in errors: ``2024-05-01 12:34:56Z``.

    Args:
        now: seconds since the epoch.

    Returns:
        The UTC timestamp string.
    """
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(now))


def error_response(
    failure: EntraError, *, base_url: str, correlation_id: str | None, now: float
) -> HttpResponse:
    """Render ``failure`` as the JSON body and headers Entra would send.

    Args:
        failure: the error to render.
        base_url: the scheme and host the request reached, for ``error_uri``.
        correlation_id: the request's ``client-request-id``; a fresh one when absent.
        now: seconds since the epoch, for ``timestamp``.

    Returns:
        The HTTP response.
    """
    trace_id = str(uuid.uuid4())
    correlation_id = correlation_id or str(uuid.uuid4())
    stamp = entra_timestamp(now)
    # Entra separates the parts with CRLF.
    description = (
        f"AADSTS{failure.code}: {failure.message}\r\nTrace ID: {trace_id}\r\n"
        f"Correlation ID: {correlation_id}\r\nTimestamp: {stamp}"
    )
    body: dict[str, Any] = {
        "error": failure.error,
        "error_description": description,
        "error_codes": [failure.code],
        "timestamp": stamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"{base_url}/error?code={failure.code}",
    }
    body.update(failure.extra)
    headers = {**NO_STORE, "x-ms-request-id": trace_id, **failure.headers}
    return HttpResponse.json(body, status=failure.status, headers=headers)
