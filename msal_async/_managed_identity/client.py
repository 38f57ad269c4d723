"""ManagedIdentityClient: tokens from the Azure host's managed identity, cached as msal does."""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, ClassVar

if sys.version_info >= (3, 11):
    from typing import Self
else:  # typing_extensions comes with anyio on Python < 3.13
    from typing_extensions import Self

import anyio
import httpx

from .. import _log
from .._apps import options
from .._cache.persistence import PersistedTokenCache, partition_key
from .._cache.token_cache import TokenCache
from .._errors import ManagedIdentityError, MsalTransportError
from .._singleflight import SingleFlight
from .._transport import HttpResponse, Transport
from . import sources
from .identities import check_managed_identity
from .pinning import PinnedTransport

__all__ = ["ManagedIdentityClient"]

logger = logging.getLogger(_log.MANAGED_IDENTITY)

_SYSTEM_ASSIGNED = "SYSTEM_ASSIGNED_MANAGED_IDENTITY"
_EXPIRY_BUFFER = 300
_HALF_LIFE_FROM = 7200  # msal synthesizes refresh_in = expires_in / 2 from 2 hours up


class _BareTransport(Transport):
    """The app transport minus msal's token-endpoint headers: MI endpoints get only theirs."""

    def _merge_headers(self, headers: Mapping[str, str] | None) -> dict[str, str]:
        return dict(headers or {})


class ManagedIdentityClient:
    """Acquire tokens for the managed identity of the Azure host (msal's API, async).

    Sources: App Service / Functions / Automation, Azure ML, Service Fabric (certificate
    pinned to ``IDENTITY_SERVER_THUMBPRINT``), Azure Arc (401 challenge and key file), and
    VM IMDS; Cloud Shell is reported by ``get_managed_identity_source`` but served by
    ``PublicClientApplication``. The source is detected on each acquisition, never in the
    constructor, which does no I/O.

    Args:
        managed_identity: ``SystemAssignedManagedIdentity()``,
            ``UserAssignedManagedIdentity(...)`` or a dict of the same shape.
        http_client: an ``httpx.AsyncClient`` (required, as in msal).
        token_cache: a ``TokenCache``; a new in-memory one when None. A
            ``PersistedTokenCache`` is loaded before each lookup and saved after each new
            token (partition: this identity's id, realm ``managed_identity``).
        http_cache: a dict-like object holding 429/5xx answers for their Retry-After (else
            5 s), so identical requests are not repeated meanwhile (msal's MI throttling).
        client_capabilities: e.g. ``["CP1"]``; sent as ``xms_cc`` to Service Fabric only.

    Raises:
        ManagedIdentityError: ``managed_identity`` is not a managed identity.
        TypeError: ``http_client`` is not an ``httpx.AsyncClient``.
    """

    #: Where the Azure Arc agent's challenge key files live, per platform (a subclass may
    #: point elsewhere, e.g. in tests).
    ARC_KEY_DIRECTORIES: ClassVar[Mapping[str, str]] = sources.ARC_KEY_DIRECTORIES
    _INSTANCE = "localhost"
    _TENANT = "managed_identity"

    def __init__(
        self,
        managed_identity: Any,
        *,
        http_client: Any,
        token_cache: TokenCache | None = None,
        http_cache: Any = None,
        client_capabilities: list[str] | None = None,
    ) -> None:
        self._managed_identity = check_managed_identity(managed_identity)
        if not isinstance(http_client, httpx.AsyncClient):
            msg = f"http_client must be an httpx.AsyncClient, got {type(http_client).__name__}"
            raise TypeError(msg)
        if token_cache is not None and not isinstance(token_cache, TokenCache):
            msg = f"token_cache must be a msal_async.TokenCache, got {type(token_cache).__name__}"
            raise TypeError(msg)
        self._http_client = http_client
        self._http_cache = options.check_http_cache(http_cache)
        self._transport = _BareTransport(http_client=http_client, http_cache=self._http_cache)
        self._pinned: dict[str, _BareTransport] = {}
        self._pinned_clients: list[httpx.AsyncClient] = []
        self._token_cache = token_cache if token_cache is not None else TokenCache()
        self._client_capabilities = list(client_capabilities or [])
        self._flights: SingleFlight[dict[str, Any]] = SingleFlight()
        self._environ: Callable[[], Mapping[str, str]] = lambda: dict(os.environ)
        self._clock: Callable[[], float] = time.time

    @property
    def _client_id(self) -> str:
        return str(self._managed_identity.get("Id") or _SYSTEM_ASSIGNED)

    @property
    def _partition(self) -> str:
        return partition_key(self._client_id, self._TENANT, None)

    async def acquire_token_for_client(
        self, *, resource: str, claims_challenge: str | None = None
    ) -> dict[str, Any]:
        """Acquire a token for ``resource``: from the cache, else from the host's endpoint.

        Concurrent calls for the same resource share one request. A token of 2 hours or more
        is refreshed after half its life; if that refresh fails, the cached token is served.

        Args:
            resource: e.g. ``"https://vault.azure.net"`` (not a scope).
            claims_challenge: a claims JSON from a resource's 401: bypasses the cache (and
                tells Service Fabric which token to replace).

        Returns:
            ``access_token``, ``expires_in``, ``token_type``, ``token_source`` (and
            ``refresh_in``/``refresh_on``, as msal), or an error dict.

        Raises:
            ManagedIdentityError: a misconfigured source, or Arc returned another identity.
            ArcPlatformNotSupportedError: Azure Arc on an unsupported platform.
            MsalTransportError: the endpoint could not be reached and nothing is cached.
            ValueError: the endpoint answered something that is not JSON.
        """
        if not isinstance(resource, str) or not resource:
            msg = f"resource must be a non-empty string such as 'https://vault.azure.net', got {resource!r}"
            raise ValueError(msg)
        if isinstance(self._token_cache, PersistedTokenCache):
            await self._token_cache.load(self._partition)  # another process may have stored it
        fallback, aging, to_refresh = self._lookup(resource, bool(claims_challenge))
        if fallback is not None and not aging:
            return fallback
        sha256 = hashlib.sha256(to_refresh.encode()).hexdigest() if to_refresh else None
        try:
            result = await self._flights.run(
                (resource, sha256), lambda: self._fetch(resource, sha256)
            )
        except Exception:
            if fallback is None:
                raise
            logger.warning("Refreshing a managed identity token failed; serving the cached one")
            return fallback
        if "error" in result and fallback is not None:
            return fallback
        return dict(result)

    def _lookup(
        self, resource: str, challenged: bool
    ) -> tuple[dict[str, Any] | None, bool, str | None]:
        """msal's cache search: (cached token, whether it is aging, token a challenge replaces)."""
        now = self._clock()
        query = {
            "client_id": self._client_id,
            "environment": self._INSTANCE,
            "realm": self._TENANT,
            "home_account_id": None,
        }
        for entry in self._token_cache.search("AccessToken", target=[resource], query=query):
            expires_in = int(entry["expires_on"]) - now
            if expires_in < _EXPIRY_BUFFER:
                continue
            if challenged:
                return None, False, str(entry["secret"])
            found: dict[str, Any] = {
                "access_token": entry["secret"],
                "token_type": entry.get("token_type", "Bearer"),
                "expires_in": int(expires_in),
                "token_source": "cache",
            }
            aging = False
            if "refresh_on" in entry:
                found["refresh_on"] = int(entry["refresh_on"])
                aging = int(entry["refresh_on"]) < now  # refresh, with this as the fallback
            return found, aging, None
        return None, False, None

    async def _fetch(self, resource: str, token_sha256: str | None) -> dict[str, Any]:
        environ = self._environ()
        arc_installed = await self._arc_agent_installed(environ)
        source_name = sources.detect_source(
            environ, platform=sys.platform, arc_agent_installed=arc_installed
        )
        source = sources.SOURCES[source_name]
        extra = {
            "token_sha256_to_refresh": token_sha256,
            "client_capabilities": self._client_capabilities,
        }
        request = source.build(environ, self._managed_identity, resource, extra)
        response = await self._send(request)
        if source_name == sources.AZURE_ARC:
            response = await self._answer_arc_challenge(request, response)
            if response.status_code == 200:
                sources.check_arc_echo(self._managed_identity, response.text)
        result = source.parse(source_name, response.status_code, response.text, now=self._clock())
        if "access_token" in result:
            self._commit(resource, result)
            if isinstance(self._token_cache, PersistedTokenCache):
                await self._token_cache.save(self._partition)
        return result

    def _commit(self, resource: str, result: dict[str, Any]) -> None:
        now = self._clock()
        expires_in = int(result.get("expires_in", 3600))
        if "refresh_in" not in result and expires_in >= _HALF_LIFE_FROM:
            result["refresh_in"] = expires_in // 2
        self._token_cache.add(
            {
                "client_id": self._client_id,
                "scope": [resource],
                "token_endpoint": f"https://{self._INSTANCE}/{self._TENANT}",
                "response": result,
                "params": {},
                "data": {},
            },
            now=now,
        )
        if "refresh_in" in result:
            result["refresh_on"] = int(now + result["refresh_in"])
        result["token_source"] = "identity_provider"

    async def _send(self, request: sources.MIRequest, **headers: str) -> HttpResponse:
        transport: Transport = self._transport
        if request.pinned_thumbprint is not None:
            transport = self._pinned.get(request.pinned_thumbprint) or self._pin(
                request.pinned_thumbprint
            )
        sent = {**request.headers, **headers}
        try:
            return await transport.get(
                request.url, params=request.params, headers=sent, cache=False, hold=True
            )
        except Exception as exc:
            if not _quotes_secret(exc, sent):
                raise
            # The HTTP stack quoted a secret header (here or in the chained cause): raise a
            # redacted error in its place, without the chain.
            text = exc.description if isinstance(exc, MsalTransportError) else str(exc)
            raise MsalTransportError(description=_redact(text, sent)) from None

    def _pin(self, thumbprint: str) -> _BareTransport:
        client = httpx.AsyncClient(
            transport=PinnedTransport(thumbprint), timeout=self._http_client.timeout
        )
        self._pinned_clients.append(client)
        self._pinned[thumbprint] = pinned = _BareTransport(
            http_client=client, http_cache=self._http_cache
        )
        return pinned

    async def _answer_arc_challenge(
        self, request: sources.MIRequest, response: HttpResponse
    ) -> HttpResponse:
        if response.status_code != 401:
            return response  # parsed as invalid_request, as msal does
        challenge = response.headers.get("www-authenticate", "")
        path = sources.arc_challenge_key_file(
            challenge,
            platform=sys.platform,
            directories=self.ARC_KEY_DIRECTORIES,
            environ=self._environ(),
        )
        key_file = anyio.Path(path)  # read off the event loop
        if (await key_file.stat()).st_size > sources.ARC_KEY_MAX_BYTES:
            msg = "Local key file shall not be larger than 4KB"
            raise ManagedIdentityError(msg)
        secret = sources.header_secret(await key_file.read_text(), "The Azure Arc key file")
        return await self._send(request, Authorization=f"Basic {secret}")

    @staticmethod
    async def _arc_agent_installed(environ: Mapping[str, str]) -> bool:
        agent = sources.arc_agent_file(environ, platform=sys.platform)
        return agent is not None and await anyio.Path(agent).exists()

    async def aclose(self) -> None:
        """Close the pinned Service Fabric connections this client opened."""
        self._pinned.clear()
        clients, self._pinned_clients = self._pinned_clients, []
        for client in clients:
            await client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


# Headers whose values are secrets (IDENTITY_HEADER, MSI_SECRET, the Arc key).
_SECRET_HEADERS = frozenset({"authorization", "secret", "x-identity-header"})


def _quotes_secret(exc: BaseException, headers: Mapping[str, str]) -> bool:
    """Whether ``exc`` or an exception chained to it quotes a secret header value."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = f"{current}{current.args!r}"
        if _redact(text, headers) != text:
            return True
        current = current.__cause__ or current.__context__
    return False


def _redact(text: str, headers: Mapping[str, str]) -> str:
    """``text`` without any secret header value, raw or as ``repr`` would quote it."""
    for name, value in headers.items():
        if name.lower() not in _SECRET_HEADERS or not value:
            continue
        for secret in (value, value.rpartition(" ")[2]):  # "Basic <key>": the key alone too
            for form in (secret, repr(secret)[1:-1], repr(secret.encode())[2:-1]):
                if form:
                    text = text.replace(form, "<redacted>")
    return text
