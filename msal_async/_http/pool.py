"""A small per-origin pool of HTTP/1.1 connections, as an ``httpx.AsyncBaseTransport``.

Token traffic goes to one or two hosts, so each origin gets a fixed number of connection
permits (:class:`_Permits`: waiters queue in FIFO order at O(1) cost each) and a stack of
idle connections, the most recently used on top. A request takes a permit, reuses the top idle
connection unless it has expired or the server closed it, else connects; the permit and the
connection come back when the response is closed. httpcore's pool, by contrast, re-examines
every connection for every queued request on every event (docs/transport.md has figures).
"""

from __future__ import annotations

import ssl
import time
from collections import deque
from dataclasses import dataclass, field

import anyio
import httpx

from .codec import Response
from .connection import Connection, connect

__all__ = ["ConnectionPool"]


class _Permits:
    """Connection permits of one origin: a count, and the queue of waiting requests (FIFO).

    A released permit goes straight to the first waiter. Thousands of requests may wait here
    at once in a cold burst, so a waiter holds one event and nothing else (an
    ``anyio.Semaphore`` waiter also keeps a ``WouldBlock`` exception and its traceback alive).
    """

    __slots__ = ("free", "waiters")

    def __init__(self, count: int) -> None:
        self.free = count
        self.waiters: deque[anyio.Event] = deque()

    def take_now(self) -> bool:
        """Take a permit if one is free and nobody queues before us."""
        if self.free and not self.waiters:
            self.free -= 1
            return True
        return False

    async def take(self) -> None:
        """Wait for a permit (bound the wait with a cancel scope)."""
        event = anyio.Event()
        self.waiters.append(event)
        try:
            await event.wait()
        except BaseException:
            if event.is_set():  # handed a permit as the wait was cancelled: pass it on
                self.release()
            else:
                self.waiters.remove(event)
            raise

    def release(self) -> None:
        """Give a permit back: to the first waiter, else to the count."""
        if self.waiters:
            self.waiters.popleft().set()
        else:
            self.free += 1


@dataclass
class _Origin:
    permits: _Permits
    idle: list[Connection] = field(default_factory=list)


class ConnectionPool(httpx.AsyncBaseTransport):
    """HTTP/1.1 over anyio streams, at most ``max_connections`` per origin.

    Args:
        ssl_context: verifies (or not) the servers' certificates for ``https``.
        max_connections: connections per origin (in use plus idle).
        keepalive_expiry: seconds an idle connection is kept.
    """

    def __init__(
        self, ssl_context: ssl.SSLContext, *, max_connections: int, keepalive_expiry: float
    ) -> None:
        self._ssl_context = ssl_context
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._origins: dict[tuple[str, str, int | None], _Origin] = {}
        self._closed = False

    @property
    def idle_connections(self) -> int:
        """How many connections are open and idle (for tests and diagnostics)."""
        return sum(len(origin.idle) for origin in self._origins.values())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` on a pooled connection; the body streams from the connection.

        Returns:
            The response; closing it returns the connection to the pool.

        Raises:
            httpx.PoolTimeout: no connection became free within the pool timeout.
            httpx.ConnectError, httpx.ConnectTimeout: connecting failed (nothing was sent).
            httpx.TransportError: sending or receiving failed.
        """
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        origin, connection, head = await self._send(request, timeouts)
        stream = _ResponseStream(self, origin, connection, request, timeouts.get("read"))
        return httpx.Response(
            head.status_code,
            headers=head.headers,
            stream=stream,
            extensions={"http_version": head.http_version, "reason_phrase": head.reason},
        )

    async def exchange(self, request: httpx.Request, limit: int) -> tuple[Response, bytes | None]:
        """Send ``request`` and read its whole answer, without an ``httpx.Response``.

        Args:
            request: the request.
            limit: the most body bytes to read; past it the connection is closed.

        Returns:
            The response head, and the body as received (None past ``limit``).

        Raises:
            httpx.PoolTimeout, httpx.ConnectError, httpx.ConnectTimeout, httpx.TransportError:
                as :meth:`handle_async_request`.
        """
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        origin, connection, head = await self._send(request, timeouts)
        read_timeout = timeouts.get("read")
        chunks: list[bytes] = []
        size = 0
        complete = False
        try:
            while size <= limit:
                chunk = await connection.next_chunk(request, read_timeout)
                if chunk is None:
                    complete = True
                    break
                size += len(chunk)
                chunks.append(chunk)
        finally:
            await self.release(origin, connection, clean=complete)
        return head, (b"".join(chunks) if complete and size <= limit else None)

    async def _send(
        self, request: httpx.Request, timeouts: dict[str, float | None]
    ) -> tuple[_Origin, Connection, Response]:
        """Take a permit and a connection, send ``request`` and read the response's head."""
        url = request.url
        if url.scheme not in ("http", "https"):
            msg = f"Request URL has an unsupported protocol '{url.scheme}://'."
            raise httpx.UnsupportedProtocol(msg, request=request)
        if self._closed:
            msg = "The connection pool was closed."
            raise RuntimeError(msg)
        key = (url.scheme, url.host, url.port)
        origin = self._origins.get(key)
        if origin is None:
            origin = self._origins[key] = _Origin(_Permits(self._max_connections))
        if not origin.permits.take_now():
            await self._wait_for_permit(origin, request, timeouts.get("pool"))
        connection: Connection | None = None
        try:
            connection = await self._take_idle(origin)
            if connection is None:
                connection = await connect(
                    url,
                    self._ssl_context,
                    connect_timeout=timeouts.get("connect"),
                    request=request,
                )
            head = await connection.send_request(request, timeouts)
        except BaseException:
            if connection is not None:
                await connection.aclose()
            origin.permits.release()
            raise
        return origin, connection, head

    async def _wait_for_permit(
        self, origin: _Origin, request: httpx.Request, pool_timeout: float | None
    ) -> None:
        if pool_timeout is None:
            await origin.permits.take()
            return
        # A bare scope, not fail_after (two generators more per waiter; a burst has thousands).
        with anyio.CancelScope(deadline=anyio.current_time() + pool_timeout) as scope:
            await origin.permits.take()
        if scope.cancelled_caught:
            msg = "Timed out waiting for a free connection."
            raise httpx.PoolTimeout(msg, request=request)

    async def _take_idle(self, origin: _Origin) -> Connection | None:
        now = time.monotonic()
        while origin.idle:
            connection = origin.idle.pop()
            if now - connection.idle_since <= self._keepalive_expiry and not connection.is_stale():
                return connection
            await connection.aclose()  # expired, or closed by the server
        return None

    async def release(self, origin: _Origin, connection: Connection, *, clean: bool) -> None:
        """Return a connection after its response was read (``clean``) or abandoned."""
        try:
            if clean and connection.reusable and not self._closed:
                connection.recycle()
                connection.idle_since = time.monotonic()
                origin.idle.append(connection)
            else:
                await connection.aclose()
        finally:
            origin.permits.release()

    async def aclose(self) -> None:
        """Close the idle connections; those in use are closed when their response is."""
        self._closed = True
        for origin in self._origins.values():
            idle, origin.idle = origin.idle, []
            for connection in idle:
                await connection.aclose()


class _ResponseStream(httpx.AsyncByteStream):
    """A response body read from its connection; closing it releases the connection.

    An iterator object rather than an async generator, so that a body abandoned half-way
    leaves no generator for the garbage collector to finalise.
    """

    def __init__(
        self,
        pool: ConnectionPool,
        origin: _Origin,
        connection: Connection,
        request: httpx.Request,
        timeout: float | None,
    ) -> None:
        self._pool = pool
        self._origin = origin
        self._connection: Connection | None = connection
        self._request = request
        self._timeout = timeout
        self._complete = False

    def __aiter__(self) -> _ResponseStream:
        return self

    async def __anext__(self) -> bytes:
        connection = self._connection
        if connection is None or self._complete:
            raise StopAsyncIteration
        try:
            chunk = await connection.next_chunk(self._request, self._timeout)
        except BaseException:
            await self.aclose()
            raise
        if chunk is None:
            self._complete = True
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        """Give the connection back (kept alive only if the whole body was read)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            await self._pool.release(self._origin, connection, clean=self._complete)
