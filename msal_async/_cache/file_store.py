"""FilePersistence: msal's JSON cache in one file (msal-extensions compatible) or one per partition.

Reads check ``(inode, mtime, size)`` first and parse only when the file changed. Writes happen
under msal-extensions' ``<file>.lockfile`` and replace the file atomically (temporary file,
fsync, rename, mode 0600), then stamp the file's mtime with the time of the rename: msal-extensions
reloads only a file modified after its last sync, so the mtime must not be the (earlier) time of
the temporary write. A file that cannot be parsed (truncated, not JSON, nested too deeply,
too large, or with entries the cache cannot use) is never overwritten silently: the entries
that can still be read are kept, the file is moved aside to ``<name>.corrupt-<ts>`` and an error
is logged. A file this process cannot decrypt (no key, another key, or plain JSON under a key)
is not damaged: it is left untouched, and saves fail until the key matches. Folders it creates
are 0700 and files 0600, whatever the umask. All disk work runs in worker threads.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import time
from collections.abc import Callable, Hashable

import anyio.to_thread

from msal_async._cache.codec import (
    CorruptDocument,
    Document,
    PlaintextDocument,
    UndecryptableDocument,
    check_key,
    decode,
    encode,
    is_plaintext,
    salvage,
)
from msal_async._cache.file_io import (
    holds_plaintext,
    make_folders,
    read_bounded,
    sweep_temp_files,
    version_of,
    write_replacing,
)
from msal_async._cache.file_lock import BusyLocks, hold_lock
from msal_async._cache.protocol import AsyncPersistence, Loaded

from .. import _log

__all__ = ["FilePersistence"]

logger = logging.getLogger(_log.PERSISTENCE)

_ABSENT = ("absent",)
_SAFE_NAME = re.compile(r"[A-Za-z0-9._-]{1,120}")
#: Seconds between two looks (per cache file) for temporary files a crashed writer left.
_SWEEP_EVERY = 600.0


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
        lock_timeout: Seconds one save waits for a lock file another process holds. Then it
            raises :class:`~msal_async._cache.protocol.StoreBusy` (the tokens stay in memory
            and a later save writes them); while that same holder keeps the lock, later saves
            give up after one attempt instead of waiting again.
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
        lock_timeout: float = 2.0,
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
        self._busy = BusyLocks()
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
            StoreBusy: The file did not parse (or was empty) and the lock to read it again
                was not free.
            UndecryptableDocument: This process's key does not authenticate the file (it is
                encrypted under another key, or plain JSON under a key: a
                :class:`~msal_async._cache.codec.PlaintextDocument`); logged once, and the
                file is left untouched.
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
            return version_of(os.stat(self.path_of(partition))) == known
        except FileNotFoundError:
            return known == _ABSENT
        except OSError:
            return False

    def _read_if_changed(self, path: str, known: Hashable | None) -> Loaded | None:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None if known == _ABSENT else Loaded(_ABSENT, {})
        if version_of(st) == known:
            return None
        try:
            version, blob = read_bounded(path)
        except FileNotFoundError:
            return None if known == _ABSENT else Loaded(_ABSENT, {})
        if not blob.strip():
            msg = "the cache file was empty when read without the lock"
            raise CorruptDocument(msg)  # maybe mid-write: load() reads it again under the lock
        return Loaded(version, self._decode(path, version, blob))

    def _decode(
        self, path: str, version: Hashable, blob: bytes, *, allow_plaintext: bool = False
    ) -> Document:
        try:
            document = decode(blob, self._key, allow_plaintext=allow_plaintext)
        except UndecryptableDocument as exc:
            if path not in self._undecryptable:
                self._log_undecryptable(path, exc)
            self._undecryptable[path] = version
            raise
        if self._undecryptable.pop(path, None) is not None:
            logger.warning("The token cache file %s can be decrypted again; using it", path)
        return document

    @staticmethod
    def _log_undecryptable(path: str, exc: UndecryptableDocument) -> None:
        if isinstance(exc, PlaintextDocument):
            logger.error(
                "The token cache file %s is not encrypted, but this FilePersistence has an "
                "encryption_key: it is refused (whoever can write the file could have planted "
                "its tokens) and left untouched; tokens are served from memory and not saved "
                "to it. To encrypt an existing plain cache, call encrypt_plaintext_cache() "
                "once; otherwise remove the file",
                path,
            )
            return
        logger.error(
            "The token cache file %s cannot be decrypted by this process (%s): its "
            "encryption_key is missing or differs from the key the file was written "
            "with. The file is left untouched; tokens are served from memory and not "
            "saved to it until the keys match (if the file is damaged instead, move it "
            "away by hand)",
            path,
            exc,
        )

    async def save(self, partition: str | None, update: Callable[[Document], Document]) -> Loaded:
        """Apply ``update`` to the stored document under the lock file and replace the file.

        Args:
            partition: The partition key (None when not partitioned).
            update: Computes the new document.

        Returns:
            What is stored now.

        Raises:
            StoreBusy: Another process held the lock file for ``lock_timeout`` seconds (or
                held it that long before and still holds it); nothing was written.
            OSError: The file could not be written (disk full...): nothing was replaced.
            UndecryptableDocument: The stored file cannot be decrypted with this process's key;
                it is left as it is (never overwritten: other processes can read it).
        """
        return await self._locked(self.path_of(partition), update, allow_plaintext=False)

    async def _locked(
        self, path: str, update: Callable[[Document], Document], *, allow_plaintext: bool
    ) -> Loaded:
        await anyio.to_thread.run_sync(make_folders, os.path.dirname(path))
        async with hold_lock(
            path + ".lockfile",
            wait=self.lock_timeout,
            stale_after=self.stale_lock_after,
            busy=self._busy,
        ):
            return await anyio.to_thread.run_sync(
                self._read_update_write, path, update, allow_plaintext
            )

    async def encrypt_plaintext_cache(self) -> list[str]:
        """Encrypt, once, a plain-JSON cache written before ``encryption_key`` was set.

        A persistence with a key refuses plain documents (anyone who can write the file could
        have planted them); this explicit one-shot migration reads them and rewrites them
        encrypted under the key, under the lock file. Call it once when turning encryption on
        for an existing cache, before serving tokens. Files already encrypted under this key
        are left alone; a damaged plain file is salvaged and moved aside as usual.

        Returns:
            The files that were encrypted.

        Raises:
            ValueError: This persistence has no ``encryption_key``.
            StoreBusy: Another process holds a file's lock.
            UndecryptableDocument: A file is encrypted under another key (left untouched).
            OSError: A file could not be read or written.
        """
        if self._key is None:
            msg = "encrypt_plaintext_cache() needs a FilePersistence with an encryption_key"
            raise ValueError(msg)
        paths = await anyio.to_thread.run_sync(self._stored_paths)
        encrypted = []
        for path in paths:
            if not await anyio.to_thread.run_sync(holds_plaintext, path):
                continue
            await self._locked(path, _unchanged, allow_plaintext=True)
            logger.warning("Encrypted the plain token cache file %s", path)
            encrypted.append(path)
        return encrypted

    def _stored_paths(self) -> list[str]:
        if not self.partitioned:
            return [self._location]
        try:
            names = sorted(os.listdir(self._location))
        except FileNotFoundError:
            return []
        return [
            os.path.join(self._location, name)
            for name in names
            if name.endswith(".json") and _SAFE_NAME.fullmatch(name)
        ]

    def _read_locked(self, path: str, *, allow_plaintext: bool) -> tuple[Document, bool]:
        """The stored document (salvaged if damaged) and whether the file must be rewritten."""
        try:
            version, blob = read_bounded(path)
        except FileNotFoundError:
            return {}, False
        # UndecryptableDocument propagates; a plain file being migrated must be rewritten.
        rewrite = allow_plaintext and is_plaintext(blob)
        try:
            return self._decode(path, version, blob, allow_plaintext=allow_plaintext), rewrite
        except CorruptDocument as exc:
            kept = salvage(blob, self._key, allow_plaintext=allow_plaintext)
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

    def _read_update_write(
        self, path: str, update: Callable[[Document], Document], allow_plaintext: bool
    ) -> Loaded:
        now = time.monotonic()
        if now - self._swept.get(path, -_SWEEP_EVERY) >= _SWEEP_EVERY:
            self._swept[path] = now
            sweep_temp_files(path, stale_after=self.stale_lock_after)
        stored, rewrite = self._read_locked(path, allow_plaintext=allow_plaintext)
        document = update(stored)
        if document == stored and not rewrite:
            try:
                return Loaded(version_of(os.stat(path)), stored)
            except FileNotFoundError:
                return Loaded(_ABSENT, stored)
        write_replacing(path, encode(document, self._key))
        return Loaded(version_of(os.stat(path)), document)


_UNDECRYPTABLE = "the cache file cannot be decrypted with this process's encryption_key"


def _unchanged(document: Document) -> Document:
    return document
