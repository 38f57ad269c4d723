"""The app's background jobs inside ``async with app:``: shared requests and refreshes.

A job is started without waiting for it and must not outlive the ``async with`` block, which
waits for every job when it ends. On asyncio each job is one task of the loop
(``loop.create_task``) kept in a set: a cold burst starts one job per distinct request, and an
anyio task costs several times more (anyio 4.14+ gives every task a handle with its own cancel
scope and completion event), about a tenth of a cold token request's CPU at N=2,000
(docs/transport.md). Under trio (or any other anyio backend) the jobs run in an anyio task
group.

Jobs are never cancelled from here: a job's network call must end and be committed anyway
(see ``_singleflight``), so the block's end waits for them, bounded by the transport's
timeouts. As nothing cancels an asyncio task of these jobs, a shared request there runs
without a shielded scope (:attr:`Jobs.may_cancel`); one in an anyio task group is shielded.
An error other than ``Exception`` escaping a job (``Exception`` is the job's own to handle)
is raised again when the block ends.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from ._singleflight import running_asyncio_loop

if TYPE_CHECKING:
    import asyncio

__all__ = ["Jobs"]

Job = Callable[[], Coroutine[Any, Any, None]]


class Jobs:
    """Background jobs of one ``async with app:`` block, on the event loop that opened it."""

    __slots__ = ("_done", "_errors", "_group", "_loop", "_tasks")

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._errors: list[BaseException] = []
        self._done: anyio.Event | None = None  # made when the block waits for running jobs
        self._group: anyio.abc.TaskGroup | None = None

    async def open(self) -> None:
        """Start accepting jobs on the running event loop."""
        self._loop = running_asyncio_loop()
        if self._loop is not None:
            return
        group = anyio.create_task_group()
        await group.__aenter__()
        self._group = group

    @property
    def may_cancel(self) -> bool:
        """Whether a job may be cancelled before it ends: an anyio task group's may be.

        An asyncio task started here is cancelled by nothing of ours (only by a loop torn down
        under it, which anyio's shield would not stop either).
        """
        return self._group is not None

    def start(self, job: Job) -> None:
        """Run ``job()`` in the background (call it on the loop that opened the jobs)."""
        loop = self._loop
        if loop is None:
            if self._group is None:
                msg = "Jobs.start() before open()"
                raise RuntimeError(msg)
            self._group.start_soon(job, name="msal_async shared request")
            return
        task = loop.create_task(job(), name="msal_async shared request")
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():  # cancelled: the loop is shutting down
            error = task.exception()  # retrieved, so asyncio does not log it as lost
            if error is not None:
                self._errors.append(error)
        if not self._tasks and self._done is not None:
            self._done.set()

    async def close(self, *, cancel: bool = False) -> None:
        """Wait for every job to end, even when the caller is being cancelled.

        Args:
            cancel: the block ended with an error: jobs that may stop early (an anyio task
                group's waiting jobs) are cancelled; shielded network calls still finish.

        Raises:
            BaseException: the first error that escaped a job (never an ``Exception``).
        """
        group, self._group = self._group, None
        if group is not None:
            if cancel:
                group.cancel_scope.cancel()
            await group.__aexit__(None, None, None)
            return
        if self._tasks:
            self._done = anyio.Event()
            with anyio.CancelScope(shield=True):
                await self._done.wait()
        errors, self._errors = self._errors, []
        if errors:
            raise errors[0]
