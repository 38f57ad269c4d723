"""What to put under the app's httpx client: candidates measured side by side.

``python benchmarks/transports.py [--counts 200 2000] [--rounds 3]``

The same N concurrent token POSTs (a client-secret form, a distinct scope each) against the
authority emulator over HTTPS in a child process (20 ms added latency), through:

- httpx's default transport (httpcore, 100 connections), and httpcore with its limits tuned;
- ``httpx.AsyncClient(transport=...)`` over our pool (``msal_async._http``);
- our pool called directly, as the app's own client does when no proxy applies;
- ``httpx.AsyncClient`` over an aiohttp-backed ``httpx.AsyncBaseTransport`` (written here for
  the comparison only), and aiohttp alone (no httpx) as a reference.

Each run is a fresh client and pool, after one untimed request; client CPU per request is
``time.process_time()`` over the N calls. The candidates alternate round by round.
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
import httpx

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from emulator import Server, serve

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


def main(argv: Sequence[str] | None = None) -> int:
    """Print client CPU per request for every candidate (exit status 0 whatever the figures)."""
    parser = argparse.ArgumentParser(prog="python benchmarks/transports.py")
    parser.add_argument("--counts", type=int, nargs="+", default=[200, 2000])
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args(argv)
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
