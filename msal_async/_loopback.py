"""An async loopback HTTP listener that receives the authorization response (RFC 8252 7.3).

It binds 127.0.0.1 only (RFC 8252 section 8.3: the loopback interface, never ``localhost``
name resolution and never all interfaces), accepts the ``form_post`` POST msal requires, checks
``state`` before answering, and serves msal's pages. Everything runs in the caller's task: the
listener and every connection close when the wait ends, times out or is cancelled.
"""

from __future__ import annotations

import html
import logging
import sys
from collections import defaultdict
from dataclasses import dataclass
from string import Template
from types import TracebackType
from typing import cast

if sys.version_info >= (3, 11):
    from typing import Self
else:  # typing_extensions comes with anyio on Python < 3.13
    from typing_extensions import Self
from urllib.parse import parse_qs, urlsplit

import anyio
import anyio.abc

from . import _log

__all__ = ["ERROR_TEMPLATE", "SUCCESS_TEMPLATE", "LoopbackListener", "respond"]

logger = logging.getLogger(_log.APPLICATION)

_RECOMMENDATION = (
    "For your security: Do not share the contents of this page, the address bar, "
    "or take screenshots."
)
#: msal's default pages (``oauth2cli/authcode.py``).
SUCCESS_TEMPLATE = (
    "Authentication complete. You can return to the application. Please close this browser "
    "tab.\n\n" + _RECOMMENDATION
)
ERROR_TEMPLATE = (
    "Authentication failed. $error: $error_description. ($error_uri).\n\n" + _RECOMMENDATION
)
_MAX_REQUEST = 64 * 1024
_READ_TIMEOUT = 30.0


@dataclass(frozen=True)
class _Pages:
    state: str | None
    welcome: str
    success: Template
    error: Template


def respond(
    method: str, target: str, body: bytes, pages: _Pages
) -> tuple[int, str, dict[str, str] | None]:
    """Decide the answer to one request to the loopback listener (no I/O).

    Args:
        method: ``GET`` or ``POST``.
        target: the request target (path and query).
        body: the request body.
        pages: the expected state and the page templates.

    Returns:
        ``(status, page, auth_response)``; ``auth_response`` is set when the wait is over.
    """
    if method == "GET":
        query = parse_qs(urlsplit(target).query)
        if query.get("welcome", [None])[0] == "true":
            return 200, pages.welcome, None
        if query.get("error", [None])[0] == "abort":
            return 400, "Authentication aborted", {"error": "abort"}
        if query:
            return (
                400,
                (
                    "response_mode=query is not supported for authentication responses. "
                    "This application operates in response_mode=form_post mode only."
                ),
                None,
            )
        return (
            400,
            (
                "Authentication could not be completed. You can close this window and "
                "return to the application."
            ),
            None,
        )
    if method != "POST":
        return 405, "Method Not Allowed", None
    fields = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    if not (fields.get("code") or fields.get("error")):
        return 400, "Invalid POST request", None
    if pages.state and pages.state != fields.get("state"):
        return 400, "State mismatch. Waiting for next response... or you may abort.", None
    template = pages.success if "code" in fields else pages.error
    values = fields
    if template.template.startswith("<"):
        values = {k: html.escape(v) for k, v in fields.items()}  # foil XSS in an HTML page
    return 200, template.safe_substitute(defaultdict(str, values)), fields


class LoopbackListener:
    """Listen on ``127.0.0.1:port`` (0: any free port) for one authorization response.

    Use as ``async with LoopbackListener(port) as listener:``; the port is free again when the
    block ends.

    Args:
        port: the port to listen on; 0 or None for one the OS picks.

    Raises:
        ValueError: the port cannot be listened on (in use, or privileged).
    """

    def __init__(self, port: int | None = None) -> None:
        self._port = port or 0
        self._listener: anyio.abc.SocketListener | None = None

    @property
    def port(self) -> int:
        """The port actually listened on.

        Returns:
            The port.
        """
        if self._listener is None:
            msg = "the listener is not open; use `async with LoopbackListener(...)`"
            raise RuntimeError(msg)
        port: int = self._listener.extra(anyio.abc.SocketAttribute.local_port)  # noqa: S610
        return port

    async def __aenter__(self) -> Self:
        try:
            listeners = await anyio.create_tcp_listener(
                local_host="127.0.0.1", local_port=self._port
            )
        except OSError as exc:
            msg = f"Can't listen on port {self._port}. You may try port 0. ({exc.strerror})"
            raise ValueError(msg) from None
        self._listener = cast(anyio.abc.SocketListener, listeners.listeners[0])
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._listener is not None:
            listener, self._listener = self._listener, None
            with anyio.CancelScope(shield=True):
                await listener.aclose()

    async def wait(
        self,
        *,
        state: str | None,
        welcome_page: str = "",
        success_template: str | None = None,
        error_template: str | None = None,
    ) -> dict[str, str]:
        """Serve requests until the authorization response arrives.

        Args:
            state: the state the response must carry (others are answered 400 and ignored).
            welcome_page: the page for ``?welcome=true``.
            success_template: a ``string.Template`` for the success page.
            error_template: a ``string.Template`` for the error page.

        Returns:
            The authorization response fields (``code``, ``state``... or ``error``).
        """
        if self._listener is None:
            msg = "the listener is not open; use `async with LoopbackListener(...)`"
            raise RuntimeError(msg)
        pages = _Pages(
            state,
            welcome_page,
            Template(success_template or SUCCESS_TEMPLATE),
            Template(error_template or ERROR_TEMPLATE),
        )
        result: dict[str, str] = {}
        listener = self._listener
        async with anyio.create_task_group() as tg:

            async def accept_loop() -> None:
                while True:
                    tg.start_soon(handle, await _accept(listener))

            async def handle(stream: anyio.abc.SocketStream) -> None:
                async with stream:
                    response = await _serve_one(stream, pages)
                if response is not None and not result:
                    result.update(response)
                    tg.cancel_scope.cancel()

            tg.start_soon(accept_loop)
        return result


async def _accept(listener: anyio.abc.SocketListener) -> anyio.abc.SocketStream:
    """``listener.accept()``, safe to cancel at any moment.

    asyncio's ``sock_accept`` may still complete after its wait was cancelled: the connection's
    ready callback then fails (InvalidStateError) and the accepted socket leaks (bpo-41317),
    which a browser's preconnect makes likely just as the response arrives. Waiting for the
    socket to be readable, then accepting without blocking, leaves nothing behind.
    """
    raw = listener.extra(anyio.abc.SocketAttribute.raw_socket)  # noqa: S610 (anyio, not Django)
    while True:
        await anyio.wait_readable(raw)
        try:
            sock, _ = raw.accept()
        except BlockingIOError:  # another waiter took it, or the client gave up
            continue
        return await anyio.abc.SocketStream.from_socket(sock)


async def _read_request(stream: anyio.abc.SocketStream) -> tuple[str, str, bytes] | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive(4096)
        data += chunk
        if len(data) > _MAX_REQUEST:
            return None
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        return None
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        return None
    if length > _MAX_REQUEST:
        return None
    while len(body) < length:
        body += await stream.receive(4096)
    return parts[0].upper(), parts[1], body[:length]


async def _serve_one(stream: anyio.abc.SocketStream, pages: _Pages) -> dict[str, str] | None:
    try:
        with anyio.fail_after(_READ_TIMEOUT):
            request = await _read_request(stream)
    except (TimeoutError, anyio.EndOfStream, anyio.BrokenResourceError, OSError):
        return None
    if request is None:
        status, page, found = 400, "Bad Request", None
    else:
        status, page, found = respond(*request, pages)
    content_type = "text/html" if page.startswith("<") else "text/plain"
    payload = page.encode("utf-8")
    head = (
        f"HTTP/1.1 {status} {'OK' if status == 200 else 'Bad Request'}\r\n"
        f"Content-Type: {content_type}; charset=utf-8\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    )
    try:
        await stream.send(head.encode("latin-1") + payload)
    except (anyio.BrokenResourceError, OSError):
        logger.debug("The browser closed the connection before the page was sent")
    return found
