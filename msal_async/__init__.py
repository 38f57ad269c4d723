"""msal_async: an asyncio- and trio-native Microsoft Authentication Library for Python.

The API mirrors ``msal``'s: change the import, ``await`` every ``acquire_*`` call, and close
the app with ``async with`` or ``await app.aclose()``.
"""

from ._apps.base import ClientApplication
from ._apps.confidential import ConfidentialClientApplication
from ._apps.public import PublicClientApplication
from ._auth_scheme import PopAuthScheme
from ._authority import AuthorityBuilder
from ._cache.file_store import FilePersistence
from ._cache.persistence import AsyncPersistence, PersistedTokenCache
from ._cache.redis_store import RedisPersistence
from ._cache.token_cache import SerializableTokenCache, TokenCache
from ._credentials import AutoRefresher
from ._errors import (
    ArcPlatformNotSupportedError,
    BrowserInteractionTimeoutError,
    IdTokenError,
    ManagedIdentityError,
    MsalError,
    MsalServiceError,
    MsalTransportError,
    UnsupportedBackendError,
)
from ._httpx_auth import BearerAuth
from ._managed_identity.client import ManagedIdentityClient
from ._managed_identity.identities import (
    SystemAssignedManagedIdentity,
    UserAssignedManagedIdentity,
)
from ._oauth2.oidc import Prompt
from ._otel import instrument, uninstrument
from ._types import AuthCodeFlow, DeviceFlow, Scopes, TokenResult
from ._version import __version__

__all__ = [
    "ArcPlatformNotSupportedError",
    "AsyncPersistence",
    "AuthCodeFlow",
    "AuthorityBuilder",
    "AutoRefresher",
    "BearerAuth",
    "BrowserInteractionTimeoutError",
    "ClientApplication",
    "ConfidentialClientApplication",
    "DeviceFlow",
    "FilePersistence",
    "IdTokenError",
    "ManagedIdentityClient",
    "ManagedIdentityError",
    "MsalError",
    "MsalServiceError",
    "MsalTransportError",
    "PersistedTokenCache",
    "PopAuthScheme",
    "Prompt",
    "PublicClientApplication",
    "RedisPersistence",
    "Scopes",
    "SerializableTokenCache",
    "SystemAssignedManagedIdentity",
    "TokenCache",
    "TokenResult",
    "UnsupportedBackendError",
    "UserAssignedManagedIdentity",
    "__version__",
    "instrument",
    "uninstrument",
]
