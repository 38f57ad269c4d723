"""Persisted cache documents, pure: encode/decode (optionally AES-GCM), salvage, merge, TTL.

A document is msal's serialized cache (``{section: {key: entry}}``, ``json.dumps(indent=4)``),
the format msal and msal-extensions read and write. Nothing here touches a disk or a socket.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "CorruptDocument",
    "Document",
    "UndecryptableDocument",
    "apply_changes",
    "check_key",
    "decode",
    "encode",
    "longest_lifetime",
    "salvage",
]

#: msal's cache sections, in msal's order.
SECTIONS = ("AccessToken", "Account", "IdToken", "RefreshToken", "AppMetadata")
#: A persisted cache document: ``{section: {key: entry}}``.
Document = dict[str, dict[str, Any]]

_MAGIC = b"msal_async:aesgcm:1\n"
_AAD = b"msal_async token cache"
_NONCE_BYTES = 12


class CorruptDocument(ValueError):
    """A stored document is damaged: not JSON, or not an object of sections."""


class UndecryptableDocument(ValueError):
    """A stored document is encrypted and this process cannot authenticate it.

    The key is missing or differs from the writer's (or the bytes were tampered with). This is
    not damage: processes with the right key can read the document, so it must never be
    salvaged, moved aside or overwritten. Deliberately not a :class:`CorruptDocument`.
    """


def check_key(encryption_key: object) -> bytes | None:
    """Validate a caller's AES-GCM key.

    Args:
        encryption_key: 16, 24 or 32 bytes, or None for no encryption.

    Returns:
        The key as bytes, or None.

    Raises:
        TypeError: It is not bytes.
        ValueError: It has the wrong length.
    """
    if encryption_key is None:
        return None
    if not isinstance(encryption_key, (bytes, bytearray)):
        msg = f"encryption_key must be bytes, got {type(encryption_key).__name__}"
        raise TypeError(msg)
    if len(encryption_key) not in (16, 24, 32):
        msg = (
            f"encryption_key must be 16, 24 or 32 bytes (AES-GCM), got {len(encryption_key)} "
            "bytes; make one with AESGCM.generate_key(bit_length=256)"
        )
        raise ValueError(msg)
    return bytes(encryption_key)


def encode(document: Mapping[str, Any], key: bytes | None) -> bytes:
    """Render a document as msal does (``json.dumps(..., indent=4)``), encrypted when keyed.

    Args:
        document: The sections.
        key: An AES-GCM key, or None for plain JSON.

    Returns:
        The bytes to store.
    """
    text = json.dumps(document, indent=4).encode("utf-8")
    if key is None:
        return text
    nonce = secrets.token_bytes(_NONCE_BYTES)
    return _MAGIC + nonce + AESGCM(key).encrypt(nonce, text, _AAD)


def _plaintext(blob: bytes, key: bytes | None) -> bytes:
    if not blob.startswith(_MAGIC):
        return blob  # plain JSON (a cache written before encryption was turned on, or by msal)
    if key is None:
        msg = "the cache is encrypted and no encryption_key was given"
        raise UndecryptableDocument(msg)
    body = blob[len(_MAGIC) :]
    try:
        return AESGCM(key).decrypt(body[:_NONCE_BYTES], body[_NONCE_BYTES:], _AAD)
    except (InvalidTag, ValueError) as exc:
        msg = "the cache failed authenticated decryption (wrong key, or tampered or truncated)"
        raise UndecryptableDocument(msg) from exc


def decode(blob: bytes, key: bytes | None) -> Document:
    """Parse stored bytes into a document; empty bytes are an empty cache.

    Args:
        blob: What was stored.
        key: The AES-GCM key, or None.

    Returns:
        The sections.

    Raises:
        UndecryptableDocument: Encrypted, and the key is missing or does not authenticate it.
        CorruptDocument: Not JSON, or not an object of sections.
    """
    text = _plaintext(blob, key)
    if not text.strip():
        return {}
    try:
        loaded = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        msg = f"the cache is not valid JSON ({type(exc).__name__} at byte {_where(exc)})"
        raise CorruptDocument(msg) from None
    if not isinstance(loaded, dict) or any(
        not isinstance(section, dict) for section in loaded.values()
    ):
        msg = "the cache is JSON but not an object of sections"
        raise CorruptDocument(msg)
    return loaded


def _where(exc: Exception) -> int:
    return int(getattr(exc, "pos", getattr(exc, "start", -1)))


_SECTION = re.compile(r'"(' + "|".join(SECTIONS) + r')"\s*:\s*\{')
_ENTRY_KEY = re.compile(r'\s*,?\s*"((?:[^"\\]|\\.)*)"\s*:\s*(?=\{)')


def salvage(blob: bytes, key: bytes | None) -> Document:
    """Recover the entries that can still be read from a damaged document.

    A truncated or partly overwritten msal cache keeps most of its entries intact: every
    ``"key": {...}`` object that parses on its own inside a known section is kept.

    Args:
        blob: The damaged bytes.
        key: The AES-GCM key (an encrypted document that fails authentication yields nothing).

    Returns:
        The readable entries, possibly none.
    """
    try:
        text = _plaintext(blob, key).decode("utf-8", errors="replace")
    except UndecryptableDocument:
        return {}
    decoder = json.JSONDecoder()
    out: Document = {}
    headers = list(_SECTION.finditer(text))
    for i, header in enumerate(headers):
        end = headers[i + 1].start() if i + 1 < len(headers) else len(text)
        pos = header.end()
        while pos < end:
            match = _ENTRY_KEY.match(text, pos)
            if match is None:
                break
            try:
                entry, pos = decoder.raw_decode(text, match.end())
            except ValueError:
                break
            if isinstance(entry, dict):
                out.setdefault(header.group(1), {})[json.loads(f'"{match.group(1)}"')] = entry
    return out


def apply_changes(
    document: Mapping[str, Any],
    changes: Mapping[tuple[str, str], Any],
    shared: Mapping[str, Mapping[str, Any]] | None = None,
) -> Document:
    """A new document: ``document`` with ``changes`` applied and ``shared`` entries added.

    Args:
        document: The stored document (not modified).
        changes: ``{(section, key): entry or None (delete)}``.
        shared: Entries every partition carries (AppMetadata), ``{section: {key: entry}}``.

    Returns:
        The merged document.
    """
    out: Document = {
        ct: dict(section) for ct, section in document.items() if isinstance(section, dict)
    }
    for (ct, key), entry in changes.items():
        if entry is None:
            out.setdefault(ct, {}).pop(key, None)
        else:
            out.setdefault(ct, {})[key] = entry
    for ct, section in (shared or {}).items():
        out.setdefault(ct, {}).update(section)
    return out


def longest_lifetime(document: Mapping[str, Any], *, now: int, refresh_token_ttl: int) -> int:
    """Seconds until the longest-lived token of a document expires (at least 60).

    Access tokens count to ``max(expires_on, extended_expires_on)``; a refresh token, ID token
    or account (which carry no expiry) counts ``refresh_token_ttl`` from ``now``.

    Args:
        document: The sections.
        now: Epoch seconds.
        refresh_token_ttl: The lifetime assumed for refresh tokens.

    Returns:
        The TTL in seconds.
    """
    longest = now
    for ct in ("RefreshToken", "IdToken", "Account"):
        if document.get(ct):
            longest = now + refresh_token_ttl
            break
    for entry in (document.get("AccessToken") or {}).values():
        if isinstance(entry, dict):
            longest = max(longest, _epoch(entry.get("expires_on")))
            longest = max(longest, _epoch(entry.get("extended_expires_on")))
    return max(60, longest - now)


def _epoch(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
