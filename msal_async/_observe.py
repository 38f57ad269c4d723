"""The hook points of observability: the transport and the flows report here, and nothing
listens until :func:`msal_async.instrument` installs an observer (OpenTelemetry).

Uninstrumented, each hook costs one module-attribute check on a network or refresh path and
nothing at all on a cache hit (the cache-hit path has no hook: the acquisition wrapper of
``_otel`` reads the result's ``token_source`` instead). Hooks never see a token, a secret, a
username or a URL query: callers pass grant names, status codes, error codes and safe URLs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from contextlib import AbstractContextManager
from contextvars import ContextVar
from typing import Any, Protocol

__all__ = [
    "REFRESH_REASONS",
    "Observer",
    "ResultSink",
    "acquisition",
    "joining",
    "note",
    "observer",
    "token_request",
]

#: The ``x-client-current-telemetry`` refresh reasons (``_telemetry``), by name.
REFRESH_REASONS = {
    0: "not_silent",
    1: "force_refresh",
    2: "no_cached_token",
    3: "expired",
    4: "aging",
}


class ResultSink(Protocol):
    """Where a network call reports how it ended."""

    def status(self, code: int) -> None:
        """The HTTP status code of the answer."""

    def result(self, raw: dict[str, Any]) -> None:
        """A token response (success or msal error dict); read for its ``error`` only."""


class Observer(Protocol):
    """What the hooks call (implemented by ``msal_async._otel``)."""

    def http_call(self, method: str, safe_url: str) -> AbstractContextManager[ResultSink]:
        """One HTTP exchange (retries included); ``safe_url`` has no query and no userinfo."""

    def token_request(
        self, grant: str, api_id: str, refresh_reason: int
    ) -> AbstractContextManager[ResultSink]:
        """One token request of an acquisition."""

    def throttled(self, method: str) -> None:
        """A request answered from a held response (msal's throttling) instead of sent."""

    def background_refresh(self, outcome: str) -> None:
        """A background refresh of an aging token ended (``success`` or ``failure``)."""


#: The installed observer, or None (the default: every hook is a no-op).
observer: Observer | None = None

#: The attributes of the acquisition running in this context (set by the ``_otel`` wrapper).
acquisition: ContextVar[dict[str, Any] | None] = ContextVar("msal_async_acquisition", default=None)


def note(name: str, value: object) -> None:
    """Record an attribute on the current acquisition's span (when one is being observed)."""
    attributes = acquisition.get()
    if attributes is not None:
        attributes[name] = value


async def token_request(
    grant: str, api_id: str, refresh_reason: int, send: Callable[[], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    """Send one token request (``send()``: the raw response or msal error dict), observed.

    Returns:
        What ``send`` returned.
    """
    watching = observer
    if watching is None:
        return await send()
    with watching.token_request(grant, api_id, refresh_reason) as sink:
        raw = await send()
        sink.result(raw)
        return raw


def joining(running: Callable[[Hashable], bool], key: Hashable) -> None:
    """Note whether the caller is about to join a request already in flight under ``key``."""
    if observer is not None:
        note("msal.joined_shared_request", running(key))
