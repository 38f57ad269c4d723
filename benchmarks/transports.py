"""What to put under the app's httpx client: candidates measured side by side.

``python benchmarks/transports.py [--counts 200 2000] [--rounds 3] [--codec]``

The same N concurrent token POSTs (a client-secret form, a distinct scope each) against the
authority emulator over HTTPS in a child process (20 ms added latency), through:

- httpx's default transport (httpcore, 100 connections), and httpcore with its limits tuned;
- ``httpx.AsyncClient(transport=...)`` over our pool (``msal_async._http``);
- our pool called directly, as the app's own client does when no proxy applies;
- ``httpx.AsyncClient`` over an aiohttp-backed ``httpx.AsyncBaseTransport`` (written here for
  the comparison only), and aiohttp alone (no httpx) as a reference.

Each run is a fresh client and pool, after one untimed request; client CPU per request is
``time.process_time()`` over the N calls. The candidates alternate round by round.

``--codec`` prints instead the CPU of one token exchange in the HTTP/1.1 layer alone (encode a
15-header request with a 186-byte form, parse a 9-header JSON response of about 1.5 KB), h11
against our codec (``msal_async._http.codec``), no sockets.
"""

from __future__ import annotations

import argparse
import gc
import ssl
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import anyio
import h11
import httpx

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from emulator import Server, serve

from msal_async._http import codec
from msal_async._http.config import build_client
from msal_async.testing import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

TIMEOUT = httpx.Timeout(30.0, connect=10.0)
HEADERS = {"accept": "application/json"}


def form(scope: str) -> dict[str, str]:
    """The client-credential form msal_async sends with a secret."""
    return {
        "client_id": DEMO_CLIENT_ID,
        "grant_type": "client_credentials",
        "client_info": "1",
        "scope": scope,
        "client_secret": DEMO_CLIENT_SECRET,
    }


class _AiohttpBody(httpx.AsyncByteStream):
    def __init__(self, response: Any) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._response.content.iter_chunked(65536):
            yield chunk

    async def aclose(self) -> None:
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx transport over one aiohttp session (asyncio only; for this comparison)."""

    def __init__(self, context: ssl.SSLContext, limit: int) -> None:
        import aiohttp

        connector = aiohttp.TCPConnector(ssl=context, limit=limit)
        self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send through aiohttp; the body streams from its response."""
        response = await self._session.request(
            request.method,
            str(request.url),
            data=await request.aread(),
            headers=[(k.decode(), v.decode()) for k, v in request.headers.raw],
            allow_redirects=False,
        )
        headers = list(response.raw_headers)
        return httpx.Response(response.status, headers=headers, stream=_AiohttpBody(response))

    async def aclose(self) -> None:
        """Close the session."""
        await self._session.close()


Post = Callable[[str], Awaitable[int]]


def _httpx_post(client: httpx.AsyncClient, endpoint: str) -> Post:
    async def post(scope: str) -> int:
        response = await client.post(endpoint, data=form(scope), headers=HEADERS)
        response.json()
        return response.status_code

    return post


async def _measure(server: Server, candidate: str, count: int) -> float:
    context = ssl.create_default_context(cafile=server.ca_file)
    endpoint = f"{server.authority}/oauth2/v2.0/token"
    closers: list[Callable[[], Awaitable[None]]] = []
    post: Post
    if candidate == "aiohttp alone":
        import aiohttp

        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context, limit=32))
        closers.append(session.close)

        async def post_aiohttp(scope: str) -> int:
            async with session.post(endpoint, data=form(scope), headers=HEADERS) as response:
                await response.json()
                return response.status

        post = post_aiohttp

    elif candidate == "our pool, called directly":
        client, pool = build_client(ssl_context=context, routes={}, timeout=TIMEOUT)
        closers.append(client.aclose)
        url, defaults = httpx.URL(endpoint), dict(client.headers)
        extensions = {"timeout": TIMEOUT.as_dict()}

        async def post_direct(scope: str) -> int:
            headers = {**defaults, **HEADERS, "content-type": "application/x-www-form-urlencoded"}
            body = urlencode(form(scope)).encode()
            request = httpx.Request(
                "POST", url, content=body, headers=headers, extensions=extensions
            )
            response = await pool.handle_async_request(request)
            await response.aread()
            await response.aclose()
            response.json()
            return response.status_code

        post = post_direct
    else:
        client = {
            "httpx default (httpcore, 100 connections)": lambda: httpx.AsyncClient(
                verify=context, timeout=TIMEOUT
            ),
            "httpcore, 16 connections": lambda: httpx.AsyncClient(
                verify=context, timeout=TIMEOUT, limits=httpx.Limits(max_connections=16)
            ),
            "httpx over our pool": lambda: build_client(
                ssl_context=context, routes={}, timeout=TIMEOUT
            )[0],
            "httpx over aiohttp": lambda: httpx.AsyncClient(
                transport=AiohttpTransport(context, 32), timeout=TIMEOUT
            ),
        }[candidate]()
        closers.append(client.aclose)
        post = _httpx_post(client, endpoint)
    try:
        assert await post("api://warm-up/.default") == 200
        statuses: list[int] = []

        async def one(i: int) -> None:
            statuses.append(await post(f"api://transport-{i}/.default"))

        gc.collect()
        started = time.process_time()
        async with anyio.create_task_group() as group:
            for i in range(count):
                group.start_soon(one, i)
        cpu = time.process_time() - started
        assert statuses == [200] * count
    finally:
        for close in closers:
            await close()
    return cpu / count


CANDIDATES = (
    "httpx default (httpcore, 100 connections)",
    "httpcore, 16 connections",
    "httpx over aiohttp",
    "aiohttp alone",
    "httpx over our pool",
    "our pool, called directly",
)


_TARGET = b"/common/oauth2/v2.0/token"
_BODY = urlencode(form("api://transport-1/.default")).encode()
_REQUEST_HEADERS = [
    (b"Host", b"login.microsoftonline.com"),
    (b"Accept", b"application/json"),
    (b"Accept-Encoding", b"gzip, deflate"),
    (b"Connection", b"keep-alive"),
    (b"User-Agent", b"python-httpx/0.28.1"),
    (b"x-client-sku", b"msal_async.python"),
    (b"x-client-ver", b"0.1.0"),
    (b"x-client-os", b"linux"),
    (b"x-client-cpu", b"x64"),
    (b"x-ms-lib-capability", b"retry-after, h429"),
    (b"client-request-id", b"2b1e9f6c-6a6f-4c9e-9a3b-0c1f2d3e4f5a"),
    (b"x-client-current-telemetry", b"4|730,2|,,|"),
    (b"x-client-last-telemetry", b"4|0|||"),
    (b"Content-Type", b"application/x-www-form-urlencoded"),
    (b"Content-Length", b"%d" % len(_BODY)),
]
_RESPONSE_BODY = b'{"token_type":"Bearer","expires_in":3599,"access_token":"%s"}' % (b"e" * 1100)
_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nCache-Control: no-store, no-cache\r\nPragma: no-cache\r\n"
    b"Content-Type: application/json; charset=utf-8\r\nExpires: -1\r\n"
    b"Strict-Transport-Security: max-age=31536000; includeSubDomains\r\n"
    b"X-Content-Type-Options: nosniff\r\nx-ms-request-id: 0d7a5c2e-1111-2222-3333-444455556666\r\n"
    b"Date: Mon, 01 Jan 2024 00:00:00 GMT\r\nContent-Length: %d\r\n\r\n%s"
) % (len(_RESPONSE_BODY), _RESPONSE_BODY)


def _exchange_h11() -> bytes:
    connection = h11.Connection(h11.CLIENT)
    head = h11.Request(method=b"POST", target=_TARGET, headers=_REQUEST_HEADERS)
    sent = connection.send(head) or b""
    sent += connection.send(h11.Data(data=_BODY)) or b""
    sent += connection.send(h11.EndOfMessage()) or b""
    connection.receive_data(_RESPONSE)
    body = b""
    while not isinstance(event := connection.next_event(), h11.EndOfMessage):
        if isinstance(event, h11.Data):
            body += event.data
    return body


def _exchange_codec() -> bytes:
    codec.encode_request(b"POST", _TARGET, _REQUEST_HEADERS, _BODY)
    reader = codec.ResponseReader(b"POST", request_close=codec.requests_close(_REQUEST_HEADERS))
    reader.receive_data(_RESPONSE)
    body = b""
    while (event := reader.next_event()) is not codec.END:
        if isinstance(event, bytes):
            body += event
    return body


def codec_main(rounds: int, exchanges: int = 20_000) -> None:
    """Print µs of CPU per token exchange, h11 against our codec, interleaved rounds."""
    candidates = {"h11": _exchange_h11, "msal_async._http.codec": _exchange_codec}
    for exchange in candidates.values():
        assert exchange() == _RESPONSE_BODY
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, exchange in candidates.items():
            started = time.process_time()
            for _ in range(exchanges):
                exchange()
            samples[name].append((time.process_time() - started) / exchanges)
    print("One token exchange in the HTTP/1.1 layer, client CPU µs (encode + parse):")
    for name, values in samples.items():
        spread = f"{min(values) * 1e6:.1f}-{max(values) * 1e6:.1f}"
        print(f"    {name:44s} {statistics.median(values) * 1e6:6.1f}   [{spread}]")
    ratios = [c / h for c, h in zip(samples["msal_async._http.codec"], samples["h11"], strict=True)]
    spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
    print(f"    {'codec / h11':44s} {statistics.median(ratios):6.2f}x  [{spread}]")


def main(argv: Sequence[str] | None = None) -> int:
    """Print client CPU per request for every candidate (exit status 0 whatever the figures)."""
    parser = argparse.ArgumentParser(prog="python benchmarks/transports.py")
    parser.add_argument("--counts", type=int, nargs="+", default=[200, 2000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--codec", action="store_true", help="h11 against our codec only")
    options = parser.parse_args(argv)
    if options.codec:
        codec_main(max(options.rounds, 5))
        return 0
    with serve("process") as server:
        for count in options.counts:
            samples: dict[str, list[float]] = {name: [] for name in CANDIDATES}
            for _ in range(options.rounds):
                for name in CANDIDATES:
                    samples[name].append(anyio.run(_measure, server, name, count))
            print(f"N={count:,} concurrent token POSTs, client CPU ms per request (asyncio):")
            for name, values in samples.items():
                spread = f"{min(values) * 1e3:.2f}-{max(values) * 1e3:.2f}"
                print(f"    {name:44s} {statistics.median(values) * 1e3:6.2f}   [{spread}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
