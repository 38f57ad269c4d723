"""Plain ASGI plumbing for the emulator: read a request, write a response (no web framework)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qsl

__all__ = [
    "HttpResponse",
    "RecordedRequest",
    "lifespan",
    "plain_text",
    "read_request",
    "send_response",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_FORM_TYPE = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request the emulator received, as the tests see it.

    Attributes:
        method: the HTTP method, upper case (``"POST"``).
        path: the URL path, without the query (``"/contoso.onmicrosoft.com/oauth2/v2.0/token"``).
        query: the query parameters (the last value wins when a name repeats).
        headers: the request headers with lower-cased names (repeats joined with ``", "``).
        form: the ``application/x-www-form-urlencoded`` body fields; empty for other bodies.
    """

    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    form: dict[str, str] = field(default_factory=dict)


class RouteContext(Protocol):
    """What an endpoint handler reads of the request it serves."""

    @property
    def http(self) -> RecordedRequest:
        """The recorded request."""
        ...

    @property
    def base_url(self) -> str:
        """``scheme://host[:port]`` the emulator was reached at."""
        ...

    @property
    def tenant(self) -> str:
        """The tenant path segment, as sent."""
        ...

    @property
    def now(self) -> int:
        """The emulator's clock, epoch seconds."""
        ...


@dataclass
class HttpResponse:
    """A response about to be written to the ASGI ``send`` channel."""

    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(
        cls,
        payload: Mapping[str, Any],
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResponse:
        """Build a JSON response (compact separators, as Entra sends)."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        return cls(status=status, body=body, headers=dict(headers or {}))


def _decode_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name_bytes, value_bytes in raw:
        name = name_bytes.decode("latin-1").lower()
        value = value_bytes.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def read_request(scope: Scope, receive: Receive) -> tuple[RecordedRequest, str]:
    """Read an ASGI HTTP request.

    Args:
        scope: the ASGI ``http`` scope.
        receive: the ASGI receive channel.

    Returns:
        The recorded request and the base URL (``scheme://host[:port]``) it was addressed to,
        taken from the scope's scheme and the ``Host`` header so that the emulator answers on
        whatever name it is reached by.
    """
    headers = _decode_headers(list(scope.get("headers", [])))
    query = dict(
        parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    )
    body = await _read_body(receive)
    form: dict[str, str] = {}
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == _FORM_TYPE:
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    host = headers.get("host")
    if not host:
        server = scope.get("server") or ("localhost", None)
        host = server[0] if server[1] in (None, 80, 443) else f"{server[0]}:{server[1]}"
    base_url = f"{scope.get('scheme', 'http')}://{host}"
    recorded = RecordedRequest(
        method=str(scope.get("method", "GET")).upper(),
        path=str(scope.get("path", "/")),
        query=query,
        headers=headers,
        form=form,
    )
    return recorded, base_url


async def send_response(send: Send, response: HttpResponse) -> None:
    """Write ``response`` to the ASGI send channel.

    Args:
        send: the ASGI send channel.
        response: what to send.
    """
    headers = [
        (b"content-type", response.content_type.encode("latin-1")),
        (b"content-length", str(len(response.body)).encode("latin-1")),
    ]
    headers.extend(
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in response.headers.items()
    )
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body, "more_body": False})


def plain_text(status: int, text: str, **headers: str) -> HttpResponse:
    """A ``text/plain`` response (404, 405: paths Entra does not serve).

    Args:
        status: the HTTP status.
        text: the body.
        headers: more headers (``allow=...``).

    Returns:
        The response.
    """
    return HttpResponse(
        status=status, body=text.encode(), content_type="text/plain; charset=utf-8", headers=headers
    )


async def lifespan(receive: Receive, send: Send) -> None:
    """Answer the ASGI lifespan protocol (nothing to start or stop).

    Args:
        receive: the receive channel.
        send: the send channel.
    """
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
