"""The one HTTP seam: owns or wraps an httpx.AsyncClient. (Interface draft; being implemented.)"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["HttpResponse", "Transport"]


@dataclass(frozen=True)
class HttpResponse:
    """A normalized, picklable HTTP response (headers lowercased)."""

    status_code: int
    text: str
    headers: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """Parse the body as JSON (raises ValueError if it is not JSON)."""
        return json.loads(self.text)


class Transport:
    """Sends every request of an app. Raises MsalTransportError on transport failure."""

    async def get(
        self,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResponse:
        """GET; a 2xx response is cached in http_cache for 24 h (msal's GET cache)."""
        raise NotImplementedError

    async def post(
        self,
        url: str,
        *,
        data: Mapping[str, str],
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResponse:
        """POST a form; applies throttling; retries once on a connection error."""
        raise NotImplementedError
