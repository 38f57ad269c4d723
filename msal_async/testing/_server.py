"""Serve an ASGI app (the emulator) on a loopback port with uvicorn, optionally over TLS.

uvicorn is an optional dependency (``pip install msal-async[testing]``) and is imported only
when a server actually starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["TLSFiles", "generate_tls_files", "run", "serve_in_thread"]

_STARTUP_TIMEOUT = 10.0


@dataclass(frozen=True)
class TLSFiles:
    """PEM files for serving HTTPS.

    Attributes:
        certfile: the server certificate.
        keyfile: the server's private key.
        ca_file: the CA that issued ``certfile``; pass it to clients as ``verify=``.
    """

    certfile: Path
    keyfile: Path
    ca_file: Path


def _uvicorn() -> Any:
    try:
        import uvicorn  # optional extra: imported only when serving
    except ImportError as missing:
        msg = "Serving the authority emulator needs uvicorn: pip install msal-async[testing]"
        raise ImportError(msg) from missing
    return uvicorn


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def generate_tls_files(directory: str | Path) -> TLSFiles:
    """Create a throwaway CA and a server certificate for ``127.0.0.1``, ``::1`` and
    ``localhost`` (ECDSA P-256, valid for a day from an hour ago).

    Args:
        directory: where to write ``ca.pem``, ``server.pem`` and ``server-key.pem``.

    Returns:
        The paths.
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    not_before, not_after = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("msal-async emulator test CA"))
        .issuer_name(_name("msal-async emulator test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TLSFiles(
        certfile=folder / "server.pem",
        keyfile=folder / "server-key.pem",
        ca_file=folder / "ca.pem",
    )
    files.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.certfile.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    files.keyfile.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only when the
    # listener's proto says TCP; with proto 0 every response stalls ~40 ms (Nagle + delayed ACK).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _base_url(sock: socket.socket, *, tls: bool) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if tls else 'http'}://{shown}:{port}"


def _server(app: Any, tls: TLSFiles | None, log_level: str) -> Any:
    uvicorn = _uvicorn()
    options: dict[str, Any] = {"log_level": log_level, "lifespan": "on", "access_log": False}
    if tls is not None:
        options.update(ssl_certfile=str(tls.certfile), ssl_keyfile=str(tls.keyfile))
    return uvicorn.Server(uvicorn.Config(app, **options))


@contextlib.contextmanager
def serve_in_thread(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    tls: TLSFiles | None = None,
    log_level: str = "warning",
) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a background thread (its own event loop) while inside.

    Args:
        app: an ASGI app, such as an :class:`AuthorityEmulator`.
        host: the address to listen on.
        port: the port; 0 picks a free one.
        tls: certificate and key to serve HTTPS with; plain HTTP when None.
        log_level: uvicorn's log level.

    Yields:
        The base URL, such as ``"https://127.0.0.1:54321"``.

    Raises:
        ImportError: uvicorn is not installed.
        RuntimeError: the server did not start within 10 seconds.
    """
    server = _server(app, tls, log_level)
    sock = _bind(host, port)
    loops: list[asyncio.AbstractEventLoop] = []

    async def serve() -> None:
        loops.append(asyncio.get_running_loop())
        await server.serve(sockets=[sock])

    thread = threading.Thread(
        target=asyncio.run, args=(serve(),), name="msal-async-emulator", daemon=True
    )
    try:
        thread.start()
        deadline = time.monotonic() + _STARTUP_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                msg = f"the emulator server did not start on {host}:{port}"
                raise RuntimeError(msg)
            time.sleep(0.005)
        yield _base_url(sock, tls=tls is not None)
    finally:
        if loops and thread.is_alive():
            loops[0].call_soon_threadsafe(_stop, server, loops[0])
        thread.join(_STARTUP_TIMEOUT)
        sock.close()


def _stop(server: Any, loop: asyncio.AbstractEventLoop) -> None:
    """Ask uvicorn to exit, then drop connections still open a moment later.

    An idle keep-alive TLS connection would otherwise hold the shutdown until asyncio's TLS
    close timeout (30 s): uvicorn closes it politely and waits for a close_notify that a
    client that is not reading never sends.
    """
    server.should_exit = True

    def abort_remaining() -> None:
        for connection in list(server.server_state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.abort()

    loop.call_later(0.2, abort_remaining)


def run(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    tls: bool = False,
    out: TextIO | None = None,
    banner: Callable[[str, TLSFiles | None], str] | None = None,
) -> None:
    """Serve ``app`` in the foreground until interrupted (``msal-async serve-authority``).

    Writes the base URL and, with TLS, the CA file to pass to clients as ``verify=`` (or
    ``banner(base_url, tls_files)`` instead). The temporary TLS files are removed when the
    server stops, by Ctrl-C (KeyboardInterrupt is raised after the cleanup) or SIGTERM
    (SystemExit 143 after the cleanup).

    Args:
        app: the ASGI app.
        host: the address to listen on.
        port: the port; 0 picks a free one.
        tls: serve HTTPS with a throwaway CA (deleted on exit).
        out: where to write the URLs; standard output when None.
        banner: builds the text to write once listening, from the base URL and TLS files.

    Raises:
        ImportError: uvicorn is not installed.
    """
    stream = out or sys.stdout
    with contextlib.ExitStack() as stack:
        stack.enter_context(_exit_on_sigterm())
        files = None
        if tls:
            directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="msal-async-"))
            files = generate_tls_files(directory)
        server = _server(app, files, "info")
        sock = stack.enter_context(_bind(host, port))
        base_url = _base_url(sock, tls=tls)
        if banner is not None:
            text = banner(base_url, files)
        else:
            text = f"Authority emulator listening on {base_url}\n"
            if files is not None:
                text += f"CA certificate (pass as verify=): {files.ca_file}\n"
        asyncio.run(_serve_then_announce(server, sock, stream, text))


async def _serve_then_announce(server: Any, sock: socket.socket, stream: TextIO, text: str) -> None:
    """Serve; write ``text`` once uvicorn has started (and so handles Ctrl-C and SIGTERM)."""
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started and not serving.done():  # noqa: ASYNC110 - uvicorn sets a flag, no event
        await asyncio.sleep(0.01)
    if server.started:
        stream.write(text)
        stream.flush()
    await serving


@contextlib.contextmanager
def _exit_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into SystemExit, so that ``with`` blocks clean up (the main thread only).

    uvicorn handles SIGTERM itself while serving, then restores this handler and raises the
    signal again; without a handler of ours the process would die there, skipping cleanup.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
