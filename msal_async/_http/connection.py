"""One HTTP/1.1 connection: h11 over a byte stream (``streams``), httpx's exceptions out.

Failures come out as the httpx exceptions a caller of ``httpx.AsyncClient`` expects:
``ConnectError``/``ConnectTimeout`` only while connecting (nothing was sent, so a retry is
safe), ``WriteError``/``WriteTimeout`` while sending, ``ReadError``/``ReadTimeout`` and
``RemoteProtocolError`` while receiving.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import h11
import httpx

from .streams import ByteStream, open_stream

__all__ = ["Connection", "connect"]

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
    with (
        _mapped(request, httpx.ConnectTimeout, httpx.ConnectError),
        anyio.fail_after(connect_timeout),
    ):
        stream = await open_stream(url.host, port, ssl_context if tls else None)
    return Connection(stream)


class Connection:
    """An HTTP/1.1 client connection: one request at a time, kept alive between them.

    Args:
        stream: a connected (TLS) byte stream.
    """

    def __init__(self, stream: ByteStream) -> None:
        self._stream = stream
        self._h11 = h11.Connection(h11.CLIENT)
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

        An idle HTTP/1.1 connection has nothing to read: data or an EOF means the server closed
        it (or broke the protocol), and a request sent on it would fail.
        """
        return self._stream.is_stale()

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
            await self._stream.send(data, timeouts.get("write"))
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
            self._h11.receive_data(await self._stream.receive(read_timeout))

    async def aclose(self) -> None:
        """Close the connection now (no TLS close_notify exchange); safe when cancelled."""
        await self._stream.aclose()
