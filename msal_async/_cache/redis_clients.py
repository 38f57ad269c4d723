"""Make redis-py asyncio clients from URLs: one server, a Cluster, or a Sentinel-managed primary.

| URL | client |
| --- | --- |
| ``redis://[user:password@]host:port/db``, ``rediss://...`` (TLS), ``unix:///path`` | ``redis.asyncio.Redis`` |
| ``redis+cluster://[user:password@]host:port[,host:port...]``, ``rediss+cluster://...`` | ``redis.asyncio.RedisCluster`` (the hosts are startup nodes) |
| ``redis+sentinel://[user:password@]host:port[,host:port...]/service[/db]``, ``rediss+sentinel://...`` | ``Sentinel(...).master_for(service)`` |

Query parameters are redis-py's (``?ssl_ca_certs=/path/ca.pem``, ``?socket_timeout=3``...), applied
to the data connections; for Sentinel, ``sentinel_username`` and ``sentinel_password`` authenticate
to the sentinels themselves, and ``rediss+sentinel`` uses TLS to the sentinels too.

Layer 2: imports redis-py lazily (it is an optional extra) and nothing else of ours.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

__all__ = ["Connected", "check_client", "check_options", "client_kind", "connect", "import_redis"]

_SCHEMES = {
    "redis": ("single", False),
    "rediss": ("single", True),
    "unix": ("single", False),
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
}
_DEFAULT_PORTS = {"single": 6379, "cluster": 6379, "sentinel": 26379}


def import_redis() -> Any:
    """``redis.asyncio``, or an ImportError that says how to install it.

    Raises:
        ImportError: redis-py is not installed.
    """
    try:
        import redis.asyncio as redis_asyncio
    except ImportError as exc:
        msg = "RedisPersistence needs redis-py: pip install 'msal-async[redis]'"
        raise ImportError(msg) from exc
    return redis_asyncio


@dataclass
class Connected:
    """A client made from a URL, and what to close when done.

    Attributes:
        client: The redis-py asyncio client.
        kind: ``"single"``, ``"cluster"`` or ``"sentinel"``.
        closers: Coroutines that release what was made (the client, the sentinel clients).
    """

    client: Any
    kind: str
    closers: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)


def client_kind(client: Any) -> str:
    """Tell what a caller's client talks to.

    Args:
        client: A ``redis.asyncio.Redis`` (maybe from ``Sentinel.master_for``) or ``RedisCluster``.

    Returns:
        ``"cluster"``, ``"sentinel"`` or ``"single"``.
    """
    if hasattr(client, "get_primaries") and hasattr(client, "get_node_from_key"):
        return "cluster"
    pool = getattr(client, "connection_pool", None)
    if pool is not None and hasattr(pool, "sentinel_manager"):
        return "sentinel"
    return "single"


def _split(url: str) -> tuple[str, str, str, str]:
    """``(scheme, netloc, path, query)`` of a URL whose netloc may list several hosts."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in _SCHEMES:
        schemes = ", ".join(f"{s}://" for s in _SCHEMES)
        msg = f"redis must be a URL with one of the schemes {schemes}; got {_redact(url)!r}"
        raise ValueError(msg)
    rest, _, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    return scheme.lower(), netloc, slash + path, query


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    userinfo, at, hosts = rest.rpartition("@")
    if not at:
        return url
    user = userinfo.partition(":")[0]
    return f"{scheme}{sep}{user}:***@{hosts}"


def _hosts(hosts: str, default_port: int, url: str) -> list[tuple[str, int]]:
    out = []
    for item in hosts.split(","):
        if item.startswith("["):  # [IPv6]:port
            host, _, port = item[1:].partition("]")
            port = port.removeprefix(":")
        else:
            host, _, port = item.rpartition(":") if ":" in item else (item, "", "")
        if not host:
            msg = (
                f"redis URL {_redact(url)!r} names an empty host; list them as host:port,host:port"
            )
            raise ValueError(msg)
        try:
            out.append((unquote(host), int(port) if port else default_port))
        except ValueError:
            msg = f"redis URL {_redact(url)!r} has a bad port {port!r}"
            raise ValueError(msg) from None
    return out


def connect(url: str, *, connect_timeout: float, socket_timeout: float) -> Connected:
    """Make (without any I/O) the client a URL describes.

    Args:
        url: See the module's table.
        connect_timeout: Seconds to open a connection.
        socket_timeout: Seconds to wait on a socket.

    Returns:
        The client and its closers.

    Raises:
        ValueError: An unknown scheme, no host, a bad port, or no Sentinel service name.
        ImportError: redis-py is not installed.
    """
    scheme, netloc, path, query = _split(url)
    kind, tls = _SCHEMES[scheme]
    redis_asyncio = import_redis()
    timeouts = {"socket_connect_timeout": connect_timeout, "socket_timeout": socket_timeout}
    if kind == "single":
        client = redis_asyncio.Redis.from_url(url, **timeouts)
        return Connected(client, kind, [client.aclose])
    userinfo, at, host_list = netloc.rpartition("@")
    hosts = _hosts(host_list, _DEFAULT_PORTS[kind], url)
    params = dict(parse_qsl(query, keep_blank_values=True))
    plain = "rediss" if tls else "redis"
    credentials = userinfo + at
    if kind == "cluster":
        from redis.asyncio.cluster import ClusterNode

        (host, port), *others = hosts
        first = f"{plain}://{credentials}{_netloc(host, port)}{path}?{urlencode(params)}"
        client = redis_asyncio.RedisCluster.from_url(
            first, startup_nodes=[ClusterNode(h, p) for h, p in others], **timeouts
        )
        return Connected(client, kind, [client.aclose])
    return _sentinel(hosts, path, params, tls, credentials, url, timeouts)


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _sentinel(
    hosts: list[tuple[str, int]],
    path: str,
    params: dict[str, str],
    tls: bool,
    credentials: str,
    url: str,
    timeouts: dict[str, float],
) -> Connected:
    from redis.asyncio.connection import parse_url
    from redis.asyncio.sentinel import Sentinel

    parts = [unquote(p) for p in path.split("/") if p]
    if not parts or len(parts) > 2:
        msg = (
            f"redis URL {_redact(url)!r} must name the Sentinel service: "
            "redis+sentinel://host:port,host:port/<service name>[/<db>]"
        )
        raise ValueError(msg)
    sentinel_auth = {
        name: params.pop(f"sentinel_{name}")
        for name in ("username", "password")
        if f"sentinel_{name}" in params
    }
    db = f"/{parts[1]}" if len(parts) == 2 else ""
    plain = "rediss" if tls else "redis"
    options: dict[str, Any] = dict(
        parse_url(f"{plain}://{credentials}localhost{db}?{urlencode(params)}")
    )
    for name in ("host", "port", "connection_class"):
        options.pop(name, None)
    options.update(timeouts)
    tls_options = {k: v for k, v in options.items() if k.startswith("ssl_")}
    sentinel_kwargs: dict[str, Any] = {**timeouts, **sentinel_auth}
    if tls:
        options["ssl"] = True
        sentinel_kwargs.update(ssl=True, **tls_options)
    sentinel = Sentinel(hosts, sentinel_kwargs=sentinel_kwargs, **options)  # type: ignore[no-untyped-call]
    client = sentinel.master_for(parts[0])
    closers: list[Callable[[], Awaitable[Any]]] = [client.aclose]
    closers.extend(s.aclose for s in sentinel.sentinels)
    return Connected(client, "sentinel", closers)


def check_options(
    *,
    namespace: object,
    durations: dict[str, object],
    tracking: object,
    wait_for_replicas: object,
) -> None:
    """Validate RedisPersistence's options.

    Raises:
        TypeError: ``tracking`` is not a bool.
        ValueError: A non-positive duration, a bad namespace or replica count.
    """
    for name, value in durations.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
            msg = f"{name} must be a positive number of seconds, got {value!r}"
            raise ValueError(msg)
    if not isinstance(namespace, str) or not namespace or "{" in namespace or "}" in namespace:
        msg = f"namespace must be a non-empty string without braces, got {namespace!r}"
        raise ValueError(msg)
    if not isinstance(tracking, bool):
        msg = f"tracking must be True or False, got {tracking!r}"
        raise TypeError(msg)
    if (
        not isinstance(wait_for_replicas, int)
        or isinstance(wait_for_replicas, bool)
        or wait_for_replicas < 0
    ):
        msg = f"wait_for_replicas must be a whole number >= 0, got {wait_for_replicas!r}"
        raise ValueError(msg)


def check_client(client: object) -> Any:
    """Check that a caller's client is a redis-py asyncio client that returns bytes.

    Returns:
        The client.

    Raises:
        TypeError: Not a redis.asyncio client (a synchronous one, or something else).
        ValueError: It decodes responses.
    """
    redis_asyncio = import_redis()
    if not isinstance(client, (redis_asyncio.Redis, redis_asyncio.RedisCluster)):
        import redis as redis_sync

        if isinstance(client, (redis_sync.Redis, redis_sync.RedisCluster)):
            msg = "redis must be an asyncio client (redis.asyncio.Redis), not redis.Redis"
        else:
            msg = (
                "redis must be a redis.asyncio.Redis or RedisCluster client or a URL, got "
                f"{type(client).__name__}"
            )
        raise TypeError(msg)
    if client.get_encoder().decode_responses:
        msg = "redis must not decode responses (make the client with decode_responses=False)"
        raise ValueError(msg)
    return client
