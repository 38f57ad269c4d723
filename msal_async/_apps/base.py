"""ClientApplication: the constructor (validation only, never I/O) and shared plumbing."""

from __future__ import annotations

import copy
import logging
import sys
import warnings
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

if sys.version_info >= (3, 11):
    from typing import Self
else:  # typing_extensions comes with anyio on Python < 3.13
    from typing_extensions import Self

import anyio

from .. import _log
from .._authority import Authority, AuthorityBuilder
from .._cache.token_cache import TokenCache
from .._credentials import ClientCredential, parse_client_credential
from .._discovery import Discovery
from .._flows import password as _password
from .._flows.context import AppContext
from .._jobs import Jobs
from .._oauth2.scopes import decorate_scopes as _decorate_scopes
from .._oauth2.scopes import validate_scopes
from .._region import configured_region, region_detector
from .._singleflight import SingleFlight
from .._telemetry import TelemetryBuffer
from .._transport import Transport
from .._types import Scopes, TokenResult
from . import options
from .hot import HotSlots
from .user import UserTokenMethods

if TYPE_CHECKING:
    import httpx  # loaded with the first request (see _transport), not with the app

__all__ = ["ClientApplication"]

logger = logging.getLogger(_log.APPLICATION)


class ClientApplication(UserTokenMethods):
    """The base of PublicClientApplication and ConfidentialClientApplication (msal's API).

    The constructor validates its arguments and does no I/O at all: authority discovery
    happens lazily on the first awaited call, once, shared by concurrent callers. Use the
    app as ``async with app:`` or call ``await app.aclose()`` to close the HTTP client it
    created (a client passed as ``http_client`` is never closed by the app).

    Args:
        client_id: the application (client) id of your app registration.
        client_credential: a client secret string, or a dict (certificate or assertion).
        authority: ``https://login.microsoftonline.com/{tenant}`` and the other forms msal
            accepts; default ``https://login.microsoftonline.com/common/``.
        validate_authority: False treats the authority as known: no instance discovery.
        token_cache: a ``TokenCache``; default a new in-memory one.
        http_client: an ``httpx.AsyncClient`` to send requests through (``app.http_client``
            is the client in use either way).
        verify, proxies, timeout: used when the app builds its own client.
        client_claims: extra claims for the client assertion.
        app_name, app_version: sent as ``x-app-name`` and ``x-app-ver``.
        client_capabilities: e.g. ``["CP1"]``, sent as ``xms_cc`` in ``claims``.
        azure_region: None (``MSAL_FORCE_REGION``, read here), a region name, True
            (``ATTEMPT_REGION_DISCOVERY``) or False (``DISABLE_MSAL_FORCE_REGION``).
        exclude_scopes: scopes not to add to user-token requests.
        http_cache: a dict-like object holding throttling state and discovery documents.
        instance_discovery: None/True, False (skip), or a custom discovery URL.
        allow_broker: deprecated; no broker exists here, see ``enable_broker_on_*``.
        enable_pii_log: accepted for compatibility; only a broker would use it.
        oidc_authority: a generic OpenID Connect issuer URL, instead of ``authority``.

    Raises:
        TypeError: an argument has the wrong type (the message names it).
        ValueError: an argument has a wrong value (the message names it).
    """

    ACQUIRE_TOKEN_SILENT_ID = "84"
    ACQUIRE_TOKEN_BY_REFRESH_TOKEN = "85"
    ACQUIRE_TOKEN_BY_USERNAME_PASSWORD_ID = "301"
    ACQUIRE_TOKEN_ON_BEHALF_OF_ID = "523"
    ACQUIRE_TOKEN_BY_DEVICE_FLOW_ID = "622"
    ACQUIRE_TOKEN_FOR_CLIENT_ID = "730"
    ACQUIRE_TOKEN_BY_AUTHORIZATION_CODE_ID = "832"
    ACQUIRE_TOKEN_INTERACTIVE = "169"
    ACQUIRE_TOKEN_BY_USER_FIC_ID = "950"
    GET_ACCOUNTS_ID = "902"
    REMOVE_ACCOUNT_ID = "903"
    ATTEMPT_REGION_DISCOVERY = True  # azure_region=ATTEMPT_REGION_DISCOVERY: detect it
    DISABLE_MSAL_FORCE_REGION = False  # azure_region=DISABLE_MSAL_FORCE_REGION: no region

    def __init__(
        self,
        client_id: str,
        client_credential: Any = None,
        authority: str | AuthorityBuilder | None = None,
        validate_authority: bool = True,
        token_cache: TokenCache | None = None,
        http_client: httpx.AsyncClient | None = None,
        verify: Any = True,
        proxies: Any = None,
        timeout: Any = None,
        client_claims: dict[str, Any] | None = None,
        app_name: str | None = None,
        app_version: str | None = None,
        client_capabilities: list[str] | None = None,
        azure_region: str | bool | None = None,
        exclude_scopes: list[str] | None = None,
        http_cache: Any = None,
        instance_discovery: bool | str | None = None,
        allow_broker: bool | None = None,
        enable_pii_log: bool | None = None,
        oidc_authority: str | None = None,
    ) -> None:
        self.client_id = options.check_client_id(client_id)
        checked_claims = options.check_client_claims(client_claims)
        self.client_credential = client_credential
        self.client_claims = client_claims
        options.check_bool("validate_authority", validate_authority)
        if token_cache is not None and not isinstance(token_cache, TokenCache):
            msg = (
                "token_cache must be a msal_async.TokenCache (or SerializableTokenCache), got "
                f"{type(token_cache).__name__}; to reuse an msal cache, pass its serialize() "
                "output to msal_async.SerializableTokenCache().deserialize()"
            )
            raise TypeError(msg)
        if http_client is not None and not options.is_httpx_async_client(http_client):
            msg = (
                "http_client must be an httpx.AsyncClient, got "
                f"{type(http_client).__name__}; a synchronous client (requests.Session, "
                "httpx.Client) would block the event loop"
            )
            raise TypeError(msg)
        self.app_name = options.check_optional_str("app_name", app_name)
        self.app_version = options.check_optional_str("app_version", app_version)
        self._client_capabilities = options.check_capabilities(client_capabilities)
        self._azure_region = configured_region(  # reads MSAL_FORCE_REGION once, as msal
            options.check_region("azure_region", azure_region),
            has_credential=bool(client_credential),
        )
        self._exclude_scopes = options.check_exclude_scopes(exclude_scopes)
        options.check_bool("allow_broker", allow_broker, optional=True)
        options.check_bool("enable_pii_log", enable_pii_log, optional=True)
        if allow_broker is not None:
            warnings.warn(
                "allow_broker is deprecated. Please use PublicClientApplication(..., "
                "enable_broker_on_windows=True, ...)",
                DeprecationWarning,
                stacklevel=2,
            )
        self._check_broker(bool(allow_broker))
        self.authority = Authority.parse(
            authority,
            validate_authority=validate_authority,
            instance_discovery=options.check_instance_discovery(instance_discovery),
            oidc_authority_url=options.check_optional_str("oidc_authority", oidc_authority),
        )
        # Parsed after the authority: a certificate credential needs to know about AD FS.
        self._credential: ClientCredential | None = self._parse_credential(
            client_credential, client_claims=checked_claims
        )
        self.token_cache = token_cache if token_cache is not None else TokenCache()
        self._transport = Transport(
            http_client=http_client,
            verify=options.check_verify(verify),
            proxies=options.check_proxies(proxies),
            timeout=options.check_timeout(timeout),
            http_cache=options.check_http_cache(http_cache),
            app_name=app_name,
            app_version=app_version,
            is_public_client=self._credential is None,
        )
        flights = SingleFlight()
        self._ctx = AppContext(
            client_id=self.client_id,
            authority=self.authority,
            transport=self._transport,
            discovery=Discovery(self._transport, flights),
            cache=self.token_cache,
            telemetry=TelemetryBuffer(),
            credential=self._credential,
            client_capabilities=self._client_capabilities,
            exclude_scopes=self._exclude_scopes,
            flights=flights,
        )
        self._hot = HotSlots(self.token_cache)
        self._closed = False
        self._jobs: Jobs | None = None

    @property
    def http_client(self) -> httpx.AsyncClient | None:
        """The ``httpx.AsyncClient`` this app sends its requests through.

        Returns:
            Your ``http_client``; else the client the app built for the running event loop
            (None before that loop's first request, outside an event loop, or once the app is
            closed).
        """
        return self._transport.current_client()

    def _parse_credential(
        self, client_credential: object, *, client_claims: dict[str, Any] | None
    ) -> ClientCredential | None:
        return parse_client_credential(
            client_credential,
            client_claims=client_claims,
            is_adfs=self.authority.is_adfs,
            read_file=_read_file,
        )

    def _check_broker(self, requested: bool) -> None:
        if requested:
            logger.warning(
                "A broker was requested, but msal_async has no broker; "
                "falling back to the browser and cache flows"
            )

    def is_pop_supported(self) -> bool:
        """Whether PoP tokens are available: only through a broker, which is never here.

        Returns:
            False.
        """
        return False

    def _check_open(self) -> None:
        options.check_open(self, self._closed)

    async def prefetch(self, scopes: Scopes | None = None) -> TokenResult | None:
        """Warm up at start-up what the first acquisition would otherwise wait for.

        Resolves the authority (instance discovery and OpenID configuration), detects the
        region when the app asks for one (``azure_region=True``), and, with ``scopes``,
        acquires a token: the client token for a confidential app, or, for a public app
        with exactly one signed-in account in its cache, that account's token (silently).
        Call it in a web framework's start-up hook (a lifespan) so that the first user
        request is not the slow one.

        Args:
            scopes: the scopes of the token to warm; None warms discovery and region only.

        Returns:
            The token result (or error dict) when a token was sought, else None (no scopes,
            or a public app without exactly one cached account).

        Raises:
            ValueError: the authority is invalid, or bad scopes.
            MsalServiceError: discovery failed.
            MsalTransportError: the authority could not be reached.
        """
        self._check_open()
        await self._ctx.endpoints()
        if self._credential is not None:
            region = await region_detector.region(
                self._azure_region, self._transport, flights=self._ctx.flights
            )
            if region is not None:
                await self._ctx.discovery.resolve_regional(self.authority, region)
        if not scopes:
            return None
        acquire_for_client = getattr(self, "acquire_token_for_client", None)
        if self._credential is not None and acquire_for_client is not None:
            result: TokenResult = await acquire_for_client(scopes)
            return result
        accounts = await self.get_accounts()
        if len(accounts) != 1:
            return None
        return await self.acquire_token_silent_with_error(validate_scopes(scopes), accounts[0])

    def _derive(
        self, *, tenant: str | None = None, client_capabilities: list[str] | None = None
    ) -> Self:
        """A sibling app for another tenant or capability set (msal_async.azure uses it).

        The sibling is of the same class, with the same client id, credential, token cache,
        HTTP transport and discovery; only the authority's tenant and the capabilities
        differ, and it has its own in-flight requests. Closing either app closes the shared
        transport; the sibling refreshes aging tokens inline (it has no task group).

        Raises:
            ValueError: a tenant for an AD FS, B2C or generic OIDC authority (no tenants).
        """
        authority = self.authority
        if tenant is not None:
            if authority.is_adfs or authority.is_b2c or authority.is_oidc:
                msg = f"the authority {authority.url} has no tenants to switch to"
                raise ValueError(msg)
            url = urlsplit(authority.url)._replace(path=f"/{tenant}", query="", fragment="")
            authority = Authority.parse(
                url.geturl(),
                validate_authority=authority.validate_authority,
                instance_discovery=authority.instance_discovery,
            )
        capabilities = (
            self._client_capabilities
            if client_capabilities is None
            else options.check_capabilities(client_capabilities)
        )
        sibling = copy.copy(self)
        sibling.authority = authority
        sibling._client_capabilities = capabilities
        sibling._ctx = self._ctx.derive(authority=authority, client_capabilities=capabilities)
        sibling._hot = HotSlots(self.token_cache)
        sibling._jobs = None
        return sibling

    async def aclose(self) -> None:
        """Close the app: the HTTP client it created closes (a caller's ``http_client`` stays
        open), and every later call raises RuntimeError."""
        self._closed = True
        await self._transport.aclose()

    async def __aenter__(self) -> Self:
        """Open the app's background jobs: shared requests and proactive refreshes run there.

        Returns:
            The app.
        """
        self._check_open()
        jobs = Jobs()
        await jobs.open()
        self._jobs = jobs
        self._ctx.attach_group(jobs)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Wait for background refreshes (cancel them on an error), then close the app."""
        jobs, self._jobs = self._jobs, None
        self._ctx.attach_group(None)
        try:
            if jobs is not None:  # on an error, the caller's error wins: stop what can stop
                await jobs.close(cancel=exc is not None)
        finally:
            await self.aclose()

    async def acquire_token_by_username_password(
        self,
        username: str,
        password: str,
        scopes: Scopes,
        claims_challenge: str | None = None,
        auth_scheme: Any = None,
        **kwargs: Any,
    ) -> TokenResult:
        """Sign a user in with their password (ROPC): deprecated for public clients, as in msal.

        Managed users go straight to the password grant; for a federated domain (user realm
        discovery says so) the password goes to the federation server over WS-Trust and the
        SAML assertion it returns is redeemed (spec 5.7). Always a network call.

        Args:
            username: typically a UPN such as ``alice@contoso.com``.
            password: the password (never logged).
            scopes: the scopes to ask for (``openid profile offline_access`` are added).
            claims_challenge: a claims JSON from a resource's 401.
            auth_scheme: PoP needs a broker, which msal_async does not have: must be None.
            data: extra form fields for the token request.
            timeout, params, headers: for this call's requests (msal relays them).

        Returns:
            A token dict, or an error dict (a failed WS-Trust exchange included).

        Raises:
            ValueError: bad scopes or claims_challenge, or an ``auth_scheme``.
            TypeError: unexpected keyword arguments.
            MsalTransportError: an endpoint could not be reached.
        """
        self._check_open()
        if self._credential is None:
            warnings.warn(
                "This API has been deprecated for public client flows, please use a more "
                "secure flow. See https://aka.ms/msal-ropc-migration for migration guidance",
                DeprecationWarning,
                stacklevel=2,
            )
        if auth_scheme is not None:
            msg = (
                "auth_scheme is currently only available from broker, "
                "which msal_async does not have"
            )
            raise ValueError(msg)
        for name, value in (("username", username), ("password", password)):
            if not isinstance(value, str) or not value:
                msg = f"{name} must be a non-empty string"
                raise ValueError(msg)
        data, call = options.call_arguments("acquire_token_by_username_password", kwargs)
        decorated = _decorate_scopes(scopes, self._ctx.exclude_scopes)
        options.check_claims("claims_challenge", claims_challenge)
        return cast(
            "TokenResult",
            await _password.acquire_token_by_username_password(
                self._ctx,
                username,
                password,
                decorated,
                claims_challenge=claims_challenge,
                data=data,
                options=call,
            ),
        )


async def _read_file(path: str) -> bytes:
    """Read a credential file (a PFX) in a worker thread: the event loop never blocks on disk."""
    return await anyio.Path(path).read_bytes()
