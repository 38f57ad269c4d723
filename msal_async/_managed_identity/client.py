"""ManagedIdentityClient: tokens from the Azure host's managed identity, cached as msal does."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, ClassVar, cast

if sys.version_info >= (3, 11):
    from typing import Self
else:  # typing_extensions comes with anyio on Python < 3.13
    from typing_extensions import Self

import anyio
import httpx

from .. import _clock, _log
from .._apps import options
from .._cache.token_cache import TokenCache
from .._errors import ManagedIdentityError, MsalTransportError
from .._flows.managed_identity import ManagedIdentityFlow
from .._singleflight import SingleFlight
from .._transport import HttpResponse, Transport
from .._types import TokenResult
from . import sources
from .identities import check_managed_identity
from .pinning import PinnedTransport

__all__ = ["ManagedIdentityClient"]

logger = logging.getLogger(_log.MANAGED_IDENTITY)

_SYSTEM_ASSIGNED = "SYSTEM_ASSIGNED_MANAGED_IDENTITY"


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
        self._environ: Callable[[], Mapping[str, str]] = lambda: dict(os.environ)
        self._flow = ManagedIdentityFlow(
            self._client_id, self._token_cache, SingleFlight(), self._fetch
        )
        self._closed = False

    @property
    def _client_id(self) -> str:
        return str(self._managed_identity.get("Id") or _SYSTEM_ASSIGNED)

    async def acquire_token_for_client(
        self, *, resource: str, claims_challenge: str | None = None
    ) -> TokenResult:
        """Acquire a token for ``resource``: from the cache, else from the host's endpoint.

        Concurrent calls for the same resource share one request (with a store that locks
        across machines, one request for the whole fleet). A token of 2 hours or more is
        refreshed after half its life; if that refresh fails, the cached token is served.

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
            ValueError: ``resource`` is not a non-empty string.
            RuntimeError: the client was closed.
        """
        options.check_open(self, self._closed)
        if not isinstance(resource, str) or not resource:
            msg = (
                "resource must be a non-empty string such as 'https://vault.azure.net', "
                f"got {resource!r}"
            )
            raise ValueError(msg)
        return cast("TokenResult", await self._flow.acquire(resource, claims_challenge))

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
        return source.parse(source_name, response.status_code, response.text, now=_clock.now())

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
        """Close the pinned Service Fabric connections this client opened; every later call
        raises RuntimeError (your ``http_client`` stays open)."""
        self._closed = True
        self._pinned.clear()
        clients, self._pinned_clients = self._pinned_clients, []
        for client in clients:
            await client.aclose()

    async def __aenter__(self) -> Self:
        """Use the client as ``async with``: it is closed at the end of the block.

        Returns:
            The client.

        Raises:
            RuntimeError: the client was closed.
        """
        options.check_open(self, self._closed)
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
