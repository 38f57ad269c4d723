"""The disk work of FilePersistence, synchronous (it runs in worker threads): bounded reads,
atomic replacement, owner-only modes, and the cleanup of what a crashed writer left.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import time
from collections.abc import Hashable
from pathlib import Path

from msal_async import _log
from msal_async._cache.codec import MAX_BLOB_BYTES, is_plaintext
from msal_async._cache.file_lock import owner_only, pid_alive

__all__ = [
    "holds_plaintext",
    "make_folders",
    "read_bounded",
    "sweep_temp_files",
    "version_of",
    "write_replacing",
]

logger = logging.getLogger(_log.PERSISTENCE)

_TEMP_SUFFIX = re.compile(r"\.tmp-(\d+)-[0-9a-f]{8}")
#: os.O_BINARY on Windows (no newline translation), 0 elsewhere.
_BINARY = getattr(os, "O_BINARY", 0)


def version_of(st: os.stat_result) -> Hashable:
    """A file's version: what changes whenever it is replaced or rewritten.

    Args:
        st: Its stat.

    Returns:
        ``(inode, mtime_ns, size)``.
    """
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def read_bounded(path: str) -> tuple[Hashable, bytes]:
    """A file's version and bytes, at most one byte past the largest document read.

    Args:
        path: The file.

    Returns:
        ``(version, bytes)``.

    Raises:
        OSError: It cannot be read (FileNotFoundError when absent).
    """
    with open(path, "rb") as handle:
        version = version_of(os.fstat(handle.fileno()))
        return version, handle.read(MAX_BLOB_BYTES + 1)


def holds_plaintext(path: str) -> bool:
    """Whether a file holds a plain (unencrypted) document.

    Args:
        path: The file.

    Returns:
        False when it is absent, empty or encrypted.
    """
    try:
        with open(path, "rb") as handle:
            return is_plaintext(handle.read(64))
    except FileNotFoundError:
        return False


def make_folders(folder: str) -> None:
    """Create ``folder`` and its missing parents, each 0700 whatever the umask.

    Folders that exist already (or that another process creates meanwhile) are left as they
    are: they are not ours to change.

    Args:
        folder: The folder.

    Raises:
        OSError: A folder cannot be created.
    """
    missing: list[str] = []
    current = os.path.abspath(folder or ".")
    while not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for path in reversed(missing):
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue  # made meanwhile (or a file in the way: creating the cache file fails)
        os.chmod(path, 0o700)  # the umask may have taken bits away, even the owner's


def write_replacing(path: str, blob: bytes) -> None:
    """Replace ``path`` with ``blob`` atomically: temporary file (0600), fsync, rename.

    The file's mtime is then stamped with the rename's time: the temporary write's can be
    earlier than an msal-extensions peer's last sync (it reloads only when
    ``_last_sync < mtime``), and the kernel's coarse clock may lag ``time.time()``.

    Args:
        path: The file.
        blob: Its new content.

    Raises:
        OSError: The file could not be written (disk full...): nothing was replaced.
    """
    tmp = f"{path}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _BINARY, 0o600)
        try:
            owner_only(fd)
            view = memoryview(blob)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
        raise
    stamp = time.time_ns()
    try:
        os.utime(path, ns=(stamp, stamp))
    except OSError:
        logger.warning("Could not set the mtime of the token cache file %s", path)
    _fsync_folder(os.path.dirname(path))


def _fsync_folder(folder: str) -> None:
    try:
        fd = os.open(folder or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # not every file system lets a directory be fsynced (Windows: none)
    finally:
        os.close(fd)


def sweep_temp_files(path: str, *, stale_after: float) -> None:
    """Remove ``<path>.tmp-<pid>-<hex>`` files a crashed writer left (call it under the lock).

    Writers create them only while holding the lock, so while we hold it such a file is
    abandoned when its writer is gone or when it is older than ``stale_after``.

    Args:
        path: The cache file.
        stale_after: Seconds after which a live writer's file counts as abandoned too.
    """
    folder, base = os.path.split(path)
    try:
        names = os.listdir(folder or ".")
    except OSError:
        return
    for name in names:
        match = _TEMP_SUFFIX.fullmatch(name, len(base)) if name.startswith(base) else None
        if match is None:
            continue
        leftover = os.path.join(folder, name)
        pid = int(match.group(1))
        try:
            age = time.time() - os.stat(leftover).st_mtime
            dead = pid != os.getpid() and not pid_alive(pid)
            if not dead and age < stale_after:
                continue
            os.unlink(leftover)
        except FileNotFoundError:
            continue
        except OSError as exc:
            logger.warning("Could not remove a temporary token cache file: %s", exc)
            continue
        logger.warning(
            "Removed a temporary token cache file %s left by an interrupted write "
            "(writer pid %d %s, %.0f s old)",
            leftover,
            pid,
            "is not running" if dead else "did not finish",
            age,
        )
