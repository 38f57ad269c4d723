"""Single flight: one call per key, shared results and errors, cancellation-safe."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from msal_async._singleflight import SingleFlight

pytestmark = pytest.mark.anyio


async def test_concurrent_callers_share_one_call() -> None:
    flights: SingleFlight[int] = SingleFlight()
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
    flights: SingleFlight[int] = SingleFlight()
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
    flights: SingleFlight[str] = SingleFlight()
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
    flights: SingleFlight[str] = SingleFlight()
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


async def test_with_spawn_every_caller_only_waits_and_a_closing_group_errors_them() -> None:
    flights: SingleFlight[str] = SingleFlight()
    gate = anyio.Event()
    errors: list[BaseException] = []

    async def work() -> str:
        await gate.wait()
        return "never"

    async def caller(spawn: Any) -> None:
        try:
            await flights.run("k", work, spawn=spawn)
        except RuntimeError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as outer, anyio.create_task_group() as app_group:
        outer.start_soon(caller, app_group.start_soon)
        outer.start_soon(caller, app_group.start_soon)
        await anyio.wait_all_tasks_blocked()
        assert flights.in_flight() == 1
        app_group.cancel_scope.cancel()  # the app closes while the request runs
    assert len(errors) == 2
    assert all("closed" in str(e) for e in errors)
    assert flights.in_flight() == 0
