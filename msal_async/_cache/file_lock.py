"""msal-extensions' cross-process lock file, taken without blocking the event loop, on any OS.

The convention (msal-extensions ``CrossPlatLock``, with or without portalocker): the lock is the
file ``<cache>.lockfile``, created exclusively (``O_CREAT | O_EXCL``); its holder writes
``"<pid> <argv[0]>"`` into it and deletes it on release. We also hold an OS lock on it while we
own it, as portalocker does (``flock`` on POSIX, a ``msvcrt`` byte lock on Windows), so a lock
whose holder died is recognisable: nobody holds its OS lock and its pid is gone (or it is older
than ``stale_after``). The OS module is chosen at first use, not at import, so that
``import msal_async`` works everywhere; where neither exists the pid and age rules alone apply.
Each attempt is a few non-blocking system calls in a worker thread; between attempts we
``anyio.sleep``.

A live holder that does not let go (a hung process) makes a save wait at most ``wait`` seconds
and raise :class:`~msal_async._cache.protocol.StoreBusy`; while that same lock file stays in
place, later saves make one attempt and raise it at once (see :class:`BusyLocks`).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Hashable
from dataclasses import dataclass
from types import ModuleType

import anyio
import anyio.to_thread

from msal_async import _log
from msal_async._errors import LockTimeout

__all__ = ["BusyLocks", "LockTimeout", "hold_lock", "owner_only", "pid_alive"]

logger = logging.getLogger(_log.PERSISTENCE)

_FIRST_RETRY = 0.002
_MAX_RETRY = 0.05


@dataclass
class _OsLock:
    """Non-blocking exclusive locks on an open file: flock, msvcrt, or none."""

    name: str
    module: ModuleType | None

    def try_lock(self, fd: int) -> bool:
        if self.module is None:
            return True
        if self.name == "fcntl":
            try:
                self.module.flock(fd, self.module.LOCK_EX | self.module.LOCK_NB)
            except BlockingIOError:
                return False
            return True
        os.lseek(fd, 0, os.SEEK_SET)  # msvcrt locks bytes from the current position
        try:
            self.module.locking(fd, self.module.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def unlock(self, fd: int) -> None:
        if self.module is None or self.name == "fcntl":
            return  # closing the descriptor drops a flock
        os.lseek(fd, 0, os.SEEK_SET)
        with contextlib.suppress(OSError):
            self.module.locking(fd, self.module.LK_UNLCK, 1)


_os_lock: _OsLock | None = None


def os_lock() -> _OsLock:
    """The OS lock of this platform, chosen at first use (``fcntl``, else ``msvcrt``, else none).

    Returns:
        The lock primitive.
    """
    global _os_lock  # a process-wide choice, made once
    if _os_lock is None:
        for name in ("fcntl", "msvcrt"):
            try:
                _os_lock = _OsLock(name, __import__(name))
                break
            except ImportError:
                continue
        else:
            logger.warning(
                "Neither fcntl nor msvcrt is available: the token cache lock file is "
                "recognised as abandoned by its pid and age only"
            )
            _os_lock = _OsLock("none", None)
    return _os_lock


def owner_only(fd: int) -> None:
    """Set an open file's mode to exactly 0600 (``O_CREAT``'s mode is cut by the umask).

    Args:
        fd: The file descriptor (POSIX; Windows has no such modes).
    """
    if hasattr(os, "fchmod"):
        os.fchmod(fd, 0o600)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs (on this host, in this pid namespace).

    Args:
        pid: The process id.

    Returns:
        False only when no such process exists.
    """
    if sys.platform == "win32":
        return _windows_pid_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _windows_pid_alive(pid: int) -> bool:
    # os.kill(pid, 0) would terminate the process on Windows: ask the kernel instead.
    import ctypes  # Windows only

    if sys.platform != "win32":  # pragma: no cover - for type checkers
        return True
    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return bool(ctypes.get_last_error() == 5)  # ERROR_ACCESS_DENIED: it exists
    try:
        code = ctypes.c_ulong()
        if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
            return True
        return code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def _try_create(path: str) -> int | None:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return None
    owner_only(fd)
    lock = os_lock()
    for _ in range(50):  # a stale-lock check may hold our lock for a moment
        if lock.try_lock(fd):
            break
        time.sleep(0.001)
    try:
        os.write(fd, f"{os.getpid()} {sys.argv[0]}".encode())
    except OSError:
        pass  # a full disk: the lock (and our OS lock on it) holds without the pid note
    return fd


def _holder(path: str) -> Hashable | None:
    """Who holds the lock file now (its identity and pid note), or None when it is gone."""
    try:
        with open(path, "rb") as handle:
            st = os.fstat(handle.fileno())
            note = handle.read(512)
    except OSError:
        return None
    return (st.st_ino, st.st_dev, st.st_mtime_ns, note)


def _break_if_stale(path: str, stale_after: float) -> bool:
    """Remove the lock file if its holder is gone; True when it is gone now."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return True
    except OSError:
        return False  # Windows: being deleted, or opened without sharing
    lock = os_lock()
    try:
        if not lock.try_lock(fd):
            return False  # a live holder (ours, or msal-extensions with portalocker)
        try:
            held = os.fstat(fd)
            words = os.read(fd, 512).split()
        finally:
            lock.unlock(fd)
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
        _unlink_quietly(path)
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


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.EACCES):
            logger.warning("Could not remove the lock file %s: %s", path, exc)


def _release(path: str, fd: int) -> None:
    if sys.platform == "win32":
        # An open file cannot be deleted on Windows: drop the lock and close first.
        os_lock().unlock(fd)
        os.close(fd)
        _unlink_quietly(path)
        return
    try:
        _unlink_quietly(path)  # delete first, as msal-extensions does, then drop the flock
    finally:
        os.close(fd)


class BusyLocks:
    """Lock files found held by a live holder past the wait, so later saves do not wait again.

    A holder that keeps the lock past one whole ``wait`` is treated as stuck until its lock
    file changes (released, replaced, or broken as stale): saves meanwhile make one attempt
    (which still breaks the lock if its holder died) and raise :class:`LockTimeout` at once
    instead of waiting again. Logged once per stuck holder.
    """

    def __init__(self) -> None:
        self._stuck: dict[str, Hashable] = {}

    def still_stuck(self, path: str) -> bool:
        """Whether the holder last found stuck on ``path`` still holds it (one small read).

        Args:
            path: The lock file.

        Returns:
            True when the same lock file is still in place.
        """
        known = self._stuck.get(path)
        if known is None:
            return False
        if _holder(path) == known:
            return True
        del self._stuck[path]
        logger.warning("The token cache lock file %s was released; saving again", path)
        return False

    def stuck(self, path: str, wait: float) -> None:
        """Record that ``path`` stayed held for ``wait`` seconds (logged once per holder).

        Args:
            path: The lock file.
            wait: How long it was waited for.
        """
        holder = _holder(path)
        if holder is None:
            return
        if self._stuck.get(path) != holder:
            logger.warning(
                "The token cache lock file %s stayed held by a running process for %.1f s; "
                "tokens are served from memory and saved once it is released",
                path,
                wait,
            )
        self._stuck[path] = holder


@contextlib.asynccontextmanager
async def hold_lock(
    path: str, *, wait: float, stale_after: float, busy: BusyLocks | None = None
) -> AsyncIterator[None]:
    """Hold msal-extensions' lock file ``path`` while inside.

    Args:
        path: The lock file (``<cache>.lockfile``).
        wait: Seconds to keep trying.
        stale_after: A lock file older than this whose holder does not hold its OS lock
            counts as abandoned even when its pid still runs (pids get reused).
        busy: Where stuck holders are remembered (then a save facing the same stuck holder
            fails after one look instead of waiting ``wait`` again).

    Yields:
        Nothing; the lock is held.

    Raises:
        LockTimeout: Another process held it for ``wait`` seconds (with ``busy``: or held it
            that long before, and still holds it).
        OSError: The lock file's folder is not writable.
    """
    if busy is not None and await anyio.to_thread.run_sync(busy.still_stuck, path):
        wait = 0.0  # one attempt (it still breaks the lock if its holder died), no waiting
    deadline = time.monotonic() + wait
    delay = _FIRST_RETRY
    while True:
        with anyio.CancelScope(shield=True):  # never leak a lock we just took
            fd = await anyio.to_thread.run_sync(_attempt, path, stale_after)
        if fd is not None:
            break
        if time.monotonic() >= deadline:
            if busy is not None and wait:
                await anyio.to_thread.run_sync(busy.stuck, path, wait)
            msg = f"the token cache lock {path} is held by another process"
            raise LockTimeout(msg)
        await anyio.sleep(delay)
        delay = min(delay * 2, _MAX_RETRY)
    try:
        yield
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(_release, path, fd)
