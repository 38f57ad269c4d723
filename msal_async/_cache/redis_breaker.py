"""A circuit breaker for one Redis deployment: bounded operations, a down state, a probe.

An operation that fails, or does not answer within ``timeout``, marks Redis down: operations
still waiting on it are abandoned (cancelled) and later ones raise :class:`StoreUnavailable` at
once, so no caller waits on a frozen or unreachable Redis twice. Every ``retry_after`` seconds
a PING in the background probes it; once it answers, operations go to Redis again. The outage
and the recovery are logged once each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

from msal_async import _log
from msal_async._cache.protocol import StoreUnavailable

__all__ = ["Breaker"]

logger = logging.getLogger(_log.PERSISTENCE)
T = TypeVar("T")


class Breaker:
    """Guard the operations on one Redis deployment.

    Args:
        timeout: Seconds one operation may take.
        retry_after: Seconds between probes while Redis is down.
        ping: A coroutine function that asks Redis for a PING.
    """

    def __init__(
        self, *, timeout: float, retry_after: float, ping: Callable[[], Awaitable[Any]]
    ) -> None:
        self.timeout = timeout
        self.retry_after = retry_after
        self._ping = ping
        self._down_until = 0.0
        self._probe: asyncio.Task[None] | None = None
        self._inflight: set[anyio.CancelScope] = set()

    @property
    def down(self) -> bool:
        """True while Redis is considered unavailable."""
        return bool(self._down_until)

    async def call(self, op: Callable[[], Awaitable[T]], *, limit: float | None = None) -> T:
        """Run one Redis operation, bounded by ``limit`` (default ``timeout``).

        Returns:
            What the operation returned.

        Raises:
            StoreUnavailable: Redis is down, or did not answer in time.
            Exception: Redis failed (logged when an outage begins).
        """
        if self._down_until:
            if time.monotonic() >= self._down_until and self._probe is None:
                self._probe = asyncio.get_running_loop().create_task(self._probe_redis())
            msg = "Redis failed a moment ago; serving from memory until it answers again"
            raise StoreUnavailable(msg)
        seconds = limit or self.timeout
        scope = anyio.CancelScope(deadline=anyio.current_time() + seconds)
        self._inflight.add(scope)
        try:
            with scope:
                return await op()
        except Exception as exc:
            self._failed(exc)
            raise
        finally:
            self._inflight.discard(scope)
            if scope.cancelled_caught and anyio.current_time() >= scope.deadline:
                self._failed(TimeoutError(f"no answer within {seconds} s"))  # else another did
        msg = "Redis did not answer in time; serving from memory until it answers again"
        raise StoreUnavailable(msg)

    async def _probe_redis(self) -> None:
        """Ping Redis in the background; no caller waits on a Redis that is down."""
        try:
            with anyio.fail_after(self.timeout):
                await self._ping()
        except Exception as exc:  # noqa: BLE001 (still down: the next call after retry_after probes)
            logger.debug("Redis is still unavailable (%s: %s)", type(exc).__name__, exc)
            self._down_until = time.monotonic() + self.retry_after
        else:
            self._down_until = 0.0
            logger.warning("Redis is reachable again; the token cache uses it again")
        finally:
            self._probe = None

    def _failed(self, exc: BaseException) -> None:
        """Mark Redis down (logged when an outage begins) and stop waiting on it."""
        if not self._down_until:
            logger.warning(
                "Redis is unavailable (%s: %s); serving tokens from memory and the authority",
                type(exc).__name__,
                exc,
            )
        self._down_until = time.monotonic() + self.retry_after
        for scope in self._inflight:  # do not wait on it any longer
            scope.cancel()

    async def aclose(self) -> None:
        """Stop a probe under way."""
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(BaseException):
                await self._probe
