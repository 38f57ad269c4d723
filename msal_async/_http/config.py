"""The ``httpx.AsyncClient`` an app builds for itself: TLS, proxies, timeouts, pool size.

Direct traffic goes through :class:`~msal_async._http.pool.ConnectionPool`. Proxied traffic
(``proxies=``, or ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY`` less ``NO_PROXY`` as httpx
reads them) goes through httpx's own transport, mounted per URL pattern, so CONNECT tunnels
and proxy authentication behave exactly as in httpx.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from collections.abc import Mapping
from typing import Any

import httpx

from .pool import ConnectionPool

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "KEEPALIVE_EXPIRY",
    "MAX_CONNECTIONS",
    "build_client",
    "environment_proxies",
    "make_ssl_context",
    "proxy_routes",
    "to_timeout",
]

#: Seconds; msal waits forever by default, which hangs a worker on a dead network.
DEFAULT_TIMEOUT = 30.0
DEFAULT_CONNECT_TIMEOUT = 10.0
#: Connections per origin. With 20 ms of latency, 32 connections carry more requests per second
#: than one server core answers, while a burst opens few enough TLS connections that their
#: handshakes stay a small share of its CPU (docs/transport.md has the measurements).
MAX_CONNECTIONS = 32
#: Seconds an idle connection is kept (httpx's default).
KEEPALIVE_EXPIRY = 5.0


def to_timeout(timeout: Any) -> httpx.Timeout:
    """seconds, requests' ``(connect, read)`` tuple, an ``httpx.Timeout``, or None (defaults)."""
    if timeout is None:
        return httpx.Timeout(DEFAULT_TIMEOUT, connect=DEFAULT_CONNECT_TIMEOUT)
    if isinstance(timeout, httpx.Timeout):
        return timeout
    if isinstance(timeout, tuple) and len(timeout) == 2:
        return httpx.Timeout(float(timeout[1]), connect=float(timeout[0]))
    return httpx.Timeout(float(timeout))


def make_ssl_context(verify: bool | str | ssl.SSLContext) -> ssl.SSLContext:
    """The TLS context for ``verify``: as given, a CA bundle file or folder, or httpx's default.

    ``True`` means httpx's defaults (certifi's bundle, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``);
    ``False`` turns verification off.
    """
    if isinstance(verify, ssl.SSLContext):
        return verify
    if isinstance(verify, str):  # a CA bundle, as requests takes it (a file or a c_rehash folder)
        if os.path.isdir(verify):
            return ssl.create_default_context(capath=verify)
        return ssl.create_default_context(cafile=verify)
    return httpx.create_ssl_context(verify=verify)


def environment_proxies() -> dict[str, str | None]:
    """URL patterns to proxy URLs from the environment, by httpx's rules (None: go direct).

    ``NO_PROXY=*`` disables every proxy; other ``NO_PROXY`` entries route their hosts (an IP,
    ``localhost``, a domain and its subdomains) directly.
    """
    from urllib.request import getproxies  # 26 ms to import: only when a client is built

    found = getproxies()
    routes: dict[str, str | None] = {}
    for scheme in ("http", "https", "all"):
        url = found.get(scheme)
        if url:
            routes[f"{scheme}://"] = url if "://" in url else f"http://{url}"
    for entry in (host.strip() for host in found.get("no", "").split(",")):
        if entry == "*":
            return {}
        if not entry:
            continue
        if "://" in entry:
            routes[entry] = None
        elif entry.lower() == "localhost" or _is_ipv4(entry):
            routes[f"all://{entry}"] = None
        elif _is_ipv6(entry):
            routes[f"all://[{entry}]"] = None
        else:  # curl's rule: "example.com" also covers its subdomains
            routes[f"all://*{entry}"] = None
    return routes


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text.split("/")[0])
    except ValueError:
        return False
    return True


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text.split("/")[0])
    except ValueError:
        return False
    return True


def proxy_routes(
    proxies: str | Mapping[str, str] | None, *, trust_env: bool = True
) -> dict[str, str | None]:
    """URL patterns to proxy URLs: ``proxies=`` over the environment's (None: go direct).

    A string proxies everything (the environment is then ignored, as in httpx); requests'
    ``{"http": url, "https": url}`` mapping proxies those schemes on top of the environment's.
    """
    if isinstance(proxies, str):
        return {"all://": proxies}
    routes = environment_proxies() if trust_env else {}
    for scheme, url in (proxies or {}).items():
        routes[scheme if "://" in scheme else f"{scheme}://"] = url
    return routes


def build_client(
    *,
    ssl_context: ssl.SSLContext,
    routes: Mapping[str, str | None],
    timeout: httpx.Timeout,
    max_connections: int = MAX_CONNECTIONS,
) -> tuple[httpx.AsyncClient, ConnectionPool]:
    """An ``httpx.AsyncClient`` over our pool (returned too), ``routes`` on httpx's transport.

    Args:
        ssl_context: for our pool and the proxies' transports.
        routes: URL patterns to proxy URLs (None: go direct), see :func:`proxy_routes`.
        timeout: the client's timeouts.
        max_connections: connections per origin in our pool.
    """
    pool = ConnectionPool(
        ssl_context, max_connections=max_connections, keepalive_expiry=KEEPALIVE_EXPIRY
    )
    mounts: dict[str, httpx.AsyncBaseTransport | None] = {
        pattern: None if url is None else httpx.AsyncHTTPTransport(proxy=url, verify=ssl_context)
        for pattern, url in routes.items()
    }
    return httpx.AsyncClient(transport=pool, mounts=mounts, timeout=timeout), pool
