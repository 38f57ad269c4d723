"""Our HTTP/1.1 pool on real sockets: keep-alive, stale connections, retries, caps, timeouts."""

from __future__ import annotations

import gzip
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from functools import partial

import anyio
import anyio.lowlevel
import httpx
import pytest

from msal_async._errors import MsalTransportError
from msal_async._http.pool import ConnectionPool, _Permits
from msal_async._transport import Transport

from .transport_servers import (
    BODY,
    Scripted,
    client_sockets_to,
    drop,
    huge,
    keep_alive,
    no_handshake,
    one_then_close,
    read_request,
    response,
    scripted_server,
    silent,
)

pytestmark = pytest.mark.anyio

FORM = {"client_id": "c", "grant_type": "client_credentials", "scope": "s"}


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    """A transport that owns its client, closed after the test."""
    owned = Transport(timeout=10)
    yield owned
    await owned.aclose()


async def test_connections_are_kept_alive(transport: Transport) -> None:
    with scripted_server(keep_alive) as server:
        for _ in range(5):
            response = await transport.post(f"{server.url}/token", data=FORM)
            assert response.status_code == 200
            assert response.json()["access_token"] == "at"
    assert server.connections == 1
    assert len(server.requests) == 5


async def test_a_connection_the_server_closed_is_not_reused(transport: Transport) -> None:
    """Without the staleness check the second POST is written to a closed socket and fails."""
    with scripted_server(one_then_close) as server:
        for done in range(1, 4):
            assert (await transport.post(f"{server.url}/token", data=FORM)).status_code == 200
            await _wait_for(partial(_closed, server, done))  # as after an idle timeout
    assert server.connections == 3


def answer_early(conn: socket.socket, server: Scripted) -> None:
    """Answer each request with its response and, in the same write, one nobody asked for."""
    while (request := read_request(conn)) is not None:
        server.requests.append(request)
        conn.sendall(response() + response(b'{"access_token": "early"}'))


async def test_a_connection_with_data_after_the_response_is_not_reused(
    transport: Transport,
) -> None:
    """h11 kept the extra bytes and parsed them as the answer to the next request."""
    with scripted_server(answer_early) as server:
        for _ in range(3):
            response = await transport.post(f"{server.url}/token", data=FORM)
            assert response.json()["access_token"] == "at"
    assert server.connections == 3


async def test_a_dropped_post_is_not_sent_again_a_get_is(transport: Transport) -> None:
    with scripted_server(drop) as server:
        with pytest.raises(MsalTransportError, match="RemoteProtocolError"):
            await transport.post(f"{server.url}/token", data={"code": "single-use"})
        assert len(server.requests) == 1
        with pytest.raises(MsalTransportError, match="RemoteProtocolError"):
            await transport.get(f"{server.url}/doc")
        assert len(server.requests) == 3  # the GET was tried twice


async def test_read_timeout() -> None:
    transport = Transport(timeout=0.3)
    try:
        with (
            scripted_server(silent) as server,
            pytest.raises(MsalTransportError, match="ReadTimeout"),
        ):
            await transport.post(f"{server.url}/token", data=FORM)
    finally:
        await transport.aclose()


async def test_connect_timeout_covers_the_tls_handshake() -> None:
    """A server that accepts TCP but never completes TLS: a ConnectTimeout, retried once."""
    transport = Transport(timeout=(0.3, 5))
    try:
        with scripted_server(no_handshake) as server:
            with pytest.raises(MsalTransportError, match="ConnectTimeout"):
                await transport.post(f"https://127.0.0.1:{server.port}/token", data=FORM)
            assert server.connections == 2  # nothing was sent: safe to try again
    finally:
        await transport.aclose()


async def test_an_oversized_body_is_cut_and_its_connection_closed() -> None:
    pool = ConnectionPool(_context(), max_connections=4, keepalive_expiry=5)
    transport = Transport(http_client=httpx.AsyncClient(transport=pool, timeout=10))
    with scripted_server(huge) as server:
        result = await transport.post(f"{server.url}/token", data=FORM)
        assert result.too_large
        assert pool.idle_connections == 0
        assert client_sockets_to(server.port) in (0, None)
    await pool.aclose()


async def test_an_oversized_body_is_cut_on_the_apps_own_client(transport: Transport) -> None:
    """The app's own client reads answers straight from the pool, under the same cap."""
    with scripted_server(huge) as server:
        result = await transport.post(f"{server.url}/token", data=FORM)
        assert result.too_large
        await _wait_for(lambda: client_sockets_to(server.port) in (0, None))


def gzipped(body: bytes) -> Callable[[socket.socket, Scripted], None]:
    """Answer every request with ``body`` gzipped (``Content-Encoding: gzip``)."""
    packed = gzip.compress(body)

    def behave(conn: socket.socket, server: Scripted) -> None:
        while (request := read_request(conn)) is not None:
            server.requests.append(request)
            head = (
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                f"Content-Encoding: gzip\r\nContent-Length: {len(packed)}\r\n\r\n"
            )
            conn.sendall(head.encode() + packed)

    return behave


async def test_a_gzipped_answer_is_decoded_on_the_apps_own_client(transport: Transport) -> None:
    with scripted_server(gzipped(BODY)) as server:
        for _ in range(2):
            result = await transport.post(f"{server.url}/token", data=FORM)
            assert result.json()["access_token"] == "at"
    assert server.connections == 1  # the connection was kept: its whole body was read


async def test_a_gzip_bomb_is_cut_at_the_cap_once_inflated(transport: Transport) -> None:
    """6 KiB on the wire, 6 MiB decoded: the cap applies to what is decoded."""
    with scripted_server(gzipped(b" " * (6 * 1024 * 1024))) as server:
        result = await transport.post(f"{server.url}/token", data=FORM)
    assert result.too_large


async def test_pool_timeout_when_every_connection_is_busy() -> None:
    pool = ConnectionPool(_context(), max_connections=1, keepalive_expiry=5)
    timeout = httpx.Timeout(10, pool=0.2)
    async with httpx.AsyncClient(transport=pool, timeout=timeout) as client:
        with scripted_server(silent) as server:
            async with anyio.create_task_group() as group:
                group.start_soon(_post_and_ignore, client, f"{server.url}/busy")
                await _wait_for(lambda: len(server.requests) == 1)
                with pytest.raises(httpx.PoolTimeout):
                    await client.post(f"{server.url}/second", data=FORM)
                group.cancel_scope.cancel()


async def test_a_cancelled_request_closes_its_connection_and_frees_its_permit() -> None:
    pool = ConnectionPool(_context(), max_connections=1, keepalive_expiry=5)
    async with httpx.AsyncClient(transport=pool, timeout=httpx.Timeout(10, pool=2)) as client:
        with scripted_server(silent) as server:
            async with anyio.create_task_group() as group:
                group.start_soon(_post_and_ignore, client, f"{server.url}/slow")
                await _wait_for(lambda: len(server.requests) == 1)
                group.cancel_scope.cancel()
            assert pool.idle_connections == 0
            await _wait_for(lambda: client_sockets_to(server.port) in (0, None))
        with scripted_server(keep_alive) as other:  # the one permit is free again
            assert (await client.post(f"{other.url}/t", data=FORM)).status_code == 200


async def test_informational_responses_are_skipped(transport: Transport) -> None:
    def continue_then_answer(conn: socket.socket, server: Scripted) -> None:
        if read_request(conn) is not None:
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n" + response())

    with scripted_server(continue_then_answer) as server:
        result = await transport.post(f"{server.url}/t", data=FORM)
    assert result.status_code == 200
    assert result.json()["access_token"] == "at"


async def test_a_chunked_body_is_assembled(transport: Transport) -> None:
    def chunked(conn: socket.socket, server: Scripted) -> None:
        if read_request(conn) is not None:
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            pieces = [BODY[:10], BODY[10:]]
            body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
            conn.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n" + body)

    with scripted_server(chunked) as server:
        result = await transport.post(f"{server.url}/t", data=FORM)
    assert result.json()["access_token"] == "at"


async def test_connection_close_is_honoured(transport: Transport) -> None:
    def answer_and_close(conn: socket.socket, server: Scripted) -> None:
        if read_request(conn) is not None:
            server.requests.append(b"")
            conn.sendall(response(close=True))

    with scripted_server(answer_and_close) as server:
        for _ in range(2):
            assert (await transport.post(f"{server.url}/t", data=FORM)).status_code == 200
    assert server.connections == 2


async def test_a_body_the_charset_names_is_decoded(transport: Transport) -> None:
    def latin1(conn: socket.socket, server: Scripted) -> None:
        if read_request(conn) is not None:
            body = '{"error_description": "caf\xe9"}'.encode("latin-1")
            head = "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json; charset=ISO-8859-1"
            conn.sendall(f"{head}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)

    with scripted_server(latin1) as server:
        result = await transport.post(f"{server.url}/t", data=FORM)
    assert result.json() == {"error_description": "caf\xe9"}


async def test_unsupported_scheme_is_refused() -> None:
    pool = ConnectionPool(_context(), max_connections=1, keepalive_expiry=5)
    async with httpx.AsyncClient(transport=pool) as client:
        with pytest.raises(httpx.UnsupportedProtocol):
            await client.get("ftp://127.0.0.1/x")


async def test_a_closed_pool_refuses_requests() -> None:
    pool = ConnectionPool(_context(), max_connections=1, keepalive_expiry=5)
    await pool.aclose()
    async with httpx.AsyncClient(transport=pool) as client:
        with pytest.raises(RuntimeError, match="closed"):
            await client.get("http://127.0.0.1:9/x")


async def test_an_expired_idle_connection_is_replaced() -> None:
    pool = ConnectionPool(_context(), max_connections=2, keepalive_expiry=0)
    async with httpx.AsyncClient(transport=pool, timeout=10) as client:
        with scripted_server(keep_alive) as server:
            for _ in range(2):
                assert (await client.post(f"{server.url}/t", data=FORM)).status_code == 200
    assert server.connections == 2


def _context() -> ssl.SSLContext:
    return ssl.create_default_context()


def _closed(server: Scripted, count: int) -> bool:
    return server.closed == count


async def _post_and_ignore(client: httpx.AsyncClient, url: str) -> None:
    await client.post(url, data=FORM)


async def _wait_for(condition: Callable[[], bool], limit: float = 10.0) -> None:
    """Poll what another thread (a scripted server) or the OS makes true; bounded."""
    with anyio.fail_after(limit):
        while not condition():  # noqa: ASYNC110 (no event to wait on: a thread's or the OS's state)
            await anyio.sleep(0.005)


async def test_cookies_a_server_sets_are_sent_back(transport: Transport) -> None:
    """As msal's requests.Session does (Entra sets affinity cookies on token responses)."""

    def set_then_expect(conn: socket.socket, server: Scripted) -> None:
        while (request := read_request(conn)) is not None:
            server.requests.append(request)
            body = b'{"access_token": "at"}'
            cookie = b"Set-Cookie: x-ms-gateway-slice=estsfd; path=/; httponly\r\n"
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + cookie
            conn.sendall(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)

    with scripted_server(set_then_expect) as server:
        for _ in range(2):
            await transport.post(f"{server.url}/token", data=FORM)
    first, second = server.requests
    assert b"cookie:" not in first.lower()
    assert b"cookie: x-ms-gateway-slice=estsfd" in second.lower()


# --- the permits of one origin ------------------------------------------------------------------


async def test_permits_go_to_waiters_in_arrival_order() -> None:
    permits = _Permits(1)
    assert permits.take_now()
    assert not permits.take_now()
    order: list[int] = []

    async def wait(n: int) -> None:
        await permits.take()
        order.append(n)

    async with anyio.create_task_group() as group:
        for n in range(3):
            group.start_soon(wait, n)
            await anyio.wait_all_tasks_blocked()
        for _ in range(3):
            permits.release()
            await anyio.wait_all_tasks_blocked()
    assert order == [0, 1, 2]
    assert permits.free == 0  # the last waiter still holds its permit
    permits.release()
    assert (permits.free, len(permits.waiters)) == (1, 0)


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    permits = _Permits(1)
    assert permits.take_now()
    async with anyio.create_task_group() as group:
        group.start_soon(permits.take)
        await anyio.wait_all_tasks_blocked()
        assert len(permits.waiters) == 1
        group.cancel_scope.cancel()
    assert len(permits.waiters) == 0
    permits.release()
    assert permits.free == 1


async def test_a_permit_handed_to_a_waiter_cancelled_meanwhile_is_not_lost() -> None:
    permits = _Permits(1)
    assert permits.take_now()
    got: list[str] = []

    async def use(name: str, scope: anyio.CancelScope) -> None:
        with scope:
            await permits.take()
            try:
                got.append(name)
                await anyio.lowlevel.checkpoint()
            finally:
                permits.release()

    first, second = anyio.CancelScope(), anyio.CancelScope()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(use, "first", first)
            await anyio.wait_all_tasks_blocked()
            group.start_soon(use, "second", second)
            await anyio.wait_all_tasks_blocked()
            first.cancel()  # the first waiter is cancelled...
            permits.release()  # ...and handed the permit before it runs again
    # Whether the first waiter ran or passed its permit on, the second one got one after it,
    # and the permit came back.
    assert got[-1] == "second"
    assert (permits.free, len(permits.waiters)) == (1, 0)
