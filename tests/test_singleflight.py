"""Single flight: one call per key, shared results and errors, cancellation-safe."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import anyio.abc
import pytest

from msal_async._singleflight import SingleFlight

pytestmark = pytest.mark.anyio


class GroupJobs:
    """Jobs in an anyio task group, which may cancel them (so shared calls are shielded)."""

    may_cancel = True

    def __init__(self, group: anyio.abc.TaskGroup) -> None:
        self._group = group

    def start(self, job: Callable[[], Coroutine[Any, Any, None]], /) -> None:
        self._group.start_soon(job)


async def test_concurrent_callers_share_one_call() -> None:
    flights: SingleFlight = SingleFlight()
    calls = 0
    release = anyio.Event()
    results: list[int] = []

    async def work() -> int:
        nonlocal calls
        calls += 1
        await release.wait()
        return 42

    async def caller() -> None:
        results.append(await flights.run("k", work))

    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(caller)
        await anyio.wait_all_tasks_blocked()
        release.set()
    assert calls == 1
    assert results == [42] * 50
    assert flights.in_flight() == 0


async def test_errors_reach_every_waiter_and_are_not_memoised() -> None:
    flights: SingleFlight = SingleFlight()
    gate = anyio.Event()
    errors: list[BaseException] = []

    async def boom() -> int:
        await gate.wait()
        raise LookupError("nope")

    async def caller() -> None:
        try:
            await flights.run("k", boom)
        except LookupError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(caller)
        await anyio.wait_all_tasks_blocked()
        gate.set()
    assert len(errors) == 5

    async def fine() -> int:
        return 1

    assert await flights.run("k", fine) == 1


async def test_cancelled_leader_does_not_cancel_the_call_for_others() -> None:
    flights: SingleFlight = SingleFlight()
    gate = anyio.Event()
    got: list[str] = []
    leader_scope = anyio.CancelScope()

    async def work() -> str:
        await gate.wait()
        return "done"

    async def leader() -> None:
        with leader_scope:
            await flights.run("k", work)

    async def follower() -> None:
        got.append(await flights.run("k", work))

    async with anyio.create_task_group() as tg:
        tg.start_soon(leader)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(follower)
        await anyio.wait_all_tasks_blocked()
        leader_scope.cancel()
        await anyio.wait_all_tasks_blocked()
        assert flights.in_flight() == 1  # the shared call survived the leader's cancel
        gate.set()
    assert got == ["done"]
    assert leader_scope.cancelled_caught


async def test_cancelled_follower_stops_waiting_others_get_result() -> None:
    flights: SingleFlight = SingleFlight()
    gate = anyio.Event()
    got: list[str] = []

    async def work() -> str:
        await gate.wait()
        return "v"

    async def leader() -> None:
        got.append(await flights.run("k", work))

    async with anyio.create_task_group() as tg:
        tg.start_soon(leader)
        await anyio.wait_all_tasks_blocked()
        with anyio.move_on_after(0.01) as scope:
            await flights.run("k", work)
        assert scope.cancelled_caught
        gate.set()
    assert got == ["v"]


async def test_with_spawn_every_caller_only_waits_and_the_call_outlives_a_closing_group() -> None:
    """Inside `async with app:` callers can leave at once; the request itself still completes
    (a token the server issued, or a refresh token it rotated, is never dropped)."""
    flights = SingleFlight()
    gate = anyio.Event()
    finished: list[str] = []

    async def work() -> str:
        await gate.wait()
        finished.append("stored")
        return "value"

    scopes = [anyio.CancelScope(), anyio.CancelScope()]

    async def caller(spawn: Any, scope: anyio.CancelScope) -> None:
        with scope:
            await flights.run("k", work, spawn=spawn)

    async with anyio.create_task_group() as outer, anyio.create_task_group() as app_group:
        for scope in scopes:
            outer.start_soon(caller, GroupJobs(app_group), scope)
        await anyio.wait_all_tasks_blocked()
        assert flights.in_flight() == 1
        for scope in scopes:
            scope.cancel()  # the callers leave at once, even the first one
        await anyio.wait_all_tasks_blocked()
        assert all(scope.cancelled_caught for scope in scopes)
        app_group.cancel_scope.cancel()  # the app closes while the request runs
        gate.set()
    assert finished == ["stored"]
    assert flights.in_flight() == 0


async def test_a_detached_call_stopped_by_its_group_errors_its_waiters() -> None:
    flights = SingleFlight()
    errors: list[BaseException] = []

    class Stop(BaseException):
        """Not an Exception (like SystemExit): it tears the detached task down."""

    async def work() -> str:
        raise Stop

    async def caller(spawn: Any) -> None:
        try:
            await flights.run("k", work, spawn=spawn)
        except RuntimeError as exc:
            errors.append(exc)

    async def run() -> None:
        async with anyio.create_task_group() as outer, anyio.create_task_group() as app_group:
            outer.start_soon(caller, GroupJobs(app_group))
            await anyio.wait_all_tasks_blocked()

    with pytest.raises(BaseException):  # noqa: PT011, B017 (the group re-raises it, wrapped or not)
        await run()
    assert flights.in_flight() == 0  # the flight was unregistered although its task died


def test_flights_are_per_event_loop_across_threads() -> None:
    """One app used from several threads, each with its own event loop: no loop waits on an
    event of another loop (that hung or raised "bound to a different event loop")."""
    import asyncio
    import threading

    flights = SingleFlight()
    started = threading.Barrier(4)
    calls: list[int] = []
    results: list[str] = []
    errors: list[BaseException] = []

    async def work() -> str:
        calls.append(1)
        await asyncio.sleep(0.05)
        return "v"

    async def main() -> None:
        started.wait()
        got = await asyncio.gather(*(flights.run("k", work) for _ in range(20)))
        results.extend(got)

    def thread() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 (reported by the assertion below)
            errors.append(exc)

    threads = [threading.Thread(target=thread) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert results == ["v"] * 80
    assert 1 <= len(calls) <= 4  # at most one call per event loop
    assert flights.in_flight() == 0
