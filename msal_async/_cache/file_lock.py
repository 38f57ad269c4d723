"""msal-extensions' cross-process lock file, taken without blocking the event loop.

The convention (msal-extensions ``CrossPlatLock``, with or without portalocker): the lock is the
file ``<cache>.lockfile``, created exclusively (``O_CREAT | O_EXCL``); its holder writes
``"<pid> <argv[0]>"`` into it and deletes it on release. We also hold an ``flock`` on it while we
own it, as portalocker does, so a lock whose holder died is recognisable: nobody holds its
``flock`` and its pid is gone (or it is older than ``stale_after``). Each attempt is a few
non-blocking system calls in a worker thread; between attempts we ``anyio.sleep``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import sys
import time
from collections.abc import AsyncIterator

import anyio
import anyio.to_thread

from .. import _log

__all__ = ["LockTimeout", "hold_lock", "pid_alive"]

logger = logging.getLogger(_log.PERSISTENCE)

_FIRST_RETRY = 0.002
_MAX_RETRY = 0.05


class LockTimeout(TimeoutError):
    """The cache's lock file could not be taken in time."""


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs (on this host, in this pid namespace).

    Args:
        pid: The process id.

    Returns:
        False only when no such process exists.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _try_create(path: str) -> int | None:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return None
    for _ in range(50):  # a stale-lock check may hold our flock for a moment
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            time.sleep(0.001)
    try:
        os.write(fd, f"{os.getpid()} {sys.argv[0]}".encode())
    except OSError:
        pass  # a full disk: the lock (and our flock on it) holds without the pid note
    return fd


def _break_if_stale(path: str, stale_after: float) -> bool:
    """Remove the lock file if its holder is gone; True when it is gone now."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return True
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a live holder (ours, or msal-extensions with portalocker)
        held = os.fstat(fd)
        words = os.read(fd, 512).split()
        pid = int(words[0]) if words and words[0].isdigit() else None
        dead = pid is not None and pid != os.getpid() and not pid_alive(pid)
        age = time.time() - held.st_mtime
        if not dead and age < stale_after:
            return False
        try:
            now = os.stat(path)
        except FileNotFoundError:
            return True
        if (now.st_ino, now.st_dev) != (held.st_ino, held.st_dev):
            return True  # already replaced by a new holder's file
        os.unlink(path)
        logger.warning(
            "Removed a stale token cache lock file %s (holder pid %s %s, %.1f s old)",
            path,
            pid,
            "is not running" if dead else "did not release it",
            age,
        )
        return True
    finally:
        os.close(fd)


def _attempt(path: str, stale_after: float) -> int | None:
    fd = _try_create(path)
    if fd is None and _break_if_stale(path, stale_after):
        fd = _try_create(path)
    return fd


def _release(path: str, fd: int) -> None:
    try:
        os.unlink(path)  # delete first, as msal-extensions does, then drop the flock
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.EACCES):
            logger.warning("Could not remove the lock file %s: %s", path, exc)
    finally:
        os.close(fd)


@contextlib.asynccontextmanager
async def hold_lock(path: str, *, wait: float, stale_after: float) -> AsyncIterator[None]:
    """Hold msal-extensions' lock file ``path`` while inside.

    Args:
        path: The lock file (``<cache>.lockfile``).
        wait: Seconds to keep trying.
        stale_after: A lock file older than this whose holder does not ``flock`` it counts as
            abandoned even when its pid still runs (pids get reused).

    Yields:
        Nothing; the lock is held.

    Raises:
        LockTimeout: Another process held it for ``wait`` seconds.
        OSError: The lock file's folder is not writable.
    """
    deadline = time.monotonic() + wait
    delay = _FIRST_RETRY
    while True:
        with anyio.CancelScope(shield=True):  # never leak a lock we just took
            fd = await anyio.to_thread.run_sync(_attempt, path, stale_after)
        if fd is not None:
            break
        if time.monotonic() >= deadline:
            msg = f"could not take the token cache lock {path} within {wait} s"
            raise LockTimeout(msg)
        await anyio.sleep(delay)
        delay = min(delay * 2, _MAX_RETRY)
    try:
        yield
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(_release, path, fd)
