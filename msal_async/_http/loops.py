"""One value per event loop, closed on that loop when it shuts down.

An app may be used from several event loops: in turn (``asyncio.run`` twice), at the same time
from threads (``asyncio.run`` per thread), or under trio. Sockets, locks and pools belong to
the loop that made them, so :class:`LoopLocal` makes one value per loop on first use there.

Each value comes with a tiny async generator, started on the value's loop and suspended at its
only ``yield``; its ``finally`` closes the value. The loop runs that ``finally``:

- when the loop shuts down: ``asyncio.run`` (``loop.shutdown_asyncgens()``) and ``trio.run``
  finalise every live async generator before the loop closes;
- at :meth:`LoopLocal.aclose`: at once for the calling loop, and as a task on every other
  running loop (another thread's), scheduled thread-safely;
- when the owner is garbage-collected while loops still run: a ``weakref.finalize`` schedules
  the same tasks. Until a value is closed it stays referenced from this module, so that the
  collector never finalises its sockets piecemeal behind the loop's back.

A loop closed without ``shutdown_asyncgens()`` (``loop.close()`` alone) cannot run anything any
more: its value is dropped the next time a value is made, and asyncio closes the sockets when
their transports are collected (with asyncio's own ResourceWarning).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import anyio
import anyio.lowlevel

from .._errors import closed_error
from .._singleflight import current_loop, loop_closed

__all__ = ["LoopLocal"]

T = TypeVar("T")
Closer = Callable[[Any], Awaitable[None]]


@dataclass(eq=False)
class _Slot(Generic[T]):
    loop: object
    value: T
    slots: dict[object, _Slot[T]]
    lock: threading.Lock
    close: Closer
    finalizer: AsyncGenerator[None, None] | None = None
    # Set when the slot's loop is gone: the finalizer then drops the value without awaiting.
    orphaned: bool = False


#: Every value not closed yet, with its finalizer: reachable from here until its loop closes it.
_OPEN: set[_Slot[Any]] = set()
_OPEN_LOCK = threading.Lock()


async def _finalize(slot: _Slot[Any]) -> AsyncGenerator[None, None]:
    # Refers to its slot, never to the LoopLocal, so that the owner can be collected.
    try:
        yield
    finally:
        with slot.lock:
            if slot.slots.get(slot.loop) is slot:
                del slot.slots[slot.loop]
        with _OPEN_LOCK:
            _OPEN.discard(slot)
        if slot.orphaned:
            pass
        elif isinstance(slot.loop, asyncio.AbstractEventLoop):
            await slot.close(slot.value)  # asyncio finalises generators uncancelled
        else:
            # trio finalises generators in a cancelled scope; closing must still finish.
            with anyio.CancelScope(shield=True):
                await slot.close(slot.value)


class LoopLocal(Generic[T]):
    """Make a value per event loop with ``create()``; close each with ``close(value)``.

    Thread-safe: loops in different threads get and close their own values.

    Args:
        create: builds the value for the calling loop (synchronous, runs in that loop).
        close: closes a value, on the loop that made it.
    """

    def __init__(self, create: Callable[[], T], close: Callable[[T], Awaitable[None]]) -> None:
        self._create = create
        self._close = close
        self._slots: dict[object, _Slot[T]] = {}
        self._lock = threading.Lock()
        self._closed = False
        collected = weakref.finalize(self, _close_all, self._slots, self._lock)
        collected.atexit = False  # at exit, every loop has ended (or never will)

    def __len__(self) -> int:
        """How many loops have a value now."""
        return len(self._slots)

    def peek(self) -> T | None:
        """The calling loop's value if it has one (no event loop needed: None without one)."""
        try:
            slot = self._slots.get(current_loop())
        except RuntimeError:
            return None
        return None if slot is None else slot.value

    async def get(self) -> T:
        """The calling loop's value, made on first use in this loop.

        Raises:
            RuntimeError: :meth:`aclose` was called.
        """
        loop = current_loop()
        slot = self._slots.get(loop)
        if slot is not None:
            return slot.value
        if self._closed:
            raise closed_error()
        _drop_closed_loops()
        # Nothing below awaits before the slot is registered, so two tasks of one loop cannot
        # both make a value; other threads only ever touch their own loop's key.
        slot = _Slot(loop, self._create(), self._slots, self._lock, self._close)
        slot.finalizer = _finalize(slot)
        with _OPEN_LOCK:
            _OPEN.add(slot)
        with self._lock:
            self._slots[loop] = slot
        # Starting the generator registers it with this loop's async-generator hooks.
        await slot.finalizer.asend(None)
        return slot.value

    async def aclose(self) -> None:
        """Close every loop's value: this loop's now, others' on their own loops, soon.

        Further :meth:`get` calls raise RuntimeError.
        """
        self._closed = True
        try:
            here: object = current_loop()
        except RuntimeError:
            here = None
        with self._lock:
            slots = list(self._slots.values())
            self._slots.clear()
        for slot in slots:
            if slot.loop is here and slot.finalizer is not None:
                await slot.finalizer.aclose()
            else:
                _close_elsewhere(slot)


def _close_all(slots: dict[object, _Slot[Any]], lock: threading.Lock) -> None:
    """The owner was collected: close every value still open, each on its loop."""
    with lock:
        remaining = list(slots.values())
        slots.clear()
    for slot in remaining:
        _close_elsewhere(slot)


def _drop_closed_loops() -> None:
    with _OPEN_LOCK:
        dead = [slot for slot in _OPEN if loop_closed(slot.loop)]
    for slot in dead:
        _finish_orphan(slot)


def _finish_orphan(slot: _Slot[Any]) -> None:
    """Run the finalizer of a slot whose loop is closed to its end (it awaits nothing)."""
    slot.orphaned = True
    if slot.finalizer is None:
        return
    closing = slot.finalizer.aclose()
    with contextlib.suppress(StopIteration):
        closing.send(None)


def _close_elsewhere(slot: _Slot[Any]) -> None:
    """Have the slot's loop, maybe another thread's, run its finalizer soon."""
    finalizer, loop = slot.finalizer, slot.loop
    if finalizer is None:
        return
    if loop_closed(loop):
        _finish_orphan(slot)
        return

    async def close() -> None:
        # The loop's own shutdown may be finalising the generator at this very moment.
        with contextlib.suppress(RuntimeError):
            await finalizer.aclose()

    if isinstance(loop, asyncio.AbstractEventLoop):
        coroutine = close()
        try:
            # A fresh context: this thread's (trio's, say) must not follow the task there,
            # or libraries that detect the running event loop through it would be misled.
            loop.call_soon_threadsafe(loop.create_task, coroutine, context=contextvars.Context())
        except RuntimeError:  # closed meanwhile; its shutdown finalised the generator
            coroutine.close()
        return
    import trio  # the loop is a trio token, so trio is installed

    token: Any = loop
    with contextlib.suppress(trio.RunFinishedError):
        token.run_sync_soon(trio.lowlevel.spawn_system_task, close)
