"""Every exception class of msal_async, with msal's base classes, and error-dict helpers."""

from __future__ import annotations

from typing import Any

__all__ = [
    "ArcPlatformNotSupportedError",
    "BrowserInteractionTimeoutError",
    "IdTokenAudienceError",
    "IdTokenError",
    "IdTokenIssuerError",
    "IdTokenNonceError",
    "ManagedIdentityError",
    "MsalError",
    "MsalServiceError",
    "MsalTransportError",
    "error_result",
    "mask",
]


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
