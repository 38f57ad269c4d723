"""How a transport builds and sends its requests: through the caller's client, or its own.

:class:`GivenClient` uses the caller's ``httpx.AsyncClient`` exactly as httpx users expect
(``build_request`` merges its base URL, headers, cookies; ``send`` runs its auth, hooks and
mounts). :class:`OwnClient` is the client an app builds for itself, one per event loop (see
``loops``), over our pool (see ``pool``). It has nothing of its own to merge but httpx's
default headers and the cookies servers set, so it builds requests directly, and when no proxy
applies it hands them to its pool directly: httpx's client layer (request merging, auth flow,
redirect loop, hooks, cookie round trip through ``http.cookiejar``) measured about a fifth of a
token request's CPU, and this client uses none of it (docs/transport.md). Its answers are read
straight from the pool's connection as well (``ConnectionPool.exchange``), without an
``httpx.Response``; an ``httpx.Response`` is built only to keep cookies a server set.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote_plus

import httpx

from .. import _routing
from .config import build_client, make_ssl_context, proxy_routes
from .loops import LoopLocal
from .pool import ConnectionPool
from .reply import MAX_RESPONSE_BYTES, Reply, decode_capped, headers_of, read_reply

__all__ = ["GivenClient", "HttpClient", "OwnClient", "encode_form"]

_FORM = "application/x-www-form-urlencoded"
#: Parsed URLs kept per client (token traffic reuses one or two endpoints).
_URL_CACHE_SIZE = 64


#: Headers httpx's ``Request`` adds or reconciles itself (an empty body gets its own order).
_SET_BY_HTTPX = frozenset({"host", "content-length", "transfer-encoding"})


#: What ``quote_plus`` leaves as it is (it always keeps these).
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*").fullmatch


def encode_form(data: Mapping[str, str]) -> str:
    """``urlencode(data)`` (what httpx sends for ``data=``), quoting only what needs it.

    Token forms are mostly identifiers (client ids, grant types, ``1``); ``urlencode`` runs
    ``quote_plus`` over each key and value regardless, a tenth of building the request.

    Returns:
        The ``application/x-www-form-urlencoded`` body.
    """
    return "&".join(
        f"{k if _UNRESERVED(k) else quote_plus(k)}={v if _UNRESERVED(v) else quote_plus(v)}"
        for k, v in data.items()
    )


def _request_with_body(
    method: str,
    url: httpx.URL,
    headers: dict[str, str],
    content: bytes,
    timeouts: dict[str, float | None],
) -> httpx.Request:
    """``httpx.Request(method, url, content=..., headers=...)``, with the same headers, cheaper.

    httpx's constructor looks its headers up a dozen times (``Host``, ``Content-Length``, the
    content type) and rebuilds them twice, about 60 µs of a token request's CPU. The same raw
    list is written here at once: ``Host`` first, the headers as given (ASCII, as httpx encodes
    str headers), ``Content-Length`` last; the body is read, as httpx reads bytes content.
    """
    raw = [(b"Host", url.netloc)]
    raw.extend((k.encode("ascii"), v.encode("ascii")) for k, v in headers.items())
    raw.append((b"Content-Length", str(len(content)).encode("ascii")))
    request = httpx.Request(
        method, url, headers=raw, stream=httpx.ByteStream(content), extensions={"timeout": timeouts}
    )
    request.read()
    return request


class _URLs:
    """Parsed URLs, kept per client: token traffic reuses one or two endpoints."""

    __slots__ = ("_parsed",)

    def __init__(self) -> None:
        self._parsed: dict[str, httpx.URL] = {}

    def parse(self, url: str, params: Mapping[str, str] | None) -> httpx.URL:
        """``url`` (absolute, as every URL we send is) with ``params`` merged into its query."""
        parsed = self._parsed.get(url)
        if parsed is None:
            if len(self._parsed) >= _URL_CACHE_SIZE:
                self._parsed.clear()
            parsed = self._parsed[url] = httpx.URL(url)
        return parsed.copy_merge_params(params) if params else parsed


def _assemble(
    method: str,
    url: httpx.URL,
    headers: dict[str, str],
    data: Mapping[str, str] | None,
    content: bytes | None,
    timeouts: dict[str, float | None],
    cookies: httpx.Cookies,
) -> httpx.Request:
    """The request ``client.build_request`` would build from merged headers, cheaper."""
    if data is not None:  # as httpx encodes a form
        content = encode_form(data).encode()
        headers.setdefault("content-type", _FORM)
    if content and _SET_BY_HTTPX.isdisjoint(map(str.lower, headers)):
        request = _request_with_body(method, url, headers, content, timeouts)
    else:
        request = httpx.Request(
            method, url, content=content, headers=headers, extensions={"timeout": timeouts}
        )
    if cookies:  # what servers set earlier, as build_request adds them
        cookies.set_cookie_header(request)
    return request


class HttpClient(Protocol):
    """What the transport needs: build a request, send it (retried with the same request)."""

    async def build(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None,
        headers: dict[str, str],
        data: Mapping[str, str] | None,
        content: bytes | None,
    ) -> httpx.Request:
        """The request to send."""
        ...

    async def exchange(self, request: httpx.Request) -> Reply:
        """Send it and read the answer whole (the body capped at ``MAX_RESPONSE_BYTES``)."""
        ...

    def current(self) -> httpx.AsyncClient | None:
        """The ``httpx.AsyncClient`` of the calling event loop, if there is one yet."""
        ...

    async def aclose(self) -> None:
        """Close what this object built (never the caller's client)."""
        ...


class GivenClient:
    """The caller's ``httpx.AsyncClient``, used as it is (and never closed here)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self._urls = _URLs()
        # The client's headers, lowercased, as last seen (a caller may change them any time).
        self._defaults: tuple[list[tuple[bytes, bytes]], dict[str, str]] = ([], {})

    async def build(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None,
        headers: dict[str, str],
        data: Mapping[str, str] | None,
        content: bytes | None,
    ) -> httpx.Request:
        """As ``client.build_request``: the client's headers, cookies and timeout merged in."""
        client = self.client
        if client.params:  # rare: httpx merges them into the query string
            return client.build_request(
                method, url, params=params, headers=headers, data=data, content=content
            )
        raw = client.headers.raw
        seen, defaults = self._defaults
        if raw != seen:
            defaults = {k.lower(): v for k, v in client.headers.items()}
            self._defaults = (raw, defaults)
        return _assemble(
            method,
            self._urls.parse(url, params),
            {**defaults, **headers},
            data,
            content,
            client.timeout.as_dict(),
            client.cookies,
        )

    async def exchange(self, request: httpx.Request) -> Reply:
        """``client.send(request, stream=True)``, read whole."""
        return await read_reply(await self.client.send(request, stream=True))

    def current(self) -> httpx.AsyncClient | None:
        """The caller's client."""
        return self.client

    async def aclose(self) -> None:
        """Nothing: the caller closes its client."""


@dataclass
class _LoopClient:
    client: httpx.AsyncClient
    # The client's pool, to send to directly: set when no proxy route exists.
    direct: ConnectionPool | None


async def _close(loop_client: _LoopClient) -> None:
    await loop_client.client.aclose()


class OwnClient:
    """The app's own ``httpx.AsyncClient``: one per event loop, closed with its loop.

    Args:
        verify: ``True``, ``False``, a CA bundle path or an ``ssl.SSLContext``.
        proxies: a proxy URL, or requests' ``{"http": url, "https": url}`` mapping.
        timeout: the client's timeouts.
    """

    def __init__(
        self,
        *,
        verify: bool | str | ssl.SSLContext,
        proxies: str | Mapping[str, str] | None,
        timeout: httpx.Timeout,
    ) -> None:
        self._verify = verify
        self._ssl_context: ssl.SSLContext | None = None
        self._proxies = proxies
        self._timeout = timeout
        self._timeouts = timeout.as_dict()
        self._defaults: dict[str, str] = {}
        self._urls = _URLs()
        self._clients: LoopLocal[_LoopClient] = LoopLocal(self._build, _close)

    def __len__(self) -> int:
        """How many event loops hold a client built here."""
        return len(self._clients)

    def _build(self) -> _LoopClient:
        routed = _routing.routed_transport()  # set by msal_async.testing.emulate()
        if routed is not None:
            client = httpx.AsyncClient(transport=routed, timeout=self._timeout)
            self._defaults = {k.lower(): v for k, v in client.headers.items()}
            return _LoopClient(client, None)
        if self._ssl_context is None:  # one per app: loading CA bundles costs ~20 ms
            self._ssl_context = make_ssl_context(self._verify)
        # Environment proxies are read when a client is built, as httpx reads them.
        routes = proxy_routes(self._proxies)
        client, pool = build_client(
            ssl_context=self._ssl_context, routes=routes, timeout=self._timeout
        )
        self._defaults = {k.lower(): v for k, v in client.headers.items()}
        return _LoopClient(client, None if routes else pool)

    def current(self) -> httpx.AsyncClient | None:
        """The calling event loop's client, if it was built."""
        loop_client = self._clients.peek()
        return None if loop_client is None else loop_client.client

    async def build(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None,
        headers: dict[str, str],
        data: Mapping[str, str] | None,
        content: bytes | None,
    ) -> httpx.Request:
        """The request, with httpx's default headers and the cookies servers set."""
        loop_client = await self._clients.get()
        return _assemble(
            method,
            self._urls.parse(url, params),
            {**self._defaults, **headers},
            data,
            content,
            self._timeouts,
            loop_client.client.cookies,
        )

    async def exchange(self, request: httpx.Request) -> Reply:
        """Send through the pool (or the client, when proxies may apply); keep cookies set."""
        loop_client = await self._clients.get()
        pool = loop_client.direct
        if pool is None:
            return await read_reply(await loop_client.client.send(request, stream=True))
        head, body = await pool.exchange(request, MAX_RESPONSE_BYTES)
        headers = headers_of(head.headers)
        if "set-cookie" in headers:
            response = httpx.Response(head.status_code, headers=head.headers, request=request)
            loop_client.client.cookies.extract_cookies(response)
        if body is not None and "content-encoding" in headers:
            body = await decode_capped(head.status_code, head.headers, body)
        return Reply(head.status_code, headers, body)

    async def aclose(self) -> None:
        """Close every loop's client (this loop's now, the others' on their loops)."""
        await self._clients.aclose()
