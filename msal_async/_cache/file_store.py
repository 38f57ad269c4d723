"""FilePersistence: msal's JSON cache in one file (msal-extensions compatible) or one per partition.

Reads check ``(inode, mtime, size)`` first and parse only when the file changed. Writes happen
under msal-extensions' ``<file>.lockfile`` and replace the file atomically (temporary file,
fsync, rename, mode 0600), then stamp the file's mtime with the time of the rename: msal-extensions
reloads only a file modified after its last sync, so the mtime must not be the (earlier) time of
the temporary write. A file that cannot be parsed is never overwritten silently: the entries
that can still be read are kept, the file is moved aside to ``<name>.corrupt-<ts>`` and an error
is logged. A file this process cannot decrypt (no key, or another key) is not damaged: it is left
untouched, and saves fail until the key matches. All disk work runs in worker threads.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import time
from collections.abc import Callable, Hashable
from pathlib import Path

import anyio.to_thread

from msal_async._cache.codec import (
    CorruptDocument,
    Document,
    UndecryptableDocument,
    check_key,
    decode,
    encode,
    salvage,
)
from msal_async._cache.file_lock import hold_lock, pid_alive
from msal_async._cache.protocol import AsyncPersistence, Loaded

from .. import _log

__all__ = ["FilePersistence"]

logger = logging.getLogger(_log.PERSISTENCE)

_ABSENT = ("absent",)
_SAFE_NAME = re.compile(r"[A-Za-z0-9._-]{1,120}")
_TEMP_SUFFIX = re.compile(r"\.tmp-(\d+)-[0-9a-f]{8}")
#: Seconds between two looks (per cache file) for temporary files a crashed writer left.
_SWEEP_EVERY = 600.0


def _version(st: os.stat_result) -> Hashable:
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class FilePersistence(AsyncPersistence):
    """Keep the token cache in a file (msal's JSON format), or in a folder of per-partition files.

    A single file is interchangeable with msal-extensions' ``FilePersistence`` and its
    ``<file>.lockfile`` convention: msal + msal-extensions and msal_async can share it at the same
    time. A folder (a ``location`` that is an existing directory or ends with a path separator)
    holds one file per partition (tenant for app tokens, account for user tokens), so an
    acquisition reads and writes only its own partition.

    Args:
        location: The cache file, or a folder.
        encryption_key: Encrypt at rest with AES-GCM under this 16/24/32-byte key (the file is
            then no longer readable by msal-extensions). None stores plain JSON, as msal does.
        lock_timeout: Seconds to wait for the lock file before giving up on one save (the
            tokens stay in memory and the next save retries).
        stale_lock_after: A lock file whose holder died is removed at once; one whose holder
            seems alive but that is older than this many seconds is removed too. The same
            rule removes temporary files (``<file>.tmp-<pid>-<hex>``) a crashed writer left.

    Raises:
        TypeError: A parameter has the wrong type.
        ValueError: An empty location, a bad key length, or a non-positive timeout.
    """

    def __init__(
        self,
        location: str | os.PathLike[str],
        *,
        encryption_key: bytes | None = None,
        lock_timeout: float = 10.0,
        stale_lock_after: float = 30.0,
    ) -> None:
        if not isinstance(location, (str, os.PathLike)):
            msg = f"location must be a path, got {type(location).__name__}"
            raise TypeError(msg)
        text = os.path.expanduser(os.fspath(location))
        if not text:
            msg = "location must name a cache file or folder, got ''"
            raise ValueError(msg)
        for name, value in (("lock_timeout", lock_timeout), ("stale_lock_after", stale_lock_after)):
            if not value > 0:
                msg = f"{name} must be a positive number of seconds, got {value!r}"
                raise ValueError(msg)
        self._key = check_key(encryption_key)
        # An existing folder is told from a file on first use, not here: constructors do no I/O.
        self._partitioned: bool | None = True if text.endswith(os.sep) else None
        self._location = os.path.abspath(text)
        self.lock_timeout = float(lock_timeout)
        self.stale_lock_after = float(stale_lock_after)
        self._undecryptable: dict[str, Hashable] = {}  # path -> the version that failed
        self._swept: dict[str, float] = {}  # path -> monotonic time of the last temp sweep

    @property
    def partitioned(self) -> bool:  # type: ignore[override]
        """Whether the location is a folder of per-partition files (decided on first use).

        Returns:
            True for a folder (an existing directory, or a location ending with a separator).
        """
        if self._partitioned is None:
            self._partitioned = os.path.isdir(self._location)
        return self._partitioned

    def get_location(self) -> str:
        """The cache file (or folder), as msal-extensions' ``get_location``.

        Returns:
            The absolute path.
        """
        return self._location

    def path_of(self, partition: str | None) -> str:
        """The file holding one partition.

        Args:
            partition: A partition key, or None for the single file.

        Returns:
            The file's path.
        """
        if partition is None or not self.partitioned:
            return self._location
        name = partition if _SAFE_NAME.fullmatch(partition) else None
        if name is None or name.startswith("."):
            name = "p-" + hashlib.sha256(partition.encode()).hexdigest()[:32]
        return os.path.join(self._location, name + ".json")

    async def load(self, partition: str | None, known: Hashable | None) -> Loaded | None:
        """Read one partition's file if it changed since ``known`` (a stat when it did not).

        Args:
            partition: The partition key (None when not partitioned).
            known: The version last seen.

        Returns:
            None when unchanged, else the readable entries.

        Raises:
            OSError: The file exists but cannot be read.
            LockTimeout: The file did not parse (or was empty) and the lock to read it again
                was not free.
            UndecryptableDocument: The file is encrypted and this process's key does not
                authenticate it (logged once; the file is left untouched).
        """
        path = self.path_of(partition)
        if self.unchanged(partition, known):
            return None
        failed = self._undecryptable.get(path)
        if failed is not None and self.unchanged(partition, failed):
            raise UndecryptableDocument(_UNDECRYPTABLE)  # logged when first seen
        try:
            return await anyio.to_thread.run_sync(self._read_if_changed, path, known)
        except CorruptDocument:
            # msal-extensions rewrites its file in place (truncate, then write), so we may have
            # read it mid-write: read again under the lock, and salvage it there if it is
            # really damaged (an empty file read under the lock is an empty cache).
            return await self.save(partition, _unchanged)

    def unchanged(self, partition: str | None, known: Hashable | None) -> bool:
        """Tell from one ``stat`` whether a partition's file is still at version ``known``.

        Done inline, not in a worker thread: a stat of file metadata costs a few microseconds
        where a thread hop costs ~100; every read, write and lock goes to a thread.

        Args:
            partition: The partition key.
            known: The version last seen.

        Returns:
            True when certainly unchanged.
        """
        if known is None:
            return False
        try:
            return _version(os.stat(self.path_of(partition))) == known
        except FileNotFoundError:
            return known == _ABSENT
        except OSError:
            return False

    def _read_if_changed(self, path: str, known: Hashable | None) -> Loaded | None:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None if known == _ABSENT else Loaded(_ABSENT, {})
        if _version(st) == known:
            return None
        try:
            with open(path, "rb") as handle:
                version = _version(os.fstat(handle.fileno()))
                blob = handle.read()
        except FileNotFoundError:
            return None if known == _ABSENT else Loaded(_ABSENT, {})
        if not blob.strip():
            msg = "the cache file was empty when read without the lock"
            raise CorruptDocument(msg)  # maybe mid-write: load() reads it again under the lock
        return Loaded(version, self._decode(path, version, blob))

    def _decode(self, path: str, version: Hashable, blob: bytes) -> Document:
        try:
            document = decode(blob, self._key)
        except UndecryptableDocument as exc:
            if path not in self._undecryptable:
                logger.error(
                    "The token cache file %s cannot be decrypted by this process (%s): its "
                    "encryption_key is missing or differs from the key the file was written "
                    "with. The file is left untouched; tokens are served from memory and not "
                    "saved to it until the keys match (if the file is damaged instead, move it "
                    "away by hand)",
                    path,
                    exc,
                )
            self._undecryptable[path] = version
            raise
        if self._undecryptable.pop(path, None) is not None:
            logger.warning("The token cache file %s can be decrypted again; using it", path)
        return document

    async def save(self, partition: str | None, update: Callable[[Document], Document]) -> Loaded:
        """Apply ``update`` to the stored document under the lock file and replace the file.

        Args:
            partition: The partition key (None when not partitioned).
            update: Computes the new document.

        Returns:
            What is stored now.

        Raises:
            LockTimeout: The lock file stayed taken for ``lock_timeout`` seconds.
            OSError: The file could not be written (disk full...): nothing was replaced.
            UndecryptableDocument: The stored file cannot be decrypted with this process's key;
                it is left as it is (never overwritten: other processes can read it).
        """
        path = self.path_of(partition)
        await anyio.to_thread.run_sync(self._ensure_folder, path)
        async with hold_lock(
            path + ".lockfile", wait=self.lock_timeout, stale_after=self.stale_lock_after
        ):
            return await anyio.to_thread.run_sync(self._read_update_write, path, update)

    @staticmethod
    def _ensure_folder(path: str) -> None:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)

    def _read_locked(self, path: str) -> tuple[Document, bool]:
        """The stored document (salvaged if damaged) and whether the file must be rewritten."""
        try:
            with open(path, "rb") as handle:
                version = _version(os.fstat(handle.fileno()))
                blob = handle.read()
        except FileNotFoundError:
            return {}, False
        try:
            return self._decode(path, version, blob), False  # UndecryptableDocument propagates
        except CorruptDocument as exc:
            kept = salvage(blob, self._key)
            aside = f"{path}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"
            os.replace(path, aside)
            logger.error(
                "The token cache file %s could not be read (%s); kept the %d entries that could "
                "be read, moved the file aside to %s",
                path,
                exc,
                sum(len(section) for section in kept.values()),
                aside,
            )
            return kept, True

    def _read_update_write(self, path: str, update: Callable[[Document], Document]) -> Loaded:
        self._sweep_temp_files(path)
        stored, rewrite = self._read_locked(path)
        document = update(stored)
        if document == stored and not rewrite:
            try:
                return Loaded(_version(os.stat(path)), stored)
            except FileNotFoundError:
                return Loaded(_ABSENT, stored)
        blob = encode(document, self._key)
        tmp = f"{path}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
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
        # The file's mtime is now the temporary write's, which can be earlier than an
        # msal-extensions peer's last sync (it reloads only when ``_last_sync < mtime``): stamp
        # the rename's time, exactly (the kernel's coarse clock may lag time.time()).
        stamp = time.time_ns()
        try:
            os.utime(path, ns=(stamp, stamp))
        except OSError:
            logger.warning("Could not set the mtime of the token cache file %s", path)
        _fsync_folder(os.path.dirname(path))
        return Loaded(_version(os.stat(path)), document)

    def _sweep_temp_files(self, path: str) -> None:
        """Remove ``<path>.tmp-<pid>-<hex>`` files a crashed writer left (called under the lock).

        Writers create them only while holding the lock, so while we hold it such a file is
        abandoned when its writer is gone or when it is older than ``stale_lock_after``.
        """
        now = time.monotonic()
        last = self._swept.get(path)
        if last is not None and now - last < _SWEEP_EVERY:
            return
        self._swept[path] = now
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
                if not dead and age < self.stale_lock_after:
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


_UNDECRYPTABLE = "the cache file cannot be decrypted with this process's encryption_key"


def _unchanged(document: Document) -> Document:
    return document


def _fsync_folder(folder: str) -> None:
    try:
        fd = os.open(folder or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # not every file system lets a directory be fsynced
    finally:
        os.close(fd)
