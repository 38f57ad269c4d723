"""One in-flight call per key: concurrent callers for the same key share one result.

The first caller for a key (the leader) runs the call inside a shielded cancel scope, so
cancelling the leader never cancels the work the other callers wait for; the leader's own
cancellation is delivered as soon as the shared call ends (it is bounded by the transport
timeout). Followers wait on an event; a cancelled follower simply stops waiting. Every
caller gets the same return value, or the same exception re-raised.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar, cast

import anyio
import anyio.lowlevel

__all__ = ["SingleFlight"]

T = TypeVar("T")


class _Flight(Generic[T]):
    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.value: T | None = None
        self.error: BaseException | None = None


class SingleFlight(Generic[T]):
    """Deduplicate concurrent awaits of the same keyed call within one event loop."""

    def __init__(self) -> None:
        self._flights: dict[Hashable, _Flight[T]] = {}
        self._lock = threading.Lock()

    def in_flight(self) -> int:
        """Return how many keys have a call running right now."""
        return len(self._flights)

    def running(self, key: Hashable) -> bool:
        """Return whether a call for ``key`` is in flight."""
        return key in self._flights

    async def run(
        self,
        key: Hashable,
        call: Callable[[], Awaitable[T]],
        *,
        spawn: Callable[[Callable[[], Awaitable[None]]], None] | None = None,
    ) -> T:
        """Await ``call()`` once for all concurrent callers with the same ``key``.

        Args:
            key: what identifies the call.
            call: the call, awaited once.
            spawn: starts a task in a task group that outlives the callers (the app's, inside
                ``async with app:``). With it the call runs there and every caller, the first
                included, only waits: any of them can be cancelled or time out at once. Without
                it the first caller runs the call shielded (see the module docstring).

        Returns:
            The shared result of ``call()``.

        Raises:
            Whatever ``call()`` raised, in every waiting caller.
        """
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if leader and spawn is not None:
            spawn(lambda: self._run_detached(key, flight, call))
            leader = False
        if not leader:
            await flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return cast(T, flight.value)
        try:
            with anyio.CancelScope(shield=True):
                try:
                    flight.value = await call()
                except BaseException as exc:  # noqa: BLE001 (re-raised in every waiter)
                    flight.error = exc
        finally:
            with self._lock:
                self._flights.pop(key, None)
            flight.done.set()
        # Deliver a cancellation the shield held back, now that the others have the result.
        await anyio.lowlevel.checkpoint_if_cancelled()
        if flight.error is not None:
            raise flight.error
        return cast(T, flight.value)

    async def _run_detached(
        self, key: Hashable, flight: _Flight[T], call: Callable[[], Awaitable[T]]
    ) -> None:
        try:
            flight.value = await call()
        except Exception as exc:  # noqa: BLE001 (re-raised in every waiter)
            flight.error = exc
        except BaseException:
            # The app's task group is closing (or the process is stopping): waiters get an
            # error of their own, never this task's cancellation.
            flight.error = RuntimeError("the application was closed while this request ran")
            raise
        finally:
            with self._lock:
                self._flights.pop(key, None)
            flight.done.set()
