"""msal_async: an asyncio- and trio-native Microsoft Authentication Library for Python.

The API mirrors ``msal``'s: change the import, ``await`` every ``acquire_*`` call, and close
the app with ``async with`` or ``await app.aclose()``.
"""

from ._apps.base import ClientApplication
from ._apps.confidential import ConfidentialClientApplication
from ._apps.public import PublicClientApplication
from ._authority import AuthorityBuilder
from ._cache.token_cache import SerializableTokenCache, TokenCache
from ._errors import (
    ArcPlatformNotSupportedError,
    BrowserInteractionTimeoutError,
    IdTokenError,
    ManagedIdentityError,
    MsalError,
    MsalServiceError,
    MsalTransportError,
)
from ._version import __version__

__all__ = [
    "ArcPlatformNotSupportedError",
    "AuthorityBuilder",
    "BrowserInteractionTimeoutError",
    "ClientApplication",
    "ConfidentialClientApplication",
    "IdTokenError",
    "ManagedIdentityError",
    "MsalError",
    "MsalServiceError",
    "MsalTransportError",
    "PublicClientApplication",
    "SerializableTokenCache",
    "TokenCache",
    "__version__",
]
