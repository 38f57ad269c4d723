"""Service Fabric's certificate pinning: an httpx transport that trusts one SHA-1 thumbprint.

Service Fabric's token service presents a certificate no public CA signed; the cluster
publishes its thumbprint in ``IDENTITY_SERVER_THUMBPRINT``. The check runs right after the
TLS handshake, before any request byte (and so before the ``Secret`` header) is written.
"""

from __future__ import annotations

import hashlib
import hmac
import ssl
from typing import Any

import httpcore
import httpx

__all__ = ["PinnedTransport"]


class _PinnedStream(httpcore.AsyncNetworkStream):
    def __init__(self, stream: httpcore.AsyncNetworkStream, thumbprint: str) -> None:
        self._stream = stream
        self._thumbprint = thumbprint

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._stream.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        tls = await self._stream.start_tls(ssl_context, server_hostname, timeout)
        ssl_object = tls.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        actual = hashlib.sha1(der or b"").hexdigest()  # noqa: S324 - the pinned value is SHA-1
        if der is None or not hmac.compare_digest(actual, self._thumbprint):
            await tls.aclose()
            msg = "Service Fabric endpoint certificate thumbprint does not match"
            raise ssl.SSLCertVerificationError(msg)
        return tls

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, thumbprint: str) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._thumbprint = thumbprint

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )
        return _PinnedStream(stream, self._thumbprint)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PinnedTransport(httpx.AsyncBaseTransport):
    """HTTPS to a server whose certificate has one SHA-1 thumbprint (no CA, no proxy).

    Args:
        thumbprint: 40 lower-case hex digits.
    """

    def __init__(self, thumbprint: str) -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the thumbprint check replaces CA validation
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context, network_backend=_PinnedBackend(thumbprint)
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` over a pinned connection.

        Returns:
            The response, body read.

        Raises:
            httpx.ConnectError: the thumbprint did not match or the connection failed.
        """
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=await request.aread(),
            extensions=request.extensions,
        )
        try:
            response = await self._pool.handle_async_request(core_request)
            body = await response.aread()
            await response.aclose()
        except (ssl.SSLError, OSError, httpcore.ConnectError, httpcore.NetworkError) as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__, request=request) from exc
        except httpcore.TimeoutException as exc:
            raise httpx.ConnectTimeout(str(exc), request=request) from exc
        return httpx.Response(response.status, headers=response.headers, content=body)

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._pool.aclose()
