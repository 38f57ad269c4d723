"""One in-flight call per key and event loop: concurrent callers for the same key share it.

Every network call an app makes that others may want at the same moment goes through one
:class:`SingleFlight`: token requests, refreshes, discovery, region detection and managed
identity requests. The call itself runs where no caller's cancellation reaches it (bounded by
the transport timeout): inside a shielded cancel scope, or as an asyncio task of the app's jobs
that nothing cancels. So once a request is sent its answer is always committed: a cancelled
caller can never drop a refresh token that the server has just rotated.

Two modes decide who waits for it. By default the first caller (the leader) runs the call and
its own cancellation is delivered as soon as the call ends; the other callers wait on an event
and a cancelled waiter simply stops waiting. With ``spawn`` (the app's background jobs inside
``async with app:``, see ``_jobs``) the call runs as a job of the app and every caller, the
first included, only waits, so any of them can be cancelled at once.

Flights are kept per event loop: an ``anyio.Event`` belongs to the loop that made it, so an app
used from several threads, each with its own ``asyncio.run`` (or ``trio.run``), gets one flight
per key in each loop and never waits on another loop's event. Errors reach every waiter and
are never memoised.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

import anyio
import anyio.lowlevel

if TYPE_CHECKING:
    import asyncio

__all__ = ["SingleFlight", "Spawn", "current_loop", "loop_closed", "running_asyncio_loop"]

T = TypeVar("T")


class Spawn(Protocol):
    """Starts jobs that outlive their caller: the app's background jobs (``_jobs.Jobs``)."""

    @property
    def may_cancel(self) -> bool:
        """Whether a job may be cancelled from outside before it ends (its call is shielded)."""
        ...

    def start(self, job: Callable[[], Coroutine[Any, Any, None]], /) -> None:
        """Run ``job()`` in the background."""
        ...


def running_asyncio_loop() -> asyncio.AbstractEventLoop | None:
    """The running asyncio loop, or None (no loop, or another backend such as trio)."""
    # asyncio is never imported here: an app that is only constructed loads none of it.
    module = sys.modules.get("asyncio")
    if module is None:
        return None
    try:
        return cast("asyncio.AbstractEventLoop", module.get_running_loop())
    except RuntimeError:
        return None


def current_loop() -> object:
    """The running event loop: the asyncio loop, or trio's token for the current run.

    Flights, and the app's own HTTP clients, are kept per loop under this identity.

    Raises:
        RuntimeError: no event loop is running in this thread.
    """
    loop = running_asyncio_loop()
    return loop if loop is not None else anyio.lowlevel.current_token().native_token


def loop_closed(loop: object) -> bool:
    """Whether ``loop`` (from :func:`current_loop`) has shut down for good."""
    # A trio run always finalises its generators before it ends, so only asyncio's loops can
    # be found closed with a value still open.
    is_closed = getattr(loop, "is_closed", None)
    return bool(is_closed()) if callable(is_closed) else False


class _Flight:
    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        # Made by the first waiter: most flights (distinct keys) never have one.
        self.done: anyio.Event | None = None
        self.value: Any = None
        self.error: BaseException | None = None

    async def wait(self) -> Any:
        done = self.done
        if done is None:
            done = self.done = anyio.Event()
        await done.wait()
        return self.outcome()

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


class SingleFlight:
    """The registry of in-flight calls of one app, per event loop."""

    def __init__(self) -> None:
        self._loops: dict[object, dict[Hashable, _Flight]] = {}
        self._lock = threading.Lock()

    def running(self, key: Hashable) -> bool:
        """Tell whether a call for ``key`` is in flight on the current event loop.

        Args:
            key: what identifies the call.

        Returns:
            True when one is running.
        """
        flights = self._loops.get(current_loop())
        return flights is not None and key in flights

    def in_flight(self) -> int:
        """Return how many calls are in flight, over every event loop."""
        with self._lock:
            return sum(len(flights) for flights in self._loops.values())

    async def run(
        self, key: Hashable, call: Callable[[], Awaitable[T]], *, spawn: Spawn | None = None
    ) -> T:
        """Await ``call()`` once for all concurrent callers with the same ``key``.

        Args:
            key: what identifies the call (every field that shapes the request).
            call: the call, awaited once, out of any caller's cancellation.
            spawn: starts the app's background jobs; with it every caller only waits (see the
                module docstring).

        Returns:
            The shared result of ``call()``.

        Raises:
            Exception: whatever ``call()`` raised, in every waiting caller.
        """
        loop = current_loop()
        with self._lock:
            flights = self._loops.get(loop)
            if flights is None:
                self._prune_closed_loops()
                flights = self._loops[loop] = {}
            flight = flights.get(key)
            leader = flight is None
            if flight is None:
                flight = flights[key] = _Flight()
        if leader and spawn is not None:  # a partial, not a closure: 2,000 may be in flight
            spawn.start(partial(self._lead, loop, key, flight, call, shield=spawn.may_cancel))
            leader = False
        if not leader:
            return cast(T, await flight.wait())
        await self._lead(loop, key, flight, call)
        # Deliver a cancellation the shield held back, now that the others have the result.
        await anyio.lowlevel.checkpoint_if_cancelled()
        return cast(T, flight.outcome())

    async def _lead(
        self,
        loop: object,
        key: Hashable,
        flight: _Flight,
        call: Callable[[], Awaitable[Any]],
        *,
        shield: bool = True,
    ) -> None:
        try:
            if shield:
                with anyio.CancelScope(shield=True):
                    flight.value = await call()
            else:  # a job nobody cancels (an asyncio task of the app's jobs): no scope to pay for
                flight.value = await call()
        except Exception as exc:  # noqa: BLE001 (re-raised in every waiter)
            flight.error = exc
        except BaseException:
            # KeyboardInterrupt, SystemExit, or a detached task torn down with its group:
            # the waiters get an error of their own, never another task's cancellation.
            flight.error = RuntimeError("the application was closed while this request ran")
            raise
        finally:
            with self._lock:
                flights = self._loops.get(loop)
                if flights is not None and flights.get(key) is flight:
                    del flights[key]
                    if not flights:
                        del self._loops[loop]
            if flight.done is not None:
                flight.done.set()

    def _prune_closed_loops(self) -> None:
        # A loop closed with a flight still registered (its tasks were never cancelled) keeps
        # nothing alive here for long: the next new loop drops it. Called with the lock held.
        for loop in [loop for loop in self._loops if loop_closed(loop)]:
            del self._loops[loop]
