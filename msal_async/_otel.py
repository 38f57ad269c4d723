"""OpenTelemetry spans and metrics (the ``otel`` extra), switched on by :func:`instrument`.

Like OpenTelemetry's instrumentation packages (``HTTPXClientInstrumentor().instrument()``...),
nothing happens until the application asks: :func:`instrument` wraps the ``acquire_*`` methods
of the apps and of ManagedIdentityClient and installs the observer the transport and the flows
report to (``_observe``); :func:`uninstrument` puts the original methods back. Uninstrumented,
the cache-hit path runs the original methods, untouched.

Spans: one per acquisition (``ConfidentialClientApplication.acquire_token_for_client``...),
one per token request, one per HTTP exchange (a child of the token request). Attributes name
the API, the grant, the token source, whether the cache answered, whether the caller joined a
request already in flight, why a token was refreshed, the HTTP status and the OAuth error code;
never a token, a secret, a username, a claim or a URL query.

Metrics (meter ``msal_async``): ``msal_async.cache.hits``, ``msal_async.cache.misses``,
``msal_async.token.requests``, ``msal_async.token.request.duration`` (s),
``msal_async.throttle.holds``, ``msal_async.refresh.background`` and the observable gauge
``msal_async.cache.size`` (entries per credential type in the caches acquisitions used).
"""

from __future__ import annotations

import functools
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from . import _observe
from ._apps.base import ClientApplication
from ._apps.confidential import ConfidentialClientApplication
from ._apps.public import PublicClientApplication
from ._cache.token_cache import TokenCache
from ._managed_identity.client import ManagedIdentityClient
from ._version import __version__

__all__ = ["instrument", "is_instrumented", "uninstrument"]

#: Every class defining acquire methods (ClientApplication's bases hold the user-token mixin).
_CLASSES = (
    *ClientApplication.__mro__[:-1],
    ConfidentialClientApplication,
    PublicClientApplication,
    ManagedIdentityClient,
)
_MISSING = (
    "OpenTelemetry is not installed: pip install 'msal-async[otel]' (opentelemetry-api), "
    "and an SDK to export what it records (opentelemetry-sdk)"
)

#: (class, name, original function) of every wrapped method, to restore.
_wrapped: list[tuple[type, str, Callable[..., Any]]] = []


def is_instrumented() -> bool:
    """Whether :func:`instrument` is in effect.

    Returns:
        True between :func:`instrument` and :func:`uninstrument`.
    """
    return _observe.observer is not None


def instrument(*, tracer_provider: Any = None, meter_provider: Any = None) -> None:
    """Record OpenTelemetry spans and metrics for every app and managed identity client.

    Call it once at start-up, after configuring OpenTelemetry; calling it again replaces the
    providers. Apps created before the call are instrumented too.

    Args:
        tracer_provider: an OpenTelemetry ``TracerProvider``; the global one when None.
        meter_provider: an OpenTelemetry ``MeterProvider``; the global one when None.

    Raises:
        ImportError: ``opentelemetry-api`` is not installed (``pip install
            'msal-async[otel]'``).
    """
    try:
        from opentelemetry import metrics, trace
    except ImportError as exc:
        raise ImportError(_MISSING) from exc
    uninstrument()
    tracer = trace.get_tracer("msal_async", __version__, tracer_provider=tracer_provider)
    meter = metrics.get_meter("msal_async", __version__, meter_provider=meter_provider)
    observer = _Observer(tracer, meter)
    for cls in _CLASSES:
        for name, function in list(vars(cls).items()):
            if name.startswith("acquire_token") and callable(function):
                _wrapped.append((cls, name, function))
                setattr(cls, name, _acquisition(name, function, tracer, observer))
    _observe.observer = observer


def uninstrument() -> None:
    """Stop recording: the original methods come back and the hooks fall silent."""
    _observe.observer = None
    while _wrapped:
        cls, name, function = _wrapped.pop()
        setattr(cls, name, function)


def _acquisition(
    name: str, function: Callable[..., Awaitable[Any]], tracer: Any, observer: _Observer
) -> Callable[..., Awaitable[Any]]:
    from opentelemetry.trace import SpanKind, Status, StatusCode

    @functools.wraps(function)
    async def acquire(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _observe.acquisition.get() is not None:  # nested (silent -> silent_with_error)
            return await function(self, *args, **kwargs)
        cache = getattr(self, "token_cache", None) or getattr(self, "_token_cache", None)
        if isinstance(cache, TokenCache):
            observer.caches.add(cache)
        attributes: dict[str, Any] = {}
        reset = _observe.acquisition.set(attributes)
        span_name = f"{type(self).__name__}.{name}"
        try:
            with tracer.start_as_current_span(
                span_name, kind=SpanKind.INTERNAL, attributes={"msal.api": name}
            ) as span:
                result = await function(self, *args, **kwargs)
                source = result.get("token_source") if isinstance(result, dict) else None
                hit = source == "cache"
                attributes["msal.cache_hit"] = hit
                if source is not None:
                    attributes["msal.token_source"] = source
                error = result.get("error") if isinstance(result, dict) else None
                if isinstance(error, str):
                    attributes["error.type"] = error
                    span.set_status(Status(StatusCode.ERROR, error))
                span.set_attributes(attributes)
                (observer.hits if hit else observer.misses).add(1, {"msal.api": name})
                return result
        finally:
            _observe.acquisition.reset(reset)

    return acquire


class _Sink:
    """What one token request or HTTP exchange reports back onto its span."""

    __slots__ = ("attributes", "span")

    def __init__(self, span: Any, attributes: dict[str, Any]) -> None:
        self.span = span
        self.attributes = attributes

    def status(self, code: int) -> None:
        self.span.set_attribute("http.response.status_code", code)
        if code >= 400:
            self.span.set_attribute("error.type", str(code))

    def result(self, raw: dict[str, Any]) -> None:
        error = raw.get("error")
        if isinstance(error, str):
            self.attributes["error.type"] = error
            self.span.set_attribute("error.type", error)


class _Observer:
    """The ``_observe.Observer`` that records to OpenTelemetry."""

    def __init__(self, tracer: Any, meter: Any) -> None:
        self.tracer = tracer
        self.caches: weakref.WeakSet[TokenCache] = weakref.WeakSet()
        self.hits = meter.create_counter(
            "msal_async.cache.hits", unit="{acquisition}", description="Tokens from the cache"
        )
        self.misses = meter.create_counter(
            "msal_async.cache.misses",
            unit="{acquisition}",
            description="Acquisitions the cache could not answer (a request was made or failed)",
        )
        self.requests = meter.create_counter(
            "msal_async.token.requests", unit="{request}", description="Token requests sent"
        )
        self.duration = meter.create_histogram(
            "msal_async.token.request.duration", unit="s", description="Token request latency"
        )
        self.holds = meter.create_counter(
            "msal_async.throttle.holds",
            unit="{request}",
            description="Requests answered from a held response (throttling) instead of sent",
        )
        self.refreshes = meter.create_counter(
            "msal_async.refresh.background",
            unit="{refresh}",
            description="Background refreshes of aging tokens, by outcome",
        )
        meter.create_observable_gauge(
            "msal_async.cache.size",
            callbacks=[self._cache_size],
            unit="{entry}",
            description="Entries in the token caches in use, per credential type",
        )

    @contextmanager
    def http_call(self, method: str, safe_url: str) -> Iterator[_Sink]:
        from opentelemetry.trace import SpanKind
        from opentelemetry.util.types import AttributeValue

        url = _split(safe_url)
        attributes: dict[str, AttributeValue] = {
            "http.request.method": method,
            "server.address": url[0],
            "url.full": safe_url,  # no query, no userinfo, no username (see _transport)
        }
        if url[1] is not None:
            attributes["server.port"] = url[1]
        with self.tracer.start_as_current_span(
            method, kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            yield _Sink(span, {})

    @contextmanager
    def token_request(self, grant: str, api_id: str, refresh_reason: int) -> Iterator[_Sink]:
        reason = _observe.REFRESH_REASONS.get(refresh_reason, str(refresh_reason))
        _observe.note("msal.grant", grant)
        _observe.note("msal.refresh_reason", reason)
        metric: dict[str, Any] = {"msal.grant": grant}
        attributes = {"msal.grant": grant, "msal.refresh_reason": reason}
        if api_id:  # managed identity requests have none
            attributes["msal.api_id"] = api_id
        started = time.perf_counter()
        with self.tracer.start_as_current_span(
            "msal_async token request", attributes=attributes
        ) as span:
            try:
                yield _Sink(span, metric)
            except BaseException as exc:
                metric["error.type"] = type(exc).__name__
                raise
            finally:
                self.requests.add(1, metric)
                self.duration.record(time.perf_counter() - started, metric)

    def throttled(self, method: str) -> None:
        self.holds.add(1, {"http.request.method": method})

    def background_refresh(self, outcome: str) -> None:
        self.refreshes.add(1, {"outcome": outcome})

    def _cache_size(self, options: Any) -> Iterable[Any]:
        from opentelemetry.metrics import Observation

        totals: dict[str, int] = {}
        for cache in list(self.caches):
            # a length read per section: no lock needed, no entry is touched
            for credential_type, section in list(cache._cache.items()):
                totals[credential_type] = totals.get(credential_type, 0) + len(section)
        return [Observation(n, {"msal.credential_type": ct}) for ct, n in sorted(totals.items())]


def _split(safe_url: str) -> tuple[str, int | None]:
    """Host and explicit port of a safe URL (``scheme://host[:port]/path``)."""
    netloc = safe_url.partition("://")[2].partition("/")[0]
    host, _, port = netloc.rpartition(":") if netloc.count(":") == 1 else (netloc, "", "")
    return host, (int(port) if port.isdigit() else None)
