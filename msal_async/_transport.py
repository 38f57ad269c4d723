"""The one HTTP seam of an app: owns or wraps an ``httpx.AsyncClient``.

It adds msal's client headers (spec 5.1), a fresh ``client-request-id`` per request unless the
caller supplies one, a real default timeout (msal has none: spec 15.4), one retry of a POST
whose connection failed, a cap on response size, and msal's throttling (spec 8) held in the
``http_cache`` mapping so that it can be shared and persisted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import ssl
import sys
import threading
import time
import uuid
from collections.abc import AsyncGenerator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.lowlevel
import httpx

from . import _routing, _throttle
from ._errors import MsalTransportError
from ._version import CLIENT_SKU, __version__

__all__ = ["DEFAULT_TIMEOUT", "MAX_RESPONSE_BYTES", "HttpResponse", "Transport"]

logger = logging.getLogger("msal_async.transport")

#: Seconds; msal waits forever by default, which hangs a worker on a dead network.
DEFAULT_TIMEOUT = 30.0
DEFAULT_CONNECT_TIMEOUT = 10.0
#: Token and discovery documents are a few KiB; anything past this is not one.
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
#: msal's http_cache capacity.
HTTP_CACHE_CAPACITY = 1024
#: Default hold after a 429/5xx without Retry-After (msal: 60 s public, 5 s confidential).
PUBLIC_CLIENT_HOLD = 60.0
CONFIDENTIAL_CLIENT_HOLD = 5.0

#: httpcore's pool does work proportional to (waiting requests x open connections) on every
#: event, so a burst of hundreds of token requests over 100 connections spends more CPU in pool
#: bookkeeping than in TLS and HTTP. A smaller pool kept alive between bursts measured faster
#: (benchmarks/, 200 concurrent fetches); the mounts for proxies keep httpx's defaults.
DEFAULT_LIMITS = httpx.Limits(max_connections=16, max_keepalive_connections=16)

#: Errors after which the request surely never reached the server: safe to send again. A POST
#: is retried only on these (an auth code is single-use: re-sending a request the server may
#: have handled would turn its answer into invalid_grant).
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)
#: A GET is idempotent, so a keep-alive connection the server closed under us is retried too.
_GET_RETRYABLE = (*_NOT_SENT, httpx.RemoteProtocolError)


@dataclass(frozen=True)
class HttpResponse:
    """A normalized, picklable HTTP response (header names lowercased).

    ``too_large`` is set when the body passed ``MAX_RESPONSE_BYTES``; ``text`` is then empty.
    ``from_cache`` is set when throttling answered from ``http_cache`` without a request.
    """

    status_code: int
    text: str
    headers: Mapping[str, str] = field(default_factory=dict)
    too_large: bool = False
    from_cache: bool = False

    def json(self) -> Any:
        """Parse the body as JSON.

        Raises:
            ValueError: the body is not JSON.
        """
        return json.loads(self.text)


def _client_os() -> str:
    return sys.platform


def _to_timeout(timeout: Any) -> httpx.Timeout:
    if timeout is None:
        return httpx.Timeout(DEFAULT_TIMEOUT, connect=DEFAULT_CONNECT_TIMEOUT)
    if isinstance(timeout, httpx.Timeout):
        return timeout
    if isinstance(timeout, tuple) and len(timeout) == 2:  # requests' (connect, read)
        return httpx.Timeout(float(timeout[1]), connect=float(timeout[0]))
    return httpx.Timeout(float(timeout))


def _to_verify(verify: bool | str | ssl.SSLContext) -> bool | ssl.SSLContext:
    if isinstance(verify, str):  # a CA bundle path, as requests takes it
        return ssl.create_default_context(cafile=verify)
    return verify


class _ExpiringStore:
    """TTL entries kept in the caller's ``http_cache`` mapping (values are plain tuples)."""

    def __init__(self, mapping: MutableMapping[str, Any], capacity: int) -> None:
        self._mapping = mapping
        self._capacity = capacity
        self._lock = threading.Lock()

    def get(self, key: str, now: float) -> HttpResponse | None:
        with self._lock:
            item = self._mapping.get(key)
            if not (isinstance(item, tuple) and len(item) == 2):
                return None
            expires_at, (status, text, headers) = item
            if expires_at <= now:
                self._mapping.pop(key, None)
                return None
        return HttpResponse(status, text, dict(headers), from_cache=True)

    def put(self, key: str, response: HttpResponse, ttl: float, now: float) -> None:
        entry = (now + ttl, (response.status_code, response.text, dict(response.headers)))
        with self._lock:
            if key not in self._mapping and len(self._mapping) >= self._capacity:
                self._evict(now)
            self._mapping[key] = entry

    def _evict(self, now: float) -> None:
        expiries = {
            k: v[0] for k, v in list(self._mapping.items()) if isinstance(v, tuple) and len(v) == 2
        }
        for key, expires_at in expiries.items():
            if expires_at <= now:
                del self._mapping[key]
        if len(self._mapping) >= self._capacity and expiries:
            soonest = min((k for k in expiries if k in self._mapping), key=expiries.__getitem__)
            del self._mapping[soonest]


class Transport:
    """Sends every request of an app, through one ``httpx.AsyncClient``.

    Args:
        http_client: an ``httpx.AsyncClient`` to use (never closed here); None builds one on
            first use from ``verify``, ``proxies`` and ``timeout``, closed by ``aclose()``.
        verify: ``True``, ``False``, a CA bundle path or an ``ssl.SSLContext``.
        proxies: a proxy URL, or requests' ``{"http": url, "https": url}`` mapping.
        timeout: seconds, requests' ``(connect, read)`` tuple, or an ``httpx.Timeout``.
        http_cache: the mapping that holds throttling state and cached GETs.
        app_name: sent as ``x-app-name``.
        app_version: sent as ``x-app-ver``.
        is_public_client: selects msal's default hold after a 429/5xx (60 s vs 5 s).
    """

    def __init__(
        self,
        *,
        http_client: httpx.AsyncClient | None = None,
        verify: bool | str | ssl.SSLContext = True,
        proxies: str | Mapping[str, str] | None = None,
        timeout: Any = None,
        http_cache: MutableMapping[str, Any] | None = None,
        app_name: str | None = None,
        app_version: str | None = None,
        is_public_client: bool = False,
    ) -> None:
        self._given_client = http_client
        self._client: httpx.AsyncClient | None = http_client
        self._verify = verify
        self._proxies = proxies
        self._timeout = timeout
        self._store = _ExpiringStore(
            http_cache if http_cache is not None else {}, HTTP_CACHE_CAPACITY
        )
        self._default_hold = PUBLIC_CLIENT_HOLD if is_public_client else CONFIDENTIAL_CLIENT_HOLD
        self._headers = {
            "x-client-sku": CLIENT_SKU,
            "x-client-ver": __version__,
            "x-client-os": _client_os(),
            "x-ms-lib-capability": "retry-after, h429",
        }
        if app_name:
            self._headers["x-app-name"] = app_name
        if app_version:
            self._headers["x-app-ver"] = app_version
        self._closed = False
        self._limiter: anyio.CapacityLimiter | None = None
        self._loop: object = None
        self.requests_sent = 0

    @property
    def owns_client(self) -> bool:
        """Whether ``aclose()`` closes the underlying client (True unless one was given)."""
        return self._given_client is None

    def _get_client(self) -> httpx.AsyncClient:
        if self._closed:
            msg = "This application was closed (aclose() or `async with` exit); create a new one."
            raise RuntimeError(msg)
        if self._given_client is None:
            loop = anyio.lowlevel.current_token().native_token
            if self._client is not None and loop is not self._loop:
                # A new event loop (a second asyncio.run(), a test per loop): the old client's
                # connections belong to a loop that is gone, so start afresh on this one.
                logger.debug("A new event loop: the app's HTTP client is rebuilt for it")
                self._client = None
                self._limiter = None
            self._loop = loop
        if self._client is None:
            verify = _to_verify(self._verify)
            mounts: dict[str, httpx.AsyncBaseTransport | None] | None = None
            proxy: str | None = None
            if isinstance(self._proxies, str):
                proxy = self._proxies
            elif self._proxies:
                mounts = {
                    f"{scheme}://": httpx.AsyncHTTPTransport(proxy=url, verify=verify)
                    for scheme, url in self._proxies.items()
                }
            routed = _routing.routed_transport()  # set by msal_async.testing.emulate()
            if routed is not None:
                proxy, mounts = None, None
            self._client = httpx.AsyncClient(
                transport=routed,
                verify=verify,
                proxy=proxy,
                mounts=mounts,
                timeout=_to_timeout(self._timeout),
                limits=DEFAULT_LIMITS,
                trust_env=True,
            )
        return self._client

    async def aclose(self) -> None:
        """Close the client this transport created; a caller's client is left open."""
        self._closed = True
        if self._given_client is None and self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    def _merge_headers(self, headers: Mapping[str, str] | None) -> dict[str, str]:
        merged = dict(self._headers)
        merged["accept"] = "application/json"
        if headers:
            merged.update({k.lower(): v for k, v in headers.items()})
        merged.setdefault("client-request-id", str(uuid.uuid4()))
        return merged

    async def _send(self, request: httpx.Request) -> HttpResponse:
        client = self._get_client()
        limiter = self._limiter
        if limiter is None and self._given_client is None:
            limiter = self._limiter = anyio.CapacityLimiter(DEFAULT_LIMITS.max_connections or 100)
        if limiter is None:
            return await self._send_now(client, request)
        # Requests beyond the pool's size wait here, not in httpcore's queue: its bookkeeping
        # costs (queued requests x connections) per event, which dominated bursts.
        async with limiter:
            return await self._send_now(client, request)

    async def _send_now(self, client: httpx.AsyncClient, request: httpx.Request) -> HttpResponse:
        self.requests_sent += 1
        response = await client.send(request, stream=True)
        try:
            chunks: list[bytes] = []
            size = 0
            async with contextlib.aclosing(_chunks(response)) as body_chunks:
                async for chunk in body_chunks:
                    size += len(chunk)
                    if size > MAX_RESPONSE_BYTES:
                        headers = {k.lower(): v for k, v in response.headers.items()}
                        return HttpResponse(response.status_code, "", headers, too_large=True)
                    chunks.append(chunk)
        finally:
            await response.aclose()
        body = b"".join(chunks)
        text = body.decode(response.encoding or "utf-8", errors="replace")
        headers = {k.lower(): v for k, v in response.headers.items()}
        return HttpResponse(response.status_code, text, headers)

    async def _send_with_retry(self, request: httpx.Request, *, retries: int) -> HttpResponse:
        attempt = 0
        retryable = _GET_RETRYABLE if request.method == "GET" else _NOT_SENT
        while True:
            try:
                return await self._send(request)
            except retryable as exc:  # noqa: PERF203 (at most two iterations)
                if attempt >= retries:
                    raise _transport_error(request, exc) from exc
                attempt += 1
                logger.info(
                    "Retrying %s %s once after %s", request.method, _safe_url(request), type(exc)
                )
                await anyio.lowlevel.checkpoint()
            except httpx.HTTPError as exc:
                raise _transport_error(request, exc) from exc

    async def get(
        self,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        cache: bool = True,
        hold: bool = False,
    ) -> HttpResponse:
        """Send a GET; a 2xx answer is kept in ``http_cache`` for 24 h when ``cache``.

        With ``hold`` (managed identity endpoints, as msal), a 429, a 5xx or any answer with
        ``Retry-After`` is replayed to identical GETs for Retry-After seconds (else the
        default hold) instead of asking again.

        Returns:
            The (possibly cached) response.

        Raises:
            MsalTransportError: the request could not be completed.
        """
        key = _throttle.get_key(url, params)
        hold_key = key.removesuffix(" 2xx") + " 429/5xx/Retry-After"
        if cache or hold:
            cached = self._store.get(hold_key if hold else key, time.time())
            if cached is not None:
                return cached
        request = self._get_client().build_request(
            "GET", url, params=params, headers=self._merge_headers(headers)
        )
        response = await self._send_with_retry(request, retries=1)
        if cache and 200 <= response.status_code < 300 and not response.too_large:
            self._store.put(key, response, _throttle.GET_CACHE_SECONDS, time.time())
        if hold:
            seconds = _throttle.hold_seconds(
                response.status_code, response.headers, self._default_hold
            )
            if seconds:
                self._store.put(hold_key, response, seconds, time.time())
        return response

    async def post(
        self,
        url: str,
        *,
        data: Mapping[str, str],
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResponse:
        """POST a form with msal's throttling; retries once if the connection failed.

        Returns:
            The response, or the held response while throttled.

        Raises:
            MsalTransportError: the request could not be completed.
        """
        replay_key, hold_key = _throttle.post_keys(url, data, params)
        now = time.time()
        for key in (replay_key, hold_key):
            held = self._store.get(key, now)
            if held is not None:
                logger.info("Throttled: answering POST %s from the held response", url)
                return held
        request = self._get_client().build_request(
            "POST", url, params=params, data=dict(data), headers=self._merge_headers(headers)
        )
        response = await self._send_with_retry(request, retries=1)
        now = time.time()
        hold = _throttle.hold_seconds(response.status_code, response.headers, self._default_hold)
        if hold:
            self._store.put(hold_key, response, hold, now)
        replay = _throttle.replay_seconds(response.status_code, response.headers, data)
        if replay:
            self._store.put(replay_key, response, replay, now)
        return response

    async def post_content(
        self, url: str, *, content: bytes, headers: Mapping[str, str] | None = None
    ) -> HttpResponse:
        """POST a raw body (a SOAP envelope for WS-Trust); no throttling, one connect retry.

        Returns:
            The response.

        Raises:
            MsalTransportError: the request could not be completed.
        """
        request = self._get_client().build_request(
            "POST", url, content=content, headers=self._merge_headers(headers)
        )
        return await self._send_with_retry(request, retries=1)


async def _chunks(response: httpx.Response) -> AsyncGenerator[bytes, None]:
    async for chunk in response.aiter_bytes():
        yield chunk


def _safe_url(request: httpx.Request) -> str:
    # Query strings may carry codes or hints; log scheme, host and path only.
    return f"{request.url.scheme}://{request.url.host}{request.url.path}"


def _transport_error(request: httpx.Request, exc: httpx.HTTPError) -> MsalTransportError:
    kind = type(exc).__name__
    # Network errors say what went wrong ("Connection refused"); protocol errors may quote a
    # header value (a secret: a client secret header, an Arc key), so only their kind is shown.
    detail = f": {exc}" if isinstance(exc, httpx.ConnectError | httpx.TimeoutException) else ""
    return MsalTransportError(
        description=f"{request.method} {_safe_url(request)} failed: {kind}{detail}"
    )
