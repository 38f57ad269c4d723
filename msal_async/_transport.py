"""The one HTTP seam of an app: owns or wraps an ``httpx.AsyncClient``.

It adds msal's client headers (spec 5.1), a fresh ``client-request-id`` per request unless the
caller supplies one, a real default timeout (msal has none: spec 15.4), one retry of a POST
whose connection failed, a cap on response size, and msal's throttling (spec 8) held in the
``http_cache`` mapping so that it can be shared and persisted.

The client an app builds for itself is made per event loop (``_http.loops``) over our own
HTTP/1.1 pool (``_http.pool``); a client the caller passes is used as it is. httpx and the
pool load when the first request is built, not with the app: a process that constructs an app
and never sends (or sends later) does not pay for them at start-up.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
import threading
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel

from . import _clock, _log, _observe, _throttle
from ._errors import MsalTransportError, closed_error
from ._telemetry import new_correlation_id
from ._version import CLIENT_SKU, __version__

if TYPE_CHECKING:
    import ssl

    import httpx

    from ._http.client import HttpClient

__all__ = ["HttpResponse", "Transport"]

logger = logging.getLogger(_log.TRANSPORT)

#: msal's http_cache capacity.
HTTP_CACHE_CAPACITY = 1024
#: Default hold after a 429/5xx without Retry-After (msal: 60 s public, 5 s confidential).
PUBLIC_CLIENT_HOLD = 60.0
CONFIDENTIAL_CLIENT_HOLD = 5.0


@functools.cache
def _retryable(method: str) -> tuple[type[httpx.HTTPError], ...]:
    """The errors after which a request is sent once more (built with the first request)."""
    import httpx

    # Errors after which the request surely never reached the server: safe to send again. A
    # POST is retried only on these (an auth code is single-use: re-sending a request the
    # server may have handled would turn its answer into invalid_grant).
    not_sent = (httpx.ConnectError, httpx.ConnectTimeout)
    # A GET is idempotent, so a keep-alive connection the server closed under us is retried too.
    return (*not_sent, httpx.RemoteProtocolError) if method == "GET" else not_sent


@dataclass(frozen=True)
class HttpResponse:
    """A normalized, picklable HTTP response (header names lowercased).

    ``too_large`` is set when the body passed the network cap (``_json.MAX_NETWORK_BYTES``);
    ``text`` is then empty.
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


class _ExpiringStore:
    """TTL entries kept in the caller's ``http_cache`` mapping (values are plain tuples)."""

    def __init__(self, mapping: MutableMapping[str, Any], capacity: int) -> None:
        self._mapping = mapping
        self._capacity = capacity
        self._lock = threading.Lock()
        # Whether a POST's entry may be held, and the size of the mapping when last looked.
        self._posts = True
        self._looked_at_size = -1

    def may_hold_posts(self) -> bool:
        """Whether the mapping may hold a POST's entry (False: no POST can be throttled).

        A plain dict is looked through again only when its size changed (a shared mapping
        written by another app grows), so most requests skip computing their throttling keys;
        any other mapping (a ``shelve``...) is assumed to hold some.
        """
        mapping = self._mapping
        if type(mapping) is not dict:
            return True
        size = len(mapping)
        if size != self._looked_at_size:
            with self._lock:
                self._posts = any(
                    isinstance(k, str) and k.startswith("POST ") for k in list(mapping)
                )
                self._looked_at_size = size
        return self._posts

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
            if key.startswith("POST "):
                self._posts = True
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
    """Sends every request of an app, through one ``httpx.AsyncClient`` per event loop.

    Args:
        http_client: an ``httpx.AsyncClient`` to use as it is (never closed here; it belongs
            to the event loop it was first used on, as any httpx client). None: the transport
            builds its own from ``verify``, ``proxies`` and ``timeout``, one per event loop,
            closed when that loop shuts down or by ``aclose()``.
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
        self._own_options = (verify, proxies, timeout)
        self._built: HttpClient | None = None
        self._build_lock = threading.Lock()
        if http_client is not None:
            from ._http.client import GivenClient

            self._built = GivenClient(http_client)
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
        self.requests_sent = 0

    @property
    def _http(self) -> HttpClient:
        """The client layer, built on first use (the app's own clients are per event loop)."""
        built = self._built
        if built is None:
            with self._build_lock:
                if self._built is None:
                    from ._http.client import OwnClient
                    from ._http.config import to_timeout

                    verify, proxies, timeout = self._own_options
                    self._built = OwnClient(
                        verify=verify, proxies=proxies, timeout=to_timeout(timeout)
                    )
                built = self._built
        return built

    @property
    def owns_client(self) -> bool:
        """Whether the transport builds (and closes) its own clients (True unless one was given)."""
        return self._given_client is None

    @property
    def open_clients(self) -> int:
        """How many event loops hold a client this transport built (0 with a given client)."""
        if self._built is None:
            return 0
        from ._http.client import OwnClient  # loaded with the client layer

        return len(self._built) if isinstance(self._built, OwnClient) else 0

    def current_client(self) -> httpx.AsyncClient | None:
        """The client requests from the calling event loop go through, if it exists yet."""
        return None if self._built is None else self._built.current()

    async def aclose(self) -> None:
        """Close the clients this transport built (every loop's); a caller's client stays open."""
        self._closed = True
        if self._built is not None:
            await self._built.aclose()

    def _merge_headers(self, headers: Mapping[str, str] | None) -> dict[str, str]:
        merged = dict(self._headers)
        merged["accept"] = "application/json"
        if headers:
            merged.update({k.lower(): v for k, v in headers.items()})
        if "client-request-id" not in merged:
            merged["client-request-id"] = new_correlation_id()
        return merged

    async def _exchange(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        content: bytes | None = None,
        timeout: Any = None,  # noqa: ASYNC109 (httpx's per-request timeout, as msal relays it)
    ) -> HttpResponse:
        """Send one request (retried once if it surely was not sent) and read the answer."""
        if self._closed:
            raise closed_error()
        request = await self._http.build(
            method,
            url,
            params=params,
            headers=self._merge_headers(headers),
            data=data,
            content=content,
        )
        if timeout is not None:  # this call's own timeouts (msal relays timeout= per call)
            from ._http.config import to_timeout

            request.extensions["timeout"] = to_timeout(timeout).as_dict()
        observer = _observe.observer
        if observer is None:
            return await self._attempts(request)
        with observer.http_call(method, _safe_url(request)) as call:
            response = await self._attempts(request)
            call.status(response.status_code)
            return response

    async def _attempts(self, request: httpx.Request) -> HttpResponse:
        import httpx  # loaded by the client layer that built the request: a lookup

        method = request.method
        attempt = 0
        retryable = _retryable(method)
        while True:
            try:
                return await self._send(request)
            except retryable as exc:  # noqa: PERF203 (at most two iterations)
                if attempt >= 1:
                    raise _transport_error(request, exc) from exc
                attempt += 1
                logger.info("Retrying %s %s once after %s", method, _safe_url(request), type(exc))
                await anyio.lowlevel.checkpoint()
            except httpx.HTTPError as exc:
                raise _transport_error(request, exc) from exc

    async def _send(self, request: httpx.Request) -> HttpResponse:
        self.requests_sent += 1
        status_code, headers, body = await self._http.exchange(request)
        if body is None:
            return HttpResponse(status_code, "", headers, too_large=True)
        return HttpResponse(status_code, _decode(body, headers.get("content-type", "")), headers)

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
            cached = self._store.get(hold_key if hold else key, _clock.now())
            if cached is not None:
                if hold and _observe.observer is not None:
                    _observe.observer.throttled("GET")
                return cached
        response = await self._exchange("GET", url, params=params, headers=headers)
        if cache and 200 <= response.status_code < 300 and not response.too_large:
            self._store.put(key, response, _throttle.GET_CACHE_SECONDS, _clock.now())
        if hold:
            seconds = _throttle.hold_seconds(
                response.status_code, response.headers, self._default_hold
            )
            if seconds:
                self._store.put(hold_key, response, seconds, _clock.now())
        return response

    async def post(
        self,
        url: str,
        *,
        data: Mapping[str, str],
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: Any = None,  # noqa: ASYNC109 (httpx's per-request timeout, as msal relays it)
    ) -> HttpResponse:
        """POST a form with msal's throttling; retries once if the connection failed.

        ``timeout`` (seconds, a ``(connect, read)`` tuple or an ``httpx.Timeout``) applies to
        this request only; None keeps the client's.

        Returns:
            The response, or the held response while throttled.

        Raises:
            MsalTransportError: the request could not be completed.
        """
        keys = None
        if self._store.may_hold_posts():
            keys = _throttle.post_keys(url, data, params)
            now = _clock.now()
            for key in keys:
                held = self._store.get(key, now)
                if held is not None:
                    logger.info("Throttled: answering POST %s from the held response", url)
                    if _observe.observer is not None:
                        _observe.observer.throttled("POST")
                    return held
        response = await self._exchange(
            "POST", url, params=params, data=data, headers=headers, timeout=timeout
        )
        hold = _throttle.hold_seconds(response.status_code, response.headers, self._default_hold)
        replay = _throttle.replay_seconds(response.status_code, response.headers, data)
        if hold or replay:
            replay_key, hold_key = keys or _throttle.post_keys(url, data, params)
            now = _clock.now()
            if hold:
                self._store.put(hold_key, response, hold, now)
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
        return await self._exchange("POST", url, content=content, headers=headers)


def _decode(body: bytes, content_type: str) -> str:
    """The body as text in the ``charset`` of its Content-Type (UTF-8 by default, as httpx)."""
    if "charset" not in content_type.lower():
        return body.decode("utf-8", errors="replace")
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            try:
                return body.decode(value.strip().strip('"'), errors="replace")
            except LookupError:  # an unknown charset: read it as UTF-8
                break
    return body.decode("utf-8", errors="replace")


def _safe_url(request: httpx.Request) -> str:
    # Query strings may carry codes or hints, and userinfo a password: scheme, host, port and
    # path only (``netloc`` is host and port, the port only when it is not the scheme's default).
    # User realm discovery puts the username in the path: it is replaced by a placeholder.
    url = request.url
    path = url.path
    head, marker, _ = path.partition("/userrealm/")
    if marker:
        path = f"{head}{marker}{{username}}"
    return f"{url.scheme}://{url.netloc.decode('ascii')}{path}"


def _transport_error(request: httpx.Request, exc: httpx.HTTPError) -> MsalTransportError:
    kind = type(exc).__name__
    # Network errors say what went wrong ("Connection refused"); protocol errors may quote a
    # header value (a secret: a client secret header, an Arc key), so only their kind is shown.
    import httpx

    detail = f": {exc}" if isinstance(exc, httpx.ConnectError | httpx.TimeoutException) else ""
    return MsalTransportError(
        description=f"{request.method} {_safe_url(request)} failed: {kind}{detail}"
    )
