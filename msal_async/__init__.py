"""msal_async: an asyncio- and trio-native Microsoft Authentication Library for Python.

The API mirrors ``msal``'s: change the import, ``await`` every ``acquire_*`` call, and close
the app with ``async with`` or ``await app.aclose()``.

``import msal_async`` itself loads almost nothing: each public name is imported from its
module on first access (PEP 562), so a CLI run or a serverless cold start pays only for what
it uses (httpx, cryptography, joserfc, redis support, managed identity load when needed).
"""

from __future__ import annotations

import importlib as _importlib
from typing import TYPE_CHECKING

from ._version import __version__

if TYPE_CHECKING:
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

# Where each public name lives; the module is imported the first time the name is read.
_SOURCES: dict[str, str] = {
    "ArcPlatformNotSupportedError": "._errors",
    "AsyncPersistence": "._cache.persistence",
    "AuthCodeFlow": "._types",
    "AuthorityBuilder": "._authority",
    "AutoRefresher": "._credentials",
    "BearerAuth": "._httpx_auth",
    "BrowserInteractionTimeoutError": "._errors",
    "ClientApplication": "._apps.base",
    "ConfidentialClientApplication": "._apps.confidential",
    "DeviceFlow": "._types",
    "FilePersistence": "._cache.file_store",
    "IdTokenError": "._errors",
    "ManagedIdentityClient": "._managed_identity.client",
    "ManagedIdentityError": "._errors",
    "MsalError": "._errors",
    "MsalServiceError": "._errors",
    "MsalTransportError": "._errors",
    "PersistedTokenCache": "._cache.persistence",
    "PopAuthScheme": "._auth_scheme",
    "Prompt": "._oauth2.oidc",
    "PublicClientApplication": "._apps.public",
    "RedisPersistence": "._cache.redis_store",
    "Scopes": "._types",
    "SerializableTokenCache": "._cache.token_cache",
    "SystemAssignedManagedIdentity": "._managed_identity.identities",
    "TokenCache": "._cache.token_cache",
    "TokenResult": "._types",
    "UnsupportedBackendError": "._errors",
    "UserAssignedManagedIdentity": "._managed_identity.identities",
    "instrument": "._otel",
    "uninstrument": "._otel",
}

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


def __getattr__(name: str) -> object:
    """Import a public name's module on first access and keep the name here (PEP 562)."""
    source = _SOURCES.get(name)
    if source is None:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(_importlib.import_module(source, __name__), name)
    globals()[name] = value  # later reads skip this function
    return value


def __dir__() -> list[str]:
    """The public names (loaded or not) and the module's dunder attributes."""
    return sorted({*__all__, *(name for name in globals() if name.startswith("__"))})
