"""Stored values of RedisPersistence read as documents: damage is one partition's problem.

Any failure to decode one value (not JSON, nested too deeply for the parser, not an object of
sections, not even a hash) is damage of that partition, never an outage of Redis: it is logged
once per version and read as lost (the cache writes back what it holds, the next save
overwrites it). A value this worker cannot decrypt is not damage: other workers may hold the
key, so it is reported (once) and never overwritten.
"""

from __future__ import annotations

import logging

from msal_async import _log
from msal_async._cache.codec import Document, UndecryptableDocument, decode

__all__ = ["Values"]

logger = logging.getLogger(_log.PERSISTENCE)


class Values:
    """Decode stored values under one encryption key, logging each bad one once.

    Args:
        key: The AES-GCM key, or None.
    """

    def __init__(self, key: bytes | None) -> None:
        self._key = key
        self._reported: set[tuple[str, str]] = set()  # (Redis key, version) of bad values logged

    def decode(
        self, key: str, version: str, blob: bytes | None, *, allow_plaintext: bool = False
    ) -> Document | None:
        """The stored document; None (logged once) for a damaged value.

        Args:
            key: The Redis key (for the log).
            version: The stored version (a bad value is logged once per version).
            blob: The stored bytes.
            allow_plaintext: Read a plain value although a key is set (the migration only).

        Returns:
            The document, or None when the value is damaged.

        Raises:
            UndecryptableDocument: This worker's key does not authenticate the value (logged
                once per version).
        """
        try:
            return decode(blob or b"", self._key, allow_plaintext=allow_plaintext)
        except UndecryptableDocument as exc:
            self._report(key, version, "cannot be decrypted by this worker", exc)
            raise
        except Exception as exc:  # noqa: BLE001 (CorruptDocument, RecursionError, MemoryError...)
            self._report(key, version, "is damaged", exc)
            return None

    def _report(self, key: str, version: str, what: str, exc: Exception) -> None:
        if (key, version) in self._reported:
            return
        if len(self._reported) > 1000:
            self._reported.clear()
        self._reported.add((key, version))
        if isinstance(exc, UndecryptableDocument):
            logger.error(
                "The token cache partition %s %s (%s): its encryption_key is missing or differs "
                "from the writer's. It is left untouched; tokens are served from memory and not "
                "saved to it until the keys match",
                key,
                what,
                exc,
            )
        else:
            logger.error(
                "The token cache partition %s %s (%s: %.200s); reading it as empty, the next "
                "save overwrites it",
                key,
                what,
                type(exc).__name__,
                exc,
            )

    def not_a_hash(self, key: str) -> None:
        """Log (once) that ``key`` holds another Redis type than a hash: damage."""
        self._report(key, "damaged", "is damaged", TypeError("not a Redis hash"))
