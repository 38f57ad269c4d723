"""Persisted cache documents, pure: encode/decode (optionally AES-GCM), salvage, merge, TTL.

A document is msal's serialized cache (``{section: {key: entry}}``, ``json.dumps(indent=4)``),
the format msal and msal-extensions read and write. Nothing here touches a disk or a socket.

With a key, only AES-GCM ciphertexts that this key authenticates are read: a plain-JSON
document is refused like one written under another key (anyone able to write the file or the
Redis key could have planted it), and is read only by an explicit migration
(``allow_plaintext=True``). Everything read is parsed by the bounded JSON reader and checked
entry by entry, so a document that would make a lookup fail is damaged, not half-loaded.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from msal_async._errors import CorruptDocument, PlaintextDocument, UndecryptableDocument

from .. import _json

__all__ = [
    "MAX_BLOB_BYTES",
    "CorruptDocument",
    "Document",
    "PlaintextDocument",
    "UndecryptableDocument",
    "apply_changes",
    "check_key",
    "decode",
    "encode",
    "entry_problem",
    "is_plaintext",
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
_TAG_BYTES = 16
#: The largest stored blob read: the document bound plus the encryption overhead.
MAX_BLOB_BYTES = _json.MAX_DOCUMENT_BYTES + len(_MAGIC) + _NONCE_BYTES + _TAG_BYTES

# Entry fields the cache computes with, and the type each must have when present.
_TEXT_FIELDS = ("secret", "target", "home_account_id", "environment", "realm", "client_id")
_TIME_FIELDS = ("expires_on", "extended_expires_on", "refresh_on", "cached_at")
_SECRET_SECTIONS = frozenset(("AccessToken", "RefreshToken", "IdToken"))
# Stored times are "now + a lifetime" (each at most MAX_SECONDS) until the year 2242.
_LATEST = 2 * _json.MAX_SECONDS


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


def _plaintext(blob: bytes, key: bytes | None, *, allow_plaintext: bool = False) -> bytes:
    if not blob.startswith(_MAGIC):
        if key is None or allow_plaintext or not blob.strip():
            return blob  # plain JSON (msal's format), or nothing stored yet
        msg = (
            "the cache is plain JSON but an encryption_key was given: refused, since anyone "
            "who can write it could have planted it (encrypt a plain cache explicitly, once)"
        )
        raise PlaintextDocument(msg)
    if key is None:
        msg = "the cache is encrypted and no encryption_key was given"
        raise UndecryptableDocument(msg)
    body = blob[len(_MAGIC) :]
    try:
        return AESGCM(key).decrypt(body[:_NONCE_BYTES], body[_NONCE_BYTES:], _AAD)
    except (InvalidTag, ValueError) as exc:
        msg = "the cache failed authenticated decryption (wrong key, or tampered or truncated)"
        raise UndecryptableDocument(msg) from exc


def is_plaintext(blob: bytes) -> bool:
    """Whether stored bytes are a plain (unencrypted) document with content.

    Args:
        blob: What was stored.

    Returns:
        True for anything but an encrypted document or empty bytes.
    """
    return bool(blob.strip()) and not blob.startswith(_MAGIC)


def decode(blob: bytes, key: bytes | None, *, allow_plaintext: bool = False) -> Document:
    """Parse stored bytes into a document; empty bytes are an empty cache.

    Args:
        blob: What was stored.
        key: The AES-GCM key, or None.
        allow_plaintext: Read a plain-JSON document although a key is set (a migration only).

    Returns:
        The sections.

    Raises:
        PlaintextDocument: A key is set and the document is plain JSON.
        UndecryptableDocument: Encrypted, and the key is missing or does not authenticate it.
        CorruptDocument: Too large, not JSON, nested too deeply, not an object of sections, or
            holding an entry the cache cannot use (a non-numeric ``expires_on``...).
    """
    if len(blob) > MAX_BLOB_BYTES:
        msg = f"the cache is larger than {_json.MAX_DOCUMENT_BYTES} bytes"
        raise CorruptDocument(msg)
    text = _plaintext(blob, key, allow_plaintext=allow_plaintext)
    if not text.strip():
        return {}
    try:
        loaded = _json.loads(text, limit=_json.MAX_DOCUMENT_BYTES)
    except _json.JSONInputError as exc:
        msg = f"the cache is not acceptable JSON ({exc})"
        raise CorruptDocument(msg) from None
    if not isinstance(loaded, dict) or any(
        not isinstance(section, dict) for section in loaded.values()
    ):
        msg = "the cache is JSON but not an object of sections"
        raise CorruptDocument(msg)
    for section, entries in loaded.items():
        for entry in entries.values():
            problem = entry_problem(section, entry)
            if problem is not None:
                msg = f"the cache has an unusable {section} entry ({problem})"
                raise CorruptDocument(msg)
    return loaded


def entry_problem(section: str, entry: object) -> str | None:
    """What makes a stored entry unusable by the cache, if anything.

    Only what the cache computes with is checked, and only as strictly as what the cache
    itself writes (msal's schema: strings, and times as integer strings), so every document
    msal or msal_async wrote passes.

    Args:
        section: The section (``AccessToken``...).
        entry: The stored entry.

    Returns:
        None when usable, else what is wrong (never a value: it may be a secret).
    """
    if not isinstance(entry, dict):
        return "not an object"
    for name in _TEXT_FIELDS:
        value = entry.get(name)
        if value is not None and not isinstance(value, str):
            return f"{name} is not a string"
    for name in _TIME_FIELDS:
        if entry.get(name) is not None:
            try:
                _json.int_value(entry[name], what=name, maximum=_LATEST)
            except _json.JSONInputError as exc:
                return str(exc)
    if section in _SECRET_SECTIONS and not isinstance(entry.get("secret"), str):
        return "no secret"
    if section == "AccessToken" and entry.get("expires_on") is None:
        return "no expires_on"
    return None


_SECTION = re.compile(r'"(' + "|".join(SECTIONS) + r')"\s*:\s*\{')
_ENTRY_KEY = re.compile(r'\s*,?\s*"((?:[^"\\]|\\.)*)"\s*:\s*(?=\{)')


def salvage(blob: bytes, key: bytes | None, *, allow_plaintext: bool = False) -> Document:
    """Recover the entries that can still be read from a damaged document.

    A truncated or partly overwritten msal cache keeps most of its entries intact: every
    ``"key": {...}`` object that parses on its own inside a known section, within the bounds
    of the JSON reader, and that the cache can use (see :func:`entry_problem`) is kept.

    Args:
        blob: The damaged bytes.
        key: The AES-GCM key (an encrypted document that fails authentication, or a plain one
            under a key, yields nothing).
        allow_plaintext: Salvage a plain document although a key is set (a migration only).

    Returns:
        The readable entries, possibly none.
    """
    if len(blob) > MAX_BLOB_BYTES:
        return {}
    try:
        text = _plaintext(blob, key, allow_plaintext=allow_plaintext)
    except UndecryptableDocument:
        return {}
    return _salvage_text(text.decode("utf-8", errors="replace"))


def _salvage_text(text: str) -> Document:
    out: Document = {}
    headers = list(_SECTION.finditer(text))
    for i, header in enumerate(headers):
        end = headers[i + 1].start() if i + 1 < len(headers) else len(text)
        pos = header.end()
        section = header.group(1)
        while pos < end:
            match = _ENTRY_KEY.match(text, pos)
            if match is None:
                break
            try:
                entry, pos = _json.raw_decode(text, match.end())
                name = _json.loads(f'"{match.group(1)}"')
            except _json.JSONInputError:
                break
            if isinstance(name, str) and entry_problem(section, entry) is None:
                out.setdefault(section, {})[name] = entry
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
