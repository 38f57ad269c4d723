"""Scripted HTTP/1.1 servers on 127.0.0.1 for the transport tests, and a socket counter.

Each server runs in threads of its own (``socketserver``), outside any event loop under test,
answers every connection with one behaviour (keep alive, close after one answer, drop, stay
silent, send a huge body...) and records what it saw.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import socketserver
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

BODY = json.dumps({"access_token": "at", "token_type": "Bearer", "expires_in": 3600}).encode()


def read_request(conn: socket.socket) -> bytes | None:
    """One request (head and Content-Length body) from ``conn``; None at EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        body += chunk
    return head + b"\r\n\r\n" + body


def response(body: bytes = BODY, *, status: str = "200 OK", close: bool = False) -> bytes:
    """An HTTP/1.1 response with a JSON body."""
    headers = [
        f"HTTP/1.1 {status}",
        "Content-Type: application/json; charset=utf-8",
        f"Content-Length: {len(body)}",
    ]
    if close:
        headers.append("Connection: close")
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


Behaviour = Callable[[socket.socket, "Scripted"], None]


def keep_alive(conn: socket.socket, server: Scripted) -> None:
    """Answer every request on the connection."""
    while (request := read_request(conn)) is not None:
        server.requests.append(request)
        conn.sendall(response())


def one_then_close(conn: socket.socket, server: Scripted) -> None:
    """Answer one request as if keeping the connection, then close it (an idle timeout)."""
    request = read_request(conn)
    if request is not None:
        server.requests.append(request)
        conn.sendall(response())


def drop(conn: socket.socket, server: Scripted) -> None:
    """Read the request, then close without answering."""
    request = read_request(conn)
    if request is not None:
        server.requests.append(request)


def silent(conn: socket.socket, server: Scripted) -> None:
    """Read the request and never answer (until the server stops)."""
    request = read_request(conn)
    if request is not None:
        server.requests.append(request)
    server.stopping.wait(30)


def huge(conn: socket.socket, server: Scripted) -> None:
    """Answer with a 5 MiB body, the whole of it if the client reads it."""
    request = read_request(conn)
    if request is not None:
        server.requests.append(request)
        with contextlib.suppress(OSError):
            conn.sendall(response(b"x" * (5 * 1024 * 1024)))
        server.stopping.wait(30)


def no_handshake(conn: socket.socket, server: Scripted) -> None:
    """Accept the TCP connection and say nothing (a TLS handshake never completes)."""
    server.stopping.wait(30)


@dataclass
class Scripted:
    """A running scripted server: its URL, what it received and how many connections."""

    url: str
    port: int
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0
    #: Connections this server has closed.
    closed: int = 0
    stopping: threading.Event = field(default_factory=threading.Event)


@contextlib.contextmanager
def scripted_server(
    behaviour: Behaviour, *, tls: ssl.SSLContext | None = None, handshake: bool = True
) -> Iterator[Scripted]:
    """Serve ``behaviour`` on 127.0.0.1 (HTTPS with ``tls``) until the block ends."""
    state: list[Scripted] = []

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            server = state[0]
            server.connections += 1
            conn: socket.socket = self.request
            if tls is not None and handshake:
                try:
                    conn = tls.wrap_socket(conn, server_side=True)
                except (OSError, ssl.SSLError):
                    return
            with contextlib.suppress(OSError):
                behaviour(conn, server)
            with contextlib.suppress(OSError):
                conn.close()
            server.closed += 1

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True
        block_on_close = False

    with Server(("127.0.0.1", 0), Handler) as server:
        port = server.server_address[1]
        scheme = "https" if tls is not None else "http"
        state.append(Scripted(f"{scheme}://127.0.0.1:{port}", int(port)))
        thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
        thread.start()
        try:
            yield state[0]
        finally:
            state[0].stopping.set()
            server.shutdown()
            thread.join(10)


def client_sockets_to(port: int) -> int | None:
    """How many sockets of this process are connected to ``127.0.0.1:port``; None off Linux.

    Read from ``/proc``: the process's socket inodes, matched against the TCP tables' entries
    whose remote port is ``port`` and which are not closed.
    """
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.is_dir():
        return None
    inodes = set()
    for entry in fd_dir.iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(entry)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                state_close = fields[3] == "07"
                if remote_port == port and fields[9] in inodes and not state_close:
                    count += 1
    return count


@dataclass
class Proxy:
    """A running CONNECT proxy: its URL and the ``host:port`` targets it tunnelled to."""

    url: str
    targets: list[str] = field(default_factory=list)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def connect_proxy() -> Iterator[Proxy]:
    """An HTTP proxy on 127.0.0.1 that tunnels ``CONNECT host:port`` (and refuses the rest)."""
    state: list[Proxy] = []

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            conn: socket.socket = self.request
            head = read_request(conn)
            if head is None:
                return
            method, target = head.split(b" ")[:2]
            if method != b"CONNECT":
                conn.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            state[0].targets.append(target.decode())
            host, _, port = target.decode().rpartition(":")
            with socket.create_connection((host, int(port)), timeout=10) as upstream:
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                back = threading.Thread(target=_pipe, args=(upstream, conn), daemon=True)
                back.start()
                _pipe(conn, upstream)
                back.join(10)

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True
        block_on_close = False

    with Server(("127.0.0.1", 0), Handler) as server:
        state.append(Proxy(f"http://127.0.0.1:{server.server_address[1]}"))
        thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
        thread.start()
        try:
            yield state[0]
        finally:
            server.shutdown()
            thread.join(10)
