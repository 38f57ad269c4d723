"""Byte streams for the HTTP/1.1 connections: asyncio's own transports, or anyio's streams.

On asyncio a connection is an ``asyncio.Protocol`` on the loop's transport (TLS included):
received bytes are queued as they arrive and a send is a ``transport.write()``. anyio's streams
add, per read, a checkpoint and a pause/resume of the socket's reader (two ``epoll_ctl``
calls) and run TLS in Python over memory BIOs, which measured about 15% of a token request's
client CPU (docs/transport.md). Under trio (or any other anyio backend) anyio's streams are used.
"""

from __future__ import annotations

import asyncio
import collections
import select
import ssl
from typing import Any, Protocol, cast

import anyio
import anyio.abc

from .._singleflight import running_asyncio_loop

__all__ = ["ByteStream", "open_stream"]

#: Seconds to wait before racing the next address of a host (RFC 8305's recommendation).
HAPPY_EYEBALLS_DELAY = 0.25


class ByteStream(Protocol):
    """What an HTTP/1.1 connection needs from its transport.

    Timeouts are in seconds (None: wait forever); past one, TimeoutError is raised.
    """

    async def send(self, data: bytes, write_timeout: float | None) -> None:
        """Send all of ``data``."""
        ...

    async def receive(self, read_timeout: float | None) -> bytes:
        """The next bytes received; ``b""`` once the peer has closed."""
        ...

    def is_stale(self) -> bool:
        """Whether an idle stream has data or an EOF it should not have (the peer closed)."""
        ...

    async def aclose(self) -> None:
        """Close at once (no TLS close_notify exchange); safe when cancelled."""
        ...


async def open_stream(host: str, port: int, ssl_context: ssl.SSLContext | None) -> ByteStream:
    """Connect to ``host:port`` (TLS when ``ssl_context`` is given) on the running loop.

    Raises:
        OSError: the connection or the TLS handshake failed (certificate errors included).
    """
    loop = running_asyncio_loop()
    if loop is None:
        return await _AnyioStream.connect(host, port, ssl_context)
    return await _AsyncioStream.connect(loop, host, port, ssl_context)


class _Receiver(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.chunks: collections.deque[bytes] = collections.deque()
        self.eof = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.can_write: asyncio.Future[None] | None = None
        self.lost: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self._wake()
        self.resume_writing()
        if not self.lost.done():
            self.lost.set_result(None)

    def pause_writing(self) -> None:
        if self.can_write is None:
            self.can_write = self.loop.create_future()

    def resume_writing(self) -> None:
        waiter, self.can_write = self.can_write, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


async def _wait(waiter: asyncio.Future[None], seconds: float | None) -> None:
    """Await ``waiter``, or raise TimeoutError after ``seconds``.

    A timer on the loop instead of a cancel scope per read: cheaper, and only armed when the
    data is not there yet.
    """
    if seconds is None:
        await waiter
        return
    timer = waiter.get_loop().call_later(seconds, _expire, waiter)
    try:
        await waiter
    finally:
        timer.cancel()


def _readable(sock: Any) -> bool:
    """Whether a socket nobody is reading has bytes or an EOF waiting (True once closed)."""
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


class _AsyncioStream:
    def __init__(self, transport: asyncio.Transport, receiver: _Receiver) -> None:
        self._transport = transport
        self._receiver = receiver
        self._socket = transport.get_extra_info("socket")

    @classmethod
    async def connect(
        cls,
        loop: asyncio.AbstractEventLoop,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
    ) -> _AsyncioStream:
        receiver = _Receiver(loop)
        transport, _ = await loop.create_connection(
            lambda: receiver,
            host,
            port,
            ssl=ssl_context,
            server_hostname=host if ssl_context is not None else None,
            happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY,
        )
        return cls(transport, receiver)

    async def send(self, data: bytes, write_timeout: float | None) -> None:
        receiver = self._receiver
        if receiver.eof or self._transport.is_closing():
            raise anyio.BrokenResourceError from receiver.error
        self._transport.write(data)
        while receiver.can_write is not None:  # the transport's buffer is full: wait
            await _wait(receiver.can_write, write_timeout)
            if receiver.eof:
                raise anyio.BrokenResourceError from receiver.error

    async def receive(self, read_timeout: float | None) -> bytes:
        receiver = self._receiver
        while not receiver.chunks:
            if receiver.eof:
                if receiver.error is not None:
                    raise anyio.BrokenResourceError from receiver.error
                return b""
            receiver.waiter = receiver.loop.create_future()
            await _wait(receiver.waiter, read_timeout)
        return receiver.chunks.popleft()

    def is_stale(self) -> bool:
        receiver = self._receiver
        if receiver.eof or receiver.chunks or self._transport.is_closing():
            return True
        # An EOF the loop has not turned to read yet is still in the socket.
        return _readable(self._socket)

    async def aclose(self) -> None:
        self._transport.abort()  # the socket is closed on the loop's next turn: wait for it
        with anyio.CancelScope(shield=True):
            await self._receiver.lost


class _AnyioStream:
    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self._stream = stream
        try:
            self._socket: Any = stream.extra(anyio.abc.SocketAttribute.raw_socket)  # noqa: S610
        except anyio.TypedAttributeLookupError:
            self._socket = None

    @classmethod
    async def connect(
        cls, host: str, port: int, ssl_context: ssl.SSLContext | None
    ) -> _AnyioStream:
        stream: anyio.abc.ByteStream
        if ssl_context is not None:
            stream = await anyio.connect_tcp(
                host,
                port,
                ssl_context=ssl_context,
                tls_hostname=host,
                # No close_notify exchange on close: HTTP/1.1 frames its own messages (RFC 9112
                # section 9.8 allows an incomplete close), and waiting for the peer's could hang.
                tls_standard_compatible=False,
                happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY,
            )
        else:
            stream = await anyio.connect_tcp(host, port, happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY)
        return cls(stream)

    async def send(self, data: bytes, write_timeout: float | None) -> None:
        with anyio.fail_after(write_timeout):
            await self._stream.send(data)

    async def receive(self, read_timeout: float | None) -> bytes:
        try:
            with anyio.fail_after(read_timeout):
                return await self._stream.receive()
        except anyio.EndOfStream:
            return b""

    def is_stale(self) -> bool:
        # Nothing reads an idle connection's socket, so readable means an EOF (or junk) came.
        return _readable(self._socket)

    async def aclose(self) -> None:
        await anyio.aclose_forcefully(self._stream)
