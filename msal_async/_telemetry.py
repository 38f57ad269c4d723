"""Server telemetry headers (spec 5.11): ``x-client-current-telemetry`` and ``-last-``.

One buffer per app, guarded by a lock; no I/O.
"""

from __future__ import annotations

import threading
from random import getrandbits
from typing import Any

__all__ = [
    "AT_ABSENT",
    "AT_AGING",
    "AT_EXPIRED",
    "FORCE_REFRESH",
    "NON_SILENT",
    "TelemetryBuffer",
    "TelemetryContext",
    "new_correlation_id",
]

NON_SILENT = 0
FORCE_REFRESH = 1
AT_ABSENT = 2
AT_EXPIRED = 3
AT_AGING = 4

_LAST_HEADER_LIMIT = 350


def new_correlation_id() -> str:
    """A random (version 4) UUID for ``client-request-id``: unique, not secret.

    Returns:
        The UUID's text, as ``str(uuid.uuid4())`` (a quarter of its cost: one per request).
    """
    # random reseeds in a forked child, so workers forked from one parent do not repeat ids.
    h = f"{getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


class TelemetryBuffer:
    """The per-app record of cache hits and failed requests since the last success."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hits = 0
        self._failures: list[tuple[str, str, str]] = []
        self._failure_size = 0

    def context(
        self, api_id: str, *, refresh_reason: int = NON_SILENT, correlation_id: str | None = None
    ) -> TelemetryContext:
        """Start the telemetry of one request; returns its context."""
        return TelemetryContext(
            self, api_id, refresh_reason, correlation_id or new_correlation_id()
        )

    def hit(self) -> None:
        """Count a cache hit.

        No lock: this runs on every cache hit, and a lost increment in a thread race only
        under-reports a telemetry counter (the header format is unaffected).
        """
        self._hits += 1

    def _headers(self, api_id: str, reason: int) -> dict[str, str]:
        with self._lock:
            failures = self._failures
            failed = ",".join(f"{a},{c}" for a, c, _ in failures) if failures else ""
            errors = ",".join(e for _, _, e in failures) if failures else ""
            return {
                "x-client-current-telemetry": f"4|{api_id},{reason}|",
                "x-client-last-telemetry": f"4|{self._hits}|{failed}|{errors}|",
            }

    def _record(self, api_id: str, correlation_id: str, result: dict[str, Any]) -> None:
        with self._lock:
            error = result.get("error")
            if not error:
                self._hits = 0
                self._failures.clear()
                self._failure_size = 0
                return
            size = len(f",{api_id},{correlation_id},{error}")
            if self._failure_size + size < _LAST_HEADER_LIMIT:
                self._failure_size += size
                self._failures.append((api_id, correlation_id, str(error)))


class TelemetryContext:
    """Telemetry of one request: its correlation id and headers."""

    def __init__(
        self, buffer: TelemetryBuffer, api_id: str, refresh_reason: int, correlation_id: str
    ) -> None:
        self._buffer = buffer
        self.api_id = api_id
        self.refresh_reason = refresh_reason
        self.correlation_id = correlation_id

    def headers(self) -> dict[str, str]:
        """Return the ``client-request-id`` and telemetry headers for this request."""
        headers = self._buffer._headers(self.api_id, self.refresh_reason)
        headers["client-request-id"] = self.correlation_id
        return headers

    def record(self, result: dict[str, Any]) -> None:
        """Record the outcome: a success clears the buffer, an error is remembered."""
        self._buffer._record(self.api_id, self.correlation_id, result)
