"""One HTTP/1.1 connection: h11 over an anyio byte stream, httpx's exceptions out.

Failures come out as the httpx exceptions a caller of ``httpx.AsyncClient`` expects:
``ConnectError``/``ConnectTimeout`` only while connecting (nothing was sent, so a retry is
safe), ``WriteError``/``WriteTimeout`` while sending, ``ReadError``/``ReadTimeout`` and
``RemoteProtocolError`` while receiving.
"""

from __future__ import annotations

import select
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import anyio.abc
import h11
import httpx

__all__ = ["Connection", "connect"]

#: Bytes asked of the stream per read; a token response fits in one.
READ_SIZE = 64 * 1024

_STREAM_ERRORS = (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError)


@contextmanager
def _mapped(
    request: httpx.Request,
    timeout_error: type[httpx.TimeoutException],
    error: type[httpx.TransportError],
) -> Iterator[None]:
    try:
        yield
    except TimeoutError as exc:  # before OSError, of which it is a subclass
        msg = timeout_error.__name__
        raise timeout_error(msg, request=request) from exc
    except h11.RemoteProtocolError as exc:
        raise httpx.RemoteProtocolError(str(exc), request=request) from exc
    except h11.LocalProtocolError as exc:
        raise httpx.LocalProtocolError(str(exc), request=request) from exc
    except _STREAM_ERRORS as exc:
        raise error(str(exc) or type(exc).__name__, request=request) from exc


def _raw_socket(stream: anyio.abc.ByteStream) -> Any:
    try:
        return stream.extra(anyio.abc.SocketAttribute.raw_socket)  # noqa: S610 (not Django)
    except anyio.TypedAttributeLookupError:
        return None


async def connect(
    url: httpx.URL,
    ssl_context: ssl.SSLContext,
    *,
    connect_timeout: float | None,
    request: httpx.Request,
) -> Connection:
    """Open a TCP connection (TLS for ``https``) to ``url``'s origin.

    Returns:
        The connection, ready for a request.

    Raises:
        httpx.ConnectError: the connection or the TLS handshake failed (certificate included).
        httpx.ConnectTimeout: that took longer than ``connect_timeout`` seconds.
    """
    stream: anyio.abc.ByteStream
    with (
        _mapped(request, httpx.ConnectTimeout, httpx.ConnectError),
        anyio.fail_after(connect_timeout),
    ):
        if url.scheme == "https":
            stream = await anyio.connect_tcp(
                url.host,
                url.port or 443,
                ssl_context=ssl_context,
                tls_hostname=url.host,
                # No close_notify exchange on close: HTTP/1.1 frames its own messages (RFC 9112
                # section 9.8 allows an incomplete close), and waiting for the peer's could hang.
                tls_standard_compatible=False,
            )
        else:
            stream = await anyio.connect_tcp(url.host, url.port or 80)
    return Connection(stream)


class Connection:
    """An HTTP/1.1 client connection: one request at a time, kept alive between them.

    Args:
        stream: a connected (TLS) byte stream.
    """

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self._stream = stream
        self._h11 = h11.Connection(h11.CLIENT)
        self._socket = _raw_socket(stream)
        #: When the connection went back to its pool (``time.monotonic()``).
        self.idle_since = 0.0

    @property
    def reusable(self) -> bool:
        """Whether the last exchange ended cleanly and both sides keep the connection."""
        return self._h11.our_state is h11.DONE and self._h11.their_state is h11.DONE

    def recycle(self) -> None:
        """Make the connection ready for its next request (after a clean exchange)."""
        self._h11.start_next_cycle()

    def is_stale(self) -> bool:
        """Whether an idle connection was closed (or answered out of turn) by the server.

        An idle HTTP/1.1 connection has nothing to read; if the socket is readable, the server
        closed it (EOF) or broke the protocol, and a request sent on it would fail.
        """
        sock = self._socket
        if sock is None:
            return False
        fd = sock.fileno()
        if fd < 0:
            return True
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            return bool(poller.poll(0))
        readable, _, _ = select.select([fd], [], [], 0)
        return bool(readable)

    async def send_request(
        self, request: httpx.Request, timeouts: dict[str, float | None]
    ) -> h11.Response:
        """Send ``request`` and read the response's status line and headers.

        Returns:
            The response head; read the body with :meth:`next_chunk`.

        Raises:
            httpx.WriteError, httpx.WriteTimeout, httpx.LocalProtocolError: while sending.
            httpx.ReadError, httpx.ReadTimeout, httpx.RemoteProtocolError: while receiving.
        """
        body = await request.aread()
        with _mapped(request, httpx.WriteTimeout, httpx.WriteError):
            head = h11.Request(
                method=request.method, target=request.url.raw_path, headers=request.headers.raw
            )
            data = self._h11.send(head) or b""
            if body:
                data += self._h11.send(h11.Data(data=body)) or b""
            data += self._h11.send(h11.EndOfMessage()) or b""
            with anyio.fail_after(timeouts.get("write")):
                await self._stream.send(data)
        with _mapped(request, httpx.ReadTimeout, httpx.ReadError):
            while True:
                event = await self._next_event(timeouts.get("read"))
                if isinstance(event, h11.Response):
                    return event
                if not isinstance(event, h11.InformationalResponse):  # a 1xx is skipped
                    msg = "Server disconnected without sending a response."
                    raise h11.RemoteProtocolError(msg)

    async def next_chunk(self, request: httpx.Request, read_timeout: float | None) -> bytes | None:
        """The next piece of the response body, or None at its end.

        Raises:
            httpx.ReadError, httpx.ReadTimeout, httpx.RemoteProtocolError: the body broke off.
        """
        with _mapped(request, httpx.ReadTimeout, httpx.ReadError):
            while True:
                event = await self._next_event(read_timeout)
                if isinstance(event, h11.Data):
                    return bytes(event.data)
                if isinstance(event, h11.EndOfMessage):
                    return None
                msg = "Server disconnected before the end of the response body."
                raise h11.RemoteProtocolError(msg)

    async def _next_event(self, read_timeout: float | None) -> Any:
        while True:
            event = self._h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            with anyio.fail_after(read_timeout):
                try:
                    data = await self._stream.receive(READ_SIZE)
                except anyio.EndOfStream:
                    data = b""
            self._h11.receive_data(data)

    async def aclose(self) -> None:
        """Close the connection now (no TLS close_notify exchange); safe when cancelled."""
        await anyio.aclose_forcefully(self._stream)
