"""One HTTP/1.1 connection: our codec over a byte stream (``streams``), httpx's exceptions out.

Failures come out as the httpx exceptions a caller of ``httpx.AsyncClient`` expects:
``ConnectError``/``ConnectTimeout`` only while connecting (nothing was sent, so a retry is
safe), ``WriteError``/``WriteTimeout`` while sending, ``ReadError``/``ReadTimeout`` and
``RemoteProtocolError`` while receiving.
"""

from __future__ import annotations

import ssl

import anyio
import httpx

from . import codec
from .streams import ByteStream, open_stream

__all__ = ["Connection", "connect"]

_STREAM_ERRORS = (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError)


#: What :func:`_mapped` turns into httpx's exceptions.
_MAPPED = (TimeoutError, codec.ProtocolError, *_STREAM_ERRORS)


def _mapped(
    exc: BaseException,
    request: httpx.Request,
    timeout_error: type[httpx.TimeoutException],
    error: type[httpx.TransportError],
) -> httpx.TransportError:
    """The httpx exception for ``exc`` (one of ``_MAPPED``), raised ``from exc`` by the caller.

    A plain function behind ``except``, not a context manager: a generator per send and per
    read cost more than the rest of a connection's bookkeeping.
    """
    if isinstance(exc, TimeoutError):  # before OSError, of which it is a subclass
        return timeout_error(timeout_error.__name__, request=request)
    if isinstance(exc, codec.RemoteProtocolError):
        return httpx.RemoteProtocolError(str(exc), request=request)
    if isinstance(exc, codec.LocalProtocolError):
        return httpx.LocalProtocolError(str(exc), request=request)
    return error(str(exc) or type(exc).__name__, request=request)


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
    tls = url.scheme == "https"
    port = url.port or (443 if tls else 80)
    try:
        with anyio.fail_after(connect_timeout):
            stream = await open_stream(url.host, port, ssl_context if tls else None)
    except _MAPPED as exc:
        raise _mapped(exc, request, httpx.ConnectTimeout, httpx.ConnectError) from exc
    return Connection(stream)


class Connection:
    """An HTTP/1.1 client connection: one request at a time, kept alive between them.

    Args:
        stream: a connected (TLS) byte stream.
    """

    def __init__(self, stream: ByteStream) -> None:
        self._stream = stream
        self._reader: codec.ResponseReader | None = None
        #: When the connection went back to its pool (``time.monotonic()``).
        self.idle_since = 0.0

    @property
    def reusable(self) -> bool:
        """Whether the last exchange ended cleanly and both sides keep the connection."""
        return self._reader is not None and self._reader.keep_alive

    def recycle(self) -> None:
        """Make the connection ready for its next request (after a clean exchange)."""
        self._reader = None

    def is_stale(self) -> bool:
        """Whether an idle connection was closed (or answered out of turn) by the server.

        An idle HTTP/1.1 connection has nothing to read: data or an EOF means the server closed
        it (or broke the protocol), and a request sent on it would fail.
        """
        return self._stream.is_stale()

    async def send_request(
        self, request: httpx.Request, timeouts: dict[str, float | None]
    ) -> codec.Response:
        """Send ``request`` and read the response's status line and headers.

        Returns:
            The response head (informational 1xx responses skipped); read the body with
            :meth:`next_chunk`.

        Raises:
            httpx.WriteError, httpx.WriteTimeout, httpx.LocalProtocolError: while sending.
            httpx.ReadError, httpx.ReadTimeout, httpx.RemoteProtocolError: while receiving.
        """
        body = await request.aread()
        method = request.method.encode("ascii")
        headers = request.headers.raw
        try:
            data = codec.encode_request(method, request.url.raw_path, headers, body)
            self._reader = codec.ResponseReader(method, request_close=codec.requests_close(headers))
            await self._stream.send(data, timeouts.get("write"))
        except _MAPPED as exc:
            raise _mapped(exc, request, httpx.WriteTimeout, httpx.WriteError) from exc
        try:
            event = await self._next_event(timeouts.get("read"))
            if not isinstance(event, codec.Response):  # the reader's first event is the head
                msg = "Server disconnected without sending a response."
                raise codec.RemoteProtocolError(msg)
        except _MAPPED as exc:
            raise _mapped(exc, request, httpx.ReadTimeout, httpx.ReadError) from exc
        return event

    async def next_chunk(self, request: httpx.Request, read_timeout: float | None) -> bytes | None:
        """The next piece of the response body, or None at its end.

        Raises:
            httpx.ReadError, httpx.ReadTimeout, httpx.RemoteProtocolError: the body broke off.
        """
        try:
            event = await self._next_event(read_timeout)
        except _MAPPED as exc:
            raise _mapped(exc, request, httpx.ReadTimeout, httpx.ReadError) from exc
        return event if isinstance(event, bytes) else None

    async def _next_event(self, read_timeout: float | None) -> codec.Response | bytes | None:
        """The reader's next head or body piece (None at the end), reading as needed."""
        reader = self._reader
        if reader is None:
            msg = "No request was sent on this connection."
            raise codec.LocalProtocolError(msg)
        while True:
            event = reader.next_event()
            if event is codec.NEED_DATA:
                reader.receive_data(await self._stream.receive(read_timeout))
            elif event is codec.END:
                return None
            else:
                return event

    async def aclose(self) -> None:
        """Close the connection now (no TLS close_notify exchange); safe when cancelled."""
        await self._stream.aclose()
