"""The public logger names of msal_async: one per concern, all under ``msal_async``.

Every module takes its logger name from here, and ``docs/logging.md`` documents each one.
Configure ``logging.getLogger("msal_async")`` for all of them (msal logs under ``msal``).
"""

from __future__ import annotations

__all__ = [
    "APPLICATION",
    "AZURE",
    "DISCOVERY",
    "LOGGER_NAMES",
    "MANAGED_IDENTITY",
    "PERSISTENCE",
    "REGION",
    "ROOT",
    "TOKEN_CACHE",
    "TRANSPORT",
]

#: The parent of every msal_async logger.
ROOT = "msal_async"
#: Apps and their flows: every ``acquire_*`` and ``initiate_*`` call, interactive sign-in.
APPLICATION = "msal_async.application"
#: The in-memory token cache: entries dropped past ``max_entries``, unreadable entries.
TOKEN_CACHE = "msal_async.token_cache"
#: HTTP: retries, throttled requests answered from ``http_cache``, a new event loop's client.
TRANSPORT = "msal_async.transport"
#: Instance discovery and OpenID configuration of authorities.
DISCOVERY = "msal_async.discovery"
#: Azure region (ESTS-R) detection.
REGION = "msal_async.region"
#: Managed identity: the source detected, its endpoint's answers.
MANAGED_IDENTITY = "msal_async.managed_identity"
#: The Azure SDK credential (``msal_async.azure.AzureCredential``): tenant changes, failures.
AZURE = "msal_async.azure"
#: Persistent caches (file, Redis): loads, saves, locks, store outages.
PERSISTENCE = "msal_async.persistence"

#: Every logger msal_async logs to.
LOGGER_NAMES = (
    APPLICATION,
    TOKEN_CACHE,
    TRANSPORT,
    DISCOVERY,
    REGION,
    MANAGED_IDENTITY,
    PERSISTENCE,
    AZURE,
)
