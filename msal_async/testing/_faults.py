"""Faults on demand: throttling, outages, broken bodies and slowness for the next N requests."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._entra import EntraError
from ._http import HttpResponse

__all__ = ["ENDPOINTS", "Fault", "FaultQueue"]

#: The endpoint names a fault may target (the same names ``emulator.counts`` uses for GETs).
ENDPOINTS = frozenset({"token", "discovery", "openid-configuration", "jwks"})

_TRUNCATED_JSON = b'{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_tok'

_HTML_PAGE = (
    "<!DOCTYPE html><html><head><title>{status} - Gateway Error</title></head>"
    "<body><h1>{status}</h1><p>The service is temporarily unavailable.</p></body></html>"
)

_SERVER_ERRORS: Mapping[int, tuple[str, int, str]] = {
    500: (
        "server_error",
        50000,
        "There was an error issuing a token or an issue with our sign-in service.",
    ),
    503: ("temporarily_unavailable", 90033, "A transient error has occurred. Please try again."),
}


@dataclass(frozen=True)
class Fault:
    """A misbehaviour the emulator plays instead of (or around) its normal answer.

    Build one with the class methods (``Fault.too_many_requests(retry_after=5)``) and arm it with
    ``emulator.inject(fault, times=...)``.

    Attributes:
        kind: ``"status"`` (a replacement response), ``"latency"`` or ``"huge_body"``.
        response: the replacement response, for ``"status"`` faults.
        error: an Entra error to render as the replacement, for error faults.
        seconds: the delay, for ``"latency"``.
        nbytes: the minimum body size, for ``"huge_body"``.
    """

    kind: str
    response: HttpResponse | None = None
    error: EntraError | None = field(default=None, compare=False)
    seconds: float = 0.0
    nbytes: int = 0

    @classmethod
    def too_many_requests(cls, *, retry_after: int = 5) -> Fault:
        """HTTP 429 with ``Retry-After`` and an Entra throttling body.

        Args:
            retry_after: the ``Retry-After`` header value, in seconds.

        Returns:
            The fault.
        """
        failure = EntraError(
            90055,
            "temporarily_unavailable",
            f"Too many requests. Retry after {retry_after} seconds.",
            status=429,
            headers={"retry-after": str(retry_after)},
        )
        return cls(kind="status", error=failure)

    @classmethod
    def server_error(cls, *, status: int = 500, retry_after: int | None = None) -> Fault:
        """A 5xx with an Entra JSON error body (``server_error`` for 500, else
        ``temporarily_unavailable``).

        Args:
            status: the HTTP status, 500 to 599.
            retry_after: when given, a ``Retry-After`` header in seconds.

        Returns:
            The fault.

        Raises:
            ValueError: ``status`` is not a 5xx.
        """
        if not 500 <= status <= 599:
            msg = f"Fault.server_error(status={status!r}): status must be 500-599"
            raise ValueError(msg)
        error, code, message = _SERVER_ERRORS.get(status, _SERVER_ERRORS[503])
        headers = {} if retry_after is None else {"retry-after": str(retry_after)}
        failure = EntraError(code, error, message, status=status, headers=headers)
        return cls(kind="status", error=failure)

    @classmethod
    def invalid_grant(
        cls,
        *,
        code: int = 70008,
        message: str = (
            "The provided authorization code or refresh token has expired due to inactivity."
        ),
        suberror: str | None = None,
        claims: str | None = None,
    ) -> Fault:
        """HTTP 400 ``invalid_grant`` (an expired or revoked grant, a claims challenge).

        Args:
            code: the ``AADSTS`` number.
            message: the text after ``AADSTSnnnn:``.
            suberror: Entra's ``suberror`` (``"bad_token"``, ``"consent_required"``).
            claims: a claims challenge to return in ``claims``.

        Returns:
            The fault.
        """
        extra = {
            name: value
            for name, value in (("suberror", suberror), ("claims", claims))
            if value is not None
        }
        return cls(kind="status", error=EntraError(code, "invalid_grant", message, extra=extra))

    @classmethod
    def malformed_json(cls) -> Fault:
        """HTTP 200 whose ``application/json`` body is cut off mid-way.

        Returns:
            The fault.
        """
        return cls(kind="status", response=HttpResponse(status=200, body=_TRUNCATED_JSON))

    @classmethod
    def html_error_page(cls, *, status: int = 502) -> Fault:
        """An HTML error page from a proxy or gateway (``text/html``, not JSON).

        Args:
            status: the HTTP status.

        Returns:
            The fault.
        """
        body = _HTML_PAGE.format(status=status).encode()
        response = HttpResponse(status=status, body=body, content_type="text/html; charset=utf-8")
        return cls(kind="status", response=response)

    @classmethod
    def latency(cls, seconds: float) -> Fault:
        """Wait ``seconds`` (with ``anyio.sleep``) before answering normally.

        Args:
            seconds: the delay.

        Returns:
            The fault.

        Raises:
            ValueError: ``seconds`` is negative.
        """
        if seconds < 0:
            msg = f"Fault.latency(seconds={seconds!r}): the delay cannot be negative"
            raise ValueError(msg)
        return cls(kind="latency", seconds=seconds)

    @classmethod
    def huge_body(cls, nbytes: int) -> Fault:
        """Answer normally, but pad the JSON body with a ``padding`` member to ``nbytes`` or more.

        Args:
            nbytes: the minimum body size in bytes.

        Returns:
            The fault.
        """
        return cls(kind="huge_body", nbytes=nbytes)

    def pad(self, response: HttpResponse) -> HttpResponse:
        """Grow ``response``'s JSON body to :attr:`nbytes` (``huge_body`` faults).

        Args:
            response: the normal answer.

        Returns:
            The padded answer (the same one if its body is not a JSON object).
        """
        try:
            payload: Any = json.loads(response.body)
        except ValueError:
            return response
        if not isinstance(payload, dict):
            return response
        missing = max(self.nbytes - len(response.body), 0)
        payload["padding"] = "x" * missing
        padded = HttpResponse.json(payload, status=response.status, headers=response.headers)
        padded.content_type = response.content_type
        return padded


@dataclass
class _Armed:
    fault: Fault
    remaining: int
    endpoint: str
    grant_type: str | None


class FaultQueue:
    """Armed faults, consumed first-come by the requests they match (thread-safe)."""

    def __init__(self) -> None:
        self._armed: list[_Armed] = []
        self._lock = threading.Lock()

    def arm(self, fault: Fault, *, times: int, endpoint: str, grant_type: str | None) -> None:
        """Arm ``fault`` for the next ``times`` matching requests.

        Args:
            fault: what to play.
            times: how many matching requests it applies to.
            endpoint: one of :data:`ENDPOINTS`.
            grant_type: only token requests with this ``grant_type``; any when None.
        """
        with self._lock:
            self._armed.append(_Armed(fault, times, endpoint, grant_type))

    def take(self, endpoint: str, grant_type: str | None) -> Fault | None:
        """Consume one use of the first fault armed for this request.

        Args:
            endpoint: the endpoint name the request reached.
            grant_type: the token request's ``grant_type``, or None.

        Returns:
            The fault to play, or None.
        """
        with self._lock:
            for armed in self._armed:
                if armed.endpoint != endpoint:
                    continue
                if armed.grant_type is not None and armed.grant_type != grant_type:
                    continue
                armed.remaining -= 1
                if armed.remaining <= 0:
                    self._armed.remove(armed)
                return armed.fault
        return None

    def pending(self) -> int:
        """How many fault plays are still armed.

        Returns:
            The sum of the remaining uses.
        """
        with self._lock:
            return sum(armed.remaining for armed in self._armed)

    def clear(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._armed.clear()
