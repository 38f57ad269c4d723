"""The app's background jobs: started without waiting, all waited for when the block ends."""

from __future__ import annotations

import anyio
import pytest

from msal_async._jobs import Jobs

pytestmark = pytest.mark.anyio


async def test_close_waits_for_every_job() -> None:
    jobs = Jobs()
    await jobs.open()
    gate = anyio.Event()
    finished: list[int] = []

    async def job(n: int) -> None:
        await gate.wait()
        finished.append(n)

    for n in range(3):
        jobs.start(lambda n=n: job(n))  # type: ignore[misc]
    await anyio.wait_all_tasks_blocked()
    assert finished == []

    async def release_later() -> None:
        await anyio.wait_all_tasks_blocked()
        gate.set()

    jobs.start(release_later)
    await jobs.close()
    assert sorted(finished) == [0, 1, 2]


async def test_a_cancelled_close_still_waits_for_the_jobs() -> None:
    """The block's task is cancelled as it ends: its jobs still end before the app closes."""
    gate = anyio.Event()
    finished: list[str] = []

    async def job() -> None:
        with anyio.CancelScope(shield=True):  # as a shared request's network call runs
            await gate.wait()
            finished.append("stored")

    async def release_later() -> None:
        await anyio.wait_all_tasks_blocked()
        gate.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(release_later)
        with anyio.CancelScope() as scope:
            jobs = Jobs()
            await jobs.open()
            jobs.start(job)
            scope.cancel()
            await jobs.close(cancel=True)
    assert finished == ["stored"]


async def test_an_error_that_is_not_an_exception_reaches_the_block() -> None:
    class Stop(BaseException):
        """Like SystemExit: not a job's own to handle."""

    jobs = Jobs()
    await jobs.open()

    async def job() -> None:
        raise Stop

    jobs.start(job)
    with pytest.raises(BaseException) as info:  # noqa: PT011 (Stop, or a group holding it)
        await jobs.close()
    error = info.value
    assert isinstance(error, Stop) or isinstance(error.exceptions[0], Stop)  # type: ignore[attr-defined]


def test_start_before_open_is_an_error() -> None:
    with pytest.raises(RuntimeError, match=r"before open\(\)"):
        Jobs().start(lambda: None)  # type: ignore[arg-type, return-value]


async def test_only_a_task_group_may_cancel_its_jobs(anyio_backend_name: str) -> None:
    """asyncio tasks of the jobs are cancelled by nothing: shared calls there need no shield."""
    jobs = Jobs()
    await jobs.open()
    assert jobs.may_cancel is (anyio_backend_name != "asyncio")
    await jobs.close()
