"""Every exception class of msal_async, with msal's base classes, and error-dict helpers."""

from __future__ import annotations

from typing import Any

__all__ = [
    "ArcPlatformNotSupportedError",
    "BrowserInteractionTimeoutError",
    "CorruptDocument",
    "IdTokenAudienceError",
    "IdTokenError",
    "IdTokenIssuerError",
    "IdTokenNonceError",
    "JSONInputError",
    "LockTimeout",
    "ManagedIdentityError",
    "MsalError",
    "MsalServiceError",
    "MsalTransportError",
    "PlaintextDocument",
    "StoreBusy",
    "StoreNotReplicated",
    "StoreUnavailable",
    "UndecryptableDocument",
    "UnsupportedBackendError",
    "closed_error",
    "error_result",
    "mask",
]


def closed_error(name: str = "application") -> RuntimeError:
    """The one error of a call on a closed app or client (the apps check first; their
    transport checks again, for a request already past the app's check).

    Returns:
        The error to raise.
    """
    return RuntimeError(
        f"This {name} was closed (aclose() or the end of `async with`); create a new one"
    )


class MsalError(Exception):
    """Base class of every msal_async exception (msal's ``msal.exceptions.MsalError``)."""

    msg = "An unspecified error"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(self.msg.format(**kwargs), *args)
        self.kwargs = kwargs


class MsalServiceError(MsalError):
    """A failure reported by the service, carrying ``error`` and ``error_description``."""

    msg = "{error}: {error_description}"

    def __init__(self, *args: Any, error: str, error_description: str, **kwargs: Any) -> None:
        super().__init__(*args, error=error, error_description=error_description, **kwargs)
        self.error = error
        self.error_description = error_description


class MsalTransportError(MsalError):
    """The HTTP request could not be completed (connection refused, timeout, TLS failure).

    The original ``httpx`` exception is chained as ``__cause__``.
    """

    msg = "{description}"

    def __init__(self, *args: Any, description: str, **kwargs: Any) -> None:
        super().__init__(*args, description=description, **kwargs)
        self.description = description


class IdTokenError(RuntimeError):
    """An ID token failed validation (msal's ``msal.IdTokenError``)."""


class IdTokenIssuerError(IdTokenError):
    """The ID token's issuer does not match the authority."""


class IdTokenAudienceError(IdTokenError):
    """The ID token's audience does not match the client id."""


class IdTokenNonceError(IdTokenError):
    """The ID token's nonce does not match the one sent."""


class BrowserInteractionTimeoutError(RuntimeError):
    """The user did not complete the browser interaction in time."""


class ManagedIdentityError(ValueError):
    """A managed identity request or configuration failed."""


class ArcPlatformNotSupportedError(ManagedIdentityError):
    """Azure Arc managed identity is not supported on this platform."""


class StoreUnavailable(ConnectionError):
    """The store failed a moment ago and is left alone for a while (the failure was logged)."""


class StoreBusy(TimeoutError):
    """Another process holds the store's lock; nothing was read or written (transient).

    Raised by a save (or a load that needed the lock) after a short, bounded wait, and at once
    while the same holder keeps the lock. Not damage and not an outage: the caller keeps its
    changes and tries again later. The store logs a stuck holder once.
    """


class UnsupportedBackendError(RuntimeError):
    """A persistence was used under an async library it does not support (Redis under trio)."""


class CorruptDocument(ValueError):
    """A stored document is damaged: not JSON, or not an object of sections."""


class UndecryptableDocument(ValueError):
    """A stored document is encrypted and this process cannot authenticate it.

    The key is missing or differs from the writer's (or the bytes were tampered with). This is
    not damage: processes with the right key can read the document, so it must never be
    salvaged, moved aside or overwritten. Deliberately not a :class:`CorruptDocument`.
    """


class PlaintextDocument(UndecryptableDocument):
    """A key is set and the stored document is plain JSON: refused, left untouched.

    Whoever can write the file (or the Redis key) could have planted it, so its tokens are
    never served; it is not overwritten either (it may be a plain cache the owner means to
    encrypt). Reading it takes an explicit migration, such as
    :meth:`msal_async.FilePersistence.encrypt_plaintext_cache`.
    """


class LockTimeout(StoreBusy):
    """The cache's lock file could not be taken in time (a :class:`StoreBusy`)."""


class JSONInputError(ValueError):
    """Input that is not acceptable JSON (a ``ValueError``, as ``json.JSONDecodeError`` is).

    Attributes:
        reason: What was wrong: ``"syntax"`` (not JSON at all), ``"depth"``, ``"size"``,
            ``"number"`` (non-finite, too long or out of range), ``"type"`` (valid JSON of the
            wrong shape) or ``"encoding"`` (not UTF-8, or not base64url).
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class StoreNotReplicated(StoreUnavailable):
    """Written on the primary, but fewer replicas than ``wait_for_replicas`` acknowledged it."""


def error_result(
    error: str, error_description: str, *, correlation_id: str | None = None, **extra: Any
) -> dict[str, Any]:
    """Build an msal-style error result dict.

    Returns:
        ``{"error": ..., "error_description": ..., "correlation_id": ...}`` plus ``extra``.
    """
    result: dict[str, Any] = {"error": error, "error_description": error_description}
    if correlation_id is not None:
        result["correlation_id"] = correlation_id
    result.update(extra)
    return result


def mask(value: object) -> str:
    """Render a secret for messages: never the value itself."""
    return "***" if value else repr(value)
